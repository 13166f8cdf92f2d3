"""The OVS conntrack firewall (``[agent] l2_driver = openvswitch``) by the same real traffic as
the nftables firewall: the Linux-bridge tests' own functions, run here on an OVS cloud.

Skipped with the reason when Open vSwitch is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.l2 import ovs_flows
from neutrino.agent.l2.ovs import OvsDriver
from neutrino.kernel import ovs
from neutrino.services.security_groups import new_rule
from tests.functional import test_cloud, test_firewall_bypass, test_firewall_revoke, test_firewall_tenants
from tests.functional.cloud import PROJECT, Cloud, cloud, ip_of, listener, run_in, tcp_ok, wait_for
from tests.functional.ovs_lab import why_no_ovs
from tests.functional.test_firewall_tenants import agent_failures, group, port_status, rule
from tests.functional.traffic import ping

pytestmark = pytest.mark.skipif(why_no_ovs() is not None, reason=why_no_ovs() or "")


@pytest.fixture
def c(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    with cloud(tmp_path, ns_prefix, l2_driver="openvswitch") as built:
        yield built


@pytest.fixture
def two(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    """A cloud whose host A has an underlay, so that host B can join over a tunnel."""
    with cloud(tmp_path, ns_prefix, underlay_ip="172.30.0.11", l2_driver="openvswitch") as built:
        yield built


def test_groups_hold_across_a_tunnel(two: Cloud) -> None:
    """Frames from br-tun arrive tagged: the ingress tables see them after pop_vlan, replies and
    DHCP included; another group's instance on the other host stays out."""
    host_b = two.add_host("host-b", "172.30.0.12")
    two.network("net1", "10.79.0.0/24")
    group(two, "other")
    vm_a = two.compute().create("vm-a", network="net1")
    vm_b = two.compute(agent=host_b).create("vm-b", network="net1")
    outsider = two.compute(agent=host_b).create("outsider", network="net1", security_groups=["other"])
    assert ping(vm_a.namespace, ip_of(vm_b)) and ping(vm_b.namespace, ip_of(vm_a))
    with listener(vm_a.namespace, 8082):
        assert tcp_ok(vm_b.namespace, ip_of(vm_a), 8082)
        assert not tcp_ok(outsider.namespace, ip_of(vm_a), 8082)
    assert not ping(outsider.namespace, ip_of(vm_a), tries=1)


test_security_groups_through_the_api = test_cloud.test_security_groups_through_the_api
test_a_revoked_rule_cuts_the_connection_it_admitted = \
    test_firewall_revoke.test_a_revoked_rule_cuts_the_connection_it_admitted
test_a_unicast_packet_in_a_broadcast_frame_meets_the_receivers_ingress_rules = \
    test_firewall_bypass.test_a_unicast_packet_in_a_broadcast_frame_meets_the_receivers_ingress_rules
test_a_stateless_group_passes_a_reply_only_where_a_rule_allows_it = \
    test_firewall_tenants.test_a_stateless_group_passes_a_reply_only_where_a_rule_allows_it


def _switch(c: Cloud) -> ovs.OvsInstance:
    assert isinstance(c.agent.driver, OvsDriver)
    return c.agent.driver.switch


def _tag(c: Cloud, port_id: str) -> int | None:
    return next(p.tag for p in _switch(c).ports("br-int") if p.external_ids.get("iface-id") == port_id)


def test_a_hostile_value_hurts_only_its_own_port_or_rule(c: Cloud) -> None:
    """A port whose filter cannot be written (a MAC past the API) goes back to the dead VLAN,
    ERROR and reported, passes nothing, and comes back when fixed; a rule that cannot be
    written is left out and reported; the other port and rules are not disturbed."""
    net, _ = c.network("net1", "10.77.0.0/24")
    probe = group(c, "probe")  # egress anywhere; in: echo, and a rule written past the API
    rule(c, probe["id"], protocol="icmp")
    bad = new_rule(project_id=PROJECT, security_group_id=probe["id"], direction="ingress", ethertype="IPv4",
                   protocol="tcp,actions=NORMAL", remote_ip_prefix=None)
    c.srv.db.transaction(lambda s: s.add(bad))
    compute = c.compute()
    vm1 = compute.create("vm1", network="net1", security_groups=["probe"])
    vm2 = compute.create("vm2", network="net1")
    dhcp = c.admin.get("/v2.0/ports", network_id=net["id"], device_owner="network:dhcp")["ports"][0]
    dhcp_ip = dhcp["fixed_ips"][0]["ip_address"]
    assert ping(vm2.namespace, ip_of(vm1)) and ping(vm2.namespace, dhcp_ip)
    with listener(vm1.namespace, 22):
        assert not tcp_ok(vm2.namespace, ip_of(vm1), 22), "the hostile rule opened nothing"
    assert list(agent_failures(c, "Open vSwitch agent")) == [f"rule:{bad.id}"]
    vlan = _tag(c, vm2.port_id)
    assert vlan is not None and vlan != ovs_flows.DEAD_VLAN

    real_mac = c.admin.get(f"/v2.0/ports/{vm2.port_id}")["port"]["mac_address"]

    c.set_port_mac(vm2.port_id, "fa:16:3e:00:00:01,actions=NORMAL")
    c.agent.settle()
    assert wait_for(lambda: port_status(c, vm2.port_id) == "ERROR", timeout=10)
    assert f"port:{vm2.port_id}" in agent_failures(c, "Open vSwitch agent")
    assert _tag(c, vm2.port_id) == ovs_flows.DEAD_VLAN
    assert not ping(vm2.namespace, dhcp_ip, tries=2), "its filter is not in place: it passes nothing"
    assert not ping(vm2.namespace, ip_of(vm1), tries=1)
    assert ping(vm1.namespace, dhcp_ip), "the other port on the same network is not disturbed"
    c.set_port_mac(vm2.port_id, real_mac)
    c.agent.settle()
    assert wait_for(lambda: port_status(c, vm2.port_id) == "ACTIVE", timeout=10)
    assert wait_for(lambda: ping(vm2.namespace, ip_of(vm1), tries=1), timeout=10)
    assert _tag(c, vm2.port_id) == vlan


