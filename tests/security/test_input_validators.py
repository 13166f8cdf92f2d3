"""Every string or address a project sets is matched whole and stored in one canonical form.

``$`` matches before a final newline and netaddr accepts trailing whitespace, so "a MAC plus
newline" used to be a second, different MAC (and dodged the uniqueness rule), and control
characters reached dnsmasq's files and the firewall's rule sets.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Api

HOSTILE_SUFFIXES = ["\n", "\r", " ", "\t", "\x0b", "\x1b", "\x7f", "\x85", "\u2028", "\n--dhcp-option=6,10.9.9.9"]


def bad(r: Any) -> dict[str, Any]:
    assert r.status_code == 400, (r.status_code, r.text)
    return r.json()["NeutronError"]  # type: ignore[no-any-return]


@pytest.fixture
def net(api: Api) -> dict[str, Any]:
    return api.create("network", name="n")


@pytest.fixture
def subnet(api: Api, net: dict[str, Any]) -> dict[str, Any]:
    return api.create("subnet", network_id=net["id"], ip_version=4, cidr="10.0.0.0/24")


def test_same_mac_plus_hostile_suffix_is_400_and_cannot_dodge_uniqueness(api: Api, net: dict[str, Any]) -> None:
    api.create("port", network_id=net["id"], mac_address="fa:16:3e:00:00:01")
    port = api.create("port", network_id=net["id"])
    for suffix in HOSTILE_SUFFIXES:
        for mac in ("fa:16:3e:00:00:01" + suffix, suffix + "fa:16:3e:00:00:01", "FA:16:3E:00:00:01" + suffix):
            bad(api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "mac_address": mac}}))
            bad(api.put(f"/v2.0/ports/{port['id']}", json={"port": {"mac_address": mac}}))
    macs = [p["mac_address"] for p in api.get("/v2.0/ports").json()["ports"]]
    assert all(m == m.strip() and len(m) == 17 for m in macs), macs


def test_addresses_and_cidrs_with_hostile_suffix_are_400(api: Api, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    other = api.create("network", name="o")
    sg = api.create("security_group", name="g")
    router = api.create("router", name="r")
    for suffix in HOSTILE_SUFFIXES:
        _addresses_refused(api, net["id"], subnet["id"], other["id"], sg["id"], router["id"], suffix)


def _addresses_refused(api: Api, nid: str, sid: str, other_id: str, sg_id: str, router_id: str, suffix: str) -> None:
    for body in (
        {"subnet": {"network_id": other_id, "ip_version": 4, "cidr": "10.1.0.0/24" + suffix}},
        {"subnet": {"network_id": other_id, "ip_version": 4, "cidr": "10.1.0.0/24",
                    "gateway_ip": "10.1.0.1" + suffix}},
        {"subnet": {"network_id": other_id, "ip_version": 4, "cidr": "10.1.0.0/24",
                    "dns_nameservers": ["10.1.0.53" + suffix]}},
        {"subnet": {"network_id": other_id, "ip_version": 4, "cidr": "10.1.0.0/24",
                    "host_routes": [{"destination": "10.9.0.0/16" + suffix, "nexthop": "10.1.0.1"}]}},
        {"subnet": {"network_id": other_id, "ip_version": 4, "cidr": "10.1.0.0/24",
                    "host_routes": [{"destination": "10.9.0.0/16", "nexthop": "10.1.0.1" + suffix}]}},
        {"subnet": {"network_id": other_id, "ip_version": 4, "cidr": "10.1.0.0/24",
                    "allocation_pools": [{"start": "10.1.0.10", "end": "10.1.0.20" + suffix}]}},
    ):
        bad(api.post("/v2.0/subnets", json=body))
    for port in (
        {"network_id": nid, "fixed_ips": [{"subnet_id": sid, "ip_address": "10.0.0.5" + suffix}]},
        {"network_id": nid, "allowed_address_pairs": [{"ip_address": "10.0.0.0/28" + suffix}]},
        {"network_id": nid, "allowed_address_pairs": [{"ip_address": "10.0.0.7" + suffix}]},
    ):
        bad(api.post("/v2.0/ports", json={"port": port}))
    bad(api.post("/v2.0/security-group-rules", json={"security_group_rule": {
        "security_group_id": sg_id, "direction": "ingress", "remote_ip_prefix": "10.0.0.0/8" + suffix}}))
    bad(api.put(f"/v2.0/routers/{router_id}", json={"router": {"routes": [
        {"destination": "10.8.0.0/16" + suffix, "nexthop": "10.0.0.1"}]}}))
    bad(api.put(f"/v2.0/routers/{router_id}/add_extraroutes", json={"router": {"routes": [
        {"destination": "10.8.0.0/16", "nexthop": "10.0.0.1" + suffix}]}}))


def test_subnet_cidr_must_be_exact_network_form(api: Api, net: dict[str, Any]) -> None:
    for cidr in ("10.1.0.0/024", "10.1.0.0/255.255.255.0", "10.1.0.5/24", "010.1.0.0/24", "10.1.0.0", "10.1/16",
                 "fd00::/064", "fd00::5/64", "fd00::/64 "):
        version = 6 if ":" in cidr else 4
        bad(api.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": version, "cidr": cidr}}))


def test_ipv6_values_are_stored_canonical(api: Api, net: dict[str, Any]) -> None:
    sub = api.create("subnet", network_id=net["id"], ip_version=6, cidr="FD00:0:0:0::/64",
                     gateway_ip="FD00::0001", dns_nameservers=["FD00:0::53"],
                     allocation_pools=[{"start": "FD00::0010", "end": "FD00::00FF"}],
                     host_routes=[{"destination": "FD01:0::/64", "nexthop": "FD00::0002"}])
    assert sub["cidr"] == "fd00::/64" and sub["gateway_ip"] == "fd00::1", sub
    assert sub["dns_nameservers"] == ["fd00::53"]
    assert sub["allocation_pools"] == [{"start": "fd00::10", "end": "fd00::ff"}]
    assert sub["host_routes"] == [{"destination": "fd01::/64", "nexthop": "fd00::2"}]
    port = api.create("port", network_id=net["id"], fixed_ips=[{"ip_address": "FD00::0020"}])
    assert port["fixed_ips"][0]["ip_address"] == "fd00::20"
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "fd00::20"}]}})
    assert r.status_code == 409, r.text


def test_dns_names_are_stored_lower_case(api: Api, net: dict[str, Any]) -> None:
    """neutron-lib's convert_string_to_case_insensitive: "Host" and "host" are one name."""
    port = api.create("port", network_id=net["id"], dns_name="Web-01", dns_domain="Example.COM.")
    assert (port["dns_name"], port["dns_domain"]) == ("web-01", "example.com.")
    r = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"dns_domain": "Corp.Example."}})
    assert r.json()["network"]["dns_domain"] == "corp.example.", r.text


