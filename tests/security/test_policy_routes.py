"""The policy table reaches every route: router member actions, the tags subresource of every
taggable collection and the quota sub-reads get their own Neutron answers, and a guard fails
when the server serves a route (method + path) that no policy table exercises, so a new route
cannot slip past the table (test_policy_table.py) by not being in it.

Answers (project A's object; roles as in test_policy_table.py):
- add/remove_router_interface, add/remove_extraroutes: Neutron's member-action handling fetches
  the router with ``get_router`` first (404 for a caller who may not see it), then asks the
  action's rule (403): admin or a member of the router's project.
- tags: ``get_<res>:tags`` (reader of the owner), ``update_<res>:tags`` / ``delete_<res>:tags``
  (member of the owner); another project does not see the object (404).
- /quotas/{id}/default and /details: a project reads its own; another's needs ``get_quota``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.routing import Match, Route

from tests.api.test_misc_resources import server_api  # noqa: F401  (fixture)
from tests.conftest import Api
from tests.security import test_policy_table as table

ROLES = ("admin", "member", "reader", "other")
Op = Callable[[Api, str], Any]

# --- router member actions: role -> status per action
ROUTER_ACTIONS = ("add_router_interface", "remove_router_interface", "add_extraroutes", "remove_extraroutes")
ROUTER_EXPECTED = {"admin": (200, 200, 200, 200), "member": (200, 200, 200, 200),
                   "reader": (403, 403, 403, 403), "other": (404, 404, 404, 404)}

# --- tags: add one, show all, show one, replace all, delete all, delete one
TAG_OPS: dict[str, Op] = {
    "add": lambda c, base: c.put(f"{base}/tags/new"),
    "show_all": lambda c, base: c.get(f"{base}/tags"),
    "show_one": lambda c, base: c.get(f"{base}/tags/t"),
    "replace": lambda c, base: c.put(f"{base}/tags", json={"tags": ["a", "b"]}),
    "delete_all": lambda c, base: c.delete(f"{base}/tags"),
    "delete_one": lambda c, base: c.delete(f"{base}/tags/t"),
}
TAG_EXPECTED = {"admin": (201, 200, 204, 200, 204, 204), "member": (201, 200, 204, 200, 204, 204),
                "reader": (403, 200, 204, 403, 403, 403), "other": (404, 404, 404, 404, 404, 404)}
TAGGABLE = ("networks", "subnets", "ports", "routers", "floatingips", "security-groups")

# --- quota sub-reads of project A: default, details
QUOTA_EXPECTED = {"admin": (200, 200), "member": (200, 200), "reader": (200, 200), "other": (403, 403)}

# served routes no policy decides (Neutron neither): version documents, extension list,
# the caller's own project id
NOT_POLICY = {("GET", "/v2.0/"), ("GET", "/v2.0/extensions"), ("GET", "/v2.0/extensions/{alias}"),
              ("GET", "/v2.0/quotas/tenant"), ("GET", "/v2.0/quotas/project")}


def client(api: Api, role: str) -> Api:
    return table.client(api, role)


class Objects:
    """Project A's objects of every kind, made by the admin (tagged "t")."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.cidrs = (f"10.{i}.0.0/24" for i in range(1, 250))
        unlimited = dict.fromkeys(("network", "subnet", "port", "router", "floatingip", "security_group",
                                   "security_group_rule"), -1)  # each group brings 2 rules
        assert api.put("/v2.0/quotas/A", json={"quota": unlimited}).status_code == 200
        self.ext = api.create("network", name="ext", **{"router:external": True})
        api.create("subnet", network_id=self.ext["id"], cidr="203.0.113.0/24", ip_version=4)

    def network(self) -> dict[str, Any]:
        return self.api.create("network", tenant_id="A", tags=["t"])

    def subnet(self) -> dict[str, Any]:
        net = self.network()
        return self.api.create("subnet", tenant_id="A", network_id=net["id"], cidr=next(self.cidrs),
                               ip_version=4, tags=["t"])

    def make(self, collection: str) -> str:
        """A fresh tagged object of project A; its path."""
        api = self.api
        if collection == "networks":
            obj = self.network()
        elif collection == "subnets":
            obj = self.subnet()
        elif collection == "ports":
            obj = api.create("port", tenant_id="A", network_id=self.subnet()["network_id"], tags=["t"])
        elif collection == "routers":
            obj = api.create("router", tenant_id="A", tags=["t"])
        elif collection == "floatingips":
            obj = api.create("floatingip", tenant_id="A", floating_network_id=self.ext["id"], tags=["t"])
        else:
            obj = api.create("security_group", tenant_id="A", name="g", tags=["t"])
        return f"/v2.0/{collection}/{obj['id']}"