def test_a_restarted_ovs_vswitchd_gets_filters_and_no_flood_back(c: Cloud) -> None:
    """ovs-vswitchd forgets flows and port settings: both come back, and guarded ports stay filtered."""
    c.network("net1", "10.78.0.0/24")
    group(c, "closed")  # egress anywhere, no ingress
    open_ = group(c, "open")
    rule(c, open_["id"])  # any IPv4 in
    compute = c.compute()
    vm1 = compute.create("vm1", network="net1", security_groups=["open"])
    victim = compute.create("victim", network="net1", security_groups=["closed"])
    assert not ping(vm1.namespace, ip_of(victim), tries=1)
    assert ping(victim.namespace, ip_of(vm1))
    guarded = {p.ofport for p in _switch(c).ports("br-int") if p.external_ids.get("iface-id") in
               (vm1.port_id, victim.port_id)}
    assert _switch(c).no_flood("br-int") == guarded
    _switch(c).restart_vswitchd()
    assert wait_for(lambda: ping(victim.namespace, ip_of(vm1), tries=1), timeout=10)
    assert _switch(c).no_flood("br-int") == guarded
    assert not ping(vm1.namespace, ip_of(victim), tries=1)
    done = run_in(vm1.namespace, "ip", "neigh", "replace", ip_of(victim), "lladdr", "ff:ff:ff:ff:ff:ff",
                  "dev", "eth0", "nud", "permanent")
    assert done.returncode == 0, done.stderr
    assert not ping(vm1.namespace, ip_of(victim), tries=2), "a broadcast copy bypassed the ingress rules"


test_ipv6_rules_are_enforced_by_ipv6_traffic = test_firewall_tenants.test_ipv6_rules_are_enforced_by_ipv6_traffic
test_snat_and_floating_ip_to_an_external_host = test_cloud.test_snat_and_floating_ip_to_an_external_host
test_agent_restart_converges_without_duplicates = test_cloud.test_agent_restart_converges_without_duplicates


def _claims(c: Cloud, attacker: Any, victim: Any, address: str) -> bool:
    """The attacker announces ``address`` as its own (gratuitous ARP): does the victim believe it?"""
    mac = c.admin.get(f"/v2.0/ports/{attacker.port_id}")["port"]["mac_address"]
    run_in(victim.namespace, "ip", "neigh", "flush", "dev", "eth0")
    run_in(attacker.namespace, "busybox", "arping", "-U", "-c", "2", "-I", "eth0", "-s", address, address)
    return mac in run_in(victim.namespace, "ip", "neigh", "show", address).stdout


def test_a_spoofed_arp_never_reaches_a_neighbour(c: Cloud) -> None:
    """ARP anti-spoofing: an instance announcing an address that is not its own reaches nobody;
    with port security off on its port (the control), the same announcement is believed."""
    c.network("net1", "10.76.0.0/24")
    compute = c.compute()
    attacker, victim = compute.create("attacker", network="net1"), compute.create("victim", network="net1")
    assert run_in(victim.namespace, "sysctl", "-qw", "net.ipv4.conf.all.arp_accept=1").returncode == 0
    assert run_in(attacker.namespace, "ip", "addr", "add", "10.76.0.200/24", "dev", "eth0").returncode == 0
    assert not _claims(c, attacker, victim, "10.76.0.200")
    c.client().put(f"/v2.0/ports/{attacker.port_id}", {"port": {"security_groups": [],
                                                                 "port_security_enabled": False}})
    c.settle()
    assert wait_for(lambda: _claims(c, attacker, victim, "10.76.0.200"), timeout=10), "the control did not work"


def test_broadcasts_reach_every_guarded_port_when_their_copies_span_several_flows(
        c: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copies of a broadcast to a VLAN's guarded ports go FAN_OUT_CHUNK a flow (1 000 in one
    action list exceed an OpenFlow message); with one copy a flow, three instances still get
    their DHCP leases and hear each other's ARP."""
    from neutrino.agent.l2 import ovs_firewall

    monkeypatch.setattr(ovs_firewall, "FAN_OUT_CHUNK", 1)
    c.network("net1", "10.77.0.0/24")
    compute = c.compute()
    vms = [compute.create(f"vm{i}", network="net1") for i in range(3)]  # each a DHCP lease: a broadcast
    driver = c.agent.driver
    assert isinstance(driver, OvsDriver)
    fan = driver.switch.dump_flows("br-int", f"table={ovs_firewall.FAN_OUT}")
    assert len(fan) >= 2, fan
    for a in vms:
        for b in vms:
            if a is not b:
                assert ping(a.namespace, ip_of(b)), f"{a.name} -> {b.name}"
