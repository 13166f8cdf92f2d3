"""The security-group nft render: structure of the script, rule translation, determinism, and the nft guard."""

from __future__ import annotations

import re
from typing import Any

import pytest

from neutrino.agent.l2 import firewall
from neutrino.kernel import NotOurs, nft

P1 = "11111111-aaaa-4bbb-8ccc-000000000001"
P2 = "22222222-aaaa-4bbb-8ccc-000000000002"
P3 = "33333333-aaaa-4bbb-8ccc-000000000003"
NET0 = "0e0e0e0e-0000-4000-8000-00000000000e"
BRQ0 = "brq0e0e0e0e-00"
SG_A, SG_B = "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b"


def port(pid: str, mac: str, ips: list[str], groups: list[str], **extra: Any) -> dict[str, Any]:
    return {"id": pid, "network_id": NET0, "mac_address": mac, "fixed_ips": [{"ip_address": ip} for ip in ips],
            "allowed_address_pairs": [], "port_security_enabled": True, "security_groups": groups, **extra}


def ingress(**fields: Any) -> dict[str, Any]:
    return {"direction": "ingress", "ethertype": "IPv4", **fields}


EGRESS_ALL = [{"direction": "egress", "ethertype": "IPv4"}, {"direction": "egress", "ethertype": "IPv6"}]


def chain(script: str, name: str) -> list[str]:
    """The rule lines of chain ``name`` in the rendered script."""
    match = re.search(r"^  chain " + re.escape(name) + r" \{\n(.*?)^  \}", script, re.M | re.S)
    assert match, f"no chain {name}"
    return [line.strip() for line in match.group(1).splitlines()]


def small() -> str:
    ports = [port(P1, "FA:16:3E:00:00:01", ["10.0.0.11"], [SG_A]), port(P2, "fa:16:3e:00:00:02", ["10.0.0.12"], [SG_A])]
    rules = [*EGRESS_ALL, ingress(remote_group_id=SG_A),
             ingress(protocol="tcp", port_range_min=22, port_range_max=22, remote_ip_prefix="203.0.113.0/24")]
    return firewall.render(ports, [{"id": SG_A, "security_group_rules": rules}], {SG_A: ["10.0.0.12", "10.0.0.11"]})


def test_small_case_replaces_both_tables_in_one_script() -> None:
    script = small()
    assert script.startswith("table bridge neutrino-antispoof {}\ndelete table bridge neutrino-antispoof\n")
    assert "table inet neutrino-sg {}\ndelete table inet neutrino-sg\ntable inet neutrino-sg {\n" in script
    assert chain(script, "forward")[:4] == [
        "type filter hook forward priority filter; policy accept;",
        "ct state established,related accept",
        f'iifname . ether saddr vmap {{ "{BRQ0}" . fa:16:3e:00:00:01 : jump egress-{P1}, '
        f'"{BRQ0}" . fa:16:3e:00:00:02 : jump egress-{P2} }}',
        f"meta mark vmap {{ 0x00000001 : jump ingress-{P1}, 0x00000002 : jump ingress-{P2} }}",
    ]
    assert chain(script, f"ingress-{P1}") == [
        "ct state invalid counter drop",
        "meta nfproto ipv4 udp sport 67 udp dport 68 accept",
        "meta nfproto ipv6 icmpv6 type { 130, 131, 132, 134, 135, 136, 143 } accept",
        "meta nfproto ipv6 udp sport 547 udp dport 546 accept",
        "meta nfproto ipv4 ip saddr 203.0.113.0/24 tcp dport 22 accept",
        f"meta nfproto ipv4 ip saddr @sg-{SG_A}-v4 accept",
        "counter drop",
    ]
    egress = chain(script, f"egress-{P1}")
    assert egress[-3:] == ["meta nfproto ipv4 return", "meta nfproto ipv6 return", "counter drop"]
    nft.check_script(script)  # only our own tables


