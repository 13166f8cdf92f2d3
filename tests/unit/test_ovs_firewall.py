"""The OVS conntrack firewall renderer (agent/l2/ovs_firewall.py): semantics of the nft firewall
as br-int flows in Neutron's layout. No root: ``ovs-ofctl parse-flows`` is a plain parser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrino.agent.l2 import ovs_firewall as fw
from neutrino.agent.l2 import ovs_flows as of
from neutrino.agent.l2.ovs import OvsFirewall
from neutrino.agent.l2.ovs_flows import COOKIE, Flow
from neutrino.agent.retry import Retries
from tests.security.test_firewall_rules import DHCP, P1, P2, SG_A, SG_B, every_rule_the_api_accepts, ports

COOKIE_ = f"cookie={COOKIE:#x},"
PLACED = {P1: fw.Placement(5, 3), P2: fw.Placement(6, 3)}


def lines(flows: list[Flow]) -> list[str]:
    return [str(f)[len(COOKIE_):] for f in flows]


def parses(flows: list[Flow], tmp_path: Path) -> None:
    """ovs-ofctl takes every line (the same parser replace-flows uses)."""
    if shutil.which("ovs-ofctl") is None:
        pytest.skip("ovs-ofctl is not installed")
    path = tmp_path / "f.flows"
    path.write_text("".join(f"{f}\n" for f in flows))
    done = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "parse-flows", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def groups(rules_a: list[dict[str, Any]], stateful_b: bool = True) -> list[dict[str, Any]]:
    return [{"id": SG_A, "stateful": True, "security_group_rules": rules_a},
            {"id": SG_B, "stateful": stateful_b, "security_group_rules": []}]


def test_every_rule_the_api_accepts_compiles_and_ovs_ofctl_takes_it(tmp_path: Path) -> None:
    compiled = fw.compile_host(ports(), groups(every_rule_the_api_accepts()), {SG_B: ["10.0.0.12", "fd00::12"]})
    assert compiled.failed_ports == {} and compiled.trusted == {DHCP}
    # OVS cannot match the ports of udplite and dccp: those rules (only) are left out and named
    failed = {r["id"] for r in every_rule_the_api_accepts() if r["id"] in compiled.failed_rules}
    assert failed and all("cannot match the ports" in compiled.failed_rules[r] for r in failed)
    assert all(r.get("protocol") in ("udplite", "dccp") and r.get("port_range_min") is not None
               for r in every_rule_the_api_accepts() if r["id"] in failed)
    p1 = compiled.filters[P1]
    ingress = set(p1.ingress) | {f"{m},{side}={a}" for m, side, addrs in p1.ingress_groups for a in addrs}
    for match in ("ip,nw_proto=112",                         # vrrp
                  "ipv6,nw_proto=47",                        # gre
                  "ip,nw_proto=132,tp_dst=0x03e8/0xfff8",    # sctp 1000-2000, first block
                  "ip,nw_proto=6,tp_dst=22",                 # "6" with a port
                  "ipv6,nw_proto=58,icmpv6_type=3,icmpv6_code=1",
                  "ip,nw_proto=1,icmp_type=8",
                  "ip,nw_proto=112,nw_src=10.0.0.0/24",
                  "ip,nw_proto=50,nw_src=10.0.0.12",         # remote group: its member
                  "ip,nw_proto=255",
                  "ip"):                                     # protocol 0 / ip / hopopt: any
        assert match in ingress, match
    assert ("ipv6,nw_proto=51", "ipv6_dst", ("fd00::12",)) in p1.egress_groups
    parses(fw.render(compiled.filters, PLACED, [9]), tmp_path)


@settings(deadline=None, max_examples=60)  # sets of up to 65535 ports: slow on a busy machine
@given(st.integers(1, 65535), st.integers(1, 65535))
def test_port_masks_cover_exactly_the_range(a: int, b: int) -> None:
    first, last = min(a, b), max(a, b)
    covered = set()
    for value, mask in fw.port_masks(first, last):
        block = {p for p in range(value, value + (0xFFFF & ~mask) + 1)}
        assert all(p & mask == value for p in block) and not covered & block
        covered |= block
    assert covered == set(range(first, last + 1))


def test_layout_egress_ingress_and_revocation() -> None:
    rules = [{"id": "r1", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
              "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/24"}]
    compiled = fw.compile_host(ports(), groups(rules), {})
    flows = lines(fw.render(compiled.filters, {P1: PLACED[P1]}))
    assert "table=0,priority=100,in_port=5,actions=set_field:5->reg5,set_field:3->reg6,goto_table:71" in flows
    # anti-spoofing: its MAC with its addresses on to the shared tables, the rest dropped
    assert "table=71,priority=65,reg5=5,ip,dl_src=fa:16:3e:00:00:01,nw_src=10.0.0.11," \
           "actions=resubmit(,74)" in flows
    assert "table=71,priority=95,reg5=5,arp,dl_src=fa:16:3e:00:00:01,arp_sha=fa:16:3e:00:00:01," \
           "arp_spa=10.0.0.11,actions=resubmit(,73)" in flows
    assert "table=71,priority=0,actions=drop" in flows
    # the same for every port: no DHCP server, no RA; the rest into conntrack in the port's zone
    assert "table=74,priority=100,udp,tp_src=67,tp_dst=68,actions=drop" in flows
    assert "table=74,priority=100,icmp6,icmp_type=134,actions=drop" in flows
    assert "table=74,priority=1,ip,actions=ct(table=72,zone=NXM_NX_REG6[0..15])" in flows
    assert not [f for f in flows if f.startswith(("table=74,", "table=75,", "table=81,")) and "reg5=" in f]
    # to its MAC on its VLAN (from an access port, or tagged from a trunk): its ingress tables
    assert "table=60,priority=100,reg6=3,dl_dst=fa:16:3e:00:00:01,actions=set_field:5->reg5,resubmit(,81)" in flows
    assert "table=60,priority=100,dl_vlan=3,dl_dst=fa:16:3e:00:00:01," \
           "actions=pop_vlan,set_field:3->reg6,set_field:5->reg5,resubmit(,81)" in flows
    assert "table=60,priority=90,reg6=3,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00," \
           "actions=clone(set_field:5->reg5,resubmit(,81)),NORMAL" in flows
    assert "table=82,priority=70,reg5=5,ct_state=+new-est+trk,ip,nw_proto=6,tp_dst=22,nw_src=10.0.0.0/24," \
           "actions=ct(commit,zone=3),output:5" in flows
    # established: re-checked against the rules; none left -> marked revoked, and dropped from then on
    assert "table=82,priority=70,reg5=5,ct_state=-new+est-rel-rpl+trk,ip,nw_proto=6,tp_dst=22," \
           "nw_src=10.0.0.0/24,actions=output:5" in flows
    assert "table=82,priority=40,ct_state=-new+est-rel-rpl+trk,ip," \
           "actions=ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:0x1->ct_mark))" in flows
    assert "table=82,priority=90,ct_state=-new+est-rel+rpl+trk,actions=output:NXM_NX_REG5[]" in flows  # replies
    assert "table=82,priority=100,ct_state=+trk,ct_mark=0x1,actions=drop" in flows
    assert fw.flood_off(compiled.filters, {P1: PLACED[P1]}) == {5}


def test_without_the_rule_the_established_flow_has_no_way_through() -> None:
    rule = {"id": "r1", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
            "port_range_max": 22}
    before = set(lines(fw.render(fw.compile_host(ports(), groups([rule]), {}).filters, {P1: PLACED[P1]})))
    after = set(lines(fw.render(fw.compile_host(ports(), groups([]), {}).filters, {P1: PLACED[P1]})))
    gone = before - after
    assert gone == {"table=82,priority=70,reg5=5,ct_state=+new-est+trk,ip,nw_proto=6,tp_dst=22,"
                    "actions=ct(commit,zone=3),output:5",
                    "table=82,priority=70,reg5=5,ct_state=-new+est-rel-rpl+trk,ip,nw_proto=6,tp_dst=22,"
                    "actions=output:5"}
    assert after - before == set()


def test_a_stateless_group_never_enters_conntrack() -> None:
    rule = {"id": "r1", "direction": "ingress", "ethertype": "IPv4", "protocol": "icmp"}
    ps = ports()
    ps[0]["security_groups"] = [SG_A, SG_B]
    compiled = fw.compile_host(ps, groups([rule], stateful_b=False), {})
    assert compiled.filters[P1].stateful is False and compiled.filters[P2].stateful is False
    flows = lines(fw.render(compiled.filters, {P1: PLACED[P1]}))
    assert not [f for f in flows if "ct(" in f and "reg5=5" in f]
    assert "table=82,priority=70,reg5=5,ip,nw_proto=1,actions=output:5" in flows
    # past the shared conntrack flow, and without the state a stateful sender's egress left
    assert "table=81,priority=91,reg5=5,ip,actions=ct_clear,resubmit(,82)" in flows
    assert "table=71,priority=65,reg5=5,ip,dl_src=fa:16:3e:00:00:01,nw_src=10.0.0.11,actions=resubmit(,75)" in flows
    assert "table=75,priority=1,ip,actions=resubmit(,72)" in flows


def test_a_port_that_cannot_be_filtered_is_closed_and_the_others_unchanged() -> None:
    good = fw.compile_host(ports(), groups([]), {})
    hostile = ports()
    hostile[1]["mac_address"] = "fa:16:3e:00:00:02,actions=NORMAL"
    bad = fw.compile_host(hostile, groups([]), {})
    assert list(bad.failed_ports) == [P2] and P2 not in bad.filters
    assert bad.filters[P1] == good.filters[P1]
    flows = lines(fw.render(bad.filters, PLACED, closed_ofports=[6]))
    assert "table=0,priority=100,in_port=6,actions=drop" in flows
    assert not [f for f in flows if "reg5=6" in f or "->reg5" in f and ":6->" in f]
    assert fw.flood_off(bad.filters, PLACED) == {5}


def test_allowed_address_pairs_and_shared_macs() -> None:
    ps = ports()
    ps[0]["allowed_address_pairs"] = [{"ip_address": "10.0.0.0/28", "mac_address": "fa:16:3e:00:00:02"},
                                      {"ip_address": "fd00::99"}]
    compiled = fw.compile_host(ps, groups([]), {})
    p1 = compiled.filters[P1]
    assert p1.macs == ("fa:16:3e:00:00:01", "fa:16:3e:00:00:02")
    flows = lines(fw.render(compiled.filters, PLACED))
    assert "table=71,priority=65,reg5=5,ip,dl_src=fa:16:3e:00:00:02,nw_src=10.0.0.0/28," \
           "actions=resubmit(,74)" in flows
    # P2's own MAC is also P1's pair MAC: frames to it go to one port only (the lower port id)
    to_mac = [f for f in flows if f.startswith("table=60,priority=100,reg6=3,dl_dst=fa:16:3e:00:00:02")]
    assert to_mac == ["table=60,priority=100,reg6=3,dl_dst=fa:16:3e:00:00:02,actions=set_field:5->reg5,"
                      "resubmit(,81)"]
    # an NA may name only the port's own addresses
    assert p1.nd_targets is not None and "fd00::99" in p1.nd_targets and "fd00::11" in p1.nd_targets


@pytest.mark.parametrize("hostile", [
    {"protocol": "tcp,actions=NORMAL"}, {"protocol": "999"}, {"protocol": True},
    {"protocol": "tcp", "port_range_min": "22,actions=NORMAL"}, {"protocol": "tcp", "port_range_min": 70000},
    {"protocol": "tcp", "port_range_min": 30, "port_range_max": 20}, {"protocol": "icmp", "port_range_max": 3},
    {"protocol": "icmp", "port_range_min": 256}, {"remote_ip_prefix": "10.0.0.0/8,actions=NORMAL"},
    {"ethertype": "IPv4,actions=NORMAL"}, {"protocol": "gre", "port_range_min": 1},
    {"direction": "sideways"},
])
def test_a_hostile_rule_costs_only_itself(hostile: dict[str, Any], tmp_path: Path) -> None:
    ok = {"id": "ok", "direction": "ingress", "ethertype": "IPv4", "protocol": "icmp"}
    bad = {"id": "bad", "direction": "ingress", "ethertype": "IPv4", **hostile}
    compiled = fw.compile_host(ports(), groups([ok, bad]), {})
    assert list(compiled.failed_rules) == ["bad"] and compiled.failed_ports == {}
    assert compiled.filters == fw.compile_host(ports(), groups([ok]), {}).filters
    parses(fw.render(compiled.filters, PLACED), tmp_path)


def test_the_hook_closes_and_reports_a_port_until_it_is_fixed() -> None:
    """OvsFirewall: a port that cannot be filtered is closed and reported under ``port:<id>``,
    a rule that cannot be written under ``rule:<id>``; a fix reopens at the next pass; a port
    whose flows ovs-ofctl refused stays closed until its back-off ends and its flows are in."""
    now = [0.0]
    retries = Retries(clock=lambda: now[0])
    hook = OvsFirewall(retries)
    ps = ports()
    bad_rule = {"id": "bad", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp;drop"}
    state = {"ports": ps, "security_groups": groups([bad_rule]), "members": {}}
    ps[1]["mac_address"] = "fa:16:3e:00:00:02 accept"
    hook.apply(state, verify=True)
    assert hook.closed == {P2} and set(hook.compiled.filters) == {P1}
    assert set(retries.failures()) == {f"port:{P2}", "rule:bad"}
    ps[1]["mac_address"] = "fa:16:3e:00:00:02"
    hook.apply(state, verify=False)
    assert hook.closed == set() and set(retries.failures()) == {"rule:bad"}
    hook.refuse(P1, "ovs-ofctl refused its flows")
    assert P1 in hook.closed and f"port:{P1}" in retries.failures()
    hook.apply(state, verify=False)  # backing off: still closed, still reported
    assert P1 in hook.closed and f"port:{P1}" in retries.failures()
    now[0] += 5
    hook.apply(state, verify=False)  # due again: placed, but reported until its flows are in
    assert P1 not in hook.closed and f"port:{P1}" in retries.failures()
    hook.accepted([P1])
    assert set(retries.failures()) == {"rule:bad"}


def test_with_br_ints_other_flows_no_two_flows_compete() -> None:
    """The firewall's flows join ovs_flows' in one br-int table set: no two share table, priority
    and match with different actions (which one OVS kept would be chance)."""
    compiled = fw.compile_host(ports(), groups(every_rule_the_api_accepts()), {SG_B: ["10.0.0.12"]})
    local = (of.LocalPort(5, "fa:16:3e:00:00:01"), of.LocalPort(6, "fa:16:3e:00:00:02"),
             of.LocalPort(7, "fa:16:3e:00:00:03"), of.LocalPort(8, "fa:16:3e:00:00:09"))
    net = of.NetworkState("net", of.Segment("vxlan", None, 100), 3, local, {"172.30.0.2": frozenset()})
    state = of.HostState((net,), patch_int_ofport=1, tunnel_ofports={"vxlan": {"172.30.0.2": 2}})
    extra = fw.render(compiled.filters, PLACED, closed_ofports=[8])
    flows = of.render(state, extra={"br-int": extra}).flows["br-int"]
    seen: dict[tuple[int, int, str], str] = {}
    for flow in flows:
        assert seen.setdefault((flow.table, flow.priority, flow.match), flow.actions) == flow.actions, flow
    assert set(extra) <= set(flows)
    # a guarded port leaves table 0 for the firewall, above ovs_flows' own flow for it
    zero = {f.match: f for f in flows if f.table == 0 and f.priority == 100}
    assert zero["in_port=5"].actions.endswith("goto_table:71") and zero["in_port=8"].actions == "drop"


def test_remote_groups_are_conjunctions_of_ports_and_members(tmp_path: Path) -> None:
    """Flows grow with ports + members: clause 1 per port, clause 2 per member, one accepting flow."""
    rule = {"id": "r", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "remote_group_id": SG_B}
    members = [f"10.0.1.{i}" for i in range(1, 51)]
    ps = ports()
    ps[1]["security_groups"] = [SG_A]
    compiled = fw.compile_host(ps, groups([rule]), {SG_B: members})
    flows = lines(fw.render(compiled.filters, PLACED))
    assert "table=82,priority=71,reg5=5,ct_state=+new-est+trk,ip,nw_proto=6,actions=conjunction(1,1/2)" in flows
    assert "table=82,priority=71,reg5=6,ct_state=+new-est+trk,ip,nw_proto=6,actions=conjunction(1,1/2)" in flows
    assert "table=82,priority=71,ip,nw_src=10.0.1.7,actions=conjunction(1,2/2),conjunction(2,2/2)" in flows
    assert "table=82,priority=71,conj_id=1,ip,actions=ct(commit,zone=NXM_NX_REG6[0..15]),output:NXM_NX_REG5[]" \
        in flows
    assert "table=82,priority=71,conj_id=2,ip,actions=output:NXM_NX_REG5[]" in flows  # established
    assert len([f for f in flows if "conj" in f]) == 2 * 2 + 50 + 2
    parses(fw.render(compiled.filters, PLACED), tmp_path)


def test_a_guarded_port_costs_its_own_flows_only() -> None:
    """What every guarded port shares (DHCP and ICMPv6 allowances, replies, revocation) is
    written once: a port of the default group (egress anywhere, ingress from the group itself)
    costs 17 flows, not the 54 it cost when each port had its own copy; each OpenFlow message
    costs ovs-vswitchd a turn of its main loop, which polls every port."""
    rules = [{"id": "e4", "direction": "egress", "ethertype": "IPv4"},
             {"id": "e6", "direction": "egress", "ethertype": "IPv6"},
             {"id": "i4", "direction": "ingress", "ethertype": "IPv4", "remote_group_id": SG_A},
             {"id": "i6", "direction": "ingress", "ethertype": "IPv6", "remote_group_id": SG_A}]

    def count(n: int) -> int:
        ps = [{"id": f"p{i:04d}", "mac_address": f"fa:16:3e:00:{i // 256:02x}:{i % 256:02x}",
               "fixed_ips": [{"ip_address": f"10.1.{i // 250}.{i % 250 + 2}"}], "security_groups": [SG_A],
               "device_owner": "compute:nova"} for i in range(n)]
        members = {SG_A: [p["fixed_ips"][0]["ip_address"] for p in ps]}
        compiled = fw.compile_host(ps, [{"id": SG_A, "stateful": True, "security_group_rules": rules}], members)
        return len(fw.render(compiled.filters, {p["id"]: fw.Placement(10 + i, 3) for i, p in enumerate(ps)}))

    assert count(200) - count(100) <= 100 * 18
