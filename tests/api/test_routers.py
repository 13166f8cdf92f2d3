"""Routers over HTTP: gateways, interfaces by subnet and by port, extra routes (atomic too),
in-use rules, visibility, policy and quota — with Neutron's status codes, types and messages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from neutrino.config import Config
from tests.api.test_networks import err
from tests.conftest import Api

NO_SUCH = "00000000-0000-0000-0000-000000000000"


def ext_net(api: Api, cidr: str = "203.0.113.0/24") -> tuple[dict[str, Any], dict[str, Any]]:
    """An external network (admin-made) with one subnet."""
    net = api.create("network", name="public", **{"router:external": True})
    sub = api.create("subnet", network_id=net["id"], ip_version=4, cidr=cidr)
    return net, sub


def tenant_net(api: Api, cidr: str = "10.0.0.0/24", **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    net = api.create("network")
    sub = api.create("subnet", network_id=net["id"], ip_version=4, cidr=cidr, **kw)
    return net, sub


def ports_of(api: Api, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    return api.get(f"/v2.0/ports?{query}").json()["ports"]  # type: ignore[no-any-return]


def put(api: Api, router_id: str, action: str, body: Any) -> Any:
    return api.put(f"/v2.0/routers/{router_id}/{action}", json=body)


def test_router_defaults_and_gateway(api: Api) -> None:
    ext, ext_sub = ext_net(api)
    alice = api.as_("projA")
    router = alice.create("router", name="r1", external_gateway_info={"network_id": ext["id"]})
    assert router["name"] == "r1" and router["status"] == "ACTIVE" and router["admin_state_up"] is True
    assert router["project_id"] == router["tenant_id"] == "projA"
    assert router["routes"] == [] and router["flavor_id"] is None and router["revision_number"] >= 0
    assert router["availability_zone_hints"] == [] and router["availability_zones"] == ["nova"]
    assert "distributed" not in router and "ha" not in router  # admin-only attributes
    assert router["external_gateway_info"] == {
        "network_id": ext["id"], "enable_snat": True,
        "external_fixed_ips": [{"subnet_id": ext_sub["id"], "ip_address": "203.0.113.2"}]}
    full = api.get(f"/v2.0/routers/{router['id']}").json()["router"]
    assert full["distributed"] is False and full["ha"] is False
    gw = ports_of(api, device_owner="network:router_gateway")
    assert len(gw) == 1 and gw[0]["device_id"] == router["id"] and gw[0]["project_id"] == ""
    assert gw[0]["fixed_ips"][0]["ip_address"] == "203.0.113.2"
    assert ports_of(alice) == []  # the gateway port is hidden from the router's project
    # admin may choose the address and SNAT
    r2 = api.create("router", external_gateway_info={
        "network_id": ext["id"], "enable_snat": "false",
        "external_fixed_ips": [{"subnet_id": ext_sub["id"], "ip_address": "203.0.113.50"}]})
    assert r2["external_gateway_info"]["enable_snat"] is False
    assert r2["external_gateway_info"]["external_fixed_ips"][0]["ip_address"] == "203.0.113.50"
    no_gw = alice.create("router")
    assert no_gw["external_gateway_info"] is None
    assert {r["id"] for r in alice.get("/v2.0/routers").json()["routers"]} == {router["id"], no_gw["id"]}
    assert len(api.get("/v2.0/routers").json()["routers"]) == 3


def test_gateway_errors_change_nothing(api: Api) -> None:
    ext, ext_sub = ext_net(api)
    alice = api.as_("projA")
    internal, _ = tenant_net(alice)
    r = alice.post("/v2.0/routers", json={"router": {"external_gateway_info": {"network_id": internal["id"]}}})
    assert r.status_code == 400 and err(r)["type"] == "BadRequest"
    assert err(r)["message"] == f"Bad router request: Network {internal['id']} is not an external network."
    r = alice.post("/v2.0/routers", json={"router": {"external_gateway_info": {"network_id": NO_SUCH}}})
    assert r.status_code == 404 and err(r)["type"] == "NetworkNotFound"
    r = alice.post("/v2.0/routers", json={"router": {"external_gateway_info": {"network_id": ext["id"],
                                                                              "enable_snat": False}}})
    assert r.status_code == 403 and err(r)["type"] == "PolicyNotAuthorized"
    assert "create_router:external_gateway_info:enable_snat" in err(r)["message"]
    r = alice.post("/v2.0/routers", json={"router": {"external_gateway_info": {
        "network_id": ext["id"], "external_fixed_ips": [{"ip_address": "203.0.113.9"}]}}})
    assert r.status_code == 403 and "external_fixed_ips" in err(r)["message"]
    for bad in ({"network_id": "nope"}, {"enable_snat": True}, {"network_id": ext["id"], "foo": 1},
                {"network_id": ext["id"], "enable_snat": "maybe"}, "text",
                {"network_id": ext["id"], "external_fixed_ips": [{"ip_address": "x"}]}):
        r = api.post("/v2.0/routers", json={"router": {"external_gateway_info": bad}})
        assert r.status_code == 400, (bad, r.text)
    r = api.post("/v2.0/routers", json={"router": {"external_gateway_info": {
        "network_id": ext["id"], "external_fixed_ips": [{"ip_address": "203.0.113.1"}]}}})
    assert r.status_code == 400
    assert err(r)["message"] == "Bad router request: External IP 203.0.113.1 is the same as the gateway IP."
    r = alice.post("/v2.0/routers", json={"router": {"routes": []}})
    assert r.status_code == 400 and "routes" in err(r)["message"]
    r = alice.post("/v2.0/routers", json={"router": {"distributed": False}})
    assert r.status_code == 403
    r = api.post("/v2.0/routers", json={"router": {"flavor_id": NO_SUCH}})
    assert r.status_code == 404 and err(r)["type"] == "FlavorNotFound"
    assert api.get("/v2.0/routers").json()["routers"] == []
    assert ports_of(api, network_id=ext["id"]) == []


def test_update_and_clear_gateway(api: Api) -> None:
    ext, ext_sub = ext_net(api)
    ext2, _ = ext_net(api, cidr="198.51.100.0/24")
    alice = api.as_("projA")
    router = alice.create("router", name="r")
    url = f"/v2.0/routers/{router['id']}"
    rev = router["revision_number"]
    r = alice.put(url, json={"router": {"external_gateway_info": {"network_id": ext["id"]}}})
    assert r.status_code == 200, r.text
    gw = r.json()["router"]["external_gateway_info"]
    assert gw["network_id"] == ext["id"] and gw["enable_snat"] is True
    assert r.json()["router"]["revision_number"] > rev
    # the same gateway again changes nothing
    again = alice.put(url, json={"router": {"external_gateway_info": {"network_id": ext["id"]}}}).json()["router"]
    assert again["external_gateway_info"] == gw
    # moving to another external network replaces the port
    moved = alice.put(url, json={"router": {"external_gateway_info": {"network_id": ext2["id"]}}}).json()["router"]
    assert moved["external_gateway_info"]["network_id"] == ext2["id"]
    assert ports_of(api, network_id=ext["id"]) == []
    # admin changes the address on the same network: the port is updated in place
    port_id = ports_of(api, device_owner="network:router_gateway")[0]["id"]
    fixed = api.put(url, json={"router": {"external_gateway_info": {
        "network_id": ext2["id"], "external_fixed_ips": [{"ip_address": "198.51.100.77"}]}}}).json()["router"]
    assert fixed["external_gateway_info"]["external_fixed_ips"][0]["ip_address"] == "198.51.100.77"
    assert ports_of(api, device_owner="network:router_gateway")[0]["id"] == port_id
    r = alice.put(url, json={"router": {"external_gateway_info": {"network_id": ext["id"], "enable_snat": True}}})
    assert r.status_code == 403 and "update_router:external_gateway_info:enable_snat" in err(r)["message"]
    for clear in ({}, None):
        alice.put(url, json={"router": {"external_gateway_info": {"network_id": ext["id"]}}})
        r = alice.put(url, json={"router": {"external_gateway_info": clear}})
        assert r.status_code == 200 and r.json()["router"]["external_gateway_info"] is None
        assert ports_of(api, device_owner="network:router_gateway") == []
    r = alice.put(url, json={"router": {"name": "renamed", "admin_state_up": False}})
    assert r.json()["router"]["name"] == "renamed" and r.json()["router"]["admin_state_up"] is False
    assert alice.put(url, json={"router": {"status": "DOWN"}}).status_code == 400
    assert alice.put(url, json={"router": {"ha": True}}).status_code == 403
    assert api.put(url, json={"router": {"ha": True}}).json()["router"]["ha"] is True
    # a network in use as a gateway cannot be deleted
    alice.put(url, json={"router": {"external_gateway_info": {"network_id": ext["id"]}}})
    assert api.delete(f"/v2.0/networks/{ext['id']}").status_code == 409


def test_interface_by_subnet(api: Api) -> None:
    ext, _ = ext_net(api)
    alice = api.as_("projA")
    net, sub = tenant_net(alice)
    router = alice.create("router", external_gateway_info={"network_id": ext["id"]})
    rid = router["id"]
    r = put(alice, rid, "add_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 200, r.text
    info = r.json()
    assert set(info) == {"id", "tenant_id", "project_id", "port_id", "subnet_id", "subnet_ids", "network_id"}
    assert info["id"] == rid and info["subnet_id"] == sub["id"] and info["subnet_ids"] == [sub["id"]]
    assert info["network_id"] == net["id"] and info["project_id"] == info["tenant_id"] == "projA"
    port = alice.get(f"/v2.0/ports/{info['port_id']}").json()["port"]
    assert port["device_owner"] == "network:router_interface" and port["device_id"] == rid
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.1"}]
    assert port["project_id"] == "projA" and port["security_groups"] == []
    rev = alice.get(f"/v2.0/routers/{rid}").json()["router"]["revision_number"]
    assert rev > router["revision_number"]
    # the port API cannot remove it
    r = alice.delete(f"/v2.0/ports/{info['port_id']}")
    assert r.status_code == 409 and err(r)["type"] == "L3PortInUse"
    # twice on one subnet
    r = put(alice, rid, "add_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 400 and err(r)["type"] == "BadRequest"
    assert err(r)["message"] == f"Bad router request: Router already has a port on subnet {sub['id']}."
    # an overlapping subnet on another network
    _, wide = tenant_net(alice, cidr="10.0.0.0/16")
    r = put(alice, rid, "add_router_interface", {"subnet_id": wide["id"]})
    assert r.status_code == 400
    assert err(r)["message"] == (f"Bad router request: Cidr 10.0.0.0/16 of subnet {wide['id']} overlaps with "
                                 f"cidr 10.0.0.0/24 of subnet {sub['id']}.")
    # overlapping the external network's subnet too
    _, ext_like = tenant_net(alice, cidr="203.0.113.0/25")
    r = put(alice, rid, "add_router_interface", {"subnet_id": ext_like["id"]})
    assert r.status_code == 400 and "overlaps with cidr 203.0.113.0/24" in err(r)["message"]
    # a subnet without a gateway
    _, no_gw = tenant_net(alice, cidr="10.9.0.0/24", gateway_ip=None)
    r = put(alice, rid, "add_router_interface", {"subnet_id": no_gw["id"]})
    assert r.status_code == 400
    assert err(r)["message"] == "Bad router request: Subnet for router interface must have a gateway IP."
    # malformed requests
    for body in ({}, None, {"subnet_id": "x"}, {"subnet_id": sub["id"], "port_id": info["port_id"]}):
        r = put(alice, rid, "add_router_interface", body)
        assert r.status_code == 400, (body, r.text)
    assert err(put(alice, rid, "add_router_interface", {}))["message"] == \
        "Bad router request: Either subnet_id or port_id must be specified."
    r = put(alice, rid, "add_router_interface", {"subnet_id": NO_SUCH})
    assert r.status_code == 404 and err(r)["type"] == "SubnetNotFound"
    assert len(ports_of(alice, device_owner="network:router_interface")) == 1
    # remove by subnet
    r = put(alice, rid, "remove_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 200 and r.json()["port_id"] == info["port_id"]
    assert r.json()["subnet_ids"] == [sub["id"]]
    assert alice.get(f"/v2.0/ports/{info['port_id']}").status_code == 404
    r = put(alice, rid, "remove_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 404 and err(r)["type"] == "RouterInterfaceNotFoundForSubnet"
    assert err(r)["message"] == f"Router {rid} has no interface on subnet {sub['id']}"
    # the subnet is free again
    assert alice.delete(f"/v2.0/subnets/{sub['id']}").status_code == 204


def test_interface_by_port(api: Api) -> None:
    alice = api.as_("projA")
    net, sub = tenant_net(alice)
    router = alice.create("router")
    rid = router["id"]
    port = alice.create("port", network_id=net["id"], fixed_ips=[{"ip_address": "10.0.0.10"}])
    r = put(alice, rid, "add_router_interface", {"port_id": port["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["port_id"] == port["id"] and r.json()["subnet_ids"] == [sub["id"]]
    shown = alice.get(f"/v2.0/ports/{port['id']}").json()["port"]
    assert shown["device_owner"] == "network:router_interface" and shown["device_id"] == rid
    r = put(alice, rid, "add_router_interface", {"port_id": port["id"]})
    assert r.status_code == 409 and err(r)["type"] == "PortInUse"
    other = alice.create("port", network_id=net["id"], device_id="some-vm")
    r = put(alice, rid, "add_router_interface", {"port_id": other["id"]})
    assert r.status_code == 409 and err(r)["type"] == "PortInUse"
    assert alice.get(f"/v2.0/ports/{other['id']}").json()["port"]["device_owner"] == ""
    # a second port on the same subnet
    third = alice.create("port", network_id=net["id"])
    r = put(alice, rid, "add_router_interface", {"port_id": third["id"]})
    assert r.status_code == 400 and "Router already has a port on subnet" in err(r)["message"]
    assert alice.get(f"/v2.0/ports/{third['id']}").json()["port"]["device_id"] == ""
    r = put(alice, rid, "add_router_interface", {"port_id": NO_SUCH})
    assert r.status_code == 404 and err(r)["type"] == "PortNotFound"
    # removal: a subnet that is not the port's, an unknown port, then the port itself
    _, sub2 = tenant_net(alice, cidr="10.1.0.0/24")
    r = put(alice, rid, "remove_router_interface", {"port_id": port["id"], "subnet_id": sub2["id"]})
    assert r.status_code == 400 and err(r)["type"] == "SubnetMismatchForPort"
    r = put(alice, rid, "remove_router_interface", {"port_id": third["id"]})
    assert r.status_code == 404 and err(r)["type"] == "RouterInterfaceNotFound"
    assert err(r)["message"] == f"Router {rid} does not have an interface with id {third['id']}"
    r = put(alice, rid, "remove_router_interface", {"port_id": port["id"]})
    assert r.status_code == 200 and r.json()["port_id"] == port["id"] and r.json()["subnet_id"] == sub["id"]
    assert alice.get(f"/v2.0/ports/{port['id']}").status_code == 404  # Neutron deletes it


def test_router_delete_in_use_and_visibility(api: Api) -> None:
    ext, _ = ext_net(api)
    alice, bob = api.as_("projA"), api.as_("projB")
    net, sub = tenant_net(alice)
    router = alice.create("router", external_gateway_info={"network_id": ext["id"]})
    rid = router["id"]
    info = put(alice, rid, "add_router_interface", {"subnet_id": sub["id"]}).json()
    r = alice.delete(f"/v2.0/routers/{rid}")
    assert r.status_code == 409 and err(r)["type"] == "RouterInUse"
    assert err(r)["message"] == f"Router {rid} has ports still attached: {info['port_id']}"
    # another project sees nothing and can do nothing
    r = bob.get(f"/v2.0/routers/{rid}")
    assert r.status_code == 404 and err(r)["type"] == "RouterNotFound"
    assert err(r)["message"] == f"Router {rid} could not be found"
    assert bob.get("/v2.0/routers").json()["routers"] == []
    assert bob.put(f"/v2.0/routers/{rid}", json={"router": {"name": "x"}}).status_code == 404
    assert bob.delete(f"/v2.0/routers/{rid}").status_code == 404
    _, bob_sub = tenant_net(bob, cidr="10.5.0.0/24")
    assert put(bob, rid, "remove_router_interface", {"subnet_id": sub["id"]}).status_code == 404
    assert put(bob, rid, "add_router_interface", {"subnet_id": bob_sub["id"]}).status_code == 404
    # alice cannot plug bob's subnet into her router: she cannot see it
    r = put(alice, rid, "add_router_interface", {"subnet_id": bob_sub["id"]})
    assert r.status_code == 404 and err(r)["type"] == "SubnetNotFound"
    # readers may look only
    reader = api.as_("projA", roles="reader")
    r = put(reader, rid, "remove_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 403
    assert reader.get(f"/v2.0/routers/{rid}").status_code == 200
    # admin sees it; with the interface gone the router and its gateway port go
    assert api.get(f"/v2.0/routers/{rid}").status_code == 200
    assert put(alice, rid, "remove_router_interface", {"port_id": info["port_id"]}).status_code == 200
    assert alice.delete(f"/v2.0/routers/{rid}").status_code == 204
    assert alice.get(f"/v2.0/routers/{rid}").status_code == 404
    assert ports_of(api, device_owner="network:router_gateway") == []
    assert api.delete(f"/v2.0/networks/{ext['id']}").status_code == 204


def test_extra_routes_and_atomic_updates(api: Api) -> None:
    ext, _ = ext_net(api)
    alice = api.as_("projA")
    net, sub = tenant_net(alice)
    router = alice.create("router", external_gateway_info={"network_id": ext["id"]})
    rid, url = router["id"], f"/v2.0/routers/{router['id']}"
    route = {"destination": "192.168.0.0/24", "nexthop": "10.0.0.5"}
    r = alice.put(url, json={"router": {"routes": [route]}})
    assert r.status_code == 400 and err(r)["type"] == "InvalidRoutes"
    assert err(r)["message"] == f"Invalid format for routes: {[route]}, the nexthop is not connected with router"
    put(alice, rid, "add_router_interface", {"subnet_id": sub["id"]})
    r = alice.put(url, json={"router": {"routes": [route]}})
    assert r.status_code == 200 and r.json()["router"]["routes"] == [route]
    # the gateway's subnet is connected too
    via_gw = {"destination": "0.0.0.0/0", "nexthop": "203.0.113.254"}
    assert alice.put(url, json={"router": {"routes": [route, via_gw]}}).status_code == 200
    r = alice.put(url, json={"router": {"routes": [{"destination": "192.168.1.0/24", "nexthop": "10.0.0.1"}]}})
    assert r.status_code == 400 and "the nexthop is used by router" in err(r)["message"]
    for bad in ([{"destination": "192.168.0.1/24", "nexthop": "10.0.0.5"}],
                [{"destination": "192.168.0.0/24"}], [route, route], "x",
                [{"destination": "192.168.0.0/24", "nexthop": "nope"}],
                [{"destination": "127.0.0.0/8", "nexthop": "10.0.0.5"}]):
        r = alice.put(url, json={"router": {"routes": bad}})
        assert r.status_code == 400, (bad, r.text)
    too_many = [{"destination": f"172.16.{i}.0/24", "nexthop": "10.0.0.5"} for i in range(31)]
    r = alice.put(url, json={"router": {"routes": too_many}})
    assert r.status_code == 400 and err(r)["type"] == "RoutesExhausted"
    assert alice.get(url).json()["router"]["routes"] == [route, via_gw]
    # atomic add merges exact duplicates and keeps the rest
    extra = {"destination": "192.168.0.0/24", "nexthop": "10.0.0.6"}
    r = put(alice, rid, "add_extraroutes", {"router": {"routes": [route, extra]}})
    assert r.status_code == 200, r.text
    assert r.json()["router"]["routes"] == [route, via_gw, extra]
    assert "distributed" not in r.json()["router"]
    r = put(alice, rid, "add_extraroutes", {"router": {"routes": [{"destination": "1.0.0.0/8", "nexthop": "9.9.9.9"}]}})
    assert r.status_code == 400 and err(r)["type"] == "InvalidRoutes"
    for bad in ({"routes": []}, {"router": {}}, {"router": {"routes": [{"destination": "x", "nexthop": "10.0.0.5"}]}},
                {"router": {"routes": [], "name": "x"}}):
        assert put(alice, rid, "add_extraroutes", bad).status_code == 400, bad
    r = put(alice, rid, "remove_extraroutes", {"router": {"routes": [via_gw, {"destination": "5.0.0.0/8",
                                                                               "nexthop": "10.0.0.9"}]}})
    assert r.status_code == 200 and r.json()["router"]["routes"] == [route, extra]
    # an interface a route needs cannot go
    r = put(alice, rid, "remove_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 409 and err(r)["type"] == "RouterInterfaceInUseByRoute"
    assert err(r)["message"] == (f"Router interface for subnet {sub['id']} on router {rid} cannot be deleted, "
                                 "as it is required by one or more routes.")
    bob = api.as_("projB")
    assert put(bob, rid, "add_extraroutes", {"router": {"routes": []}}).status_code == 404
    assert bob.get("/v2.0/routers").json()["routers"] == []
    r = put(alice, rid, "remove_extraroutes", {"router": {"routes": [route, extra]}})
    assert r.json()["router"]["routes"] == []
    assert put(alice, rid, "remove_router_interface", {"subnet_id": sub["id"]}).status_code == 200
    assert alice.put(url, json={"router": {"routes": None}}).json()["router"]["routes"] == []


def test_ipv6_prefixes_share_a_port(api: Api) -> None:
    alice = api.as_("projA")
    net = alice.create("network")
    v6a = alice.create("subnet", network_id=net["id"], ip_version=6, cidr="2001:db8:1::/64",
                       ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    v6b = alice.create("subnet", network_id=net["id"], ip_version=6, cidr="2001:db8:2::/64",
                       ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    router = alice.create("router")
    first = put(alice, router["id"], "add_router_interface", {"subnet_id": v6a["id"]}).json()
    second = put(alice, router["id"], "add_router_interface", {"subnet_id": v6b["id"]}).json()
    assert first["port_id"] == second["port_id"] and second["subnet_ids"] == [v6b["id"]]
    port = alice.get(f"/v2.0/ports/{first['port_id']}").json()["port"]
    assert {ip["ip_address"] for ip in port["fixed_ips"]} == {"2001:db8:1::1", "2001:db8:2::1"}
    r = put(alice, router["id"], "remove_router_interface", {"subnet_id": v6a["id"]})
    assert r.status_code == 200
    port = alice.get(f"/v2.0/ports/{first['port_id']}").json()["port"]
    assert [ip["ip_address"] for ip in port["fixed_ips"]] == ["2001:db8:2::1"]


def test_tags_filters_and_if_match(api: Api) -> None:
    alice = api.as_("projA")
    router = alice.create("router", name="tagged", tags=["blue"])
    alice.create("router", name="plain", admin_state_up=False)
    assert [r["name"] for r in alice.get("/v2.0/routers?tags=blue").json()["routers"]] == ["tagged"]
    assert [r["name"] for r in alice.get("/v2.0/routers?admin_state_up=false").json()["routers"]] == ["plain"]
    names = [r["name"] for r in alice.get("/v2.0/routers?sort_key=name&sort_dir=desc").json()["routers"]]
    assert names == ["tagged", "plain"]
    assert alice.get("/v2.0/routers?external_gateway_info=x").status_code == 400
    assert alice.put(f"/v2.0/routers/{router['id']}/tags/red").status_code == 201
    r = alice.put(f"/v2.0/routers/{router['id']}", json={"router": {"name": "x"}},
                  headers={"If-Match": "revision_number=0"})
    assert r.status_code == 412
    only = alice.get(f"/v2.0/routers/{router['id']}?fields=id&fields=name").json()["router"]
    assert set(only) == {"id", "name"}


@pytest.fixture
def small_quota_api(cfg: Config) -> Iterator[Api]:
    from neutrino import server

    cfg.quotas.quota_router = 1
    srv = server.build(cfg)
    with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
        yield Api(client)
    srv.db.dispose()


def test_router_quota(small_quota_api: Api) -> None:
    alice = small_quota_api.as_("projA")
    alice.create("router")
    r = alice.post("/v2.0/routers", json={"router": {}})
    assert r.status_code == 409 and err(r)["type"] == "OverQuota"
    assert len(alice.get("/v2.0/routers").json()["routers"]) == 1
    small_quota_api.as_("projB").create("router")


def test_gateway_fixed_ip_needs_subnet_or_address(api: Api) -> None:
    ext, _ = ext_net(api)
    r = api.post("/v2.0/routers", json={"router": {"external_gateway_info": {"network_id": ext["id"],
                                                                            "external_fixed_ips": [{}]}}})
    assert r.status_code == 400 and err(r)["type"] == "InvalidInput"
    assert api.get("/v2.0/routers").json()["routers"] == []


def test_external_network_with_gateways_stays_external(api: Api) -> None:
    ext = api.create("network", **{"router:external": True})
    api.create("subnet", network_id=ext["id"], ip_version=4, cidr="198.51.100.0/24")
    api.create("router", external_gateway_info={"network_id": ext["id"]})
    r = api.put(f"/v2.0/networks/{ext['id']}", json={"network": {"router:external": False}})
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == "ExternalNetworkInUse"


def test_a_port_claiming_to_be_another_projects_router_interface_is_not_one(api: Api) -> None:
    """device_owner/device_id are client-writable: they must not make a port part of a router."""
    ext, _ = ext_net(api)
    alice, mallory = api.as_("projA"), api.as_("projB")
    a_net, a_sub = tenant_net(alice)
    router = alice.create("router", external_gateway_info={"network_id": ext["id"]})
    m_net, m_sub = tenant_net(mallory, cidr="10.9.0.0/24")
    claim = {"network_id": m_net["id"], "device_owner": "network:router_interface", "device_id": router["id"],
             "fixed_ips": [{"ip_address": "10.9.0.1"}]}
    r = mallory.post("/v2.0/ports", json={"port": claim})  # Neutron refuses the claim outright
    assert r.status_code == 409 and err(r)["type"] == "DeviceIDNotOwnedByTenant"
    spoof = api.create("port", tenant_id="projB", **claim)  # an admin may; it is still no interface
    victim = mallory.create("port", network_id=m_net["id"])
    r = mallory.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": ext["id"],
                                                              "port_id": victim["id"]}})
    assert r.status_code == 404 and err(r)["type"] == "ExternalGatewayForFloatingIPNotFound"
    assert alice.delete(f"/v2.0/routers/{router['id']}").status_code == 204
    assert mallory.delete(f"/v2.0/ports/{spoof['id']}").status_code == 204
