"""The Linux-bridge agent shell on two simulated hosts: reconcile wires VXLAN, converges and follows changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neutrino.agent.l2 import linuxbridge as lb
from neutrino.agent.l2 import state as l2
from neutrino.kernel import links, netns
from neutrino.kernel.names import bridge_name, tap_name, vxlan_name
from tests.functional.traffic import ping

NET_ID = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
VNI = 5151
NETWORK: dict[str, Any] = {"id": NET_ID, "provider:network_type": "vxlan", "provider:segmentation_id": VNI,
                           "mtu": 1450}
NETWORKS = {NET_ID: NETWORK}
PORT_IDS = ("3a4b5c6d-bbbb-4ccc-8ddd-000000000001", "4b5c6d7e-bbbb-4ccc-8ddd-000000000002")
MACS = ("fa:16:3e:00:98:01", "fa:16:3e:00:98:02")
UNDERLAY = ("172.31.251.1", "172.31.251.2")
INSTANCE = ("10.98.0.1", "10.98.0.2")
BRQ, VX = bridge_name(NET_ID), vxlan_name(VNI)


@dataclass(frozen=True)
class Lab:
    fabric: str
    hosts: tuple[str, str]
    vms: tuple[str, str]


def port(i: int, up: bool = True) -> dict[str, Any]:
    return {"id": PORT_IDS[i], "network_id": NET_ID, "mac_address": MACS[i], "admin_state_up": up,
            "binding:host_id": f"host-{i + 1}"}


def build(prefix: str) -> Lab:
    """Underlay and instances only: what exists before the agent runs (the compute side plugs the taps)."""
    lab = Lab(prefix + "fabric", (prefix + "host-1", prefix + "host-2"), (prefix + "vm-1", prefix + "vm-2"))
    for ns in (lab.fabric, *lab.hosts, *lab.vms):
        netns.ensure_namespace(ns)
    links.ensure_bridge(lab.fabric, "ulbr")
    links.set_up(lab.fabric, "ulbr")
    for i, host in enumerate(lab.hosts):
        for ns in (host, lab.vms[i]):
            netns.set_sysctl(ns, "net.ipv6.conf.all.disable_ipv6", 1)
        links.ensure_veth(lab.fabric, f"ul-h{i + 1}", host, "ul0")
        links.set_master(lab.fabric, f"ul-h{i + 1}", "ulbr")
        links.set_up(lab.fabric, f"ul-h{i + 1}")
        links.add_address(host, "ul0", f"{UNDERLAY[i]}/24")
        links.set_up(host, "ul0")
        links.ensure_veth(lab.vms[i], "eth0", host, tap_name(PORT_IDS[i]), mtu=1450)
        links.set_mac(lab.vms[i], "eth0", MACS[i])
        links.add_address(lab.vms[i], "eth0", f"{INSTANCE[i]}/24")
        links.set_up(lab.vms[i], "eth0")
    return lab


def run(lab: Lab, i: int, ports: list[dict[str, Any]], vteps: list[str] | None = None) -> list[l2.Action]:
    remote = {NET_ID: [UNDERLAY[1 - i]] if vteps is None else vteps}
    return lb.reconcile(lab.hosts[i], ports, NETWORKS, UNDERLAY[i], remote, "ul0")[0]


def test_reconcile_wires_vxlan_converges_and_follows_changes(ns_prefix: str) -> None:
    lab = build(ns_prefix)
    tap1, tap2 = tap_name(PORT_IDS[0]), tap_name(PORT_IDS[1])

    assert run(lab, 0, [port(0)]) and run(lab, 1, [port(1)])
    assert ping(lab.vms[0], INSTANCE[1])
    assert run(lab, 0, [port(0)]) == [] and run(lab, 1, [port(1)]) == []  # converged
    actual = lb.read_actual(lab.hosts[0])
    assert set(actual.links) == {BRQ, VX, tap1}  # ul0 and lo are not ours
    assert actual.links[VX] == l2.Link(VX, "vxlan", master=BRQ, vni=VNI, local_ip=UNDERLAY[0],
                                       flood=frozenset({UNDERLAY[1]}))
    assert actual.links[tap1] == l2.Link(tap1, "tap", master=BRQ)

    # admin_state_up False takes the tap down; True brings it back
    assert run(lab, 1, [port(1, up=False)]) == [l2.SetLinkState(tap2, False)]
    assert not ping(lab.vms[0], INSTANCE[1], tries=1)
    assert run(lab, 1, [port(1)]) == [l2.SetLinkState(tap2, True)]
    assert ping(lab.vms[0], INSTANCE[1])

    # the flood entry follows remote_vteps
    assert run(lab, 0, [port(0)], vteps=[]) == [l2.FdbRemove(VX, UNDERLAY[1])]
    assert links.fdb_flood_list(lab.hosts[0], VX) == []
    assert not ping(lab.vms[0], INSTANCE[1], tries=1)
    assert run(lab, 0, [port(0)]) == [l2.FdbAppend(VX, UNDERLAY[1])]
    assert links.fdb_flood_list(lab.hosts[0], VX) == [UNDERLAY[1]]
    assert ping(lab.vms[0], INSTANCE[1])

    # host 2's last port leaves: its tap is detached (not removed), the bridge and vxlan go
    assert run(lab, 1, []) == [l2.DetachLink(tap2), l2.RemoveLink(VX), l2.RemoveLink(BRQ)]
    assert lb.read_actual(lab.hosts[1]).links == {tap2: l2.Link(tap2, "tap")}
    assert {link.name for link in links.list_links(lab.hosts[1])} == {"lo", "ul0", tap2}
    assert run(lab, 1, []) == []
    assert run(lab, 0, [port(0)], vteps=[]) == [l2.FdbRemove(VX, UNDERLAY[1])]


def test_link_helpers_are_idempotent(ns_prefix: str) -> None:
    host = ns_prefix + "host"
    netns.ensure_namespace(host)
    links.ensure_veth(host, "ul0", host, "ul1")
    links.ensure_bridge(host, BRQ)
    tap = "tap" + "0" * 11
    links.ensure_veth(host, tap, host, "peer0")
    links.set_master(host, tap, BRQ)
    links.set_up(host, tap)
    assert links.detach(host, tap) and not links.detach(host, tap)
    assert links.set_down(host, tap) and not links.set_down(host, tap)
    assert links.vxlan_params(host, BRQ) == (None, None)
    links.ensure_vxlan(host, VX, VNI, "172.31.251.9", "ul0")
    assert links.vxlan_params(host, VX) == (VNI, "172.31.251.9")
