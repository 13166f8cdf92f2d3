"""Two simulated hosts, each with its own Open vSwitch, wired as Neutron's openvswitch agent does.

Host = namespace with its own ovsdb-server/ovs-vswitchd (kernel/ovs.py) and the bridges br-phy
(underlay address on its internal port), br-int, br-tun (vxlan, gre and geneve ports to the
other host) and br-physnet1 (on a trunk shared through the fabric namespace). Instances are
namespaces with a veth into br-int. Every flow comes from agent/l2/ovs_flows.py; everything
is proven by real traffic (ping and a TCP exchange, which the checksum trap breaks).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from neutrino.agent.l2 import ovs_flows as of
from neutrino.agent.l2.ovs_flows import HostState, LocalPort, NetworkState, PhysicalBridge, Segment
from neutrino.kernel import links, netns, ovs
from neutrino.kernel.names import (
    OVS_PATCH_INT,
    OVS_PATCH_TUN,
    OVS_TUNNEL_TYPES,
    ovs_int_patch,
    ovs_phys_patch,
    ovs_physical_bridge,
    ovs_tunnel_port,
    tap_name,
)
from tests.functional.cloud import listener, tcp_ok
from tests.functional.ovs_lab import instances, requires_ovs, run_dirs
from tests.functional.traffic import ping

pytestmark = requires_ovs

UNDERLAY = ("172.31.252.1", "172.31.252.2")
PHYSNET = "physnet1"
BR_PHYS = ovs_physical_bridge(PHYSNET)
INT_PHYS, PHY_PHYS = ovs_int_patch(BR_PHYS), ovs_phys_patch(BR_PHYS)
MTU = 1400


@dataclass(frozen=True)
class Net:
    key: str
    id: str
    segment: Segment
    subnet: str  # first three octets


NETS = (
    Net("vx", "a1000000-0000-4000-8000-000000000001", Segment("vxlan", None, 1001), "10.71.1"),
    Net("gr", "a1000000-0000-4000-8000-000000000002", Segment("gre", None, 1002), "10.71.2"),
    Net("gn", "a1000000-0000-4000-8000-000000000003", Segment("geneve", None, 1003), "10.71.3"),
    Net("vl", "a1000000-0000-4000-8000-000000000004", Segment("vlan", PHYSNET, 101), "10.71.4"),
    Net("fl", "a1000000-0000-4000-8000-000000000005", Segment("flat", PHYSNET), "10.71.5"),
    # the twin of "vx": another VXLAN network with the very same addresses
    Net("tw", "a1000000-0000-4000-8000-000000000006", Segment("vxlan", None, 1006), "10.71.1"),
    Net("lo", "a1000000-0000-4000-8000-000000000007", Segment("local"), "10.71.7"),
)
BY_KEY = {n.key: n for n in NETS}


@dataclass(frozen=True)
class Vm:
    ns: str
    host: int
    net: Net
    ip: str
    mac: str
    port_id: str

    @property
    def tap(self) -> str:
        return tap_name(self.port_id)


def plan(prefix: str) -> list[Vm]:
    """One instance per network on each host; the local network gets two on host 0."""
    vms = []
    for n, net in enumerate(NETS, start=1):
        hosts = (0, 0, 1) if net.key == "lo" else (0, 1)
        for v, host in enumerate(hosts, start=1):
            port_id = f"{n:02x}{v:02x}cafe-0000-4000-8000-{n:06x}{v:06x}"
            vms.append(Vm(f"{prefix}{net.key}-{v}", host, net, f"{net.subnet}.{v}", f"fa:16:3e:71:{n:02x}:{v:02x}",
                          port_id))
    return vms


class Lab:
    def __init__(self, prefix: str, base: str) -> None:
        self.fabric = prefix + "fabric"
        self.hosts = (prefix + "h1", prefix + "h2")
        self.ovs = (ovs.OvsInstance(self.hosts[0], f"{base}/h1"), ovs.OvsInstance(self.hosts[1], f"{base}/h2"))
        self.vms = plan(prefix)
        ids = [n.id for n in NETS]
        # host 2 already had tags for two networks (as read back after an agent restart):
        # the same network has different local VLANs on the two hosts, as in real clouds
        self.local_vlans = (of.assign_local_vlans(ids, {}),
                            of.assign_local_vlans(ids, {BY_KEY["vx"].id: 40, BY_KEY["vl"].id: 41}))

    def vm(self, key: str, host: int, nth: int = 0) -> Vm:
        return [v for v in self.vms if v.net.key == key and v.host == host][nth]

    def build(self, offloading: Vm) -> None:
        netns.ensure_namespace(self.fabric)
        netns.set_sysctls(self.fabric, {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1})
        for bridge in ("ul", "trunk"):
            links.ensure_bridge(self.fabric, bridge)
            links.set_up(self.fabric, bridge)
        for i, host in enumerate(self.hosts):
            netns.ensure_namespace(host)
            self.ovs[i].start()  # IPv6 off in the host before any of its links exist
            for bridge, fabric_end, host_end in (("ul", f"ul-h{i + 1}", "ul0"), ("trunk", f"tr-h{i + 1}", "eth1")):
                links.ensure_veth(self.fabric, fabric_end, host, host_end)
                links.set_master(self.fabric, fabric_end, bridge)
                links.set_up(self.fabric, fabric_end)
                links.set_up(host, host_end)
        for vm in self.vms:
            netns.ensure_namespace(vm.ns)
            netns.set_sysctl(vm.ns, "net.ipv6.conf.all.disable_ipv6", 1)
            links.ensure_veth(self.hosts[vm.host], vm.tap, vm.ns, "eth0", mac_b=vm.mac, mtu=MTU)
            links.add_address(vm.ns, "eth0", f"{vm.ip}/24")
            links.set_up(vm.ns, "eth0")
            links.set_up(self.hosts[vm.host], vm.tap)
            if vm != offloading:
                links.disable_tx_checksum(vm.ns, "eth0")
        for i, host in enumerate(self.hosts):
            self.wire(i, host)

    def wire(self, i: int, host: str) -> None:
        sw, other = self.ovs[i], UNDERLAY[1 - i]
        sw.ensure_bridge("br-phy", fail_mode="standalone")
        sw.ensure_ports("br-phy", [ovs.PortSpec("ul0")])
        links.add_address(host, "br-phy", f"{UNDERLAY[i]}/24")
        links.set_up(host, "br-phy")
        for bridge in ("br-int", "br-tun", BR_PHYS):
            sw.ensure_bridge(bridge)
        lvs = self.local_vlans[i]
        sw.ensure_ports("br-int", [ovs.patch_port(OVS_PATCH_TUN, OVS_PATCH_INT), ovs.patch_port(INT_PHYS, PHY_PHYS),
                                   *(ovs.instance_port(vm.tap, lvs[vm.net.id], vm.port_id, vm.mac)
                                     for vm in self.vms if vm.host == i)])
        sw.ensure_ports("br-tun", [ovs.patch_port(OVS_PATCH_INT, OVS_PATCH_TUN),
                                   *(ovs.tunnel_port(ovs_tunnel_port(t, other), t, other, UNDERLAY[i])
                                     for t in OVS_TUNNEL_TYPES)])
        sw.ensure_ports(BR_PHYS, [ovs.PortSpec("eth1"), ovs.patch_port(PHY_PHYS, INT_PHYS)])

    def state(self, i: int) -> HostState:
        """The desired state of host ``i``, with ofports read from its OVSDB as they are now."""
        sw, other = self.ovs[i], UNDERLAY[1 - i]
        br_int, br_tun, br_phys = sw.ofports("br-int"), sw.ofports("br-tun"), sw.ofports(BR_PHYS)
        networks = []
        for net in NETS:
            here = [vm for vm in self.vms if vm.net is net and vm.host == i]
            there = [vm for vm in self.vms if vm.net is net and vm.host != i]
            remote = ({other: frozenset(vm.mac for vm in there)}
                      if there and net.segment.network_type in OVS_TUNNEL_TYPES else {})
            networks.append(NetworkState(net.id, net.segment, self.local_vlans[i][net.id],
                                         tuple(LocalPort(br_int[vm.tap], vm.mac) for vm in here), remote))
        return HostState(tuple(networks), br_tun[OVS_PATCH_INT],
                         {t: {other: br_tun[ovs_tunnel_port(t, other)]} for t in OVS_TUNNEL_TYPES},
                         {PHYSNET: PhysicalBridge(BR_PHYS, br_phys[PHY_PHYS], br_int[INT_PHYS])})

    def apply(self, i: int) -> dict[str, bool]:
        rendered = of.render(self.state(i))
        assert rendered.problems == []
        return {bridge: self.ovs[i].replace_flows(bridge, rendered.text(bridge), keep_cookies=[of.LEARNED_COOKIE])
                for bridge in sorted(rendered.flows)}

    def tags(self, i: int) -> dict[str, int]:
        """Network -> local VLAN as host ``i``'s OVSDB has it (port tags and iface-ids)."""
        net_of = {vm.port_id: vm.net.id for vm in self.vms}
        return {net_of[p.external_ids["iface-id"]]: p.tag for p in self.ovs[i].ports("br-int")
                if p.tag is not None and p.external_ids.get("iface-id") in net_of}


