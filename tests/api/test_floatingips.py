"""Floating IPs over HTTP: allocation on the external network, association through a router,
port_details, disassociation (explicit and by port deletion), in-use rules, filters, quota."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from neutrino.config import Config
from tests.api.test_networks import err
from tests.api.test_routers import NO_SUCH, ext_net, ports_of, put, tenant_net
from tests.conftest import Api


def topology(api: Api, project: str = "projA") -> dict[str, Any]:
    """External net + a project's network, subnet, router (gateway + interface) and a VM port."""
    ext, ext_sub = ext_net(api)
    user = api.as_(project)
    net, sub = tenant_net(user)
    router = user.create("router", external_gateway_info={"network_id": ext["id"]})
    put(user, router["id"], "add_router_interface", {"subnet_id": sub["id"]})
    vm = user.create("port", network_id=net["id"], name="vm", device_id="vm-1", device_owner="compute:nova")
    return {"ext": ext, "ext_sub": ext_sub, "user": user, "net": net, "sub": sub, "router": router, "vm": vm}


def test_create_defaults_and_port(api: Api) -> None:
    ext, ext_sub = ext_net(api)
    alice = api.as_("projA")
    fip = alice.create("floatingip", floating_network_id=ext["id"], description="d")
    assert fip["status"] == "DOWN" and fip["port_id"] is None and fip["router_id"] is None
    assert fip["fixed_ip_address"] is None and fip["port_details"] is None and fip["port_forwardings"] == []
    assert fip["floating_ip_address"] == "203.0.113.2" and fip["floating_network_id"] == ext["id"]
    assert fip["project_id"] == fip["tenant_id"] == "projA" and fip["description"] == "d"
    assert fip["dns_name"] == "" and fip["dns_domain"] == "" and fip["tags"] == []
    assert "name" not in fip and "subnet_id" not in fip and "qos_policy_id" not in fip
    port = ports_of(api, device_owner="network:floatingip")
    assert len(port) == 1 and port[0]["device_id"] == fip["id"] and port[0]["project_id"] == ""
    assert port[0]["status"] == "N/A"
    assert port[0]["fixed_ips"] == [{"subnet_id": ext_sub["id"], "ip_address": "203.0.113.2"}]
    assert ports_of(alice) == []
    # the floating port cannot be deleted directly
    assert api.delete(f"/v2.0/ports/{port[0]['id']}").status_code == 409
    # subnet_id is open to all; floating_ip_address is admin-only
    fip2 = alice.create("floatingip", floating_network_id=ext["id"], subnet_id=ext_sub["id"])
    assert fip2["floating_ip_address"] == "203.0.113.3"
    r = alice.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": ext["id"],
                                                             "floating_ip_address": "203.0.113.99"}})
    assert r.status_code == 403 and "create_floatingip:floating_ip_address" in err(r)["message"]
    chosen = api.create("floatingip", floating_network_id=ext["id"], floating_ip_address="203.0.113.99",
                        tenant_id="projA")
    assert chosen["floating_ip_address"] == "203.0.113.99" and chosen["project_id"] == "projA"
    r = api.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": ext["id"],
                                                           "floating_ip_address": "203.0.113.99"}})
    assert r.status_code == 409 and err(r)["type"] == "IpAddressAlreadyAllocated"
    # delete releases the port
    assert alice.delete(f"/v2.0/floatingips/{fip['id']}").status_code == 204
    assert alice.get(f"/v2.0/floatingips/{fip['id']}").status_code == 404
    assert len(ports_of(api, device_owner="network:floatingip")) == 2
    assert fip["floating_ip_address"] not in str(ports_of(api, network_id=ext["id"]))


def test_create_errors_change_nothing(api: Api) -> None:
    ext, _ = ext_net(api)
    alice = api.as_("projA")
    internal, _ = tenant_net(alice)
    r = alice.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": internal["id"]}})
    assert r.status_code == 400 and err(r)["type"] == "BadRequest"
    assert err(r)["message"] == f"Bad floatingip request: Network {internal['id']} is not a valid external network."
    r = alice.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": NO_SUCH}})
    assert r.status_code == 404 and err(r)["type"] == "NetworkNotFound"
    empty_ext = api.create("network", **{"router:external": True})
    r = alice.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": empty_ext["id"]}})
    assert r.status_code == 400 and "does not contain any IPv4 subnet" in err(r)["message"]
    for bad in ({}, {"floating_network_id": "x"}, {"floating_network_id": ext["id"], "name": "n"},
                {"floating_network_id": ext["id"], "router_id": NO_SUCH},
                {"floating_network_id": ext["id"], "subnet_id": NO_SUCH},
                {"floating_network_id": ext["id"], "fixed_ip_address": "10.0.0.3"},
                {"floating_network_id": ext["id"], "status": "ACTIVE"}):
        r = alice.post("/v2.0/floatingips", json={"floatingip": bad})
        assert r.status_code == 400, (bad, r.text)
    r = alice.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": ext["id"],
                                                             "fixed_ip_address": "10.0.0.3"}})
    assert err(r)["message"] == "Bad floatingip request: fixed_ip_address cannot be specified without a port_id."
    assert api.get("/v2.0/floatingips").json()["floatingips"] == []
    assert ports_of(api, network_id=ext["id"]) == []


