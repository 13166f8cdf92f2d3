"""Security groups on a real Linux bridge: the rendered nft script, applied with kernel.nft, proved by TCP traffic."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from neutrino.agent.l2 import firewall
from neutrino.kernel import NotOurs, links, netns, nft
from neutrino.kernel.names import bridge_name, tap_name

NET = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
GROUP_A, GROUP_B = "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b"
VMS = ("vm1", "vm2", "vm3")
PORT_IDS = {vm: f"{i}{i}{i}{i}{i}{i}{i}{i}-5eed-4a00-8000-00000000000{i}" for i, vm in enumerate(VMS, 1)}
MACS = {vm: f"fa:16:3e:00:98:0{i}" for i, vm in enumerate(VMS, 1)}
IPS = {vm: f"10.98.0.1{i}" for i, vm in enumerate(VMS, 1)}
GROUPS = {"vm1": [GROUP_A], "vm2": [GROUP_A], "vm3": [GROUP_B]}
SPOOF_IP, SPOOF_MAC = "10.98.0.99", "fa:16:3e:00:98:99"

# Echo one line over TCP; exit 0 only if it came back. ``src`` (argv[3]) binds a source address.
CLIENT = """import socket, sys
s = socket.socket(); s.settimeout(1)
if len(sys.argv) > 3: s.bind((sys.argv[3], 0))
s.connect((sys.argv[1], int(sys.argv[2]))); s.sendall(b"hi\\n"); assert s.recv(3) == b"hi\\n"
"""
# Keep one connection open and echo every stdin line through it (an established flow).
HOLDER = """import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1); print("up", flush=True)
for line in sys.stdin:
    s.sendall(line.encode()); print(s.recv(100).decode().strip(), flush=True)
