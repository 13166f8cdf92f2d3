"""Open vSwitch with the nftables firewall (``[agent] firewall_driver = nftables``): hybrid plugging,
each instance's tap on its own ``qbr`` joined to br-int by ``qvb``/``qvo``, filtered there.

The same traffic tests as the conntrack firewall (``test_ovs_firewall``) and the Linux-bridge
firewall, a representative subset of them to keep CI time small (about 50 s): groups through
the API, a revoked rule (one of its two cases), a broadcast frame carrying unicast, ARP
spoofing and an agent restart; plus what only hybrid plugging has (the devices, their
teardown, a port whose filter cannot be written). Left out as covered elsewhere: the stateless
group (its per-port render is unit-tested), groups across a tunnel (br-int onwards is the
conntrack variant's), IPv6, SNAT/floating IPs and the OVS-only restarts. Skipped with the reason
when Open vSwitch is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from neutrino.agent.l2.ovs import OvsDriver
from neutrino.kernel import linkdump, ovs
from neutrino.kernel.names import hybrid_names, tap_name
from tests.functional import test_cloud, test_firewall_bypass, test_firewall_revoke
from tests.functional import test_ovs_firewall as conntrack
from tests.functional.cloud import Cloud, cloud, ip_of, listener, tcp_ok, wait_for
from tests.functional.ovs_lab import why_no_ovs
from tests.functional.test_firewall_tenants import an_unfilterable_port_passes_nothing, group, two_instances
from tests.functional.traffic import ping

pytestmark = pytest.mark.skipif(why_no_ovs() is not None, reason=why_no_ovs() or "")


@pytest.fixture
def c(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    with cloud(tmp_path, ns_prefix, l2_driver="openvswitch", firewall_driver="nftables") as built:
        yield built


test_security_groups_through_the_api = test_cloud.test_security_groups_through_the_api
test_a_unicast_packet_in_a_broadcast_frame_meets_the_receivers_ingress_rules = \
    test_firewall_bypass.test_a_unicast_packet_in_a_broadcast_frame_meets_the_receivers_ingress_rules
test_agent_restart_converges_without_duplicates = test_cloud.test_agent_restart_converges_without_duplicates
test_a_spoofed_arp_never_reaches_a_neighbour = conntrack.test_a_spoofed_arp_never_reaches_a_neighbour


def test_a_revoked_rule_cuts_the_connection_it_admitted(c: Cloud) -> None:
    """One of the two cases (the rule deleted): the conntrack entry goes from the port's own zone."""
    test_firewall_revoke.test_a_revoked_rule_cuts_the_connection_it_admitted(c, "delete the rule")


def _switch(c: Cloud) -> ovs.OvsInstance:
    assert isinstance(c.agent.driver, OvsDriver)
    return c.agent.driver.switch


def _hybrid_links(c: Cloud) -> set[str]:
    return {link.name for link in linkdump.links(c.node_ns) if link.name.startswith(("qbr", "qvb", "qvo"))}


def test_each_instance_tap_sits_on_its_own_qbr_and_goes_with_it(c: Cloud) -> None:
    """tap -> qbr <- qvb ~ qvo -> br-int: qvo carries the network's tag and the port's
    external_ids, the tap is no OVS port; the network's DHCP port stays on br-int. TCP works
    (checksums through the userspace datapath). Deleting the instance removes its devices; so
    does a restart with the conntrack firewall, whose br-int then holds the tap itself."""
    net, _ = c.network("net1", "10.74.0.0/24")
    compute = c.compute()
    vm1, vm2 = compute.create("vm1", network="net1"), compute.create("vm2", network="net1")
    by_name = {link.name: link for link in linkdump.links(c.node_ns)}
    ports = {p.name: p for p in _switch(c).ports("br-int")}
    tags = set()
    for vm in (vm1, vm2):
        qbr, qvb, qvo = hybrid_names(vm.port_id)
        assert by_name[qbr].kind == "bridge" and by_name[qbr].up
        assert by_name[tap_name(vm.port_id)].master == qbr and by_name[qvb].master == qbr
        assert tap_name(vm.port_id) not in ports
        mac = c.admin.get(f"/v2.0/ports/{vm.port_id}")["port"]["mac_address"]
        assert ports[qvo].external_ids == {"iface-id": vm.port_id, "attached-mac": mac, "iface-status": "active"}
        tags.add(ports[qvo].tag)
    dhcp = c.admin.get("/v2.0/ports", network_id=net["id"], device_owner="network:dhcp")["ports"][0]
    assert tags == {ports[tap_name(dhcp["id"])].tag} and None not in tags
    with listener(vm2.namespace, 8081):  # the default group: members reach each other
        assert tcp_ok(vm1.namespace, ip_of(vm2), 8081)

    compute.delete("vm2")
    gone = set(hybrid_names(vm2.port_id))
    assert wait_for(lambda: not gone & _hybrid_links(c), timeout=10), _hybrid_links(c)
    assert not gone & {p.name for p in _switch(c).ports("br-int")}
    assert _hybrid_links(c) == set(hybrid_names(vm1.port_id))

    c.agent.stop()
    agent = type(c.agent)(replace(c.agent.cfg, firewall_driver=""), c.agent.rpc, c.agent.bus)
    agent.start()
    c.agent = agent
    c.settle()
    assert not _hybrid_links(c)
    assert tap_name(vm1.port_id) in {p.name for p in _switch(c).ports("br-int")}
    assert wait_for(lambda: ping(vm1.namespace, dhcp["fixed_ips"][0]["ip_address"], tries=1), timeout=10)


def test_a_port_whose_filter_cannot_be_written_passes_nothing(c: Cloud) -> None:
    """Fail closed on the qbr: a port whose rules cannot be written (a MAC that got past the API)
    is left out of the tables, so its tap passes nothing, ERROR and reported; it comes back when
    fixed, and the other port is not disturbed."""
    _, vm1, vm2, dhcp_ip = two_instances(c, "10.75.0.0/24")
    an_unfilterable_port_passes_nothing(c, vm1, vm2, dhcp_ip, "Open vSwitch agent")
    group(c, "unused")  # a group change re-renders the host: the fixed port stays open
    c.settle()
    assert ping(vm2.namespace, ip_of(vm1))
