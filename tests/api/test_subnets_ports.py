"""Subnets and ports: IPAM, MACs, security groups by default, in-use rules, concurrency."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx

from tests.api.test_networks import err
from tests.conftest import Api, LiveServer


def make_net(api: Api, cidr: str = "10.0.0.0/24", **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    net = api.create("network")
    sub = api.create("subnet", network_id=net["id"], ip_version=4, cidr=cidr, **kw)
    return net, sub


def test_subnet_defaults(api: Api) -> None:
    net, sub = make_net(api)
    assert sub["gateway_ip"] == "10.0.0.1" and sub["enable_dhcp"] is True
    assert sub["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.254"}]
    assert sub["dns_nameservers"] == [] and sub["host_routes"] == [] and sub["ipv6_ra_mode"] is None
    assert api.get(f"/v2.0/networks/{net['id']}").json()["network"]["subnets"] == [sub["id"]]
    v6 = api.create("subnet", network_id=net["id"], ip_version=6, cidr="2001:db8::/64",
                    ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert v6["gateway_ip"] == "2001:db8::1"


def test_subnet_validation(api: Api) -> None:
    net, _ = make_net(api)
    bad = [
        {"cidr": "10.0.0.0/33", "ip_version": 4},
        {"cidr": "10.1.0.5/24", "ip_version": 4},
        {"cidr": "10.1.0.0/24", "ip_version": 6},
        {"cidr": "garbage", "ip_version": 4},
        {"cidr": "10.1.0.0/24", "ip_version": 5},
        {"cidr": "10.0.0.128/25", "ip_version": 4},  # overlaps
        {"cidr": "10.1.0.0/24", "ip_version": 4, "gateway_ip": "10.2.0.1"},
        {"cidr": "10.1.0.0/24", "ip_version": 4, "allocation_pools": [{"start": "10.1.0.10", "end": "10.2.0.5"}]},
        {"cidr": "10.1.0.0/24", "ip_version": 4, "dns_nameservers": ["nope"]},
        {"cidr": "10.1.0.0/24", "ip_version": 4, "host_routes": [{"destination": "x", "nexthop": "10.1.0.1"}]},
        {"cidr": "10.1.0.0/24", "ip_version": 4, "ipv6_ra_mode": "slaac"},
    ]
    for body in bad:
        r = api.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], **body}})
        assert r.status_code == 400, (body, r.text)
    r = api.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.1.0.0/24",
                                                   "allocation_pools": [{"start": "10.1.0.1", "end": "10.1.0.9"}]}})
    assert r.status_code == 409 and err(r)["type"] == "GatewayConflictWithAllocationPools"
    r = api.post("/v2.0/subnets", json={"subnet": {"network_id": "00000000-0000-0000-0000-000000000000",
                                                   "ip_version": 4, "cidr": "10.9.0.0/24"}})
    assert r.status_code == 404
    assert len(api.get("/v2.0/subnets").json()["subnets"]) == 1


def test_port_defaults_ip_mac_and_sg(api: Api) -> None:
    net, sub = make_net(api)
    member = api.as_("admin", roles="member,reader")
    port = member.create("port", network_id=net["id"])
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.2"}]
    assert port["mac_address"].startswith("fa:16:3e:") and port["status"] == "DOWN"
    assert len(port["security_groups"]) == 1 and port["port_security_enabled"] is True
    assert "binding:host_id" not in port and port["binding:vnic_type"] == "normal"
    sgs = api.get("/v2.0/security-groups").json()
    assert port["security_groups"][0] in [g["id"] for g in sgs["security_groups"]]
    full = api.get(f"/v2.0/ports/{port['id']}").json()["port"]
    assert full["binding:vif_type"] == "unbound" and full["binding:host_id"] == ""
    assert full["dns_assignment"][0]["ip_address"] == "10.0.0.2"


def test_port_fixed_ips_errors(api: Api) -> None:
    net, sub = make_net(api)
    a = api.create("port", network_id=net["id"], fixed_ips=[{"ip_address": "10.0.0.50"}])
    assert a["fixed_ips"][0]["ip_address"] == "10.0.0.50"
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.50"}]}})
    assert r.status_code == 409 and err(r)["type"] == "IpAddressAlreadyAllocated"
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.5.0.5"}]}})
    assert r.status_code == 400
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "bad"}]}})
    assert r.status_code == 400
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "mac_address": a["mac_address"]}})
    assert r.status_code == 409 and err(r)["type"] == "MacAddressInUse"
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "mac_address": "01:00:00:00:00:01"}})
    assert r.status_code == 400
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "security_groups": [
        "00000000-0000-0000-0000-000000000000"]}})
    assert r.status_code == 404
    assert len(api.get("/v2.0/ports").json()["ports"]) == 1
    assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 409
    assert api.delete(f"/v2.0/subnets/{sub['id']}").status_code == 409
    r = api.put(f"/v2.0/ports/{a['id']}", json={"port": {"fixed_ips": [{"ip_address": "10.0.0.60"}]}})
    assert r.status_code == 200 and r.json()["port"]["fixed_ips"][0]["ip_address"] == "10.0.0.60"
    filt = api.get("/v2.0/ports?fixed_ips=ip_address%3D10.0.0.60").json()["ports"]
    assert [p["id"] for p in filt] == [a["id"]]
    assert api.get("/v2.0/ports?fixed_ips=ip_address_substr%3D0.0.6").json()["ports"][0]["id"] == a["id"]
    assert api.delete(f"/v2.0/ports/{a['id']}").status_code == 204
    assert api.delete(f"/v2.0/subnets/{sub['id']}").status_code == 204
    assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204


def test_exhaustion_and_port_security(api: Api) -> None:
    net, _ = make_net(api, cidr="10.0.0.0/29")
    for _ in range(5):
        api.create("port", network_id=net["id"])
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
    assert r.status_code == 409 and err(r)["type"] == "IpAddressGenerationFailure"
    net2, _ = make_net(api, cidr="10.1.0.0/24")
    p = api.create("port", network_id=net2["id"], port_security_enabled=False)
    assert p["security_groups"] == []
    r = api.put(f"/v2.0/ports/{p['id']}", json={"port": {"allowed_address_pairs": [{"ip_address": "10.1.0.200"}]}})
    assert r.status_code == 409
    q = api.create("port", network_id=net2["id"], allowed_address_pairs=[{"ip_address": "10.1.0.0/28"}])
    assert q["allowed_address_pairs"] == [{"ip_address": "10.1.0.0/28", "mac_address": q["mac_address"]}]
    r = api.put(f"/v2.0/ports/{q['id']}", json={"port": {"port_security_enabled": False}})
    assert r.status_code == 409


def test_parallel_port_creates_never_duplicate(cfg: Any, live: LiveServer) -> None:
    """50 concurrent creates on a /26 (61 addresses): every IP and MAC distinct."""
    headers = {"X-Project-Id": "admin", "X-Roles": "admin,member"}
    with httpx.Client(base_url=live.url, headers=headers) as c:
        net = c.post("/v2.0/networks", json={"network": {}}).json()["network"]
        c.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/26"}})

    def create(_: int) -> dict[str, Any]:
        with httpx.Client(base_url=live.url, headers=headers, timeout=60) as c:
            r = c.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
            assert r.status_code == 201, r.text
            return r.json()["port"]  # type: ignore[no-any-return]

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        ports = list(pool.map(create, range(50)))
    ips = [p["fixed_ips"][0]["ip_address"] for p in ports]
    macs = [p["mac_address"] for p in ports]
    assert len(set(ips)) == 50 and len(set(macs)) == 50


def test_shared_network_ports_stay_closed_to_other_projects(api: Api) -> None:
    """On another project's shared network a member gets a port, but not to choose its address,
    MAC, port security, address pairs or a network:* owner — on create nor on update."""
    net, sub = make_net(api)
    api.put(f"/v2.0/networks/{net['id']}", json={"network": {"shared": True}})
    bob = api.as_("projB")
    port = bob.create("port", network_id=net["id"], fixed_ips=[{"subnet_id": sub["id"]}])
    forbidden = [
        {"fixed_ips": [{"ip_address": "10.0.0.77"}]},
        {"port_security_enabled": False},
        {"allowed_address_pairs": [{"ip_address": "0.0.0.0/0"}]},
        {"device_owner": "network:router_interface"},
        {"mac_address": "fa:16:3e:00:00:99"},
    ]
    for body in forbidden:
        r = bob.post("/v2.0/ports", json={"port": {"network_id": net["id"], **body}})
        assert r.status_code == 403, (body, r.text)
        r = bob.put(f"/v2.0/ports/{port['id']}", json={"port": body})
        assert r.status_code == 403, (body, r.text)
    assert bob.put(f"/v2.0/ports/{port['id']}", json={"port": {"name": "ok"}}).status_code == 200
    assert len(bob.get("/v2.0/ports").json()["ports"]) == 1


def test_subnet_segment_must_belong_to_the_network(api: Api) -> None:
    net = api.create("network")
    r = api.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24",
                                                   "segment_id": "00000000-0000-0000-0000-000000000000"}})
    assert r.status_code == 400, r.text
    assert api.get("/v2.0/ports?ip_address_substr=10").status_code == 400  # only as fixed_ips=...


def test_subnet_create_and_delete_revise_the_network(api: Api) -> None:
    """Neutron's revision plugin: a subnet revises its network (``revises_on_change``) when it is
    created or deleted, once per transaction however many subnets of it a request makes."""
    net = api.create("network")

    def revision() -> int:
        return int(api.get(f"/v2.0/networks/{net['id']}").json()["network"]["revision_number"])

    start = revision()
    sub = api.create("subnet", network_id=net["id"], ip_version=4, cidr="10.0.0.0/24")
    assert revision() == start + 1
    r = api.post("/v2.0/subnets", json={"subnets": [
        {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.1.0/24"},
        {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.2.0/24"}]})
    assert r.status_code == 201, r.text
    assert revision() == start + 2
    assert api.delete(f"/v2.0/subnets/{sub['id']}").status_code == 204
    assert revision() == start + 3
    # a refused create or delete changes nothing
    r = api.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.1.0/25"}})
    assert r.status_code == 400
    port = api.create("port", network_id=net["id"])
    r = api.delete(f"/v2.0/subnets/{port['fixed_ips'][0]['subnet_id']}")
    assert r.status_code == 409 and err(r)["type"] == "SubnetInUse"
    assert revision() == start + 3