def test_antispoof_allows_only_the_ports_addresses() -> None:
    p = port(P1, "fa:16:3e:00:00:01", ["10.0.0.11"], [SG_A],
             allowed_address_pairs=[{"ip_address": "10.0.0.200/32"}, {"ip_address": "10.0.0.64/28",
                                                                       "mac_address": "fa:16:3e:00:00:aa"}])
    script = firewall.render([p], [], {})
    lines = chain(script, f"spoof-{P1}")
    dhcp = "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67"
    assert lines[0] == f"ether saddr fa:16:3e:00:00:01 {dhcp} accept"
    assert "ether type ip udp sport 67 udp dport 68 counter drop" in lines  # no rogue DHCP server
    for mac, ip in (("fa:16:3e:00:00:01", "10.0.0.11"), ("fa:16:3e:00:00:01", "10.0.0.200"),
                    ("fa:16:3e:00:00:aa", "10.0.0.64/28")):
        assert f"ether saddr {mac} ip saddr {ip} accept" in lines
        assert f"ether saddr {mac} arp saddr ether {mac} arp saddr ip {ip} accept" in lines
    assert "ether saddr fa:16:3e:00:00:01 ip6 saddr fe80::f816:3eff:fe00:1 accept" in lines
    assert lines[-1] == "counter drop"
    assert f'iifname vmap {{ "tap11111111-aa" : jump spoof-{P1} }}' in script
    # the pair's MAC reaches the same port's stateful chains
    assert f'"{BRQ0}" . fa:16:3e:00:00:aa : jump egress-{P1}' in script


def test_port_security_disabled_is_not_filtered() -> None:
    off = port(P3, "fa:16:3e:00:00:03", ["10.0.0.13"], [], port_security_enabled=False)
    script = firewall.render([off], [{"id": SG_A, "security_group_rules": EGRESS_ALL}], {})
    assert P3 not in script and "fa:16:3e:00:00:03" not in script
    # its tap is let through as it is (not dropped as an unknown tap), with no chain of its own
    assert chain(script, "prerouting")[1:] == ['iifname vmap { "tap33333333-aa" : accept }',
                                               'iifname "tap*" counter drop']
    assert chain(script, "forward") == ["type filter hook forward priority filter; policy accept;",
                                        "ct state established,related accept"]


def test_remote_group_sets_hold_members_per_family() -> None:
    ports = [port(P1, "fa:16:3e:00:00:01", ["10.0.0.11"], [SG_A])]
    groups = [{"id": SG_A, "security_group_rules": [ingress(remote_group_id=SG_B),
                                                    ingress(ethertype="IPv6", remote_group_id=SG_B)]}]
    script = firewall.render(ports, groups, {SG_B: ["10.0.0.9", "fd00::9", "10.0.0.3", "10.0.0.9"]})
    assert f"set sg-{SG_B}-v4 {{ type ipv4_addr; flags interval; auto-merge; elements = {{ 10.0.0.3, 10.0.0.9 }} }}" \
        in script
    assert f"set sg-{SG_B}-v6 {{ type ipv6_addr; flags interval; auto-merge; elements = {{ fd00::9 }} }}" in script
    assert f"meta nfproto ipv6 ip6 saddr @sg-{SG_B}-v6 accept" in chain(script, f"ingress-{P1}")
    assert f"sg-{SG_A}-" not in script  # no set for a group no rule refers to
    empty = firewall.render(ports, groups, {})
    assert f"set sg-{SG_B}-v4 {{ type ipv4_addr; flags interval; auto-merge; }}" in empty


