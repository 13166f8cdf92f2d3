"""Issue 7 §3: every rule the API accepts renders to nft that the kernel takes, and a hostile value
(one that got past the API, e.g. written into the database) costs only its own rule or port.

The scripts are checked with ``nft -c -f`` inside a throwaway namespace (root), so "renders"
means "the kernel would take it", not only "no exception".
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from neutron_lib import constants as lib

from neutrino.agent.l2 import firewall
from neutrino.kernel.names import tap_name

P1 = "11111111-aaaa-4bbb-8ccc-000000000001"
P2 = "22222222-aaaa-4bbb-8ccc-000000000002"
DHCP = "33333333-aaaa-4bbb-8ccc-000000000003"
SG_A, SG_B = "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b"
IPV6_ONLY = {"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route"}
PORT_PROTOCOLS = {"tcp": "tcp", "udp": "udp", "sctp": "sctp", "udplite": "udplite", "dccp": "dccp"}


def port(pid: str, mac: str, ips: list[str], groups: list[str], **extra: Any) -> dict[str, Any]:
    return {"id": pid, "network_id": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "mac_address": mac,
            "fixed_ips": [{"ip_address": ip} for ip in ips], "allowed_address_pairs": [],
            "port_security_enabled": True, "security_groups": groups, "device_owner": "compute:nova", **extra}


def ports() -> list[dict[str, Any]]:
    return [port(P1, "fa:16:3e:00:00:01", ["10.0.0.11", "fd00::11"], [SG_A]),
            port(P2, "fa:16:3e:00:00:02", ["10.0.0.12"], [SG_B]),
            port(DHCP, "fa:16:3e:00:00:03", ["10.0.0.2"], [], device_owner="network:dhcp")]


def chain(script: str, name: str) -> list[str]:
    match = re.search(r"^  chain " + re.escape(name) + r" \{\n(.*?)^  \}", script, re.M | re.S)
    assert match, f"no chain {name}"
    return [line.strip() for line in match.group(1).splitlines()]


def every_rule_the_api_accepts() -> list[dict[str, Any]]:
    """Every protocol name of neutron-lib and a spread of numbers, both ethertypes, with the
    port/type fields each allows, remote prefixes and remote groups (as the API stores them)."""
    rules: list[dict[str, Any]] = []
    n = 0

    def add(**fields: Any) -> None:
        nonlocal n
        n += 1
        rules.append({"id": f"rule-{n}", "security_group_id": SG_A, **fields})

    for name in lib.IP_PROTOCOL_MAP:
        for ethertype in ("IPv4", "IPv6"):
            if name in IPV6_ONLY and ethertype == "IPv4":
                continue
            stored = "ipv6-icmp" if ethertype == "IPv6" and name in ("icmp", "icmpv6") else name
            for direction in ("ingress", "egress"):
                add(direction=direction, ethertype=ethertype, protocol=stored)
            if name in PORT_PROTOCOLS:
                add(direction="ingress", ethertype=ethertype, protocol=stored, port_range_min=1000,
                    port_range_max=2000)
                add(direction="egress", ethertype=ethertype, protocol=stored, port_range_min=53, port_range_max=53)
            if stored in ("icmp", "ipv6-icmp"):
                add(direction="ingress", ethertype=ethertype, protocol=stored, port_range_min=8)
                add(direction="ingress", ethertype=ethertype, protocol=stored, port_range_min=3, port_range_max=1)
    for number in ("0", "1", "2", "4", "6", "17", "33", "47", "50", "51", "112", "132", "136", "200", "255"):
        add(direction="ingress", ethertype="IPv4", protocol=number)
        add(direction="egress", ethertype="IPv6", protocol=number)
    add(direction="ingress", ethertype="IPv4", protocol="6", port_range_min=22, port_range_max=22)
    add(direction="ingress", ethertype="IPv4", protocol="vrrp", remote_ip_prefix="10.0.0.0/24")
    add(direction="ingress", ethertype="IPv6", protocol="gre", remote_ip_prefix="fd00::/64")
    add(direction="ingress", ethertype="IPv4", protocol="esp", remote_group_id=SG_B)
    add(direction="egress", ethertype="IPv6", protocol="ah", remote_group_id=SG_B)
    add(direction="ingress", ethertype="IPv4", remote_ip_prefix="0.0.0.0/0")
    return rules


@pytest.fixture
def check_ns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("nft -c needs root and a network namespace")
    ns = f"nt-{secrets.token_hex(4)}-fwcheck"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    try:
        yield ns
    finally:
        subprocess.run(["ip", "netns", "delete", ns], timeout=10)


def nft_takes(ns: str, script: str) -> None:
    done = subprocess.run(["ip", "netns", "exec", ns, "nft", "-c", "-f", "-"], input=script, text=True,
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_every_rule_the_api_accepts_renders_and_the_kernel_takes_it(check_ns: str) -> None:
    """vrrp, gre, esp, ah, ipip, sctp, udplite, dccp, ipv6-* ..., numbers 0-255, both ethertypes."""
    rules = every_rule_the_api_accepts()
    groups = [{"id": SG_A, "stateful": True, "security_group_rules": rules},
              {"id": SG_B, "stateful": True, "security_group_rules": []}]
    rendered = firewall.render_host(ports(), groups, {SG_B: ["10.0.0.12"]}, zones={
        "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f": 1})
    assert rendered.failed_rules == {} and rendered.failed_ports == {}
    nft_takes(check_ns, rendered.script)
    ingress, egress = chain(rendered.script, f"ingress-{P1}"), chain(rendered.script, f"egress-{P1}")
    for line in ("meta nfproto ipv4 meta l4proto 112 accept",            # vrrp
                 "meta nfproto ipv6 meta l4proto 47 accept",             # gre
                 "meta nfproto ipv4 meta l4proto 4 accept",              # ipip
                 "meta nfproto ipv6 meta l4proto 43 accept",             # ipv6-route
                 "meta nfproto ipv4 udplite dport 1000-2000 accept",
                 "meta nfproto ipv6 dccp dport 1000-2000 accept",
                 "meta nfproto ipv4 sctp dport 1000-2000 accept",
                 "meta nfproto ipv4 tcp dport 22 accept",                # "6" with a port
                 "meta nfproto ipv6 icmpv6 type 3 icmpv6 code 1 accept",
                 "meta nfproto ipv4 icmp type 8 accept",
                 "meta nfproto ipv4 ip saddr 10.0.0.0/24 meta l4proto 112 accept",
                 "meta nfproto ipv6 ip6 saddr fd00::/64 meta l4proto 47 accept",
                 f"meta nfproto ipv4 ip saddr @sg-{SG_B}-v4 meta l4proto 50 accept",
                 "meta nfproto ipv4 meta l4proto 255 accept",
                 "meta nfproto ipv4 accept"):                            # protocol 0 / ip / hopopt: any
        assert line in ingress, line
    assert "meta nfproto ipv6 udplite dport 53 return" in egress
    assert f"meta nfproto ipv6 ip6 daddr @sg-{SG_B}-v6 meta l4proto 51 return" in egress
    # the range-less rules match the whole protocol; the ranged ones only their ports (never widened)
    ranged_less = {"meta nfproto ipv4 meta l4proto dccp accept", "meta nfproto ipv4 meta l4proto udplite accept"}
    assert ranged_less <= set(ingress)


@pytest.mark.parametrize("hostile", [
    {"protocol": "tcp dport 1-65535 accept; #"},
    {"protocol": "999"},
    {"protocol": True},
    {"protocol": "vrrp", "port_range_min": 1, "port_range_max": 2},    # ports on a protocol without ports
    {"protocol": "tcp", "port_range_min": "22 accept", "port_range_max": 22},
    {"protocol": "tcp", "port_range_min": 0, "port_range_max": 70000},
    {"protocol": "icmp", "port_range_min": None, "port_range_max": 3},
    {"protocol": "icmp", "port_range_min": 300},
    {"ethertype": "IPv4 accept"},
    {"remote_ip_prefix": "10.0.0.0/8 accept"},
    {"remote_group_id": 'x" accept; delete table inet neutrino-sg; "'},
])
def test_a_hostile_rule_costs_only_itself(check_ns: str, hostile: dict[str, Any]) -> None:
    plain = [{"id": "ok", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
              "port_range_max": 22}]
    bad = {"id": "bad", "direction": "ingress", "ethertype": "IPv4", **hostile}
    groups = [{"id": SG_A, "security_group_rules": [*plain, bad]}, {"id": SG_B, "security_group_rules": plain}]
    clean = firewall.render_host(ports(), [{"id": SG_A, "security_group_rules": plain},
                                           {"id": SG_B, "security_group_rules": plain}], {})
    rendered = firewall.render_host(ports(), groups, {})
    assert set(rendered.failed_rules) == {"bad"} and rendered.failed_ports == {}
    assert rendered.script == clean.script, "the other rules and ports render exactly as without it"
    nft_takes(check_ns, rendered.script)
    with pytest.raises(ValueError):
        firewall.render(ports(), groups, {})  # the strict render refuses it


@pytest.mark.parametrize("hostile", [
    {"mac_address": "fa:16:3e:00:00:09 accept"},
    {"mac_address": "fa:16:3e:00:00:09\n"},
    {"fixed_ips": [{"ip_address": "10.0.0.9 accept"}]},
    {"allowed_address_pairs": [{"ip_address": "10.0.0.0/24", "mac_address": "ff } accept"}]},
    {"id": 'p" : accept }'},
])
def test_a_hostile_port_is_cut_off_and_the_others_unchanged(check_ns: str, hostile: dict[str, Any]) -> None:
    groups = [{"id": SG_A, "security_group_rules": [{"direction": "egress", "ethertype": "IPv4"}]},
              {"id": SG_B, "security_group_rules": []}]
    evil = port("44444444-aaaa-4bbb-8ccc-000000000004", "fa:16:3e:00:00:04", ["10.0.0.14"], [SG_A])
    evil.update(hostile)
    clean = firewall.render_host(ports(), groups, {})
    rendered = firewall.render_host([*ports(), evil], groups, {})
    assert list(rendered.failed_ports) == [str(evil["id"])]
    assert rendered.script == clean.script, "the hostile port is in neither table: its tap hits the drop"
    assert "tap44444444-aa" not in rendered.script and "fa:16:3e:00:00:09" not in rendered.script
    nft_takes(check_ns, rendered.script)


def test_two_ports_with_one_device_name_are_both_closed(check_ns: str) -> None:
    groups = [{"id": SG_A, "security_group_rules": []}, {"id": SG_B, "security_group_rules": []}]
    twin = port(P1[:11] + "-twin", "fa:16:3e:00:00:05", ["10.0.0.15"], [SG_B])
    rendered = firewall.render_host([*ports(), twin], groups, {})
    assert sorted(rendered.failed_ports) == sorted([P1, twin["id"]])
    assert tap_name(P1) not in rendered.script and f"ingress-{P2}" in rendered.script
    nft_takes(check_ns, rendered.script)


def test_unknown_taps_drop_and_the_networks_own_ports_stay_trusted() -> None:
    script = firewall.render_host(ports(), [{"id": SG_A, "security_group_rules": []},
                                            {"id": SG_B, "security_group_rules": []}], {}).script
    pre, post = chain(script, "prerouting"), chain(script, "postrouting")
    dhcp = tap_name(DHCP)
    assert f'"{dhcp}" : accept' in pre[1] and f'"{tap_name(P1)}" : jump spoof-{P1}' in pre[1]
    assert pre[-1] == 'iifname "tap*" counter drop' and post[-1] == 'oifname "tap*" counter drop'
    assert f'"{dhcp}" : accept' in post[1] and f'"{tap_name(P1)}" : accept' in post[1]
    assert f"spoof-{DHCP}" not in script and f"ingress-{DHCP}" not in script


def test_stateless_groups_bypass_conntrack(check_ns: str) -> None:
    groups = [{"id": SG_A, "stateful": False, "security_group_rules": [{"direction": "egress", "ethertype": "IPv4"}]},
              {"id": SG_B, "stateful": True, "security_group_rules": []}]
    net = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
    script = firewall.render_host(ports(), groups, {}, zones={net: 5}).script
    nft_takes(check_ns, script)
    notrack = chain(script, firewall.NOTRACK_CHAIN)
    brq = '"brq7c1d2e3f-4a"'  # keyed by network too: a MAC is unique per network only
    assert notrack[1:] == [f"iifname . ether saddr {{ {brq} . fa:16:3e:00:00:01 }} notrack",
                           f"iifname . ether daddr {{ {brq} . fa:16:3e:00:00:01 }} notrack"]
    assert notrack[0].startswith("type filter hook prerouting priority -310;")
    zones = chain(script, firewall.ZONE_CHAIN)
    assert zones[1] == "ct state untracked accept"  # a zone template would undo notrack
    stateful_only = firewall.render_host(ports(), [{**groups[0], "stateful": True}, groups[1]], {}, zones={net: 5})
    assert firewall.NOTRACK_CHAIN not in stateful_only.script and "untracked" not in stateful_only.script