def router_row(api: Api, objects: Objects, role: str) -> tuple[int, ...]:
    c = client(api, role)
    row = []
    for action in ROUTER_ACTIONS:
        router = api.create("router", tenant_id="A")
        sub = objects.subnet()
        base = f"/v2.0/routers/{router['id']}"
        if action == "remove_router_interface":
            assert api.put(f"{base}/add_router_interface", json={"subnet_id": sub["id"]}).status_code == 200
        body: Any = {"subnet_id": sub["id"]} if "interface" in action else {"router": {"routes": []}}
        row.append(int(c.put(f"{base}/{action}", json=body).status_code))
    return tuple(row)


def tag_row(api: Api, objects: Objects, collection: str, role: str) -> tuple[int, ...]:
    c = client(api, role)
    return tuple(int(op(c, objects.make(collection)).status_code) for op in TAG_OPS.values())


def quota_row(api: Api, role: str) -> tuple[int, ...]:
    c = client(api, role)
    return tuple(int(c.get(f"/v2.0/quotas/A/{what}").status_code) for what in ("default", "details"))


def _mismatch(expected: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    return {role: (want, got[role]) for role, want in expected.items() if want != got[role]}


def test_router_member_actions(server_api: tuple[Any, Api]) -> None:  # noqa: F811
    _, api = server_api
    objects = Objects(api)
    got = {role: router_row(api, objects, role) for role in ROUTER_EXPECTED}
    assert not _mismatch(ROUTER_EXPECTED, got), f"{ROUTER_ACTIONS}: (expected, got) {_mismatch(ROUTER_EXPECTED, got)}"


@pytest.mark.parametrize("collection", TAGGABLE)
def test_tags_of_every_taggable_collection(server_api: tuple[Any, Api], collection: str) -> None:  # noqa: F811
    _, api = server_api
    objects = Objects(api)
    got = {role: tag_row(api, objects, collection, role) for role in TAG_EXPECTED}
    assert not _mismatch(TAG_EXPECTED, got), f"{tuple(TAG_OPS)}: (expected, got) {_mismatch(TAG_EXPECTED, got)}"


def test_quota_default_and_details(server_api: tuple[Any, Api]) -> None:  # noqa: F811
    _, api = server_api
    got = {role: quota_row(api, role) for role in QUOTA_EXPECTED}
    assert not _mismatch(QUOTA_EXPECTED, got), f"(default, details): (expected, got) {_mismatch(QUOTA_EXPECTED, got)}"


def _served(srv: Any) -> list[tuple[str, Route]]:
    return [(method, r) for r in srv.app.routes if isinstance(r, Route) and r.path.startswith("/v2.0/")
            for method in sorted(r.methods or ()) if method != "HEAD"]


@pytest.fixture
def recorded(server_api: tuple[Any, Api]) -> Iterator[tuple[Any, Api, set[tuple[str, str]]]]:  # noqa: F811
    """The server and a client whose every request is recorded as (method, route path)."""
    srv, api = server_api
    served = _served(srv)
    hits: set[tuple[str, str]] = set()
    send = api.client.request

    def request(method: str, url: Any, *args: Any, **kw: Any) -> Any:
        path = str(url).split("?", 1)[0].removeprefix("http://127.0.0.1:9696")
        scope = {"type": "http", "path": path, "method": method.upper()}
        hits.update((m, r.path) for m, r in served if m == method.upper() and r.matches(scope)[0] == Match.FULL)
        return send(method, url, *args, **kw)

    api.client.request = request  # type: ignore[method-assign]
    yield srv, api, hits


def test_every_served_route_is_in_a_policy_table(recorded: tuple[Any, Api, set[tuple[str, str]]]) -> None:
    srv, api, hits = recorded
    # quotas first (its row sets A's network limit to 7, so A may not have more yet), then
    # back to the defaults for the rows that create A's networks
    for resource in sorted(table.EXPECTED, key=lambda r: r != "quotas"):
        table.observed(resource, api, srv)
        api.delete("/v2.0/quotas/A")
    objects = Objects(api)
    for role in ROLES:
        router_row(api, objects, role)
        quota_row(api, role)
        for collection in TAGGABLE:
            tag_row(api, objects, collection, role)
    served = {(m, r.path) for m, r in _served(srv)}
    assert ("PUT", "/v2.0/routers/{id}/add_router_interface") in served and len(served) > 40
    untested = sorted(served - hits - NOT_POLICY)
    assert not untested, f"served but in no policy table: {untested}"