@pytest.mark.parametrize(("rule", "line"), [
    (ingress(protocol="icmp"), "meta nfproto ipv4 meta l4proto icmp accept"),
    (ingress(protocol="icmp", port_range_min=8), "meta nfproto ipv4 icmp type 8 accept"),
    (ingress(protocol="icmp", port_range_min=3, port_range_max=4), "meta nfproto ipv4 icmp type 3 icmp code 4 accept"),
    (ingress(ethertype="IPv6", protocol="icmp", port_range_min=128),
     "meta nfproto ipv6 icmpv6 type 128 accept"),
    (ingress(ethertype="IPv6", protocol="ipv6-icmp"), "meta nfproto ipv6 meta l4proto ipv6-icmp accept"),
    (ingress(protocol="tcp", port_range_min=1000, port_range_max=2000), "meta nfproto ipv4 tcp dport 1000-2000 accept"),
    (ingress(protocol="udp", port_range_min=53, port_range_max=53, remote_ip_prefix="0.0.0.0/0"),
     "meta nfproto ipv4 udp dport 53 accept"),
    (ingress(protocol="tcp"), "meta nfproto ipv4 meta l4proto tcp accept"),
    (ingress(protocol="6", port_range_min=80, port_range_max=80), "meta nfproto ipv4 tcp dport 80 accept"),
    (ingress(protocol="132"), "meta nfproto ipv4 meta l4proto sctp accept"),
    (ingress(protocol="47"), "meta nfproto ipv4 meta l4proto 47 accept"),
    (ingress(remote_ip_prefix="10.1.2.3/32"), "meta nfproto ipv4 ip saddr 10.1.2.3 accept"),
    (ingress(), "meta nfproto ipv4 accept"),
    ({"direction": "egress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 443, "port_range_max": 443,
      "remote_ip_prefix": "198.51.100.0/24"}, "meta nfproto ipv4 ip daddr 198.51.100.0/24 tcp dport 443 return"),
])
def test_rule_translation(rule: dict[str, Any], line: str) -> None:
    script = firewall.render([port(P1, "fa:16:3e:00:00:01", ["10.0.0.11"], [SG_A])],
                             [{"id": SG_A, "security_group_rules": [rule]}], {})
    assert line in chain(script, f"{rule['direction']}-{P1}")


def test_rule_of_the_other_family_never_matches() -> None:
    rule = ingress(remote_ip_prefix="fd00::/64")
    script = firewall.render([port(P1, "fa:16:3e:00:00:01", ["10.0.0.11"], [SG_A])],
                             [{"id": SG_A, "security_group_rules": [rule]}], {})
    assert "fd00::/64" not in script


def test_rendering_is_deterministic() -> None:
    ports = [port(P2, "fa:16:3e:00:00:02", ["10.0.0.12"], [SG_B, SG_A]),
             port(P1, "fa:16:3e:00:00:01", ["10.0.0.11"], [SG_A])]
    rules_a = [*EGRESS_ALL, ingress(remote_group_id=SG_A),
               ingress(protocol="tcp", port_range_min=22, port_range_max=22)]
    groups = [{"id": SG_A, "security_group_rules": rules_a},
              {"id": SG_B, "security_group_rules": [ingress(protocol="icmp")]}]
    members = {SG_A: ["10.0.0.12", "10.0.0.11"]}
    first = firewall.render(ports, groups, members)
    shuffled = firewall.render(list(reversed(ports)), [{"id": SG_B, "security_group_rules": [ingress(protocol="icmp")]},
                                                       {"id": SG_A, "security_group_rules": list(reversed(rules_a))}],
                               {SG_A: ["10.0.0.11", "10.0.0.12"]})
    assert first == firewall.render(ports, groups, members) == shuffled


def test_one_rule_change_touches_only_its_line() -> None:
    ports = [port(P1, "fa:16:3e:00:00:01", ["10.0.0.11"], [SG_A])]
    base = [*EGRESS_ALL, ingress(remote_group_id=SG_A)]
    before = firewall.render(ports, [{"id": SG_A, "security_group_rules": base}], {})
    after = firewall.render(ports, [{"id": SG_A, "security_group_rules": [*base, ingress(protocol="tcp")]}], {})
    added = set(after.splitlines()) - set(before.splitlines())
    assert added == {"    meta nfproto ipv4 meta l4proto tcp accept"}
    assert set(before.splitlines()) <= set(after.splitlines())


@pytest.mark.parametrize("script", [
    "flush ruleset",
    "table inet filter { }",
    "delete table ip nat",
    "add chain inet filter input",
    "table inet neutrino-sg {}\nflush table bridge filter",
    "add rule ip raw PREROUTING accept",
    "delete table filter",
    "table nat {\n}",
    "add rule filter INPUT accept",
    "flush set inet filter blocked",
    "table inet neutrino- {}",
])
def test_nft_guard_refuses_foreign_tables(script: str) -> None:
    with pytest.raises(NotOurs):
        nft.check_script(script)