def test_dns_names_match_whole(api: Api, net: dict[str, Any]) -> None:
    for label in ("host\n", "host\nevil", "ho st", "host.\n", "-host", "host-", "a..b", "h\x00st", "host.123",
                  "hóst", "example.com\n"):
        bad(api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "dns_name": label}}))
        bad(api.put(f"/v2.0/networks/{net['id']}", json={"network": {"dns_domain": label}}))


@pytest.mark.parametrize("char", ["\n", "\r", "\x00", "\x01", "\x1b", "\x7f", "\x9b", "\u2028"])
def test_control_characters_refused_in_every_string_reaching_the_host(
        api: Api, net: dict[str, Any], char: str) -> None:
    nid = net["id"]
    for path, body in (
        ("/v2.0/networks", {"network": {"name": f"a{char}b"}}),
        ("/v2.0/networks", {"network": {"tags": [f"t{char}"]}}),
        ("/v2.0/ports", {"port": {"network_id": nid, "name": f"vm{char}"}}),
        ("/v2.0/ports", {"port": {"network_id": nid, "device_id": f"d{char}"}}),
        ("/v2.0/ports", {"port": {"network_id": nid, "device_owner": f"compute:{char}"}}),
        ("/v2.0/ports", {"port": {"network_id": nid, "binding:host_id": f"h{char}"}}),
        ("/v2.0/ports", {"port": {"network_id": nid, "extra_dhcp_opts": [
            {"opt_name": "domain-search", "opt_value": f"example.com{char}"}]}}),
        ("/v2.0/ports", {"port": {"network_id": nid, "extra_dhcp_opts": [
            {"opt_name": f"mtu{char}", "opt_value": "1400"}]}}),
        ("/v2.0/routers", {"router": {"name": f"r{char}"}}),
        ("/v2.0/security-groups", {"security_group": {"name": f"g{char}"}}),
        ("/v2.0/subnets", {"subnet": {"network_id": nid, "ip_version": 4, "cidr": "10.5.0.0/24",
                                      "service_types": [f"compute:{char}"]}}),
    ):
        bad(api.post(path, json=body))
    bad(api.put(f"/v2.0/networks/{nid}/tags/{quote('t' + char)}"))
    bad(api.put(f"/v2.0/networks/{nid}/tags", json={"tags": [f"x{char}"]}))


def test_descriptions_may_span_lines_but_not_carry_other_controls(api: Api, net: dict[str, Any]) -> None:
    """Free text that never reaches a host keeps Neutron's multi-line descriptions."""
    r = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"description": "line one\nline two\ttab"}})
    assert r.status_code == 200, r.text
    bad(api.put(f"/v2.0/networks/{net['id']}", json={"network": {"description": "bell\x07"}}))


