"""Every resource x {admin, owner member, owner reader, other project member, network owner} x
{create, show, list, update, delete}, with the answer Neutron's default policy gives.

The expected cells are written from Neutron's rules (neutron/conf/policies/*.py), not from what
the code does: ``get_<res>`` failing is 404 (and absent from lists), a change the caller may see
but not make is 403, a create the rule refuses is 403. A create that names a parent (network,
security group) the caller may not see answers 404 for that parent, as a show of it would.

Where this is stricter than Neutron (existence is never confirmed to who may not see it):
Neutron 2024.1-2025.2 answered 404 for a port or subnet on an invisible network (its
OwnershipValidationHook) but 403 for a security group rule in an invisible group (its policy
hook answers every refused POST with 403), and its tagging controller answers 403, not 404,
for another project's object. Neutron master (2026) dropped the hook: 403 for ports too.

The object under test belongs to project ``A``; for subnets and ports it sits on a network of
project ``N`` (the "network owner" column), which is neither shared nor external.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from neutrino.db.models.agent import Agent
from neutrino.db.models.base import utcnow
from tests.api.test_misc_resources import server_api  # noqa: F401  (fixture)
from tests.conftest import Api

ROLES = ("admin", "member", "reader", "other", "netowner")
ACTIONS = ("create", "show", "list", "update", "delete")
LIST_OK, LIST_HIDDEN = "listed", "hidden"

# resource -> role -> (create, show, list, update, delete); None: no such column for the resource
_OWNED = {"admin": (201, 200, LIST_OK, 200, 204), "member": (201, 200, LIST_OK, 200, 204),
          "reader": (403, 200, LIST_OK, 403, 403), "other": (201, 404, LIST_HIDDEN, 404, 404)}
EXPECTED: dict[str, dict[str, tuple[Any, ...]]] = {
    # create_network/get_network/update_network/delete_network: admin or project member/reader
    "networks": _OWNED,
    "routers": _OWNED,
    "floatingips": _OWNED,
    "security-groups": _OWNED,
    # create_subnet: admin or member of the network's owner; get/update/delete_subnet also allow
    # the network owner (reader/member); A's network is invisible to A and B -> 404 on create
    "subnets": {"admin": (201, 200, LIST_OK, 200, 204), "member": (404, 200, LIST_OK, 200, 204),
                "reader": (404, 200, LIST_OK, 403, 403), "other": (404, 404, LIST_HIDDEN, 404, 404),
                "netowner": (201, 200, LIST_OK, 200, 204)},
    # create_port: network owner or shared; update_port: project member only (403 for the
    # network owner, who sees it); delete_port: network owner member too
    "ports": {"admin": (201, 200, LIST_OK, 200, 204), "member": (404, 200, LIST_OK, 200, 204),
              "reader": (404, 200, LIST_OK, 403, 403), "other": (404, 404, LIST_HIDDEN, 404, 404),
              "netowner": (201, 200, LIST_OK, 403, 204)},
    # *_security_group_rule: admin or the group owner (rule:sg_owner); B cannot see A's group.
    # Neutron's plugin cannot update a rule at all (no rule, no method); neutrino's description
    # update gets its siblings' rule (update_security_group_rule), so A's reader may not write.
    "security-group-rules": {"admin": (201, 200, LIST_OK, 200, 204), "member": (201, 200, LIST_OK, 200, 204),
                             "reader": (403, 200, LIST_OK, 403, 403),
                             "other": (404, 404, LIST_HIDDEN, 404, 404)},
    # get_quota: admin or the project's manager; a project reads its own without the rule, but
    # the list asks get_quota (Neutron's index: 403 for a member or reader);
    # update/delete_quota: admin only; POST is 501 for everyone
    "quotas": {"admin": (501, 200, LIST_OK, 200, 204), "member": (501, 200, "status 403", 403, 403),
               "reader": (501, 200, "status 403", 403, 403), "other": (501, 403, "status 403", 403, 403)},
    # *_agent: admin only; agents are not created through the API (405)
    "agents": {"admin": (405, 200, LIST_OK, 200, 204), "member": (405, 404, LIST_HIDDEN, 404, 404),
               "reader": (405, 404, LIST_HIDDEN, 404, 404), "other": (405, 404, LIST_HIDDEN, 404, 404)},
    # get_availability_zone: role:reader; zones are read-only and have no show
    "availability_zones": {r: (405, 404, LIST_OK, 405, 405) for r in ("admin", "member", "reader", "other")},
    # get_network_ip_availability: admin (or service) only; read-only
    "network-ip-availabilities": {"admin": (405, 200, LIST_OK, 405, 405),
                                  "member": (405, 404, LIST_HIDDEN, 405, 405),
                                  "reader": (405, 404, LIST_HIDDEN, 405, 405),
                                  "other": (405, 404, LIST_HIDDEN, 405, 405)},
    # tags of A's network: get_network:tags / update_network:tags / delete_network:tags
    # (create = PUT one tag, update = PUT all tags, delete = DELETE all tags)
    # (list = GET one tag, a 204 when it is there)
    "tags": {"admin": (201, 200, 204, 200, 204), "member": (201, 200, 204, 200, 204),
             "reader": (403, 200, 204, 403, 403), "other": (404, 404, 404, 404, 404)},
}


def client(api: Api, role: str) -> Api:
    return {"admin": api, "member": api.as_("A"), "reader": api.as_("A", roles="reader"),
            "other": api.as_("B"), "netowner": api.as_("N")}[role]


class World:
    """The fixtures one resource's row needs; ``make()`` builds a fresh object of project A."""

    def __init__(self, api: Api, srv: Any) -> None:
        self.api, self.srv = api, srv
        for project in ("A", "B", "N"):  # the table makes more than the default quotas allow
            assert api.put(f"/v2.0/quotas/{project}", json={"quota": {
                "router": -1, "security_group": -1, "security_group_rule": -1, "floatingip": -1}}).status_code == 200
        self.net_n = api.create("network", name="n-net", tenant_id="N")
        self.cidrs = (f"10.{i}.0.0/24" for i in range(1, 250))
        self.sub_n = api.create("subnet", network_id=self.net_n["id"], cidr=next(self.cidrs), ip_version=4,
                                tenant_id="N")
        self.ext = api.create("network", name="ext", **{"router:external": True})
        api.create("subnet", network_id=self.ext["id"], cidr="203.0.113.0/24", ip_version=4)
        self.sg_a = api.create("security_group", name="sg-a", tenant_id="A")

    def cidr(self) -> str:
        return next(self.cidrs)