# --- conntrack zones -----------------------------------------------------------------------------

NET1 = "a1a1a1a1-0000-4000-8000-000000000001"
NET2 = "b2b2b2b2-0000-4000-8000-000000000002"
NET3 = "c3c3c3c3-0000-4000-8000-000000000003"


def zoned_ports() -> list[dict[str, Any]]:
    return [port(P1, "fa:16:3e:00:00:01", ["10.0.0.5"], [SG_A], network_id=NET1),
            port(P2, "fa:16:3e:00:00:02", ["10.0.0.5"], [SG_A], network_id=NET2),
            port(P3, "fa:16:3e:00:00:03", ["10.0.0.6"], [], network_id=NET3, port_security_enabled=False)]


def test_zones_add_a_raw_prerouting_chain_before_conntrack() -> None:
    groups = [{"id": SG_A, "security_group_rules": EGRESS_ALL}]
    script = firewall.render(zoned_ports(), groups, {}, zones={NET1: 1, NET2: 7, NET3: 9})
    assert chain(script, "zones") == [
        "type filter hook prerouting priority raw; policy accept;",
        f'iifname "brqa1a1a1a1-00" ct zone set 1 comment "net:{NET1}"',
        f'iifname "brqb2b2b2b2-00" ct zone set 7 comment "net:{NET2}"',
    ]  # NET3 has no guarded port: its zone is not rendered
    assert script.index("chain zones {") < script.index("chain forward {")
    assert script.count("chain zones {") == 1 and "table inet neutrino-sg {\n" in script
    nft.check_script(script)
    # everything else is what it was without zones
    plain = firewall.render(zoned_ports(), groups, {})
    zone_block = script[script.index("  chain zones {"):script.index("  chain forward {")]
    assert script.replace(zone_block, "") == plain


def test_without_zones_the_script_is_unchanged() -> None:
    ports, groups = zoned_ports(), [{"id": SG_A, "security_group_rules": EGRESS_ALL}]
    plain = firewall.render(ports, groups, {})
    assert firewall.render(ports, groups, {}, None) == firewall.render(ports, groups, {}, zones={}) == plain
    assert "zone" not in plain and "prerouting priority raw" not in plain
    assert small() == firewall.render(*_small_args(), zones=None)


def _small_args() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, list[str]]]:
    ports = [port(P1, "FA:16:3E:00:00:01", ["10.0.0.11"], [SG_A]), port(P2, "fa:16:3e:00:00:02", ["10.0.0.12"], [SG_A])]
    rules = [*EGRESS_ALL, ingress(remote_group_id=SG_A),
             ingress(protocol="tcp", port_range_min=22, port_range_max=22, remote_ip_prefix="203.0.113.0/24")]
    return ports, [{"id": SG_A, "security_group_rules": rules}], {SG_A: ["10.0.0.12", "10.0.0.11"]}


