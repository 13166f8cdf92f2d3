"""Two simulated hosts joined by kernel VXLAN over an underlay bridge, built with neutrino.kernel and proved by ping."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from neutrino.kernel import NotOurs, janitor, links, netns
from neutrino.kernel.names import bridge_name, tap_name, vxlan_name
from tests.functional.traffic import ping

NET = "5a1e0c3d-2b4f-4a6e-8c9d-0e1f2a3b4c5d"
PORTS = ("1b2c3d4e-aaaa-4bbb-8ccc-000000000001", "2c3d4e5f-aaaa-4bbb-8ccc-000000000002")
VNI = 4242
UNDERLAY = ("172.31.250.1", "172.31.250.2")
INSTANCE = ("10.99.0.1", "10.99.0.2")
MACS = ("fa:16:3e:00:99:01", "fa:16:3e:00:99:02")


@dataclass(frozen=True)
class Topo:
    fabric: str
    hosts: tuple[str, str]
    vms: tuple[str, str]

    @property
    def namespaces(self) -> list[str]:
        return [self.fabric, *self.hosts, *self.vms]


def topo(prefix: str) -> Topo:
    return Topo(fabric=prefix + "fabric", hosts=(prefix + "host-1", prefix + "host-2"),
                vms=(prefix + "vm-1", prefix + "vm-2"))


def build(t: Topo) -> list[bool]:
    """Apply every ensure_* for the whole topology; returns what each call reported as changed."""
    changed = [netns.ensure_namespace(ns) for ns in t.namespaces]
    changed += [links.ensure_bridge(t.fabric, "ulbr"), links.set_up(t.fabric, "ulbr")]
    brq, vx = bridge_name(NET), vxlan_name(VNI)
    for i, host in enumerate(t.hosts):
        other = UNDERLAY[1 - i]
        changed += [
            netns.set_sysctl(host, "net.ipv6.conf.all.disable_ipv6", 1),
            netns.set_sysctl(t.vms[i], "net.ipv6.conf.all.disable_ipv6", 1),
            # underlay: host's ul0 created directly in the host, its peer in the fabric
            links.ensure_veth(t.fabric, f"ul-h{i + 1}", host, "ul0", mac_b=f"02:00:00:00:fa:0{i + 1}"),
            links.set_master(t.fabric, f"ul-h{i + 1}", "ulbr"),
            links.set_up(t.fabric, f"ul-h{i + 1}"),
            links.add_address(host, "ul0", f"{UNDERLAY[i]}/24"),
            links.set_up(host, "ul0"),
            # overlay: brq + vxlan with a static flood entry to the other host
            links.ensure_bridge(host, brq, mtu=1450),
            links.ensure_vxlan(host, vx, VNI, UNDERLAY[i], "ul0"),
            links.set_master(host, vx, brq),
            links.fdb_append(host, vx, other),
            links.set_up(host, vx),
            links.set_up(host, brq),
            # instance: eth0 in the instance, its tap peer created directly in the host
            links.ensure_veth(t.vms[i], "eth0", host, tap_name(PORTS[i]), mtu=1450),
            links.set_mac(t.vms[i], "eth0", MACS[i]),
            links.set_master(host, tap_name(PORTS[i]), brq),
            links.set_up(host, tap_name(PORTS[i])),
            links.add_address(t.vms[i], "eth0", f"{INSTANCE[i]}/24"),
            links.set_up(t.vms[i], "eth0"),
        ]
    return changed


def snapshot(t: Topo) -> dict[str, object]:
    state: dict[str, object] = {}
    for ns in t.namespaces:
        for link in links.list_links(ns):
            state[f"{ns}/{link.name}"] = (link, links.list_addresses(ns, link.name))
    for host in t.hosts:
        state[f"{host}/fdb"] = links.fdb_flood_list(host, vxlan_name(VNI))
    return state


def test_vxlan_between_two_hosts_carries_instance_traffic(ns_prefix: str) -> None:
    t = topo(ns_prefix)
    root_forwarding = open("/proc/sys/net/ipv4/ip_forward").read()

    assert all(build(t))
    assert ping(t.vms[0], INSTANCE[1])

    before = snapshot(t)
    assert not any(build(t)), "a second apply must change nothing"
    assert snapshot(t) == before

    # the static flood entry is what carries the traffic: without it, nothing crosses
    assert links.fdb_remove(t.hosts[0], vxlan_name(VNI), UNDERLAY[1])
    assert not links.fdb_remove(t.hosts[0], vxlan_name(VNI), UNDERLAY[1])
    assert not ping(t.vms[0], INSTANCE[1], tries=1)
    assert links.fdb_append(t.hosts[0], vxlan_name(VNI), UNDERLAY[1])
    assert ping(t.vms[0], INSTANCE[1])

    assert netns.get_sysctl(t.hosts[0], "net.ipv6.conf.all.disable_ipv6") == "1"
    assert open("/proc/sys/net/ipv4/ip_forward").read() == root_forwarding

    # removing a veth end takes its peer along; removal is idempotent
    tap = tap_name(PORTS[0])
    assert links.remove_link(t.hosts[0], tap)
    assert not links.remove_link(t.hosts[0], tap)
    assert not links.link_exists(t.vms[0], "eth0")

    assert netns.remove_namespace(t.vms[0])
    assert not netns.remove_namespace(t.vms[0])
    removed = janitor.cleanup(prefixes=(ns_prefix,), root_links=False)
    assert removed.namespaces == sorted([t.fabric, *t.hosts, t.vms[1]])
    assert not [ns for ns in netns.list_namespaces() if ns.startswith(ns_prefix)]


def test_changed_vxlan_parameters_recreate_the_device(ns_prefix: str) -> None:
    host = ns_prefix + "host"
    netns.ensure_namespace(host)
    links.ensure_veth(host, "ul0", host, "ul1")
    links.add_address(host, "ul0", "172.31.251.1/24")
    assert links.ensure_vxlan(host, "vxlan-7", 7, "172.31.251.1", "ul0")
    first = {link.name: link for link in links.list_links(host)}["vxlan-7"]
    assert not links.ensure_vxlan(host, "vxlan-7", 7, "172.31.251.1", "ul0")
    assert links.ensure_vxlan(host, "vxlan-7", 7, "172.31.251.1", "ul0", dstport=8472)
    second = {link.name: link for link in links.list_links(host)}["vxlan-7"]
    assert second.index != first.index
    assert not links.ensure_vxlan(host, "vxlan-7", 7, "172.31.251.1", "ul0", dstport=8472)


def test_refuses_names_that_are_not_ours(ns_prefix: str) -> None:
    with pytest.raises(NotOurs):
        netns.ensure_namespace("lab-not-ours")
    with pytest.raises(NotOurs):
        netns.remove_namespace("lab-not-ours")
    with pytest.raises(NotOurs):
        links.ensure_bridge(None, "eth0")  # the root namespace: only our own device names
    with pytest.raises(NotOurs):
        links.remove_link(None, "eth0")
    with pytest.raises(NotOurs):
        links.ensure_bridge("lab-not-ours", "br0")


def test_sysctl_refuses_the_root_namespace(ns_prefix: str) -> None:
    from pyroute2 import netns as pr_netns

    alias = ns_prefix + "root-alias"
    pr_netns.attach(alias, os.getpid())  # a name for our own (root) namespace; removed by the fixture
    current = open("/proc/sys/net/ipv4/ip_forward").read().strip()
    with pytest.raises(NotOurs):
        netns.set_sysctl(alias, "net.ipv4.ip_forward", current)  # same value: harmless even if it got through
    with pytest.raises(NotOurs):
        netns.get_sysctl(alias, "net.ipv4.ip_forward")


def test_a_process_started_in_our_namespace_still_knows_the_machine_s(ns_prefix: str) -> None:
    """An isolated lab's agent runs inside its host namespace and manages it (nftables, sysctls),
    while a name aliasing the machine's namespace stays refused: where /proc/1/ns/net cannot be
    read, the machine's namespace is the one whose descriptor the starter passed down."""
    from pyroute2 import netns as pr_netns

    from neutrino.lab import in_namespace

    host, alias = ns_prefix + "host", ns_prefix + "root-alias3"
    netns.ensure_namespace(host)
    pr_netns.attach(alias, os.getpid())  # removed by the fixture
    ask = ("import sys; from neutrino.kernel import netns as n; "
           "print(n.is_root_namespace(sys.argv[1]), n.is_root_namespace(sys.argv[2]), n.is_own_namespace(sys.argv[1]))")
    fd = netns.machine_namespace_fd()
    try:
        env = {**os.environ, netns.MACHINE_NETNS_FD: str(fd)}
        said = subprocess.run(in_namespace(host, [sys.executable, "-c", ask, host, alias]), env=env, pass_fds=(fd,),
                              capture_output=True, text=True, timeout=60)
    finally:
        os.close(fd)
    assert said.stdout.split() == ["False", "True", "True"], said.stderr
    with pytest.raises(NotOurs):  # and from here, the machine's namespace, as before
        netns.set_sysctl(alias, "net.ipv4.ip_forward", open("/proc/sys/net/ipv4/ip_forward").read().strip())


def test_janitor_never_signals_processes_of_the_root_namespace(ns_prefix: str) -> None:
    """A name aliasing the machine's namespace holds every process: the janitor must leave them be."""
    from pyroute2 import netns as pr_netns

    from neutrino.kernel import janitor

    alias = ns_prefix + "root-alias2"
    pr_netns.attach(alias, os.getpid())
    try:
        assert janitor.stop_namespace_processes(alias) == []
    finally:
        pr_netns.remove(alias)