REFUSED_DHCP_OPTS = [
    {"opt_name": "dns-server", "opt_value": "10.0.0.53\n--dhcp-range=10.9.0.0,static"},
    {"opt_name": "dns-server", "opt_value": "10.0.0.53\r"},
    {"opt_name": "no-such-option", "opt_value": "x"},
    {"opt_name": "dhcp-range", "opt_value": "x"},
    {"opt_name": "tag:x,router", "opt_value": "10.0.0.1"},
    {"opt_name": "option:router", "opt_value": "10.0.0.1"},
    {"opt_name": "0", "opt_value": "x"},
    {"opt_name": "255", "opt_value": "x"},
    {"opt_name": "3 ", "opt_value": "10.0.0.1"},
    {"opt_name": "03", "opt_value": "10.0.0.1"},
    {"opt_name": "bootfile-url", "opt_value": "http://x/", "ip_version": 4},  # a DHCPv6 name
    {"opt_name": "netmask", "opt_value": "255.0.0.0", "ip_version": 6},  # a DHCPv4 name
    {"opt_name": "mtu", "opt_value": "1400", "ip_version": 5},
    {"opt_name": "mtu", "opt_value": "   "},
    {"opt_name": "mtu", "opt_value": ""},
    {"opt_name": "", "opt_value": "1"},
    {"opt_name": "m" * 65, "opt_value": "1"},
    {"opt_name": "mtu", "opt_value": "1" * 256},
    {"opt_name": "router", "opt_value": "notanip"},  # dnsmasq refuses the file: DHCP off for all
    {"opt_name": "3", "opt_value": "10.0.0.1,x"},
    {"opt_name": "dns-server", "opt_value": "10.0.0.1, 10.0.0.2"},
    {"opt_name": "ntp-server", "opt_value": "fd00::1"},
    {"opt_name": "dns-server", "opt_value": "10.0.0.53", "ip_version": 6},
    {"opt_name": "23", "opt_value": "[fd00::1", "ip_version": 6},
]


def test_extra_dhcp_opts_refused(api: Api, net: dict[str, Any]) -> None:
    port = api.create("port", network_id=net["id"])
    for opt in REFUSED_DHCP_OPTS:
        bad(api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "extra_dhcp_opts": [opt]}}))
        bad(api.put(f"/v2.0/ports/{port['id']}", json={"port": {"extra_dhcp_opts": [opt]}}))


def test_extra_dhcp_opts_accepted(api: Api, net: dict[str, Any]) -> None:
    opts = [{"opt_name": "router", "opt_value": ""}, {"opt_name": "mtu", "opt_value": "1400"},
            {"opt_name": "119", "opt_value": "example.com"},
            {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},
            {"opt_name": "bootfile-url", "opt_value": "http://[fd00::1]/boot.ipxe", "ip_version": "6"},
            {"opt_name": "1000", "opt_value": "ab:cd", "ip_version": 6},
            {"opt_name": "T1", "opt_value": "300"}, {"opt_name": "dns-server", "opt_value": "10.0.0.2,10.0.0.3"},
            {"opt_name": "dns-server", "opt_value": "[fd00::53],fd00::54", "ip_version": 6},
            {"opt_name": "static-route", "opt_value": "10.9.0.0,10.0.0.1"}]
    port = api.create("port", network_id=net["id"], extra_dhcp_opts=opts)
    got = {(o["opt_name"], o["opt_value"], o["ip_version"]) for o in port["extra_dhcp_opts"]}
    assert ("bootfile-url", "http://[fd00::1]/boot.ipxe", 6) in got and ("router", "", 4) in got, got


def test_host_routes_follow_neutrons_hostroutes_rule(api: Api, net: dict[str, Any]) -> None:
    base = {"network_id": net["id"], "ip_version": 4, "cidr": "10.2.0.0/24"}
    for routes in ([{"destination": "10.9.0.5/16", "nexthop": "10.2.0.1"}],  # host bits
                   [{"destination": "127.0.0.0/8", "nexthop": "10.2.0.1"}],  # loopback
                   [{"destination": "10.9.0.0/16", "nexthop": "10.2.0.1", "x": 1}],
                   [{"destination": "10.9.0.0/16", "nexthop": "10.2.0.1"}] * 2,
                   [{"destination": "fd00::/64", "nexthop": "10.2.0.1"}],  # another IP version
                   [{"destination": f"10.{i}.0.0/16", "nexthop": "10.2.0.1"} for i in range(30, 51)]):  # > 20
        bad(api.post("/v2.0/subnets", json={"subnet": {**base, "host_routes": routes}}))
    bad(api.post("/v2.0/subnets", json={"subnet": {**base, "dns_nameservers": [f"10.2.0.{i}" for i in range(2, 8)]}}))


def test_allowed_address_pairs_are_bounded(api: Api, net: dict[str, Any]) -> None:
    """neutron.conf's max_allowed_address_pair (10): each pair is rules on the host."""
    pairs = [{"ip_address": f"10.0.0.{i}"} for i in range(10, 21)]
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "allowed_address_pairs": pairs}})
    assert bad(r)["type"] == "AllowedAddressPairExhausted"
    api.create("port", network_id=net["id"], allowed_address_pairs=pairs[:10])
