"""Bad input, table-driven: every case is a 4xx with a NeutronError body that says what is
wrong, and leaves the database exactly as it was (every list before == after).

Covers malformed JSON, wrong types, unknown attributes, invalid CIDRs/IPs/MACs/UUIDs, subnet
overlap, deleting a network with ports (409 NetworkInUse), oversized bodies (413), bulk
atomicity, bad list queries, and in keystone mode a missing, garbage or expired token (401).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from neutrino.config import Config
from tests.conftest import Api, make_config

COLLECTIONS = ("networks", "subnets", "ports", "security-groups", "routers", "floatingips")
NET = "{net}"  # placeholders filled from the fixture's resources
SUB = "{sub}"
PORT = "{port}"


@dataclass
class World:
    api: Api
    net: dict[str, Any]
    sub: dict[str, Any]
    port: dict[str, Any]
    collections: list[str] = field(default_factory=list)

    def fill(self, value: Any) -> Any:
        """Replace the {net}/{sub}/{port} placeholders with real ids, anywhere in a body."""
        if isinstance(value, str):
            return value.replace(NET, self.net["id"]).replace(SUB, self.sub["id"]).replace(PORT, self.port["id"])
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {self.fill(k): self.fill(v) for k, v in value.items()}
        return value

    def snapshot(self) -> dict[str, Any]:
        out = {}
        for coll in self.collections:
            r = self.api.get(f"/v2.0/{coll}")
            assert r.status_code == 200, r.text
            out[coll] = sorted(r.json()[coll.replace("-", "_")], key=lambda i: i["id"])
        return out


@pytest.fixture
def world(api: Api) -> World:
    net = api.create("network", name="net1")
    sub = api.create("subnet", network_id=net["id"], ip_version=4, cidr="10.0.0.0/24", name="sub1")
    port = api.create("port", network_id=net["id"], name="port1")
    served = {r["collection"] for r in api.get("/v2.0").json()["resources"]}
    collections = [c for c in COLLECTIONS if c in served or c.replace("-", "_") in served]
    return World(api, net, sub, port, collections)


def neutron_error(r: Any, status: int, *words: str, type_: str | None = None) -> dict[str, Any]:
    """Assert a NeutronError response with this status whose message mentions ``words``."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"NeutronError"}, body
    err = body["NeutronError"]
    assert set(err) == {"type", "message", "detail"}, err
    assert isinstance(err["message"], str) and err["message"].strip(), err
    for word in words:
        assert word.lower() in err["message"].lower(), (word, err["message"])
    if type_ is not None:
        assert err["type"] == type_, err
    return err  # type: ignore[no-any-return]


# (id, method, path, body (JSON value) or raw bytes, status, words the message must contain, error type)
Case = tuple[str, str, str, Any, int, tuple[str, ...], str | None]
RAW = bytes

