"""Conntrack zones per network, proved by real UDP traffic between two networks with the same addresses.

One host namespace, two bridges (NET1, NET2), and on each the same two instances: a (10.0.0.5) and
b (10.0.0.6), with different MACs. Every ``a`` admits no ingress at all, so what reaches it is only
what conntrack calls established; every ``b`` admits UDP from anywhere. A flow a1 -> b1 on NET1
leaves a conntrack entry whose reply tuple (10.0.0.6:dport -> 10.0.0.5:sport) is exactly what b2 can
send to a2 on NET2. Without zones that packet is "established" and reaches a2 (the leak is shown
first, so the test proves that zones matter); with zones it is new in NET2's zone and dropped,
while each network's own replies still come back through its own zone.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from neutrino.agent.l2 import firewall
from neutrino.kernel import links, netns, nft
from neutrino.kernel.names import bridge_name, tap_name

NET1 = "e1e1e1e1-7a0e-4000-8000-000000000001"
NET2 = "e2e2e2e2-7a0e-4000-8000-000000000002"
SG_CLOSED = "cccccccc-7a0e-4000-8000-00000000000c"  # egress only: ingress only by conntrack
SG_UDP = "dddddddd-7a0e-4000-8000-00000000000d"     # egress, plus UDP ingress from anywhere
VMS = {"a1": NET1, "b1": NET1, "a2": NET2, "b2": NET2}
PORT_IDS = {vm: f"{i}{i}{i}{i}{i}{i}{i}{i}-7a0e-4a00-8000-00000000000{i}" for i, vm in enumerate(VMS, 1)}
MACS = {vm: f"fa:16:3e:00:7a:0{i}" for i, vm in enumerate(VMS, 1)}
IPS = {vm: "10.0.0.5" if vm.startswith("a") else "10.0.0.6" for vm in VMS}  # the same on both networks
GROUPS = {vm: SG_CLOSED if vm.startswith("a") else SG_UDP for vm in VMS}

# Bind argv[1]:argv[2], say "ready", wait up to argv[3] s for one datagram; with argv[4] == "echo"
# send it back. Exit 0 if one arrived (its payload on stdout), 1 if none.
RECEIVER = """import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(float(sys.argv[3])); print("ready", flush=True)
try:
    data, peer = s.recvfrom(100)
except socket.timeout:
    sys.exit(1)
if sys.argv[4] == "echo":
    s.sendto(data, peer)
print(data.decode(), flush=True)
"""
# From argv[1]:argv[2] send argv[5] to argv[3]:argv[4] up to 3 times (the first may wait on ARP).
# With argv[6] == "echo" wait for it to come back after each send and exit 0 only if it did.
SENDER = """import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(0.5)
for _ in range(3):
    s.sendto(sys.argv[5].encode(), (sys.argv[3], int(sys.argv[4])))
    if sys.argv[6] != "echo":
        time.sleep(0.2)
        continue
    try:
        if s.recv(100) == sys.argv[5].encode():
            sys.exit(0)
    except socket.timeout:
        pass
sys.exit(0 if sys.argv[6] != "echo" else 1)
"""


@dataclass
class Host:
    host: str
    vms: dict[str, str]
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def apply(self, zones: dict[str, int] | None) -> str:
        script = firewall.render(_ports(), _groups(), {}, zones=zones)
        nft.apply(self.host, script)
        return script

    def _exec(self, vm: str, code: str, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.vms[vm], sys.executable, "-S", "-c", code, *args]

    def udp(self, src: str, sport: int, dst: str, dport: int, echo: bool) -> bool:
        """Send one datagram src:sport -> dst:dport. True if dst got it (and, with ``echo``, src got it back)."""
        payload = f"{src}:{sport}->{dst}:{dport}"
        receiver = subprocess.Popen(self._exec(dst, RECEIVER, IPS[dst], str(dport), "1.5", "echo" if echo else "-"),
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(receiver)
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == "ready"
        sent = subprocess.run(self._exec(src, SENDER, IPS[src], str(sport), IPS[dst], str(dport), payload,
                                         "echo" if echo else "-"), capture_output=True, timeout=15)
        got = receiver.wait(timeout=15) == 0 and receiver.stdout.read().strip() == payload
        return got and sent.returncode == 0

    def conntrack(self) -> list[str] | None:
        """The host namespace's conntrack table, or None where the kernel has no procfs view of it."""
        done = subprocess.run(["ip", "netns", "exec", self.host, "cat", "/proc/net/nf_conntrack"],
                              capture_output=True, text=True, timeout=10)
        return done.stdout.splitlines() if done.returncode == 0 else None


def _ports() -> list[dict[str, Any]]:
    return [{"id": PORT_IDS[vm], "network_id": VMS[vm], "mac_address": MACS[vm],
             "fixed_ips": [{"ip_address": IPS[vm]}], "allowed_address_pairs": [], "port_security_enabled": True,
             "security_groups": [GROUPS[vm]]} for vm in VMS]


def _groups() -> list[dict[str, Any]]:
    egress = [{"direction": "egress", "ethertype": "IPv4"}, {"direction": "egress", "ethertype": "IPv6"}]
    udp_in = {"direction": "ingress", "ethertype": "IPv4", "protocol": "udp", "remote_ip_prefix": "0.0.0.0/0"}
    return [{"id": SG_CLOSED, "security_group_rules": egress},
            {"id": SG_UDP, "security_group_rules": [*egress, udp_in]}]