@pytest.mark.parametrize(("zones", "message"), [
    ({NET1: 1}, "no conntrack zone for network"),                  # NET2 has a guarded port but no zone
    ({NET1: 3, NET2: 3}, "would share conntrack zone 3"),
    ({NET1: 1, NET2: 0}, "outside 1..65535"),
    ({NET1: 1, NET2: 65536}, "outside 1..65535"),
    ({NET1: 1, NET2: True}, "outside 1..65535"),
])
def test_zones_must_cover_every_guarded_network_once(zones: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        firewall.render(zoned_ports(), [], {}, zones=zones)


def test_zones_need_a_network_id_that_is_safe_to_quote() -> None:
    with pytest.raises(ValueError, match="cannot name a bridge"):
        firewall.render([port(P1, "fa:16:3e:00:00:01", ["10.0.0.5"], [], network_id=None)], [], {}, zones={NET1: 1})
    evil = 'x" accept; delete table inet neutrino-sg; "'
    with pytest.raises(ValueError, match="cannot name a bridge"):
        firewall.render([port(P1, "fa:16:3e:00:00:01", ["10.0.0.5"], [], network_id=evil)], [], {}, zones={evil: 1})


def test_guarded_network_ids_skip_ports_without_port_security() -> None:
    assert firewall.guarded_network_ids(zoned_ports()) == {NET1, NET2}


@pytest.mark.parametrize(("networks", "current", "expected"), [
    ([NET1, NET2], {}, {NET1: 1, NET2: 2}),                                    # fresh host: 1, 2, ... by id
    ([NET2, NET1], {NET1: 4, NET2: 9}, {NET1: 4, NET2: 9}),                    # keep: flows survive a restart
    ([NET1, NET2, NET3], {NET2: 1, NET3: 3}, {NET1: 2, NET2: 1, NET3: 3}),     # add: the lowest free zone
    ([NET1], {NET1: 2, NET2: 1}, {NET1: 2}),                                   # drop: NET2 left this host
    ([NET3], {NET1: 1, NET2: 2}, {NET3: 1}),                                   # zones of networks that left are free
    ([NET1, NET2], {NET1: 5, NET2: 5}, {NET1: 5, NET2: 1}),                    # a duplicate: the lower id keeps it
    ([NET1, NET2], {NET1: 0, NET2: 70000}, {NET1: 1, NET2: 2}),                # invalid zones are not kept
    ([], {NET1: 1}, {}),
])
def test_assign_zones(networks: list[str], current: dict[str, int], expected: dict[str, int]) -> None:
    assert firewall.assign_zones(networks, current) == expected
    assert firewall.assign_zones(reversed(networks), dict(reversed(list(current.items())))) == expected
    assert list(firewall.assign_zones(networks, current)) == sorted(expected)


def test_assign_zones_is_stable_as_networks_come_and_go() -> None:
    zones = firewall.assign_zones([NET1, NET2], {})
    zones = firewall.assign_zones([NET2, NET3], zones)    # NET1 leaves, NET3 takes its zone, NET2 keeps 2
    assert zones == {NET2: 2, NET3: 1}
    zones = firewall.assign_zones([NET1, NET2, NET3], zones)
    assert zones == {NET1: 3, NET2: 2, NET3: 1}


def test_assign_zones_runs_out_after_65535_networks() -> None:
    current = {f"net-{z}": z for z in range(1, 65536)}
    assert firewall.assign_zones(current, current) == current
    with pytest.raises(ValueError, match="no free conntrack zone"):
        firewall.assign_zones([*current, "one-more"], current)


def _zone_rule(chain_name: str, comment: str | None, iifname: str, zone: int) -> dict[str, Any]:
    """A rule as ``nft -j list table inet neutrino-sg`` (nftables 1.0.6) shows it."""
    rule: dict[str, Any] = {
        "family": "inet", "table": "neutrino-sg", "chain": chain_name, "handle": 4,
        "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": iifname}},
                 {"mangle": {"key": {"ct": {"key": "zone"}}, "value": zone}}]}
    if comment is not None:
        rule["comment"] = comment
    return {"rule": rule}


def test_read_zones_from_nft_json() -> None:
    objects: list[dict[str, Any]] = [
        {"table": {"family": "inet", "name": "neutrino-sg", "handle": 1}},
        {"chain": {"family": "inet", "table": "neutrino-sg", "name": "zones", "handle": 1, "type": "filter",
                   "hook": "prerouting", "prio": -300, "policy": "accept"}},
        _zone_rule("zones", f"net:{NET1}", "brqa1a1a1a1-00", 7),
        _zone_rule("zones", f"net:{NET2}", "brqb2b2b2b2-00", 65535),
        _zone_rule("zones", f"net:{NET1}", "brqa1a1a1a1-00", 8),       # a second rule for NET1: the first wins
        _zone_rule("zones", None, "brqc3c3c3c3-00", 3),                 # no comment: not ours to interpret
        _zone_rule("zones", f"net:{NET3}", "brqdeadbeef-00", 3),        # comment and bridge disagree
        _zone_rule("zones", f"net:{NET3}", "brqc3c3c3c3-00", 0),        # zone 0 is no zone
        _zone_rule("forward", f"net:{NET3}", "brqc3c3c3c3-00", 4),      # another chain
        {"rule": {"family": "inet", "table": "neutrino-sg", "chain": "forward", "handle": 9,
                  "expr": [{"accept": None}]}},
    ]
    assert firewall.read_zones(objects) == {NET1: 7, NET2: 65535}
    assert firewall.read_zones([]) == {}
    # read back, then assigned again: nothing moves
    assert firewall.assign_zones([NET1, NET2], firewall.read_zones(objects)) == {NET1: 7, NET2: 65535}


