"""Second reading of the policy engine, as a hostile reader or member: nobody writes without a
rule that lets them, and the plugin-level checks Neutron makes after the policy still hold.

- Every write the API can ask the engine about has a rule of its own; none falls through to
  Neutron's ``default`` rule (``admin_or_owner``, which asks no role), so a project reader
  never writes (``update_security_group_rule`` fell through: a reader changed a rule).
- A quota list asks ``get_quota`` as Neutron's ``index`` does (403 for a member or reader).
- A port may not claim to be an interface of another project's router (Neutron's
  ``DeviceIDNotOwnedByTenant``, 409), on create or update, whatever the policy allows.
"""

from __future__ import annotations

from typing import Any

import pytest

from neutrino.api.controller import Controller
from neutrino.context import Context
from neutrino.policy import Policy
from neutrino.policy.defaults import RULES
from tests.api.test_misc_resources import server_api  # noqa: F401  (fixture)
from tests.conftest import Api

# the actions the special routes ask by name (api/routes/routers.py, quotas.py, the tags
# subresource in api/controller.py)
MEMBER_ACTIONS = ("add_router_interface", "remove_router_interface", "add_extraroutes", "remove_extraroutes",
                  "update_quota", "delete_quota")
WRITE_VERBS = ("create", "update", "delete")


def err(r: Any) -> dict[str, Any]:
    return r.json()["NeutronError"]  # type: ignore[no-any-return]


def write_actions(srv: Any) -> set[str]:
    """Every write action the built server's routes ask the policy engine about."""
    actions = set(MEMBER_ACTIONS)
    for route in srv.app.routes:
        controller = getattr(getattr(route, "endpoint", None), "__self__", None)
        if not isinstance(controller, Controller):
            continue
        unsupported = getattr(controller.svc, "unsupported", ())
        for verb in WRITE_VERBS:
            if verb not in unsupported:
                actions.add(f"{verb}_{controller.res.rule}")
        if "tags" in controller.res.attrs:
            actions.update(controller._tag_action(verb) for verb in ("update", "delete"))
    return actions


def test_every_write_action_has_its_own_rule(server_api: tuple[Any, Api]) -> None:  # noqa: F811
    srv, _ = server_api
    actions = write_actions(srv)
    assert "update_security_group_rule" in actions and "add_router_interface" in actions
    missing = sorted(a for a in actions if not srv.deps.policy.known(a))
    assert not missing, f"these fall through to the 'default' rule: {missing}"


def _everything_mine(project: str) -> dict[str, Any]:
    """A target the caller owns in every way a rule can ask (owner, network owner, group owner,
    parent owner), on a shared, external network, in a shared group."""
    return {"project_id": project, "tenant_id": project, "network:project_id": project,
            "network:tenant_id": project, "security_group:project_id": project,
            "ext_parent:project_id": project, "network:shared": True, "network:router:external": True,
            "shared": True, "router:external": True, "security_group:shared": True}


@pytest.mark.parametrize("roles", [("reader",), ()])
def test_a_reader_passes_no_write_rule(server_api: tuple[Any, Api], roles: tuple[str, ...]) -> None:  # noqa: F811
    """Neutron's defaults give the reader role (and a token with no role) no write: every write
    the server asks refuses such a caller of the owning project, even on a shared network.
    (Attribute rules such as ``create_port:fixed_ips`` are only ever asked together with their
    action, so the action decides.)"""
    srv, _ = server_api
    policy: Policy = srv.deps.policy
    caller = Context(user_id="u", project_id="P", roles=frozenset(roles))
    asked = write_actions(srv) | {name for name in RULES if ":" not in name
                                  and name.split("_", 1)[0] in ("create", "update", "delete", "add", "remove")}
    allowed = sorted(a for a in asked if policy.check(caller, a, _everything_mine("P")))
    assert not allowed, f"{roles or 'no role'} may: {allowed}"


def test_only_a_member_creates_ports_on_a_shared_network(server_api: tuple[Any, Api]) -> None:  # noqa: F811
    _, api = server_api
    net = api.create("network", name="shared", shared=True)
    api.create("subnet", network_id=net["id"], cidr="10.9.0.0/24", ip_version=4)
    for roles in ("reader", "foo"):
        r = api.as_("A", roles=roles).post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
        assert r.status_code == 403 and err(r)["type"] == "PolicyNotAuthorized", (roles, r.text)
    assert api.as_("A").post("/v2.0/ports", json={"port": {"network_id": net["id"]}}).status_code == 201


