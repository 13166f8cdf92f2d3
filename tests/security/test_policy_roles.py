"""Neutron's default rules beyond admin/owner: the ``service`` and ``manager`` roles, and
attribute rules that hold for someone else's shared network (network-owner-only attributes)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api


def err(r: Any) -> dict[str, Any]:
    return r.json()["NeutronError"]  # type: ignore[no-any-return]


def test_service_role_sees_and_creates_ports_with_binding_details(api: Api) -> None:
    """get_port / create_port: ``rule:service_api``; get_port:binding:*: admin or service."""
    net = api.create("network", tenant_id="A")
    api.create("subnet", tenant_id="A", network_id=net["id"], cidr="10.1.0.0/24", ip_version=4)
    port = api.create("port", tenant_id="A", network_id=net["id"])
    service = api.as_("services", roles="service")
    r = service.get(f"/v2.0/ports/{port['id']}")
    assert r.status_code == 200 and "binding:vif_type" in r.json()["port"]
    assert "binding:vif_type" not in api.as_("A").get(f"/v2.0/ports/{port['id']}").json()["port"]
    r = service.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
    assert r.status_code == 201, r.text
    # a plain member of another project may not
    r = api.as_("B").post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
    assert r.status_code == 404 and err(r)["type"] == "NetworkNotFound"


def test_manager_role_picks_floating_ips_and_network_owner_manager_changes_macs(api: Api) -> None:
    """create_floatingip:floating_ip_address and update_port:mac_address allow a project manager."""
    ext = api.create("network", **{"router:external": True})
    api.create("subnet", network_id=ext["id"], cidr="203.0.113.0/24", ip_version=4)
    body = {"floatingip": {"floating_network_id": ext["id"], "floating_ip_address": "203.0.113.77"}}
    r = api.as_("A").post("/v2.0/floatingips", json=body)
    assert r.status_code == 403
    assert "rule:create_floatingip:floating_ip_address" in err(r)["message"]
    r = api.as_("A", roles="manager,member,reader").post("/v2.0/floatingips", json=body)
    assert r.status_code == 201, r.text
    net = api.create("network", tenant_id="A")
    api.create("subnet", tenant_id="A", network_id=net["id"], cidr="10.2.0.0/24", ip_version=4)
    port = api.create("port", tenant_id="A", network_id=net["id"])
    change = {"port": {"mac_address": "fa:16:3e:12:34:56"}}
    r = api.as_("A").put(f"/v2.0/ports/{port['id']}", json=change)
    assert r.status_code == 403 and "rule:update_port:mac_address" in err(r)["message"]
    r = api.as_("A", roles="manager,member,reader").put(f"/v2.0/ports/{port['id']}", json=change)
    assert r.status_code == 200 and r.json()["port"]["mac_address"] == "fa:16:3e:12:34:56"


def test_on_a_shared_network_only_its_owner_changes_a_ports_addresses(api: Api) -> None:
    """create_port:fixed_ips:subnet_id allows ``rule:shared``; update_port:fixed_ips does not."""
    net = api.create("network", tenant_id="A", shared=True)
    sub = api.create("subnet", tenant_id="A", network_id=net["id"], cidr="10.3.0.0/24", ip_version=4)
    b = api.as_("B")
    r = b.post("/v2.0/ports", json={"port": {"network_id": net["id"], "fixed_ips": [{"subnet_id": sub["id"]}]}})
    assert r.status_code == 201, r.text
    port = r.json()["port"]
    r = b.post("/v2.0/ports", json={"port": {"network_id": net["id"],
                                              "fixed_ips": [{"ip_address": "10.3.0.50"}]}})
    assert r.status_code == 403 and "rule:create_port:fixed_ips:ip_address" in err(r)["message"]
    r = b.put(f"/v2.0/ports/{port['id']}", json={"port": {"fixed_ips": [{"subnet_id": sub["id"]}]}})
    assert r.status_code == 403 and "rule:update_port:fixed_ips" in err(r)["message"], r.text
    # the network owner sees the port, but update_port belongs to the port's project: 403
    r = api.as_("A").put(f"/v2.0/ports/{port['id']}", json={"port": {"fixed_ips": [{"ip_address": "10.3.0.60"}]}})
    assert r.status_code == 403, r.text  # update_port itself: the port's project only
    r = b.put(f"/v2.0/ports/{port['id']}", json={"port": {"name": "mine"}})
    assert r.status_code == 200