def test_read_zones_round_trips_what_render_wrote() -> None:
    """The rendered zone lines, turned into nft's JSON shape, read back to the same map."""
    zones = {NET1: 12, NET2: 3}
    script = firewall.render(zoned_ports(), [], {}, zones=zones)
    objects = []
    for line in chain(script, "zones")[1:]:
        found = re.fullmatch(r'iifname "(\S+)" ct zone set (\d+) comment "(\S+)"', line)
        assert found, line
        objects.append(_zone_rule("zones", found.group(3), found.group(1), int(found.group(2))))
    assert firewall.read_zones(objects) == zones


def test_a_bridge_per_port_gives_each_port_its_own_bridge_and_zone() -> None:
    """Open vSwitch hybrid plugging (``firewall.PER_PORT``): each guarded port is judged on its own
    ``qbr<port>`` and tracked in a zone of its own; the zone map is keyed by port and reads back."""
    ports, groups = zoned_ports(), [{"id": SG_A, "security_group_rules": EGRESS_ALL}]
    keys = firewall.zoned_network_ids(ports, firewall.PER_PORT)
    assert keys == {P1, P2}  # P3 has no port security: no zone
    zones = firewall.assign_zones(keys, {})
    script = firewall.render(ports, groups, {}, zones=zones, layout=firewall.PER_PORT)
    assert chain(script, "zones")[1:] == [f'iifname "qbr11111111-aa" ct zone set 1 comment "port:{P1}"',
                                          f'iifname "qbr22222222-aa" ct zone set 2 comment "port:{P2}"']
    assert (f'iifname . ether saddr vmap {{ "qbr11111111-aa" . fa:16:3e:00:00:01 : jump egress-{P1}, '
            f'"qbr22222222-aa" . fa:16:3e:00:00:02 : jump egress-{P2} }}') in chain(script, "forward")
    assert "brq" not in script
    nft.check_script(script)
    objects = [_zone_rule("zones", f"port:{P1}", "qbr11111111-aa", 1),
               _zone_rule("zones", f"net:{P2}", "qbr22222222-aa", 2),    # the other layout's comment
               _zone_rule("zones", "port:not-an-id", "qbrnot-an-id", 3)]  # no bridge can have that name
    assert firewall.read_zones(objects, firewall.PER_PORT) == {P1: 1}
    assert firewall.read_zones(objects) == {}


def test_a_port_id_that_cannot_name_its_bridge_is_closed_alone() -> None:
    """The bridge of a port comes from its id (from the database): one that cannot name a qbr
    leaves that port out of both tables (its tap is dropped), the other port is filtered."""
    hostile = "ZZZZZZZZ-aaaa-4bbb-8ccc-000000000009"  # passes the nft quoting check, not the name check
    ports = [port(P1, "fa:16:3e:00:00:01", ["10.0.0.5"], [SG_A]),
             port(hostile, "fa:16:3e:00:00:09", ["10.0.0.9"], [SG_A])]
    rendered = firewall.render_host(ports, [], {}, layout=firewall.PER_PORT)
    assert list(rendered.failed_ports) == [hostile]
    assert "cannot name hybrid-plug devices" in rendered.failed_ports[hostile]
    assert f"ingress-{P1}" in rendered.script and hostile not in rendered.script
    assert firewall.render_host(ports, [], {}).failed_ports == {}  # a bridge per network does not name it