def _status(r: Any) -> int:
    return int(r.status_code)


Ops = dict[str, Callable[[Api, str], Any]]


def _collection_ops(world: World, path: str, member: str, body: Callable[[str], dict[str, Any]],
                    make: Callable[[], str], change: dict[str, Any]) -> tuple[Ops, Callable[[], str]]:
    ops: Ops = {
        "create": lambda c, role: c.post(path, json={member: body(role)}),
        "show": lambda c, id: c.get(f"{path}/{id}"),
        "list": lambda c, id: c.get(path),
        "update": lambda c, id: c.put(f"{path}/{id}", json={member: change}),
        "delete": lambda c, id: c.delete(f"{path}/{id}"),
    }
    return ops, make


def setup(resource: str, world: World) -> tuple[Ops, Callable[[], str], str]:
    """(operations, a maker of project A's object, the list's collection key)."""
    api = world.api
    if resource == "networks":
        ops, make = _collection_ops(world, "/v2.0/networks", "network", lambda _r: {"name": "x"},
                                    lambda: api.create("network", tenant_id="A")["id"], {"name": "y"})
        return ops, make, "networks"
    if resource == "routers":
        ops, make = _collection_ops(world, "/v2.0/routers", "router", lambda _r: {"name": "x"},
                                    lambda: api.create("router", tenant_id="A")["id"], {"name": "y"})
        return ops, make, "routers"
    if resource == "floatingips":
        ops, make = _collection_ops(
            world, "/v2.0/floatingips", "floatingip", lambda _r: {"floating_network_id": world.ext["id"]},
            lambda: api.create("floatingip", tenant_id="A", floating_network_id=world.ext["id"])["id"],
            {"description": "y"})
        return ops, make, "floatingips"
    if resource == "security-groups":
        ops, make = _collection_ops(world, "/v2.0/security-groups", "security_group", lambda _r: {"name": "x"},
                                    lambda: api.create("security_group", tenant_id="A", name="g")["id"],
                                    {"name": "y"})
        return ops, make, "security_groups"
    if resource == "security-group-rules":
        ports = iter(range(1, 60000))

        def rule_body(_role: str) -> dict[str, Any]:
            n = next(ports)
            return {"security_group_id": world.sg_a["id"], "direction": "ingress", "protocol": "tcp",
                    "port_range_min": n, "port_range_max": n}

        ops, make = _collection_ops(world, "/v2.0/security-group-rules", "security_group_rule", rule_body,
                                    lambda: api.create("security_group_rule", tenant_id="A",
                                                       **rule_body(""))["id"], {"description": "y"})
        return ops, make, "security_group_rules"
    if resource == "subnets":
        ops, make = _collection_ops(
            world, "/v2.0/subnets", "subnet",
            lambda _r: {"network_id": world.net_n["id"], "cidr": world.cidr(), "ip_version": 4},
            lambda: api.create("subnet", tenant_id="A", network_id=world.net_n["id"], cidr=world.cidr(),
                               ip_version=4)["id"], {"name": "y"})
        return ops, make, "subnets"
    if resource == "ports":
        ops, make = _collection_ops(world, "/v2.0/ports", "port", lambda _r: {"network_id": world.net_n["id"]},
                                    lambda: api.create("port", tenant_id="A", network_id=world.net_n["id"])["id"],
                                    {"name": "y"})
        return ops, make, "ports"
    if resource == "quotas":
        def make_quota() -> str:
            assert api.put("/v2.0/quotas/A", json={"quota": {"network": 7}}).status_code == 200
            return "A"
        return ({"create": lambda c, _r: c.post("/v2.0/quotas", json={"quota": {"network": 1}}),
                 "show": lambda c, id: c.get(f"/v2.0/quotas/{id}"),
                 "list": lambda c, id: c.get("/v2.0/quotas"),
                 "update": lambda c, id: c.put(f"/v2.0/quotas/{id}", json={"quota": {"network": 9}}),
                 "delete": lambda c, id: c.delete(f"/v2.0/quotas/{id}")}, make_quota, "quotas")
    if resource == "agents":
        def make_agent() -> str:
            def insert(s: Any) -> str:
                row = Agent(agent_type="DHCP agent", binary="neutron-dhcp-agent", topic="dhcp_agent",
                            host=f"host-{uuid.uuid4().hex[:8]}", heartbeat_timestamp=utcnow())
                s.add(row)
                s.flush()
                return str(row.id)
            return str(world.srv.db.transaction(insert))
        ops, make = _collection_ops(world, "/v2.0/agents", "agent", lambda _r: {"host": "h"}, make_agent,
                                    {"description": "y"})
        return ops, make, "agents"
    if resource == "availability_zones":
        return ({"create": lambda c, _r: c.post("/v2.0/availability_zones", json={"availability_zone": {}}),
                 "show": lambda c, id: c.get(f"/v2.0/availability_zones/{id}"),
                 "list": lambda c, id: c.get("/v2.0/availability_zones"),
                 "update": lambda c, id: c.put(f"/v2.0/availability_zones/{id}", json={"availability_zone": {}}),
                 "delete": lambda c, id: c.delete(f"/v2.0/availability_zones/{id}")},
                lambda: "nova", "availability_zones")
    if resource == "network-ip-availabilities":
        def make_net() -> str:
            net = api.create("network", tenant_id="A")
            api.create("subnet", tenant_id="A", network_id=net["id"], cidr=world.cidr(), ip_version=4)
            return str(net["id"])
        ops, make = _collection_ops(world, "/v2.0/network-ip-availabilities", "network_ip_availability",
                                    lambda _r: {"network_id": "x"}, make_net, {"network_id": "y"})
        return ops, make, "network_ip_availabilities"
    assert resource == "tags"
    make_tagged = lambda: api.create("network", tenant_id="A", tags=["t"])["id"]  # noqa: E731
    return ({"create": lambda c, id: c.put(f"/v2.0/networks/{id}/tags/new"),
             "show": lambda c, id: c.get(f"/v2.0/networks/{id}/tags"),
             "list": lambda c, id: c.get(f"/v2.0/networks/{id}/tags/t"),
             "update": lambda c, id: c.put(f"/v2.0/networks/{id}/tags", json={"tags": ["a", "b"]}),
             "delete": lambda c, id: c.delete(f"/v2.0/networks/{id}/tags")}, make_tagged, "tags")