def test_associate_and_disassociate(api: Api) -> None:
    t = topology(api)
    alice, vm = t["user"], t["vm"]
    fip = alice.create("floatingip", floating_network_id=t["ext"]["id"])
    url = f"/v2.0/floatingips/{fip['id']}"
    r = alice.put(url, json={"floatingip": {"port_id": vm["id"]}})
    assert r.status_code == 200, r.text
    done = r.json()["floatingip"]
    assert done["status"] == "ACTIVE" and done["port_id"] == vm["id"] and done["router_id"] == t["router"]["id"]
    assert done["fixed_ip_address"] == vm["fixed_ips"][0]["ip_address"]
    assert done["revision_number"] > fip["revision_number"]
    assert done["port_details"] == {
        "name": "vm", "network_id": t["net"]["id"], "mac_address": vm["mac_address"], "admin_state_up": True,
        "status": vm["status"], "device_id": "vm-1", "device_owner": "compute:nova"}
    # a description-only update keeps the association
    kept = alice.put(url, json={"floatingip": {"description": "web"}}).json()["floatingip"]
    assert kept["port_id"] == vm["id"] and kept["description"] == "web"
    # a second floating IP for the same fixed IP
    other = alice.create("floatingip", floating_network_id=t["ext"]["id"])
    r = alice.put(f"/v2.0/floatingips/{other['id']}", json={"floatingip": {"port_id": vm["id"]}})
    assert r.status_code == 409 and err(r)["type"] == "FloatingIPPortAlreadyAssociated"
    assert err(r)["message"] == (
        f"Cannot associate floating IP {other['floating_ip_address']} ({other['id']}) with port {vm['id']} "
        f"using fixed IP {done['fixed_ip_address']}, as that fixed IP already has a floating IP on external "
        f"network {t['ext']['id']}.")
    # the interface and the gateway it needs cannot go
    r = put(alice, t["router"]["id"], "remove_router_interface", {"subnet_id": t["sub"]["id"]})
    assert r.status_code == 409 and err(r)["type"] == "RouterInterfaceInUseByFloatingIP"
    assert err(r)["message"] == (f"Router interface for subnet {t['sub']['id']} on router {t['router']['id']} "
                                 "cannot be deleted, as it is required by one or more floating IPs.")
    r = alice.put(f"/v2.0/routers/{t['router']['id']}", json={"router": {"external_gateway_info": None}})
    assert r.status_code == 409 and err(r)["type"] == "RouterExternalGatewayInUseByFloatingIp"
    assert err(r)["message"] == (f"Gateway cannot be updated for router {t['router']['id']}, since a gateway to "
                                 f"external network {t['ext']['id']} is required by one or more floating IPs.")
    assert alice.get(f"/v2.0/routers/{t['router']['id']}").json()["router"]["external_gateway_info"] is not None
    # filters through the generic engine
    assert [f["id"] for f in alice.get(f"/v2.0/floatingips?port_id={vm['id']}").json()["floatingips"]] == [fip["id"]]
    assert [f["id"] for f in alice.get("/v2.0/floatingips?status=DOWN").json()["floatingips"]] == [other["id"]]
    by_addr = alice.get(f"/v2.0/floatingips?floating_ip_address={other['floating_ip_address']}").json()
    assert [f["id"] for f in by_addr["floatingips"]] == [other["id"]]
    by_router = alice.get(f"/v2.0/floatingips?router_id={t['router']['id']}").json()["floatingips"]
    assert [f["id"] for f in by_router] == [fip["id"]]
    fixed = alice.get(f"/v2.0/floatingips?fixed_ip_address={done['fixed_ip_address']}").json()["floatingips"]
    assert [f["id"] for f in fixed] == [fip["id"]]
    assert len(alice.get(f"/v2.0/floatingips?floating_network_id={t['ext']['id']}").json()["floatingips"]) == 2
    # disassociate
    r = alice.put(url, json={"floatingip": {"port_id": None}})
    assert r.status_code == 200
    gone = r.json()["floatingip"]
    assert gone["status"] == "DOWN" and gone["port_id"] is None and gone["router_id"] is None
    assert gone["fixed_ip_address"] is None and gone["port_details"] is None
    assert put(alice, t["router"]["id"], "remove_router_interface", {"subnet_id": t["sub"]["id"]}).status_code == 200
    # no router connects the subnet any more
    r = alice.put(url, json={"floatingip": {"port_id": vm["id"]}})
    assert r.status_code == 404 and err(r)["type"] == "ExternalGatewayForFloatingIPNotFound"
    assert err(r)["message"] == (f"External network {t['ext']['id']} is not reachable from subnet {t['sub']['id']}."
                                 f"  Therefore, cannot associate Port {vm['id']} with a Floating IP.")
    assert alice.get(url).json()["floatingip"]["port_id"] is None


