"""The Keystone v3 subset over HTTP: tokens, admin CRUD, policy, and real OpenStack clients."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from neutrino import config
from neutrino.config import Config
from neutrino.db.engine import Database
from neutrino.db.models import Base
from neutrino.db.models.identity import Token
from neutrino.errors import NotAuthenticated
from neutrino.identity import Identity

ADMIN_PW = "admin-secret"
DEMO_PW = "demo-secret"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Clock:
    """A settable clock for Identity, so expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    cfg: Config
    db: Database
    identity: Identity
    clock: Clock
    client: TestClient

    def token(self, user: str = "admin", password: str = ADMIN_PW, project: str | None = "admin",
              **kw: Any) -> tuple[str, dict[str, Any]]:
        r = self.client.post("/identity/v3/auth/tokens", json=password_auth(user, password, project), **kw)
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"], r.json()["token"]

    def admin(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token()[0]}

    def demo(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token("demo", DEMO_PW, "demo")[0]}


def password_auth(user: str, password: str, project: str | None = None, *, by_id: bool = False,
                  project_id: str | None = None) -> dict[str, Any]:
    ident: dict[str, Any] = {"password": password}
    ident.update({"id": user} if by_id else {"name": user, "domain": {"id": "default"}})
    body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {"user": ident}}}}
    if project_id:
        body["auth"]["scope"] = {"project": {"id": project_id}}
    elif project:
        body["auth"]["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
    return body


def make_config(tmp: Path, **default: Any) -> Config:
    cfg = config.load(env={})
    cfg.DEFAULT.state_dir = str(tmp)
    cfg.database.connection = f"sqlite:///{tmp}/db.sqlite"
    cfg.identity.admin_password = ADMIN_PW
    cfg.identity.demo_password = DEMO_PW
    for key, value in default.items():
        setattr(cfg.DEFAULT, key, value)
    return cfg


def build(cfg: Config, clock: Clock | None = None) -> tuple[Database, Identity, Starlette]:
    db = Database(cfg.db_url)
    Base.metadata.create_all(db.engine)
    identity = Identity(db, cfg, clock=clock) if clock else Identity(db, cfg)
    identity.bootstrap()
    return db, identity, Starlette(routes=[Mount("/identity", routes=identity.routes())])


@pytest.fixture(scope="module")
def bootstrapped_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bootstrapped database file, copied per test: hashing the two passwords costs ~0.1 s."""
    tmp = tmp_path_factory.mktemp("identity-template")
    db, _, _ = build(make_config(tmp))
    db.dispose()  # closing the last connection checkpoints the WAL into the file
    return tmp / "db.sqlite"


@pytest.fixture
def env(tmp_path: Path, bootstrapped_db: Path) -> Iterator[Env]:
    shutil.copyfile(bootstrapped_db, tmp_path / "db.sqlite")
    cfg = make_config(tmp_path)
    clock = Clock()
    db, identity, app = build(cfg, clock)
    with TestClient(app) as client:
        yield Env(cfg, db, identity, clock, client)
    db.dispose()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_error(r: Any, code: int, title: str) -> None:
    assert r.status_code == code, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["title"] == title and err["message"]


# --- discovery --------------------------------------------------------------------------------

def test_version_documents(env: Env) -> None:
    r = env.client.get("/identity/")
    assert r.status_code == 300
    (v3,) = r.json()["versions"]["values"]
    assert v3["id"] == "v3.14" and v3["status"] == "stable"
    for path in ("/identity/v3", "/identity/v3/"):
        r = env.client.get(path)
        assert r.status_code == 200
        doc = r.json()["version"]
        assert doc == v3
        assert doc["links"] == [{"rel": "self", "href": "http://127.0.0.1:9696/identity/v3/"}]
        assert doc["media-types"][0]["type"] == "application/vnd.openstack.identity-v3+json"


def test_unknown_paths_and_methods_get_keystone_errors(env: Env) -> None:
    assert_error(env.client.get("/identity/v3/nothing-here"), 404, "Not Found")
    assert_error(env.client.put("/identity/v3/projects", headers=env.admin()), 405, "Method Not Allowed")


# --- bootstrap --------------------------------------------------------------------------------

def test_bootstrap_generates_passwords_once(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    cfg.identity.admin_password = cfg.identity.demo_password = ""
    db = Database(cfg.db_url)
    Base.metadata.create_all(db.engine)
    identity = Identity(db, cfg)
    created = identity.bootstrap()
    assert set(created) == {"admin", "demo"} and all(len(p) >= 16 for p in created.values())
    assert identity.bootstrap() == {}
    client = TestClient(Starlette(routes=[Mount("/identity", routes=identity.routes())]))
    r = client.post("/identity/v3/auth/tokens", json=password_auth("demo", created["demo"], "demo"))
    assert r.status_code == 201
    assert {role["name"] for role in r.json()["token"]["roles"]} == {"member", "reader"}
    db.dispose()


# --- issuing tokens ---------------------------------------------------------------------------

def test_token_by_name_has_keystone_shape(env: Env) -> None:
    raw, tok = env.token()
    assert len(raw) >= 40
    assert tok["methods"] == ["password"]
    assert tok["user"]["name"] == "admin" and tok["user"]["password_expires_at"] is None
    assert tok["user"]["domain"] == {"id": "default", "name": "Default"}
    assert tok["project"]["name"] == "admin"
    assert tok["project"]["domain"] == {"id": "default", "name": "Default"}
    assert {r["name"] for r in tok["roles"]} == {"admin", "member", "reader"}
    assert all(set(r) == {"id", "name"} for r in tok["roles"])
    assert tok["is_domain"] is False
    assert ISO.match(tok["expires_at"]) and ISO.match(tok["issued_at"])
    assert len(tok["audit_ids"]) == 1
    catalog = {s["type"]: s for s in tok["catalog"]}
    assert catalog["network"]["name"] == "neutron" and catalog["identity"]["name"] == "keystone"
    for kind, url in (("network", "http://127.0.0.1:9696"), ("identity", "http://127.0.0.1:9696/identity")):
        eps = catalog[kind]["endpoints"]
        assert {e["interface"] for e in eps} == {"public", "internal", "admin"}
        assert all(e["url"] == url and e["region"] == e["region_id"] == "RegionOne" for e in eps)
    # nocatalog, as keystone supports it
    _, tok = env.token(params={"nocatalog": "1"})
    assert "catalog" not in tok


def test_token_by_ids(env: Env) -> None:
    _, first = env.token()
    body = password_auth(first["user"]["id"], ADMIN_PW, by_id=True, project_id=first["project"]["id"])
    r = env.client.post("/identity/v3/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["token"]["project"]["id"] == first["project"]["id"]


def test_unscoped_tokens(env: Env) -> None:
    h = env.admin()
    user = env.client.post("/identity/v3/users", headers=h,
                           json={"user": {"name": "loner", "password": "pw"}}).json()["user"]
    r = env.client.post("/identity/v3/auth/tokens", json=password_auth("loner", "pw"))
    assert r.status_code == 201
    tok = r.json()["token"]
    assert tok["user"]["id"] == user["id"]
    assert "project" not in tok and "catalog" not in tok and "roles" not in tok
    # an unscoped token authenticates to identity, not to the network API
    with pytest.raises(NotAuthenticated):
        env.identity.authenticate(r.headers["X-Subject-Token"])
    # the bootstrap users' default project scopes a request without scope...
    body = password_auth("demo", DEMO_PW)
    assert env.client.post("/identity/v3/auth/tokens", json=body).json()["token"]["project"]["name"] == "demo"
    # ...unless the client asks for an unscoped token explicitly
    body["auth"]["scope"] = "unscoped"
    assert "project" not in env.client.post("/identity/v3/auth/tokens", json=body).json()["token"]


def test_rescoping_with_token_method(env: Env) -> None:
    h = env.admin()
    project = env.client.post("/identity/v3/projects", headers=h,
                              json={"project": {"name": "other"}}).json()["project"]
    admin_id = env.token()[1]["user"]["id"]
    member = env.client.get("/identity/v3/roles?name=member", headers=h).json()["roles"][0]
    assert env.client.put(f"/identity/v3/projects/{project['id']}/users/{admin_id}/roles/{member['id']}",
                          headers=h).status_code == 204
    raw, unscoped = env.token(project=None)
    env.clock.advance(10)
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": raw}},
                     "scope": {"project": {"id": project["id"]}}}}
    r = env.client.post("/identity/v3/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    tok = r.json()["token"]
    assert tok["project"]["id"] == project["id"]
    assert {x["name"] for x in tok["roles"]} == {"member", "reader"}  # member implies reader
    assert set(tok["methods"]) == {"token", "password"}
    assert tok["expires_at"] == unscoped["expires_at"]  # never outlives its parent
    body["auth"]["identity"]["token"]["id"] = "bogus"
    assert_error(env.client.post("/identity/v3/auth/tokens", json=body), 401, "Unauthorized")


@pytest.mark.parametrize("case", ["password", "user", "project", "domain", "no-role", "system"])
def test_bad_credentials_are_401(env: Env, case: str) -> None:
    if case == "no-role":
        h = env.admin()
        env.client.post("/identity/v3/projects", headers=h, json={"project": {"name": "empty"}})
    body = {
        "password": password_auth("admin", "wrong", "admin"),
        "user": password_auth("nobody", ADMIN_PW, "admin"),
        "project": password_auth("admin", ADMIN_PW, "no-such-project"),
        "domain": password_auth("admin", ADMIN_PW, "admin"),
        "no-role": password_auth("demo", DEMO_PW, "empty"),
        "system": password_auth("admin", ADMIN_PW, None),
    }[case]
    if case == "domain":
        body["auth"]["identity"]["password"]["user"]["domain"] = {"id": "elsewhere"}
    if case == "system":
        body["auth"]["scope"] = {"system": {"all": True}}
    r = env.client.post("/identity/v3/auth/tokens", json=body)
    assert_error(r, 401, "Unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Keystone uri=")
    assert "X-Subject-Token" not in r.headers


@pytest.mark.parametrize("body", [
    None,
    {},
    {"auth": "x"},
    {"auth": {"identity": {"methods": "password"}}},
    {"auth": {"identity": {"methods": ["password"]}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "x"}}}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": 5, "password": "x"}}}}},
])
def test_malformed_auth_is_400(env: Env, body: Any) -> None:
    assert_error(env.client.post("/identity/v3/auth/tokens", json=body), 400, "Bad Request")


def test_invalid_json_is_400(env: Env) -> None:
    r = env.client.post("/identity/v3/auth/tokens", content=b"{nope",
                        headers={"Content-Type": "application/json"})
    assert_error(r, 400, "Bad Request")


# --- validating, revoking, expiring -----------------------------------------------------------

def test_validate_and_revoke(env: Env) -> None:
    admin = env.admin()
    demo_raw, demo_tok = env.token("demo", DEMO_PW, "demo")
    url = "/identity/v3/auth/tokens"
    r = env.client.get(url, headers={**admin, "X-Subject-Token": demo_raw})
    assert r.status_code == 200 and r.headers["X-Subject-Token"] == demo_raw
    assert r.json()["token"]["user"] == demo_tok["user"]
    assert r.json()["token"]["audit_ids"] == demo_tok["audit_ids"]
    r = env.client.head(url, headers={**admin, "X-Subject-Token": demo_raw})
    assert r.status_code == 200 and r.content == b""
    # a user may check their own token
    own = {"X-Auth-Token": demo_raw, "X-Subject-Token": demo_raw}
    assert env.client.get(url, headers=own).status_code == 200
    ctx = env.identity.authenticate(demo_raw)
    assert ctx.user_name == "demo" and ctx.project_name == "demo"

    assert env.client.delete(url, headers={**admin, "X-Subject-Token": demo_raw}).status_code == 204
    assert_error(env.client.get(url, headers={**admin, "X-Subject-Token": demo_raw}), 404, "Not Found")
    assert_error(env.client.get(url, headers=own), 401, "Unauthorized")
    with pytest.raises(NotAuthenticated):
        env.identity.authenticate(demo_raw)
    assert_error(env.client.get(url, headers={**admin, "X-Subject-Token": "bogus"}), 404, "Not Found")
    assert_error(env.client.get(url, headers={"X-Subject-Token": "bogus"}), 401, "Unauthorized")


def test_other_users_token_is_forbidden(env: Env) -> None:
    admin_raw = env.token()[0]
    r = env.client.get("/identity/v3/auth/tokens", headers={**env.demo(), "X-Subject-Token": admin_raw})
    assert_error(r, 403, "Forbidden")


def test_expiry_through_the_cache(env: Env) -> None:
    raw, tok = env.token()
    assert env.identity.authenticate(raw).is_admin  # now cached
    env.clock.advance(env.cfg.identity.token_expiration + 1)
    with pytest.raises(NotAuthenticated):
        env.identity.authenticate(raw)
    assert_error(env.client.get("/identity/v3/projects", headers={"X-Auth-Token": raw}), 401, "Unauthorized")


def test_expiry_from_the_database(env: Env) -> None:
    raw, _ = env.token()
    past = env.identity.now().replace(year=2000)
    env.db.transaction(lambda s: s.execute(update(Token).values(expires_at=past)))
    with pytest.raises(NotAuthenticated):
        env.identity.authenticate(raw)


def test_authenticate_is_fast_when_cached(env: Env) -> None:
    raw, tok = env.token("demo", DEMO_PW, "demo")
    ctx = env.identity.authenticate(raw)
    assert ctx.user_id == tok["user"]["id"] and ctx.project_id == tok["project"]["id"]
    assert ctx.roles == frozenset({"member", "reader"}) and not ctx.is_admin
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        env.identity.authenticate(raw)
    assert (time.perf_counter() - start) / n < 0.0002
    with pytest.raises(NotAuthenticated):
        env.identity.authenticate("not-a-token")


# --- admin CRUD -------------------------------------------------------------------------------

def test_project_crud(env: Env) -> None:
    h = env.admin()
    base = "/identity/v3/projects"
    r = env.client.post(base, headers=h, json={"project": {"name": "p1", "description": "d",
                                                           "tags": ["a"], "color": "ignored"}})
    assert r.status_code == 201, r.text
    p = r.json()["project"]
    assert p["name"] == "p1" and p["domain_id"] == "default" and p["enabled"] is True
    assert p["is_domain"] is False and p["parent_id"] == "default" and p["tags"] == ["a"]
    assert p["links"]["self"] == f"http://127.0.0.1:9696/identity/v3/projects/{p['id']}"
    assert "color" not in p

    listing = env.client.get(base, headers=h).json()
    assert {"admin", "demo", "p1"} <= {x["name"] for x in listing["projects"]}
    assert listing["links"] == {"self": "http://127.0.0.1:9696/identity/v3/projects",
                                "previous": None, "next": None}
    assert [x["id"] for x in env.client.get(f"{base}?name=p1", headers=h).json()["projects"]] == [p["id"]]
    assert env.client.get(f"{base}?domain_id=other", headers=h).json()["projects"] == []
    assert len(env.client.get(f"{base}?domain_id=default", headers=h).json()["projects"]) == 3

    assert env.client.get(f"{base}/{p['id']}", headers=h).json()["project"] == p
    r = env.client.patch(f"{base}/{p['id']}", headers=h, json={"project": {"name": "p2", "enabled": False}})
    assert r.status_code == 200 and r.json()["project"]["name"] == "p2"
    assert r.json()["project"]["enabled"] is False

    assert_error(env.client.post(base, headers=h, json={"project": {"name": "demo"}}), 409, "Conflict")
    assert_error(env.client.patch(f"{base}/{p['id']}", headers=h, json={"project": {"name": "demo"}}),
                 409, "Conflict")
    for bad in ({"project": {"name": 5}}, {"project": {}}, {"project": {"name": "x", "enabled": "yes"}},
                {"project": "x"}, {"name": "x"}, {"project": {"name": ""}}):
        assert_error(env.client.post(base, headers=h, json=bad), 400, "Bad Request")
    assert_error(env.client.post(base, headers=h, json={"project": {"name": "x", "domain_id": "d2"}}),
                 404, "Not Found")

    assert env.client.delete(f"{base}/{p['id']}", headers=h).status_code == 204
    assert_error(env.client.get(f"{base}/{p['id']}", headers=h), 404, "Not Found")
    assert_error(env.client.delete(f"{base}/{p['id']}", headers=h), 404, "Not Found")


def test_user_crud_and_password_change(env: Env) -> None:
    h = env.admin()
    base = "/identity/v3/users"
    demo_project = env.client.get("/identity/v3/projects?name=demo", headers=h).json()["projects"][0]
    r = env.client.post(base, headers=h, json={"user": {
        "name": "alice", "password": "pw1", "email": "a@example.org", "description": "Alice",
        "default_project_id": demo_project["id"], "domain_id": "default", "enabled": True}})
    assert r.status_code == 201, r.text
    u = r.json()["user"]
    assert "password" not in u and "password_hash" not in u
    assert u["email"] == "a@example.org" and u["description"] == "Alice"
    assert u["default_project_id"] == demo_project["id"] and u["password_expires_at"] is None
    assert u["links"]["self"].endswith(f"/identity/v3/users/{u['id']}")
    assert [x["id"] for x in env.client.get(f"{base}?name=alice", headers=h).json()["users"]] == [u["id"]]
    assert env.client.get(f"{base}/{u['id']}", headers=h).json()["user"] == u
    assert_error(env.client.post(base, headers=h, json={"user": {"name": "alice"}}), 409, "Conflict")
    assert_error(env.client.post(base, headers=h, json={"user": {"name": ["x"]}}), 400, "Bad Request")
    assert_error(env.client.post(base, headers=h, json={"user": {"password": "x"}}), 400, "Bad Request")

    old_raw, _ = env.token("alice", "pw1", None)
    r = env.client.patch(f"{base}/{u['id']}", headers=h, json={"user": {"password": "pw2"}})
    assert r.status_code == 200
    with pytest.raises(NotAuthenticated):  # a password change revokes the user's tokens
        env.identity.authenticate(old_raw)
    assert_error(env.client.post("/identity/v3/auth/tokens", json=password_auth("alice", "pw1")),
                 401, "Unauthorized")
    env.token("alice", "pw2", None)

    # self-service change, proven by the old password
    url = f"{base}/{u['id']}/password"
    bad = {"user": {"password": "pw3", "original_password": "wrong"}}
    assert_error(env.client.post(url, json=bad), 401, "Unauthorized")
    assert env.client.post(url, json={"user": {"password": "pw3", "original_password": "pw2"}}).status_code == 204
    env.token("alice", "pw3", None)

    r = env.client.patch(f"{base}/{u['id']}", headers=h, json={"user": {"enabled": False}})
    assert r.json()["user"]["enabled"] is False
    assert_error(env.client.post("/identity/v3/auth/tokens", json=password_auth("alice", "pw3")),
                 401, "Unauthorized")
    assert env.client.delete(f"{base}/{u['id']}", headers=h).status_code == 204
    assert_error(env.client.get(f"{base}/{u['id']}", headers=h), 404, "Not Found")


def test_roles_and_assignments(env: Env) -> None:
    h = env.admin()
    v3 = "/identity/v3"
    r = env.client.post(f"{v3}/roles", headers=h, json={"role": {"name": "auditor"}})
    assert r.status_code == 201
    role = r.json()["role"]
    assert role["domain_id"] is None and role["links"]["self"].endswith(f"/roles/{role['id']}")
    assert_error(env.client.post(f"{v3}/roles", headers=h, json={"role": {"name": "auditor"}}), 409, "Conflict")
    assert_error(env.client.post(f"{v3}/roles", headers=h, json={"role": {"name": None}}), 400, "Bad Request")
    assert [x["name"] for x in env.client.get(f"{v3}/roles?name=auditor", headers=h).json()["roles"]] == ["auditor"]
    assert {"admin", "member", "reader", "auditor"} == {
        x["name"] for x in env.client.get(f"{v3}/roles", headers=h).json()["roles"]}
    assert env.client.get(f"{v3}/roles/{role['id']}", headers=h).json()["role"] == role

    user = env.client.post(f"{v3}/users", headers=h, json={"user": {"name": "bob", "password": "pw"}}).json()["user"]
    project = env.client.get(f"{v3}/projects?name=demo", headers=h).json()["projects"][0]
    grant = f"{v3}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}"
    assert env.client.head(grant, headers=h).status_code == 404
    assert env.client.put(grant, headers=h).status_code == 204
    assert env.client.put(grant, headers=h).status_code == 204  # idempotent
    assert env.client.head(grant, headers=h).status_code == 204
    assert env.client.get(grant, headers=h).status_code == 204
    roles = env.client.get(f"{v3}/projects/{project['id']}/users/{user['id']}/roles", headers=h).json()
    assert [x["id"] for x in roles["roles"]] == [role["id"]]

    listing = env.client.get(f"{v3}/role_assignments", headers=h,
                             params={"user.id": user["id"], "scope.project.id": project["id"]}).json()
    assert listing["role_assignments"] == [{
        "user": {"id": user["id"]}, "scope": {"project": {"id": project["id"]}},
        "role": {"id": role["id"]}, "links": {"assignment": f"http://127.0.0.1:9696{grant}"}}]
    assert listing["links"]["self"].startswith("http://127.0.0.1:9696/identity/v3/role_assignments?")
    named = env.client.get(f"{v3}/role_assignments?include_names=True&user.id={user['id']}",
                           headers=h).json()["role_assignments"][0]
    assert named["user"]["name"] == "bob" and named["role"]["name"] == "auditor"
    assert named["scope"]["project"]["name"] == "demo"
    everyone = env.client.get(f"{v3}/role_assignments", headers=h).json()["role_assignments"]
    assert len(everyone) == 3 + 2 + 1  # admin's three, demo's two, bob's one

    assert_error(env.client.put(f"{v3}/projects/{project['id']}/users/{user['id']}/roles/nope", headers=h),
                 404, "Not Found")
    assert env.client.delete(grant, headers=h).status_code == 204
    assert_error(env.client.delete(grant, headers=h), 404, "Not Found")
    assert env.client.get(grant, headers=h).status_code == 404
    assert env.client.delete(f"{v3}/roles/{role['id']}", headers=h).status_code == 204
    assert_error(env.client.get(f"{v3}/roles/{role['id']}", headers=h), 404, "Not Found")


def test_domains(env: Env) -> None:
    h = env.demo()
    (d,) = env.client.get("/identity/v3/domains?name=Default", headers=h).json()["domains"]
    assert d["id"] == "default" and d["name"] == "Default" and d["enabled"] is True
    assert d["description"] == "" and d["links"]["self"].endswith("/identity/v3/domains/default")
    assert env.client.get("/identity/v3/domains?name=Other", headers=h).json()["domains"] == []
    assert env.client.get("/identity/v3/domains/default", headers=h).json()["domain"] == d
    assert_error(env.client.get("/identity/v3/domains/other", headers=h), 404, "Not Found")
    assert_error(env.client.get("/identity/v3/domains"), 401, "Unauthorized")


def test_catalog_views(env: Env) -> None:
    h = env.demo()
    v3 = "/identity/v3"
    _, tok = env.token("demo", DEMO_PW, "demo")
    assert env.client.get(f"{v3}/auth/catalog", headers=h).json()["catalog"] == tok["catalog"]
    services = env.client.get(f"{v3}/services", headers=h).json()["services"]
    network = next(s for s in services if s["type"] == "network")
    assert env.client.get(f"{v3}/services/{network['id']}", headers=h).json()["service"] == network
    eps = env.client.get(f"{v3}/endpoints?service_id={network['id']}&interface=public", headers=h).json()
    assert [e["url"] for e in eps["endpoints"]] == ["http://127.0.0.1:9696"]
    assert env.client.get(f"{v3}/regions/RegionOne", headers=h).json()["region"]["id"] == "RegionOne"
    assert_error(env.client.get(f"{v3}/services/nope", headers=h), 404, "Not Found")
    # an unscoped token has no catalog to give
    r = env.client.post(f"{v3}/auth/tokens", json={"auth": {"identity": {
        "methods": ["token"], "token": {"id": h["X-Auth-Token"]}}, "scope": "unscoped"}})
    assert "project" not in r.json()["token"]
    assert_error(env.client.get(f"{v3}/auth/catalog", headers={"X-Auth-Token": r.headers["X-Subject-Token"]}),
                 403, "Forbidden")


# --- policy -----------------------------------------------------------------------------------

def test_member_is_forbidden_and_anonymous_unauthorized(env: Env) -> None:
    demo = env.demo()
    v3 = "/identity/v3"
    _, admin_tok = env.token()
    admin_project, admin_user = admin_tok["project"]["id"], admin_tok["user"]["id"]
    forbidden = [
        ("GET", f"{v3}/projects", None),
        ("POST", f"{v3}/projects", {"project": {"name": "x"}}),
        ("DELETE", f"{v3}/projects/{admin_project}", None),
        ("GET", f"{v3}/projects/{admin_project}", None),
        ("GET", f"{v3}/users", None),
        ("POST", f"{v3}/users", {"user": {"name": "x"}}),
        ("GET", f"{v3}/users/{admin_user}", None),
        ("GET", f"{v3}/roles", None),
        ("POST", f"{v3}/roles", {"role": {"name": "x"}}),
        ("GET", f"{v3}/role_assignments", None),
        ("PUT", f"{v3}/projects/{admin_project}/users/{admin_user}/roles/x", None),
    ]
    for method, url, body in forbidden:
        assert_error(env.client.request(method, url, headers=demo, json=body), 403, "Forbidden")
        assert_error(env.client.request(method, url, json=body), 401, "Unauthorized")
        assert_error(env.client.request(method, url, json=body, headers={"X-Auth-Token": "junk"}),
                     401, "Unauthorized")
    # but a user may look at themselves and the project they are scoped to
    _, tok = env.token("demo", DEMO_PW, "demo")
    assert env.client.get(f"{v3}/users/{tok['user']['id']}", headers=demo).status_code == 200
    assert env.client.get(f"{v3}/projects/{tok['project']['id']}", headers=demo).status_code == 200
    mine = env.client.get(f"{v3}/users/{tok['user']['id']}/projects", headers=demo).json()["projects"]
    assert [p["name"] for p in mine] == ["demo"]
    assert [p["name"] for p in env.client.get(f"{v3}/auth/projects", headers=demo).json()["projects"]] == ["demo"]


def test_new_user_on_new_project_end_to_end(env: Env) -> None:
    h = env.admin()
    v3 = "/identity/v3"
    name = unique("proj")
    project = env.client.post(f"{v3}/projects", headers=h, json={"project": {"name": name}}).json()["project"]
    user = env.client.post(f"{v3}/users", headers=h,
                           json={"user": {"name": "carol", "password": "c-pw"}}).json()["user"]
    member = env.client.get(f"{v3}/roles?name=member", headers=h).json()["roles"][0]
    grant = f"{v3}/projects/{project['id']}/users/{user['id']}/roles/{member['id']}"
    assert_error(env.client.post(f"{v3}/auth/tokens", json=password_auth("carol", "c-pw", name)),
                 401, "Unauthorized")
    assert env.client.put(grant, headers=h).status_code == 204

    raw, tok = env.token("carol", "c-pw", name)
    assert tok["project"]["id"] == project["id"]
    ctx = env.identity.authenticate(raw)
    assert ctx.project_id == project["id"] and ctx.user_name == "carol" and "member" in ctx.roles
    assert ctx.project_name == name

    # revoking the role ends the (cached) token at once
    assert env.client.delete(grant, headers=h).status_code == 204
    with pytest.raises(NotAuthenticated):
        env.identity.authenticate(raw)

    # so does deleting or disabling the project
    assert env.client.put(grant, headers=h).status_code == 204
    raw, _ = env.token("carol", "c-pw", name)
    env.identity.authenticate(raw)
    env.client.patch(f"{v3}/projects/{project['id']}", headers=h, json={"project": {"enabled": False}})
    with pytest.raises(NotAuthenticated):
        env.identity.authenticate(raw)


# --- real clients -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Starlette, port: int) -> Iterator[str]:
    """Run ``app`` under uvicorn in a background thread; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_keystoneauth_and_openstacksdk(tmp_path: Path) -> None:
    import openstack
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    port = free_port()
    cfg = make_config(tmp_path, bind=f"127.0.0.1:{port}")
    db, _identity, app = build(cfg)
    with serve(app, port) as url:
        auth_url = f"{url}/identity/v3"
        auth = v3.Password(auth_url=auth_url, username="admin", password=ADMIN_PW, project_name="admin",
                           user_domain_name="Default", project_domain_name="Default")
        sess = session.Session(auth=auth)
        assert sess.get_token()
        assert sess.get_endpoint(service_type="network", interface="public") == url
        assert sess.get_project_id()

        conn = openstack.connect(auth_url=auth_url, username="admin", password=ADMIN_PW,
                                 project_name="admin", user_domain_name="Default",
                                 project_domain_name="Default", region_name="RegionOne",
                                 load_yaml_config=False, load_envvars=False)
        assert {"admin", "demo"} <= {p.name for p in conn.identity.projects()}
        made = conn.identity.create_project(name="sdk-made", domain_id="default")
        assert conn.identity.find_project("sdk-made").id == made.id
        conn.close()
    db.dispose()