def _listed(resource: str, r: Any, key: str, id: str) -> str:
    if r.status_code != 200:
        return f"status {r.status_code}"
    items = r.json()[key]
    if resource == "availability_zones":
        return LIST_OK
    ids = {i.get("id") or i.get("project_id") or i.get("network_id") for i in items}
    if resource == "network-ip-availabilities":
        ids = {i["network_id"] for i in items}
    return LIST_OK if id in ids else LIST_HIDDEN


def observed(resource: str, api: Api, srv: Any) -> dict[str, tuple[Any, ...]]:
    world = World(api, srv)
    ops, make, key = setup(resource, world)
    table: dict[str, tuple[Any, ...]] = {}
    for role in EXPECTED[resource]:
        c = client(api, role)
        row: list[Any] = []
        for action in ACTIONS:
            target = make() if action != "create" or resource == "tags" else role
            r = ops[action](c, target)
            listed = action == "list" and resource != "tags"
            row.append(_listed(resource, r, key, target) if listed else _status(r))
        table[role] = tuple(row)
    return table


@pytest.mark.parametrize("resource", sorted(EXPECTED))
def test_neutron_default_policy_table(resource: str, server_api: tuple[Any, Api]) -> None:  # noqa: F811
    srv, api = server_api
    got = observed(resource, api, srv)
    wrong = {role: {a: (want, have) for a, want, have in zip(ACTIONS, EXPECTED[resource][role], row, strict=True)
                    if want != have}
             for role, row in got.items()}
    wrong = {role: cells for role, cells in wrong.items() if cells}
    assert not wrong, f"{resource}: (expected, got) per role/action: {wrong}"