def _flow(lines: list[str], sport: int, dport: int) -> list[str]:
    return [line for line in lines if f"sport={sport} dport={dport} " in line]


@pytest.fixture
def host(ns_prefix: str) -> Iterator[Host]:
    """A host namespace with NET1's and NET2's bridges; a1, b1 on NET1 and a2, b2 on NET2, same IPs."""
    h = Host(host=ns_prefix + "host", vms={vm: ns_prefix + vm for vm in VMS})
    try:
        for ns in (h.host, *h.vms.values()):
            netns.ensure_namespace(ns)
            netns.set_sysctl(ns, "net.ipv6.conf.all.disable_ipv6", 1)
        for net in (NET1, NET2):
            links.ensure_bridge(h.host, bridge_name(net))
            links.set_up(h.host, bridge_name(net))
        if netns.get_sysctl(h.host, "net.bridge.bridge-nf-call-iptables") != "1":
            netns.set_sysctl(h.host, "net.bridge.bridge-nf-call-iptables", 1)  # inside our host namespace only
        for vm, ns in h.vms.items():
            tap = tap_name(PORT_IDS[vm])
            links.ensure_veth(h.host, tap, ns, "eth0", mac_b=MACS[vm])
            links.set_master(h.host, tap, bridge_name(VMS[vm]))
            links.set_up(h.host, tap)
            links.add_address(ns, "eth0", IPS[vm] + "/24")
            links.set_up(ns, "eth0")
        yield h
    finally:
        for proc in h.procs:  # only the processes this test started, by PID
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=5)


def test_overlapping_networks_do_not_share_conntrack_state(host: Host) -> None:
    # Without zones: NET1's flow a1:5000 -> b1:6000 makes b2:6000 -> a2:5000 on NET2 "established".
    assert "ct zone" not in host.apply(zones=None)
    assert host.udp("a1", 5000, "b1", 6000, echo=True), "NET1: a request and its reply (by conntrack) pass"
    assert not host.udp("b2", 6100, "a2", 5100, echo=False), "NET2: a2 admits nothing new"
    assert host.udp("b2", 6000, "a2", 5000, echo=False), "without zones NET1's state leaks into NET2"

    # With zones, assigned and read back the way an agent does it on every resync.
    current = firewall.read_zones(nft.read_table(host.host, "inet", firewall.SG_TABLE))
    assert current == {}
    zones = firewall.assign_zones(firewall.guarded_network_ids(_ports()), current)
    assert zones == {NET1: 1, NET2: 2}
    host.apply(zones=zones)
    assert firewall.read_zones(nft.read_table(host.host, "inet", firewall.SG_TABLE)) == zones

    assert host.udp("a1", 5001, "b1", 6001, echo=True), "NET1: the reply comes back through zone 1"
    assert not host.udp("b2", 6001, "a2", 5001, echo=False), "NET1's flow is not established in NET2's zone"
    assert host.udp("a1", 5000, "b1", 6000, echo=True), "NET1 re-creates the flow that leaked before, in zone 1"
    assert not host.udp("b2", 6000, "a2", 5000, echo=False), "and it no longer leaks (nor does the zone-0 entry)"
    assert host.udp("a2", 5002, "b2", 6002, echo=True), "NET2: its own replies come back through zone 2"
    assert not host.udp("b1", 6002, "a1", 5002, echo=False), "and NET2's flow does not leak into NET1 either"

    table = host.conntrack()
    if table is not None:  # the kernel's own view, where it offers one: each flow in its network's zone
        assert _flow(table, 5001, 6001) and all("zone=1 " in line for line in _flow(table, 5001, 6001))
        assert _flow(table, 5002, 6002) and all("zone=2 " in line for line in _flow(table, 5002, 6002))


def test_zones_survive_a_resync_and_a_new_network(host: Host) -> None:
    """Re-reading and re-assigning keeps every zone, so flows admitted before an agent restart live on."""
    only_net2 = [p for p in _ports() if p["network_id"] == NET2]
    zones = firewall.assign_zones(firewall.guarded_network_ids(only_net2), {})
    assert zones == {NET2: 1}
    nft.apply(host.host, firewall.render(only_net2, _groups(), {}, zones=zones))
    assert host.udp("a2", 5003, "b2", 6003, echo=True)
    # a2 admits nothing new, so b2:6003 -> a2:5003 passes only while that flow's entry is found
    assert host.udp("b2", 6003, "a2", 5003, echo=False)

    # NET1's ports arrive (an agent resync): NET2 keeps zone 1, NET1 gets 2, and NET2's flow lives on.
    current = firewall.read_zones(nft.read_table(host.host, "inet", firewall.SG_TABLE))
    assert current == {NET2: 1}
    zones = firewall.assign_zones(firewall.guarded_network_ids(_ports()), current)
    assert zones == {NET1: 2, NET2: 1}
    host.apply(zones=zones)
    assert host.udp("b2", 6003, "a2", 5003, echo=False), "NET2's flow is still established in zone 1"
    assert host.udp("a1", 5003, "b1", 6003, echo=True), "NET1 works in its new zone"

    # Control: had NET2's zone moved, the same packet would be new and dropped. That is why zones must stay put.
    host.apply(zones={NET1: 2, NET2: 3})
    assert not host.udp("b2", 6003, "a2", 5003, echo=False), "a moved zone forgets the flow"