def neighbour_mac(ns: str, ip: str) -> str | None:
    out = subprocess.run(["ip", "-n", ns, "neigh", "show", ip], capture_output=True, text=True, timeout=10).stdout
    found = re.search(r"lladdr ([0-9a-f:]{17})", out)
    return found.group(1) if found else None


def test_two_ovs_hosts_carry_every_network_type_and_recover_from_vswitchd_restart(ns_prefix: str) -> None:
    with run_dirs() as base:
        lab = Lab(ns_prefix, base)
        with instances(*lab.ovs):
            offloading = lab.vm("gr", 1)  # keeps TX checksum offload until the checksum check below
            lab.build(offloading)
            assert all(lab.apply(0).values()) and all(lab.apply(1).values())
            # converged: rendered text reads back equal, nothing is touched the second time
            assert not any(lab.apply(0).values()) and not any(lab.apply(1).values())
            assert lab.local_vlans[0][BY_KEY["vx"].id] != lab.local_vlans[1][BY_KEY["vx"].id]

            failures: list[str] = []
            port = 7001
            # the checksum trap: ICMP passes, TCP does not, until offload is off on the instance
            gr1, gr2 = lab.vm("gr", 0), lab.vm("gr", 1)
            with listener(gr2.ns, port):
                if not ping(gr1.ns, gr2.ip):
                    failures.append("gre: ping")
                if tcp_ok(gr1.ns, gr2.ip, port):
                    failures.append("gre: TCP passed although the instance offloads checksums")
                assert links.disable_tx_checksum(gr2.ns, "eth0")

            for key in ("vx", "gr", "gn", "vl", "fl"):
                a, b = lab.vm(key, 0), lab.vm(key, 1)
                if not ping(a.ns, b.ip):
                    failures.append(f"{key}: ping {a.ns} -> {b.ip}")
                with listener(b.ns, port):
                    if not tcp_ok(a.ns, b.ip, port):
                        failures.append(f"{key}: TCP {a.ns} -> {b.ip}")

            # same addresses on two VXLAN networks: each reaches its own peer only
            vx1, vx2, tw1, tw2 = lab.vm("vx", 0), lab.vm("vx", 1), lab.vm("tw", 0), lab.vm("tw", 1)
            if not ping(tw1.ns, tw2.ip):
                failures.append("twin: ping")
            if (neighbour_mac(vx1.ns, vx2.ip), neighbour_mac(tw1.ns, tw2.ip)) != (vx2.mac, tw2.mac):
                failures.append("twin: an instance resolved its peer's address to the other network's port")
            with listener(vx2.ns, port + 1):
                if not tcp_ok(vx1.ns, vx2.ip, port + 1) or tcp_ok(tw1.ns, tw2.ip, port + 1):
                    failures.append("twin: TCP crossed networks")

            # a local network switches inside its host and never leaves it
            lo1, lo2, lo_far = lab.vm("lo", 0), lab.vm("lo", 0, 1), lab.vm("lo", 1)
            if not ping(lo1.ns, lo2.ip):
                failures.append("local: ping on one host")
            if ping(lo1.ns, lo_far.ip, tries=1):
                failures.append("local: reached another host")
            assert failures == []

            # ovs-vswitchd restarts: flows are gone (secure bridges drop all) until re-applied
            lab.ovs[0].restart_vswitchd()
            assert lab.ovs[0].dump_flows("br-int", "table=23") == []  # the canary says: flows lost
            assert not ping(vx1.ns, vx2.ip, tries=1)
            assert of.assign_local_vlans([n.id for n in NETS], lab.tags(0)) == lab.local_vlans[0]
            assert all(lab.apply(0).values())
            assert lab.ovs[0].dump_flows("br-int", "table=23") != []
            for key in ("vx", "gr", "gn", "vl", "fl"):
                a, b = lab.vm(key, 0), lab.vm(key, 1)
                if not ping(a.ns, b.ip):
                    failures.append(f"after restart, {key}: ping")
            with listener(vx2.ns, port + 2):
                if not tcp_ok(vx1.ns, vx2.ip, port + 2):
                    failures.append("after restart, vx: TCP")
            assert failures == []
