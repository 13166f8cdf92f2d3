"""Subnets are what Neutron accepts: pools never hold the network or broadcast address, IPv6
modes and prefix lengths are checked, and service types steer IPAM (subnet-service-types)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api


@pytest.fixture
def net(api: Api) -> dict[str, Any]:
    return api.create("network", name="n")


def subnet_body(net: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    return {"subnet": {"network_id": net["id"], "ip_version": 4, **attrs}}


def error_type(r: Any, status: int = 400) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    return r.json()["NeutronError"]["type"]  # type: ignore[no-any-return]


def test_pool_with_broadcast_or_network_address_is_refused(api: Api, net: dict[str, Any]) -> None:
    """A /29 pool ending on .7 used to be accepted; the last port then got the broadcast address."""
    for pool in ({"start": "10.0.0.2", "end": "10.0.0.7"}, {"start": "10.0.0.0", "end": "10.0.0.5"}):
        r = api.post("/v2.0/subnets", json=subnet_body(net, cidr="10.0.0.0/29", allocation_pools=[pool]))
        assert error_type(r) == "OutOfBoundsAllocationPool"
    r = api.post("/v2.0/subnets", json=subnet_body(net, cidr="10.0.0.0/29",
                                                   allocation_pools=[{"start": "10.0.0.6", "end": "10.0.0.3"}]))
    assert error_type(r) == "InvalidAllocationPool"
    sub = api.create("subnet", network_id=net["id"], ip_version=4, cidr="10.0.0.0/29",
                     allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.6"}])
    r = api.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"allocation_pools": [
        {"start": "10.0.0.2", "end": "10.0.0.7"}]}})
    assert error_type(r) == "OutOfBoundsAllocationPool"
    addresses = set()
    for _ in range(5):
        addresses.add(api.create("port", network_id=net["id"])["fixed_ips"][0]["ip_address"])
    assert addresses == {f"10.0.0.{i}" for i in range(2, 7)}
    assert error_type(api.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}), 409) == \
        "IpAddressGenerationFailure"


def test_ipv6_pool_may_not_hold_the_subnet_router_anycast_address(api: Api, net: dict[str, Any]) -> None:
    r = api.post("/v2.0/subnets", json=subnet_body(net, ip_version=6, cidr="fd00::/64",
                                                   allocation_pools=[{"start": "fd00::", "end": "fd00::9"}]))
    assert error_type(r) == "OutOfBoundsAllocationPool"


REFUSED = [
    {"ip_version": 4, "cidr": "10.1.0.0/24", "ipv6_ra_mode": "slaac"},  # modes on IPv4
    {"ip_version": 4, "cidr": "10.1.0.0/24", "ipv6_address_mode": "dhcpv6-stateful"},
    {"ip_version": 6, "cidr": "fd01::/80", "ipv6_address_mode": "slaac"},  # SLAAC needs a /64
    {"ip_version": 6, "cidr": "fd01::/56", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"},
    {"ip_version": 6, "cidr": "fd01::/48", "ipv6_ra_mode": "dhcpv6-stateless"},
    {"ip_version": 6, "cidr": "fd01::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"},
    {"ip_version": 6, "cidr": "fd01::/64", "ipv6_address_mode": "slaac", "enable_dhcp": False},
    {"ip_version": 6, "cidr": "::/64"},
    {"ip_version": 4, "cidr": "10.1.0.0/31"},  # too small for DHCP
    {"ip_version": 4, "cidr": "224.0.0.0/24"},  # multicast with DHCP
    {"ip_version": 4, "cidr": "127.0.0.0/24"},  # loopback with DHCP
    {"ip_version": 4, "cidr": "0.0.0.0/24"},
]


def test_ipv6_modes_and_prefixes_as_neutron(api: Api, net: dict[str, Any]) -> None:
    for attrs in REFUSED:
        r = api.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], **attrs}})
        assert error_type(r) == "InvalidInput", attrs


def test_valid_ipv6_modes_are_accepted(api: Api, net: dict[str, Any]) -> None:
    for i, modes in enumerate(({"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"},
                               {"ipv6_address_mode": "dhcpv6-stateless"},
                               {"ipv6_ra_mode": "dhcpv6-stateful", "ipv6_address_mode": "dhcpv6-stateful"})):
        api.create("subnet", network_id=net["id"], ip_version=6, cidr=f"fd0{i}::/64", **modes)
    api.create("subnet", network_id=net["id"], ip_version=6, cidr="fd09::/80",
               ipv6_address_mode="dhcpv6-stateful")
    sub = api.create("subnet", network_id=net["id"], ip_version=6, cidr="fd10::/64", ipv6_ra_mode="slaac")
    r = api.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"enable_dhcp": False}})
    assert error_type(r) == "InvalidInput"


def test_service_types_steer_ipam(api: Api, net: dict[str, Any]) -> None:
    """Ports get addresses only from subnets whose service types name their device owner,
    else from subnets without service types; typed subnets come first."""
    fip = api.create("subnet", network_id=net["id"], ip_version=4, cidr="10.10.0.0/24",
                     service_types=["network:floatingip"])
    plain = api.create("subnet", network_id=net["id"], ip_version=4, cidr="10.20.0.0/24")
    vm = api.create("port", network_id=net["id"], device_owner="compute:nova")
    assert [ip["subnet_id"] for ip in vm["fixed_ips"]] == [plain["id"]]
    own = api.create("port", network_id=net["id"], device_owner="network:floatingip")
    assert [ip["subnet_id"] for ip in own["fixed_ips"]] == [fip["id"]]
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "device_owner": "compute:nova",
                                               "fixed_ips": [{"subnet_id": fip["id"]}]}})
    assert error_type(r) == "InvalidInput"
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.10.0.50"}]}})
    assert r.status_code == 400, r.text
    dhcp = api.create("port", network_id=net["id"], device_owner="network:dhcp")
    assert dhcp["fixed_ips"][0]["subnet_id"] == fip["id"]  # DHCP ports serve every DHCP subnet


def test_only_service_subnets_means_other_owners_get_no_address(api: Api, net: dict[str, Any]) -> None:
    api.create("subnet", network_id=net["id"], ip_version=4, cidr="10.30.0.0/24",
               service_types=["network:router_gateway"])
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "device_owner": "compute:nova"}})
    assert error_type(r, 409) == "IpAddressGenerationFailureNoMatchingSubnet"
    api.create("port", network_id=net["id"], device_owner="network:router_gateway")


def test_service_types_are_device_owners(api: Api, net: dict[str, Any]) -> None:
    for types in (["floatingip"], ["network:x\n"], "network:dhcp", [1]):
        r = api.post("/v2.0/subnets", json=subnet_body(net, cidr="10.40.0.0/24", service_types=types))
        assert r.status_code == 400, r.text