CASES: list[Case] = [
    # ---- malformed JSON and bodies that are not what the resource expects
    ("json-truncated", "POST", "/v2.0/networks", RAW(b'{"network": '), 400, ("JSON",), "MalformedRequestBody"),
    ("json-garbage", "POST", "/v2.0/ports", RAW(b"network=1"), 400, ("JSON",), "MalformedRequestBody"),
    ("json-invalid-utf8", "POST", "/v2.0/networks", RAW(b'{"network": {"name": "\xff\xfe"}}'), 400, (), None),
    ("json-put-truncated", "PUT", "/v2.0/networks/{net}", RAW(b'{"network": {"name": '), 400, ("JSON",),
     "MalformedRequestBody"),
    ("body-empty", "POST", "/v2.0/networks", RAW(b""), 400, (), None),
    ("body-list", "POST", "/v2.0/networks", [], 400, (), None),
    ("body-wrong-key", "POST", "/v2.0/networks", {"port": {}}, 400, ("network",), None),
    ("body-member-not-dict", "POST", "/v2.0/networks", {"network": "net"}, 400, ("dictionary",), None),
    ("body-bulk-empty", "POST", "/v2.0/networks", {"networks": []}, 400, ("required",), None),
    ("put-wrong-key", "PUT", "/v2.0/networks/{net}", {"subnet": {"name": "x"}}, 400, ("network",), None),
    # ---- wrong types
    ("type-bool", "POST", "/v2.0/networks", {"network": {"admin_state_up": "maybe"}}, 400,
     ("admin_state_up", "boolean"), None),
    ("type-string", "POST", "/v2.0/networks", {"network": {"name": 5}}, 400, ("name", "string"), None),
    ("type-string-list", "POST", "/v2.0/networks", {"network": {"name": ["a"]}}, 400, ("name",), None),
    ("type-int", "POST", "/v2.0/networks", {"network": {"mtu": "big"}}, 400, ("mtu", "integer"), None),
    ("type-ip-version", "POST", "/v2.0/subnets",
     {"subnet": {"network_id": NET, "ip_version": "four", "cidr": "10.1.0.0/24"}}, 400, ("ip_version",), None),
    ("type-ip-version-value", "POST", "/v2.0/subnets",
     {"subnet": {"network_id": NET, "ip_version": 5, "cidr": "10.1.0.0/24"}}, 400, ("ip_version",), None),
    ("type-fixed-ips", "POST", "/v2.0/ports", {"port": {"network_id": NET, "fixed_ips": "10.0.0.5"}}, 400,
     ("fixed_ips",), None),
    ("type-tags", "POST", "/v2.0/networks", {"network": {"tags": "red"}}, 400, ("tags",), None),
    ("type-put-bool", "PUT", "/v2.0/ports/{port}", {"port": {"admin_state_up": {"x": 1}}}, 400,
     ("admin_state_up",), None),
    ("too-long-name", "POST", "/v2.0/networks", {"network": {"name": "x" * 256}}, 400, ("name", "255"), None),
    # ---- unknown, missing and read-only attributes
    ("unknown-attr", "POST", "/v2.0/networks", {"network": {"bogus": 1}}, 400, ("unrecognized", "bogus"), None),
    ("unknown-attr-put", "PUT", "/v2.0/subnets/{sub}", {"subnet": {"bogus": 1}}, 400, ("bogus",), None),
    ("missing-required", "POST", "/v2.0/subnets", {"subnet": {"ip_version": 4, "cidr": "10.1.0.0/24"}}, 400,
     ("network_id",), None),
    ("read-only-put", "PUT", "/v2.0/networks/{net}", {"network": {"status": "DOWN"}}, 400, ("status",), None),
    ("read-only-post", "POST", "/v2.0/networks", {"network": {"id": "6b1a3c0e-2f4d-4e5a-8b9c-0d1e2f3a4b5c"}},
     400, ("id",), None),
    ("post-only-put", "PUT", "/v2.0/ports/{port}", {"port": {"network_id": NET}}, 400, ("network_id",), None),
    ("project-mismatch", "POST", "/v2.0/networks", {"network": {"project_id": "a", "tenant_id": "b"}}, 400,
     ("project_id", "tenant_id"), None),
    # ---- invalid CIDRs
    ("cidr-prefix", "POST", "/v2.0/subnets", {"subnet": {"network_id": NET, "ip_version": 4, "cidr": "10.1.0.0/33"}},
     400, ("cidr",), None),
    ("cidr-garbage", "POST", "/v2.0/subnets", {"subnet": {"network_id": NET, "ip_version": 4, "cidr": "ten/8"}},
     400, ("cidr",), None),
    ("cidr-host-bits", "POST", "/v2.0/subnets",
     {"subnet": {"network_id": NET, "ip_version": 4, "cidr": "10.1.0.1/24"}}, 400, ("cidr", "10.1.0.0/24"), None),
    ("cidr-version", "POST", "/v2.0/subnets", {"subnet": {"network_id": NET, "ip_version": 6, "cidr": "10.1.0.0/24"}},
     400, ("10.1.0.0/24",), None),
    ("cidr-host-route", "POST", "/v2.0/subnets", {"subnet": {
        "network_id": NET, "ip_version": 4, "cidr": "10.1.0.0/24",
        "host_routes": [{"destination": "1.2.3.4/40", "nexthop": "10.1.0.1"}]}}, 400, ("host_routes",), None),
    # ---- invalid IPs
    ("ip-fixed", "POST", "/v2.0/ports", {"port": {"network_id": NET, "fixed_ips": [{"ip_address": "10.0.0.300"}]}},
     400, ("10.0.0.300",), None),
    ("ip-outside", "POST", "/v2.0/ports", {"port": {"network_id": NET, "fixed_ips": [{"ip_address": "10.9.0.3"}]}},
     400, ("10.9.0.3",), None),
    ("ip-gateway", "POST", "/v2.0/subnets", {"subnet": {
        "network_id": NET, "ip_version": 4, "cidr": "10.1.0.0/24", "gateway_ip": "10.1.0"}},
     400, ("gateway_ip",), None),
    ("ip-gateway-outside", "POST", "/v2.0/subnets", {"subnet": {
        "network_id": NET, "ip_version": 4, "cidr": "10.1.0.0/24", "gateway_ip": "10.2.0.1"}}, 400, ("10.2.0.1",),
     None),
    ("ip-dns", "POST", "/v2.0/subnets", {"subnet": {
        "network_id": NET, "ip_version": 4, "cidr": "10.1.0.0/24", "dns_nameservers": ["8.8.8"]}}, 400,
     ("dns_nameservers",), None),
    ("ip-pool", "POST", "/v2.0/subnets", {"subnet": {
        "network_id": NET, "ip_version": 4, "cidr": "10.1.0.0/24",
        "allocation_pools": [{"start": "10.1.1.1", "end": "10.1.1.9"}]}}, 400, ("10.1.1.1",), None),
    ("ip-address-pair", "POST", "/v2.0/ports", {"port": {
        "network_id": NET, "allowed_address_pairs": [{"ip_address": "1.2.3.4.5"}]}}, 400,
     ("allowed_address_pairs",), None),
    ("ip-in-use", "PUT", "/v2.0/ports/{port}", {"port": {"fixed_ips": [{"ip_address": "10.0.0.1"}]}}, 409,
     ("10.0.0.1",), None),
    # ---- invalid MACs
    ("mac-garbage", "POST", "/v2.0/ports", {"port": {"network_id": NET, "mac_address": "zz:zz:zz:zz:zz:zz"}}, 400,
     ("mac_address",), None),
    ("mac-multicast", "POST", "/v2.0/ports", {"port": {"network_id": NET, "mac_address": "01:00:5e:00:00:01"}}, 400,
     ("unicast",), None),
    ("mac-short", "POST", "/v2.0/ports", {"port": {"network_id": NET, "mac_address": "fa:16:3e:00:01"}}, 400,
     ("mac_address",), None),
    ("mac-pair", "POST", "/v2.0/ports", {"port": {"network_id": NET, "allowed_address_pairs": [
        {"ip_address": "10.0.0.9", "mac_address": "fa:16:3e"}]}}, 400, ("allowed_address_pairs",), None),
    # ---- invalid UUIDs
    ("uuid-network", "POST", "/v2.0/subnets", {"subnet": {"network_id": "nope", "ip_version": 4,
                                                          "cidr": "10.1.0.0/24"}}, 400, ("network_id", "uuid"), None),
    ("uuid-port-network", "POST", "/v2.0/ports", {"port": {"network_id": "123"}}, 400, ("network_id",), None),
    ("uuid-fixed-subnet", "POST", "/v2.0/ports", {"port": {"network_id": NET, "fixed_ips": [{"subnet_id": "x"}]}},
     400, ("fixed_ips",), None),
    ("uuid-security-groups", "POST", "/v2.0/ports", {"port": {"network_id": NET, "security_groups": ["sg"]}}, 400,
     ("security_groups",), None),
    ("uuid-unknown-network", "POST", "/v2.0/ports", {"port": {"network_id": "6b1a3c0e-2f4d-4e5a-8b9c-0d1e2f3a4b5c"}},
     404, ("6b1a3c0e-2f4d-4e5a-8b9c-0d1e2f3a4b5c",), "NetworkNotFound"),
    # ---- conflicts
    ("subnet-overlap", "POST", "/v2.0/subnets", {"subnet": {"network_id": NET, "ip_version": 4,
                                                            "cidr": "10.0.0.0/16"}}, 400, ("overlaps",), None),
    ("subnet-overlap-inner", "POST", "/v2.0/subnets", {"subnet": {"network_id": NET, "ip_version": 4,
                                                                  "cidr": "10.0.0.128/25"}}, 400, ("overlaps",), None),
    ("network-in-use", "DELETE", "/v2.0/networks/{net}", None, 409, ("ports",), "NetworkInUse"),
    ("if-match-stale", "PUT", "/v2.0/networks/{net}", {"network": {"name": "x"}}, 412, ("revision",), None),
    # ---- bulk creates are all-or-nothing
    ("bulk-one-bad", "POST", "/v2.0/networks", {"networks": [{"name": "a"}, {"name": "b", "mtu": "x"}]},
     400, ("mtu",), None),
    ("bulk-ports-one-bad", "POST", "/v2.0/ports", {"ports": [{"network_id": NET},
                                                             {"network_id": NET, "mac_address": "bad"}]},
     400, ("mac_address",), None),
    ("bulk-wrapped-not-dict", "POST", "/v2.0/ports", {"ports": [{"port": {"network_id": NET}}, {"port": "x"}]},
     400, ("port", "invalid data"), None),
    ("bulk-wrong-wrapper", "POST", "/v2.0/ports", {"ports": [{"port": {"network_id": NET}},
                                                             {"network": {"network_id": NET}}]},
     400, ("unrecognized", "network"), None),
    # ---- bad list queries
    ("query-limit", "GET", "/v2.0/networks?limit=x", None, 400, ("limit",), None),
    ("query-sort-key", "GET", "/v2.0/networks?sort_key=bogus", None, 400, ("bogus",), None),
    ("query-sort-dir", "GET", "/v2.0/ports?sort_key=name&sort_dir=sideways", None, 400, ("sideways",), None),
    ("query-filter", "GET", "/v2.0/subnets?bogus=1", None, 400, ("bogus",), None),
    ("query-bool-filter", "GET", "/v2.0/networks?shared=perhaps", None, 400, ("shared",), None),
    ("query-marker", "GET", "/v2.0/networks?limit=1&marker=6b1a3c0e-2f4d-4e5a-8b9c-0d1e2f3a4b5c", None, 404,
     ("marker",), None),
    # ---- unknown ids and routes
    ("show-unknown", "GET", "/v2.0/networks/6b1a3c0e-2f4d-4e5a-8b9c-0d1e2f3a4b5c", None, 404,
     ("6b1a3c0e-2f4d-4e5a-8b9c-0d1e2f3a4b5c",), "NetworkNotFound"),
    ("delete-unknown", "DELETE", "/v2.0/ports/not-a-port", None, 404, ("not-a-port",), None),
    ("unknown-collection", "GET", "/v2.0/widgets", None, 404, (), None),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "words", "type_"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_and_changes_nothing(world: World, method: str, path: str, body: Any, status: int,
                                                    words: tuple[str, ...], type_: str | None) -> None:
    before = world.snapshot()
    kw: dict[str, Any] = {}
    if isinstance(body, RAW):
        kw = {"content": body, "headers": {"Content-Type": "application/json"}}
    elif body is not None:
        kw = {"json": world.fill(body)}
    if "if-match" in path or (method == "PUT" and status == 412):
        kw.setdefault("headers", {})["If-Match"] = "revision_number=999"
    r = world.api.request(method, world.fill(path), **kw)
    neutron_error(r, status, *(world.fill(w) for w in words), type_=type_)
    assert world.snapshot() == before


def test_oversized_body_is_413(world: World, cfg: Config) -> None:
    before = world.snapshot()
    big = b'{"network": {"name": "' + b"x" * (cfg.DEFAULT.max_request_body_size + 1) + b'"}}'
    r = world.api.request("POST", "/v2.0/networks", content=big, headers={"Content-Type": "application/json"})
    neutron_error(r, 413, "too large", type_="HTTPRequestEntityTooLarge")
    # also when streamed without a Content-Length (chunked), and on update
    r = world.api.request("POST", "/v2.0/networks", content=iter([big[:1000], big[1000:]]),
                          headers={"Content-Type": "application/json"})
    neutron_error(r, 413, "too large")
    r = world.api.request("PUT", f"/v2.0/ports/{world.port['id']}", content=big.replace(b"network", b"port"),
                          headers={"Content-Type": "application/json"})
    neutron_error(r, 413, "too large")
    assert world.snapshot() == before


def test_network_in_use_until_its_ports_are_gone(world: World) -> None:
    net_id = world.net["id"]
    neutron_error(world.api.delete(f"/v2.0/networks/{net_id}"), 409, net_id, type_="NetworkInUse")
    assert world.api.delete(f"/v2.0/ports/{world.port['id']}").status_code == 204
    assert world.api.delete(f"/v2.0/networks/{net_id}").status_code == 204
    assert world.api.get(f"/v2.0/subnets/{world.sub['id']}").status_code == 404


def test_member_cannot_touch_other_projects(world: World) -> None:
    """A member of another project: 404 for what it cannot see, 403 for admin-only attributes."""
    demo = world.api.as_("demo")
    before = world.snapshot()
    neutron_error(demo.get(f"/v2.0/networks/{world.net['id']}"), 404, type_="NetworkNotFound")
    neutron_error(demo.delete(f"/v2.0/ports/{world.port['id']}"), 404)
    neutron_error(demo.put(f"/v2.0/networks/{world.net['id']}", json={"network": {"name": "x"}}), 404)
    neutron_error(demo.post("/v2.0/networks", json={"network": {"provider:network_type": "flat"}}), 403,
                  type_="PolicyNotAuthorized")
    neutron_error(demo.post("/v2.0/networks", json={"network": {"shared": True}}), 403)
    neutron_error(demo.post("/v2.0/networks", json={"network": {"project_id": "admin"}}), 400, "not allowed")
    reader = world.api.as_("demo", "reader")
    neutron_error(reader.post("/v2.0/networks", json={"network": {"name": "r"}}), 403)
    assert world.snapshot() == before


@pytest.mark.parametrize("ip", ["10.0.0.0", "10.0.0.255"])
def test_network_and_broadcast_addresses_are_not_valid_fixed_ips(world: World, ip: str) -> None:
    before = world.snapshot()
    r = world.api.post("/v2.0/ports", json={"port": {"network_id": world.net["id"],
                                                     "fixed_ips": [{"subnet_id": world.sub["id"], "ip_address": ip}]}})
    neutron_error(r, 400, ip)
    assert world.snapshot() == before


# ------------------------------------------------------------------ keystone mode: 401s


@dataclass
class Keystone:
    client: TestClient
    srv: Any

    def token(self) -> str:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": "admin-secret"}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        r = self.client.post("/identity/v3/auth/tokens", json=body)
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"]  # type: ignore[no-any-return]

    def networks(self, token: str) -> list[dict[str, Any]]:
        r = self.client.get("/v2.0/networks", headers={"X-Auth-Token": token})
        assert r.status_code == 200, r.text
        return r.json()["networks"]  # type: ignore[no-any-return]


@pytest.fixture
def keystone(tmp_path: Path) -> Iterator[Keystone]:
    from neutrino import server

    srv = server.build(make_config(tmp_path, DEFAULT={"auth_strategy": "keystone"}))
    with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
        yield Keystone(client, srv)
    srv.db.dispose()


BAD_TOKENS = {
    "missing": None,
    "empty": "",
    "garbage": "not-a-token",
    "long-garbage": "gAAAAA" + "x" * 300,
    "noauth-headers-only": None,
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/v2.0/networks", None),
    ("POST", "/v2.0/networks", {"network": {"name": "sneaky"}}),
    ("DELETE", "/v2.0/networks/6b1a3c0e-2f4d-4e5a-8b9c-0d1e2f3a4b5c", None),
])
def test_keystone_mode_rejects_requests_without_a_valid_token(keystone: Keystone, kind: str, method: str,
                                                              path: str, body: Any) -> None:
    good = keystone.token()
    before = keystone.networks(good)
    headers = {} if BAD_TOKENS[kind] is None else {"X-Auth-Token": BAD_TOKENS[kind]}
    if kind == "noauth-headers-only":  # noauth's identity headers mean nothing in keystone mode
        headers = {"X-Project-Id": "admin", "X-Roles": "admin,member,reader"}
    r = keystone.client.request(method, path, json=body, headers=headers)
    neutron_error(r, 401, "authentication", type_="HTTPUnauthorized")
    assert keystone.networks(good) == before