def test_update_without_port_id(api: Api) -> None:
    """Neutron's _check_and_get_fip_assoc: an empty body disassociates; a non-empty body
    without port_id keeps the association, working it out again from the associated port."""
    t = topology(api)
    alice, vm = t["user"], t["vm"]
    fip = alice.create("floatingip", floating_network_id=t["ext"]["id"], port_id=vm["id"])
    url = f"/v2.0/floatingips/{fip['id']}"
    kept = alice.put(url, json={"floatingip": {"description": "web"}}).json()["floatingip"]
    assert (kept["port_id"], kept["router_id"], kept["description"]) == (vm["id"], t["router"]["id"], "web")
    assert kept["fixed_ip_address"] == fip["fixed_ip_address"] and kept["status"] == "ACTIVE"
    r = alice.put(url, json={"floatingip": {}})
    assert r.status_code == 200, r.text
    gone = r.json()["floatingip"]
    assert gone["port_id"] is None and gone["fixed_ip_address"] is None and gone["router_id"] is None
    assert gone["status"] == "DOWN" and gone["description"] == "web"
    assert gone["revision_number"] > kept["revision_number"]
    stored = alice.get(url).json()["floatingip"]
    assert stored["port_id"] is None and stored["router_id"] is None and stored["fixed_ip_address"] is None
    # nothing to change: an empty body on an unassociated floating IP keeps its revision
    again = alice.put(url, json={"floatingip": {}}).json()["floatingip"]
    assert again["revision_number"] == gone["revision_number"]
    # a port with two IPv4 addresses: a description-only update must name the fixed IP, as in Neutron
    two = alice.create("port", network_id=t["net"]["id"], fixed_ips=[{"subnet_id": t["sub"]["id"]}] * 2)
    fip2 = alice.create("floatingip", floating_network_id=t["ext"]["id"], port_id=two["id"],
                        fixed_ip_address=two["fixed_ips"][1]["ip_address"])
    r = alice.put(f"/v2.0/floatingips/{fip2['id']}", json={"floatingip": {"description": "x"}})
    assert r.status_code == 400 and err(r)["type"] == "BadRequest"
    assert err(r)["message"] == (f"Bad floatingip request: Port {two['id']} has multiple fixed IPv4 addresses.  "
                                 "Must provide a specific IPv4 address when assigning a floating IP.")
    unchanged = alice.get(f"/v2.0/floatingips/{fip2['id']}").json()["floatingip"]
    assert unchanged["description"] == "" and unchanged["port_id"] == two["id"]
    r = alice.put(f"/v2.0/floatingips/{fip2['id']}", json={"floatingip": {}})
    assert r.status_code == 200 and r.json()["floatingip"]["port_id"] is None