def test_a_reader_cannot_change_a_security_group_rule(server_api: tuple[Any, Api]) -> None:  # noqa: F811
    _, api = server_api
    sg = api.create("security_group", tenant_id="A", name="g")
    rule = api.create("security_group_rule", tenant_id="A", security_group_id=sg["id"], direction="ingress")
    path = f"/v2.0/security-group-rules/{rule['id']}"
    r = api.as_("A", roles="reader").put(path, json={"security_group_rule": {"description": "pwned"}})
    assert r.status_code == 403 and err(r)["type"] == "PolicyNotAuthorized", r.text
    assert api.get(path).json()["security_group_rule"]["description"] == ""
    r = api.as_("A").put(path, json={"security_group_rule": {"description": "mine"}})
    assert r.status_code == 200 and r.json()["security_group_rule"]["description"] == "mine"
    # another project's member does not see it
    r = api.as_("B").put(path, json={"security_group_rule": {"description": "x"}})
    assert r.status_code == 404


def test_quota_list_asks_get_quota(server_api: tuple[Any, Api]) -> None:  # noqa: F811
    _, api = server_api
    for project in ("A", "B"):
        assert api.put(f"/v2.0/quotas/{project}", json={"quota": {"network": 7}}).status_code == 200
    for roles in ("member,reader", "reader"):
        r = api.as_("A", roles=roles).get("/v2.0/quotas")
        assert r.status_code == 403 and err(r)["type"] == "PolicyNotAuthorized", (roles, r.text)
    manager = api.as_("A", roles="manager,member,reader")
    assert [q["project_id"] for q in manager.get("/v2.0/quotas").json()["quotas"]] == ["A"]
    assert sorted(q["project_id"] for q in api.get("/v2.0/quotas").json()["quotas"]) == ["A", "B"]
    # reading its own quota needs no rule, as in Neutron
    assert api.as_("A", roles="reader").get("/v2.0/quotas/A").status_code == 200


@pytest.mark.parametrize("owner", ["network:router_interface", "network:router_interface_distributed",
                                   "network:ha_router_replicated_interface"])
def test_a_port_cannot_claim_another_projects_router(server_api: tuple[Any, Api], owner: str) -> None:  # noqa: F811
    _, api = server_api
    a = api.as_("A")
    net = a.create("network", name="a")
    a.create("subnet", network_id=net["id"], cidr="10.1.0.0/24", ip_version=4)
    theirs = api.as_("B").create("router", name="b")
    mine = a.create("router", name="a")
    body = {"network_id": net["id"], "device_owner": owner, "device_id": theirs["id"]}
    r = a.post("/v2.0/ports", json={"port": body})
    assert r.status_code == 409 and err(r)["type"] == "DeviceIDNotOwnedByTenant", r.text
    assert theirs["id"] in err(r)["message"]
    port = a.create("port", network_id=net["id"])
    path = f"/v2.0/ports/{port['id']}"
    r = a.put(path, json={"port": {"device_owner": owner, "device_id": theirs["id"]}})
    assert r.status_code == 409 and err(r)["type"] == "DeviceIDNotOwnedByTenant", r.text
    # in two steps: the owner first, then the other project's router
    assert a.put(path, json={"port": {"device_owner": owner}}).status_code == 200
    r = a.put(path, json={"port": {"device_id": theirs["id"]}})
    assert r.status_code == 409 and err(r)["type"] == "DeviceIDNotOwnedByTenant", r.text
    assert api.get(path).json()["port"]["device_id"] == ""
    # its own router, an unknown id, or an admin: allowed, as in Neutron
    assert a.put(path, json={"port": {"device_id": mine["id"]}}).status_code == 200
    assert a.put(path, json={"port": {"device_id": "not-a-router"}}).status_code == 200
    r = api.post("/v2.0/ports", json={"port": {**body, "tenant_id": "A"}})
    assert r.status_code == 201, r.text
    # another owner is not an interface: Neutron checks only interface owners
    r = a.post("/v2.0/ports", json={"port": {**body, "device_owner": "compute:nova"}})
    assert r.status_code == 201, r.text