"""


@dataclass
class Host:
    host: str
    vms: dict[str, str]
    listeners: list[subprocess.Popen[bytes]]

    def apply(self, extra_a: list[dict[str, Any]] | None = None, zones: dict[str, int] | None = None) -> str:
        script = firewall.render(_ports(), _groups(extra_a or []), {GROUP_A: [IPS["vm1"], IPS["vm2"]],
                                                                     GROUP_B: [IPS["vm3"]]}, zones=zones)
        nft.apply(self.host, script)
        return script

    def tcp(self, vm: str, dst_vm: str, port: int, src: str | None = None) -> bool:
        args = [IPS[dst_vm], str(port), *([src] if src else [])]
        done = subprocess.run(["ip", "netns", "exec", self.vms[vm], sys.executable, "-S", "-c", CLIENT, *args],
                              capture_output=True, timeout=10)
        return done.returncode == 0

    def spoof_drops(self, vm: str) -> int:
        chain = f"spoof-{PORT_IDS[vm]}"
        rules = [o["rule"] for o in nft.read_table(self.host, "bridge", firewall.ANTISPOOF_TABLE) if "rule" in o]
        return sum(e["counter"]["packets"] for r in rules if r["chain"] == chain for e in r["expr"] if "counter" in e)


def _ports() -> list[dict[str, Any]]:
    return [{"id": PORT_IDS[vm], "network_id": NET, "mac_address": MACS[vm], "fixed_ips": [{"ip_address": IPS[vm]}],
             "allowed_address_pairs": [], "port_security_enabled": True, "security_groups": GROUPS[vm]}
            for vm in VMS]


def _groups(extra_a: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def default(gid: str) -> list[dict[str, Any]]:
        return [{"direction": "egress", "ethertype": "IPv4"}, {"direction": "egress", "ethertype": "IPv6"},
                {"direction": "ingress", "ethertype": "IPv4", "remote_group_id": gid}]
    return [{"id": GROUP_A, "security_group_rules": default(GROUP_A) + extra_a},
            {"id": GROUP_B, "security_group_rules": default(GROUP_B)}]


def _rule_tcp(port: int, cidr: str) -> dict[str, Any]:
    return {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": port,
            "port_range_max": port, "remote_ip_prefix": cidr}


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:  # only the processes this test started, by PID
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)


@pytest.fixture
def host(ns_prefix: str) -> Iterator[Host]:
    """A host namespace with one bridge and three instance namespaces wired to it; vm2 listens on 22 and 80."""
    h = Host(host=ns_prefix + "host", vms={vm: ns_prefix + vm for vm in VMS}, listeners=[])
    brq = bridge_name(NET)
    try:
        for ns in (h.host, *h.vms.values()):
            netns.ensure_namespace(ns)
            netns.set_sysctl(ns, "net.ipv6.conf.all.disable_ipv6", 1)
        links.ensure_bridge(h.host, brq)
        links.set_up(h.host, brq)
        if netns.get_sysctl(h.host, "net.bridge.bridge-nf-call-iptables") != "1":
            netns.set_sysctl(h.host, "net.bridge.bridge-nf-call-iptables", 1)  # inside our host namespace only
        for vm, ns in h.vms.items():
            tap = tap_name(PORT_IDS[vm])
            links.ensure_veth(h.host, tap, ns, "eth0", mac_b=MACS[vm])
            links.set_master(h.host, tap, brq)
            links.set_up(h.host, tap)
            links.add_address(ns, "eth0", IPS[vm] + "/24")
            links.set_up(ns, "eth0")
        for port in (22, 80):
            h.listeners.append(subprocess.Popen(["ip", "netns", "exec", h.vms["vm2"], "busybox", "nc", "-ll",
                                                 "-p", str(port), "-e", "/bin/cat"],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # the listeners start in the background: on a loaded machine give them a moment to bind
        deadline = time.monotonic() + 10
        while not h.tcp("vm3", "vm2", 80) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert h.tcp("vm3", "vm2", 80), "baseline: without a firewall everything is open"
        yield h
    finally:
        _stop(h.listeners)


def test_security_groups_by_real_traffic(host: Host) -> None:
    host.apply()
    assert nft.list_tables(host.host) == [("bridge", "neutrino-antispoof"), ("inet", "neutrino-sg")]
    # default: ingress only from the same group
    assert host.tcp("vm1", "vm2", 22)
    assert host.tcp("vm1", "vm2", 80)
    assert not host.tcp("vm3", "vm2", 22)

    # a rule for TCP 22 from vm3's /32 opens exactly that port
    host.apply([_rule_tcp(22, IPS["vm3"] + "/32")])
    assert host.tcp("vm3", "vm2", 22)
    assert not host.tcp("vm3", "vm2", 80)

    # an open connection admitted by that rule survives the rule's removal; new ones are refused
    held = subprocess.Popen(["ip", "netns", "exec", host.vms["vm3"], sys.executable, "-S", "-c", HOLDER,
                             IPS["vm2"], "22"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert held.stdout is not None and held.stdin is not None
        assert held.stdout.readline().strip() == "up"
        host.apply()
        assert not host.tcp("vm3", "vm2", 22)
        held.stdin.write("still-there\n")
        held.stdin.flush()
        assert held.stdout.readline().strip() == "still-there"
        assert host.tcp("vm1", "vm2", 22), "other group members are not disturbed"
    finally:
        if held.stdin:
            held.stdin.close()
        held.wait(timeout=5)


def test_spoofed_ip_and_mac_are_dropped(host: Host) -> None:
    host.apply([_rule_tcp(22, "10.98.0.0/24")])  # the group would admit any address of the subnet
    vm3 = host.vms["vm3"]
    assert host.tcp("vm3", "vm2", 22)

    before = host.spoof_drops("vm3")
    links.add_address(vm3, "eth0", SPOOF_IP + "/24")
    assert not host.tcp("vm3", "vm2", 22, src=SPOOF_IP)
    after_ip = host.spoof_drops("vm3")
    assert after_ip > before

    # a forged MAC with a static neighbour entry, so no ARP is needed and the TCP frames themselves are judged
    subprocess.run(["ip", "-n", vm3, "neigh", "replace", IPS["vm2"], "lladdr", MACS["vm2"], "dev", "eth0"],
                   check=True)
    links.set_mac(vm3, "eth0", SPOOF_MAC)
    assert not host.tcp("vm3", "vm2", 22)
    assert host.spoof_drops("vm3") > after_ip
    links.set_mac(vm3, "eth0", MACS["vm3"])
    assert host.tcp("vm3", "vm2", 22), "the real MAC and IP still pass"


def _stable(ruleset: Any) -> Any:
    """The ruleset without kernel handles (new on every replacement), which carry no meaning."""
    if isinstance(ruleset, dict):
        return {k: _stable(v) for k, v in ruleset.items() if k != "handle"}
    if isinstance(ruleset, list):
        return [_stable(v) for v in ruleset]
    return ruleset


def test_apply_twice_gives_the_same_ruleset(host: Host) -> None:
    script = host.apply([_rule_tcp(22, IPS["vm3"] + "/32")])
    first = nft.read_ruleset(host.host)
    nft.apply(host.host, script)
    assert _stable(nft.read_ruleset(host.host)) == _stable(first)
    assert {t for t in nft.list_tables(host.host)} == set(firewall.OWNED_TABLES)
    assert nft.delete_table(host.host, "inet", firewall.SG_TABLE)
    assert not nft.delete_table(host.host, "inet", firewall.SG_TABLE)
    assert host.tcp("vm3", "vm2", 80), "without the stateful table the group rules are gone"


def test_conntrack_zone_keeps_the_firewall_stateful(host: Host) -> None:
    """With the network in its own zone, replies still pass only as established, and flows survive a resync."""
    zones = firewall.assign_zones(firewall.guarded_network_ids(_ports()), {})
    script = host.apply([_rule_tcp(22, IPS["vm3"] + "/32")], zones=zones)
    assert f'iifname "{bridge_name(NET)}" ct zone set 1 comment "net:{NET}"' in script
    assert firewall.read_zones(nft.read_table(host.host, "inet", firewall.SG_TABLE)) == {NET: 1}
    # vm2's SYN-ACK to vm3 (group B admits only B) passes only because conntrack knows it in zone 1
    assert host.tcp("vm3", "vm2", 22)
    assert not host.tcp("vm3", "vm2", 80)

    held = subprocess.Popen(["ip", "netns", "exec", host.vms["vm3"], sys.executable, "-S", "-c", HOLDER,
                             IPS["vm2"], "22"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert held.stdout is not None and held.stdin is not None
        assert held.stdout.readline().strip() == "up"
        # an agent resync: zones read back from the kernel and assigned again; the rule is gone
        current = firewall.read_zones(nft.read_table(host.host, "inet", firewall.SG_TABLE))
        first = nft.read_ruleset(host.host)
        host.apply(zones=firewall.assign_zones(firewall.guarded_network_ids(_ports()), current))
        assert not host.tcp("vm3", "vm2", 22)
        held.stdin.write("still-there\n")
        held.stdin.flush()
        assert held.stdout.readline().strip() == "still-there"
        assert _stable(nft.read_ruleset(host.host)) != _stable(first)  # the rule really changed
    finally:
        if held.stdin:
            held.stdin.close()
        held.wait(timeout=5)


def test_refuses_foreign_namespaces_and_tables(host: Host) -> None:
    with pytest.raises(NotOurs):
        nft.apply("default", "table inet neutrino-x {}")
    with pytest.raises(NotOurs):
        nft.apply(host.host, "table inet filter {}")
    with pytest.raises(NotOurs):
        nft.delete_table(host.host, "inet", "filter")
    assert nft.list_tables(host.host) == []