def test_association_errors(api: Api) -> None:
    t = topology(api)
    alice, bob = t["user"], api.as_("projB")
    fip = alice.create("floatingip", floating_network_id=t["ext"]["id"])
    url = f"/v2.0/floatingips/{fip['id']}"
    # someone else's port is invisible
    bob_net, _ = tenant_net(bob, cidr="10.7.0.0/24")
    bob_port = bob.create("port", network_id=bob_net["id"])
    r = alice.put(url, json={"floatingip": {"port_id": bob_port["id"]}})
    assert r.status_code == 404 and err(r)["type"] == "PortNotFound"
    r = alice.put(url, json={"floatingip": {"port_id": NO_SUCH}})
    assert r.status_code == 404
    # a port with two addresses needs fixed_ip_address, and it must be the port's
    two = alice.create("port", network_id=t["net"]["id"],
                       fixed_ips=[{"ip_address": "10.0.0.20"}, {"ip_address": "10.0.0.21"}])
    r = alice.put(url, json={"floatingip": {"port_id": two["id"]}})
    assert r.status_code == 400 and "has multiple fixed IPv4 addresses" in err(r)["message"]
    r = alice.put(url, json={"floatingip": {"port_id": two["id"], "fixed_ip_address": "10.0.0.99"}})
    assert r.status_code == 400
    assert err(r)["message"] == f"Bad floatingip request: Port {two['id']} does not have fixed ip 10.0.0.99."
    r = alice.put(url, json={"floatingip": {"fixed_ip_address": "10.0.0.21"}})
    assert r.status_code == 400 and "without a port_id" in err(r)["message"]
    r = alice.put(url, json={"floatingip": {"port_id": two["id"], "fixed_ip_address": "10.0.0.21"}})
    assert r.status_code == 200 and r.json()["floatingip"]["fixed_ip_address"] == "10.0.0.21"
    # the other address of the same port may get its own floating IP
    second = alice.create("floatingip", floating_network_id=t["ext"]["id"], port_id=two["id"],
                          fixed_ip_address="10.0.0.20")
    assert second["status"] == "ACTIVE" and second["router_id"] == t["router"]["id"]
    # read-only and unknown attributes
    for body in ({"floating_ip_address": "203.0.113.40"}, {"router_id": None}, {"floating_network_id": NO_SUCH},
                 {"port_id": "x"}):
        assert alice.put(url, json={"floatingip": body}).status_code == 400, body
    # other projects see nothing
    r = bob.get(url)
    assert r.status_code == 404 and err(r)["type"] == "FloatingIPNotFound"
    assert err(r)["message"] == f"Floating IP {fip['id']} could not be found"
    assert bob.put(url, json={"floatingip": {"port_id": None}}).status_code == 404
    assert bob.delete(url).status_code == 404
    assert bob.get("/v2.0/floatingips").json()["floatingips"] == []
    assert len(api.get("/v2.0/floatingips").json()["floatingips"]) == 2


def test_port_delete_disassociates(api: Api) -> None:
    t = topology(api)
    alice, vm = t["user"], t["vm"]
    fip = alice.create("floatingip", floating_network_id=t["ext"]["id"], port_id=vm["id"])
    assert fip["status"] == "ACTIVE" and fip["port_id"] == vm["id"]
    assert alice.delete(f"/v2.0/ports/{vm['id']}").status_code == 204
    after = alice.get(f"/v2.0/floatingips/{fip['id']}").json()["floatingip"]
    assert after["port_id"] is None and after["fixed_ip_address"] is None and after["router_id"] is None
    assert after["status"] == "DOWN" and after["port_details"] is None
    # with nothing associated the router comes apart cleanly
    rid = t["router"]["id"]
    assert put(alice, rid, "remove_router_interface", {"subnet_id": t["sub"]["id"]}).status_code == 200
    assert alice.delete(f"/v2.0/routers/{rid}").status_code == 204
    assert alice.delete(f"/v2.0/floatingips/{fip['id']}").status_code == 204
    assert ports_of(api, network_id=t["ext"]["id"]) == []


@pytest.fixture
def small_quota_api(cfg: Config) -> Iterator[Api]:
    from neutrino import server

    cfg.quotas.quota_floatingip = 2
    srv = server.build(cfg)
    with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
        yield Api(client)
    srv.db.dispose()


def test_floatingip_quota(small_quota_api: Api) -> None:
    api = small_quota_api
    ext, _ = ext_net(api)
    alice = api.as_("projA")
    for _ in range(2):
        alice.create("floatingip", floating_network_id=ext["id"])
    r = alice.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": ext["id"]}})
    assert r.status_code == 409 and err(r)["type"] == "OverQuota"
    assert len(ports_of(api, device_owner="network:floatingip")) == 2
    api.as_("projB").create("floatingip", floating_network_id=ext["id"])


