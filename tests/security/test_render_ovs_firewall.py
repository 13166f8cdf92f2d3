"""The OVS conntrack firewall renderer against hostile values (issue 8, DESIGN "Trust boundaries").

Ports and rules carry what a tenant could set, or what got past the API into the database:
injections into MACs, addresses, protocols, port ranges, prefixes, ethertypes and group ids.
Whatever they hold, the rendered flows are lines ``ovs-ofctl`` parses (the parser replace-flows
uses), a value that cannot be rendered costs only its own port (closed) or rule (left out),
and every other port's filter is exactly what it would be without it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neutrino.agent.l2 import ovs_firewall as fw
from neutrino.agent.l2.ovs_flows import Flow
from tests.security.render_support import hostile

P1, P2, BAD = "11111111-aaaa-4bbb-8ccc-000000000001", "22222222-aaaa-4bbb-8ccc-000000000002", "b0b0b0b0-x"
SG_A, SG_B = "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b"
NET = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
PLACED = {P1: fw.Placement(5, 3), P2: fw.Placement(6, 3), BAD: fw.Placement(7, 3)}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

pytestmark = pytest.mark.skipif(shutil.which("ovs-ofctl") is None, reason="ovs-ofctl is not installed")


def port(pid: str, mac: Any, ips: list[Any], groups: list[Any], pairs: list[Any] | None = None) -> dict[str, Any]:
    return {"id": pid, "network_id": NET, "mac_address": mac, "fixed_ips": [{"ip_address": ip} for ip in ips],
            "allowed_address_pairs": pairs or [], "port_security_enabled": True, "security_groups": groups,
            "device_owner": "compute:nova"}


GOOD_RULES = [
    {"id": "ok-1", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
     "port_range_max": 80, "remote_ip_prefix": "10.0.0.0/24"},
    {"id": "ok-2", "direction": "ingress", "ethertype": "IPv6", "protocol": "icmp", "port_range_min": 128},
    {"id": "ok-3", "direction": "egress", "ethertype": "IPv4", "remote_group_id": SG_B},
]
VALUE = st.one_of(st.none(), st.integers(-5, 70000), st.booleans(), hostile("22", "6", "tcp", "icmp", "10.0.0.0/8"))
HOSTILE_RULE = st.fixed_dictionaries({
    "id": st.just("bad-rule"),
    "direction": st.one_of(st.sampled_from(["ingress", "egress"]), hostile("ingress")),
    "ethertype": st.one_of(st.sampled_from(["IPv4", "IPv6"]), hostile("IPv4", "IPv6")),
    "protocol": st.one_of(st.sampled_from(["tcp", "udp", "icmp", "ipv6-icmp", "gre", "132", "0", "255"]), VALUE),
    "port_range_min": VALUE, "port_range_max": VALUE,
    "remote_ip_prefix": st.one_of(st.none(), hostile("10.0.0.0/8", "fd00::/64", "0.0.0.0/0")),
    "remote_group_id": st.one_of(st.none(), st.just(SG_B), hostile(SG_B)),
})
HOSTILE_PORT = st.builds(
    lambda mac, ip, pair_ip, pair_mac: port(BAD, mac, [ip], [SG_A], [{"ip_address": pair_ip, "mac_address": pair_mac}]),
    st.one_of(st.just("fa:16:3e:00:00:07"), hostile("fa:16:3e:00:00:07")),
    st.one_of(st.just("10.0.0.17"), hostile("10.0.0.17", "fd00::17")),
    st.one_of(st.just("10.0.0.64/28"), hostile("10.0.0.64/28", "fd00::/64")),
    st.one_of(st.none(), st.just("fa:16:3e:00:00:08"), hostile("fa:16:3e:00:00:08")),
)
MEMBERS = st.lists(st.one_of(st.sampled_from(["10.0.0.12", "fd00::12"]), hostile("10.0.0.12")), max_size=3)


def ovs_ofctl_parses(flows: list[Flow]) -> None:
    text = "".join(f"{f}\n" for f in flows)
    assert text.count("\n") == len(flows), "a value broke a line"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.flows"
        path.write_text(text)
        done = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "parse-flows", str(path)], capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def base_ports() -> list[dict[str, Any]]:
    return [port(P1, "fa:16:3e:00:00:01", ["10.0.0.11", "fd00::11"], [SG_A]),
            port(P2, "fa:16:3e:00:00:02", ["10.0.0.12"], [SG_B])]


@SETTINGS
@given(bad_port=HOSTILE_PORT, bad_rule=HOSTILE_RULE, members=MEMBERS)
def test_hostile_values_render_valid_flows_and_cost_only_themselves(bad_port: dict[str, Any],
                                                                   bad_rule: dict[str, Any],
                                                                   members: list[str]) -> None:
    groups = [{"id": SG_A, "stateful": True, "security_group_rules": [*GOOD_RULES, bad_rule]},
              {"id": SG_B, "stateful": False, "security_group_rules": []}]
    clean_groups = [{**groups[0], "security_group_rules": GOOD_RULES}, groups[1]]
    compiled = fw.compile_host([*base_ports(), bad_port], groups, {SG_B: members})
    clean = fw.compile_host(base_ports(), clean_groups, {SG_B: members})
    assert set(compiled.failed_rules) <= {"bad-rule"} and set(compiled.failed_ports) <= {BAD}
    if "bad-rule" in compiled.failed_rules:  # left out: P1 filtered exactly as without it
        assert compiled.filters[P1] == clean.filters[P1]
    assert compiled.filters[P2] == clean.filters[P2]  # not in the group: never touched
    dead = [PLACED[BAD].ofport] if BAD in compiled.failed_ports else []
    flows = fw.render(compiled.filters, PLACED, dead)
    ovs_ofctl_parses(flows)
    if BAD in compiled.failed_ports:  # closed: every frame it sends is dropped, nothing is delivered to it
        assert "table=0,priority=100,in_port=7,actions=drop" in "\n".join(str(f) for f in flows)
        assert not [f for f in flows if "reg5=7" in f.match or "output:7" in f.actions]
        assert fw.flood_off(compiled.filters, PLACED) == {5, 6}


@SETTINGS
@given(rule=HOSTILE_RULE)
def test_a_rule_renders_to_valid_matches_or_is_refused(rule: dict[str, Any]) -> None:
    try:
        matches = fw.rule_matches(rule, {SG_B: ["10.0.0.12", "fd00::12"]})
    except (fw.Unrealisable, ValueError, TypeError):
        return
    flows = [Flow(82, 70, f"reg5=5,{m}", "output:5") for m in matches]
    if flows:
        ovs_ofctl_parses(flows)


def test_a_vlan_with_a_thousand_guarded_ports_still_renders_flows_openflow_can_carry() -> None:
    """A broadcast is copied to each guarded port of its VLAN: 1 000 copies in one action list
    do not fit in an OpenFlow message (64 KB), so they go 64 a flow, chained through FAN_OUT."""
    ports = [port(f"p{i:04d}", f"fa:16:3e:00:{i // 256:02x}:{i % 256:02x}", [f"10.1.{i // 250}.{i % 250 + 2}"],
                  [SG_A]) for i in range(1000)]
    placed = {p["id"]: fw.Placement(ofport=10 + i, vlan=3) for i, p in enumerate(ports)}
    compiled = fw.compile_host(ports, [{"id": SG_A, "stateful": True, "security_group_rules": GOOD_RULES[:2]}], {})
    flows = fw.render(compiled.filters, placed)
    fan = [f for f in flows if "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00" in f.match]
    assert len(fan) == 2 * 16 and max(len(f.actions) for f in flows) < 8000
    copies = sorted(int(a.split("->")[0].rsplit(":", 1)[1]) for f in fan if "dl_vlan" not in f.match
                    for a in f.actions.split("clone(")[1:])
    assert copies == list(range(10, 1010))  # every port exactly once
    ovs_ofctl_parses(flows)