def test_keystone_mode_rejects_an_expired_token(keystone: Keystone) -> None:
    from neutrino.db.models.identity import Token

    token = keystone.token()
    keystone.client.post("/v2.0/networks", json={"network": {"name": "n"}}, headers={"X-Auth-Token": token})
    before = keystone.networks(token)  # the token worked (and is cached)
    past = keystone.srv.identity.now().replace(year=2000)
    keystone.srv.db.transaction(lambda s: s.execute(update(Token).values(expires_at=past)))
    keystone.srv.identity.cache.clear()  # as after any identity write; the cache bounds staleness anyway
    for method, path, body in (("GET", "/v2.0/networks", None), ("POST", "/v2.0/networks", {"network": {}})):
        r = keystone.client.request(method, path, json=body, headers={"X-Auth-Token": token})
        neutron_error(r, 401, type_="HTTPUnauthorized")
    assert keystone.networks(keystone.token()) == before


def test_keystone_mode_rejects_a_revoked_token(keystone: Keystone) -> None:
    token = keystone.token()
    before = keystone.networks(token)
    admin = keystone.token()
    r = keystone.client.delete("/identity/v3/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": token})
    assert r.status_code == 204, r.text
    neutron_error(keystone.client.get("/v2.0/networks", headers={"X-Auth-Token": token}), 401)
    assert keystone.networks(admin) == before