def test_internal_ports_do_not_count_against_port_quota(cfg: Config) -> None:
    """Gateway and floating IP ports belong to no project: the port quota never refuses them."""
    from neutrino import server

    cfg.quotas.quota_port = 2  # the router interface counts (as in Neutron); one VM port fits
    srv = server.build(cfg)
    with TestClient(srv.app) as client:
        api = Api(client)
        ext, _ = ext_net(api)
        alice = api.as_("projA")
        net, sub = tenant_net(alice)
        router = alice.create("router", external_gateway_info={"network_id": ext["id"]})
        put(alice, router["id"], "add_router_interface", {"subnet_id": sub["id"]})
        fips = [alice.create("floatingip", floating_network_id=ext["id"]) for _ in range(3)]
        assert len({f["floating_ip_address"] for f in fips}) == 3
        alice.create("port", network_id=net["id"])
        r = alice.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
        assert r.status_code == 409 and err(r)["type"] == "OverQuota"
    srv.db.dispose()


def test_deleting_an_external_network_deletes_its_floating_ips(api: Api) -> None:
    """Neutron's external network BEFORE_DELETE callback (delete_disassociated_floatingips): the
    floating IPs no port or router holds go with the network, every project's."""
    ext, ext_sub = ext_net(api)
    fips = [api.as_(p).create("floatingip", floating_network_id=ext["id"]) for p in ("projA", "projB")]
    fips.append(api.create("floatingip", floating_network_id=ext["id"]))
    r = api.delete(f"/v2.0/networks/{ext['id']}", headers={"If-Match": "revision_number=99"})
    assert r.status_code == 412
    assert len(api.get("/v2.0/floatingips").json()["floatingips"]) == 3  # a refused precondition keeps them
    assert api.as_("projA").delete(f"/v2.0/networks/{ext['id']}").status_code == 403
    assert len(api.get("/v2.0/floatingips").json()["floatingips"]) == 3
    assert api.delete(f"/v2.0/networks/{ext['id']}").status_code == 204
    assert api.get("/v2.0/floatingips").json()["floatingips"] == []
    for fip in fips:
        r = api.get(f"/v2.0/floatingips/{fip['id']}")
        assert r.status_code == 404 and err(r)["type"] == "FloatingIPNotFound"
    assert api.get(f"/v2.0/networks/{ext['id']}").status_code == 404
    assert api.get(f"/v2.0/subnets/{ext_sub['id']}").status_code == 404
    assert ports_of(api, network_id=ext["id"]) == []
    # the addresses are free again on a new network with the same range
    again, _ = ext_net(api)
    assert api.create("floatingip", floating_network_id=again["id"])["floating_ip_address"] == "203.0.113.2"


def test_a_router_gateway_keeps_an_external_network_in_use(api: Api) -> None:
    """As in Neutron, the disassociated floating IPs are deleted before the in-use check, in a
    transaction of their own: the delete is refused (409 NetworkInUse) for the gateway and the
    associated floating IP's port, and those stay, but the disassociated floating IP is gone."""
    t = topology(api)
    alice, ext = t["user"], t["ext"]
    held = alice.create("floatingip", floating_network_id=ext["id"], port_id=t["vm"]["id"])
    loose = alice.create("floatingip", floating_network_id=ext["id"])
    r = api.delete(f"/v2.0/networks/{ext['id']}")
    assert r.status_code == 409 and err(r)["type"] == "NetworkInUse"
    assert err(r)["message"].startswith(f"Unable to complete operation on network {ext['id']}.")
    assert [f["id"] for f in api.get("/v2.0/floatingips").json()["floatingips"]] == [held["id"]]
    assert alice.get(f"/v2.0/floatingips/{loose['id']}").status_code == 404
    kept = alice.get(f"/v2.0/floatingips/{held['id']}").json()["floatingip"]
    assert kept["port_id"] == t["vm"]["id"] and kept["router_id"] == t["router"]["id"]
    owners = sorted(p["device_owner"] for p in ports_of(api, network_id=ext["id"]))
    assert owners == ["network:floatingip", "network:router_gateway"]
    # disassociated, the floating IP no longer holds the network; the gateway still does
    assert alice.put(f"/v2.0/floatingips/{held['id']}", json={"floatingip": {}}).status_code == 200
    r = api.delete(f"/v2.0/networks/{ext['id']}")
    assert r.status_code == 409 and err(r)["type"] == "NetworkInUse"
    assert api.get("/v2.0/floatingips").json()["floatingips"] == []
    assert [p["device_owner"] for p in ports_of(api, network_id=ext["id"])] == ["network:router_gateway"]
    rid = t["router"]["id"]
    assert alice.put(f"/v2.0/routers/{rid}", json={"router": {"external_gateway_info": None}}).status_code == 200
    assert api.delete(f"/v2.0/networks/{ext['id']}").status_code == 204
