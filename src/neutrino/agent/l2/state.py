"""The Linux-bridge L2 agent's reconcile core: desired host state and the actions to reach it.

Pure, no I/O. ``desired`` turns this host's ports and their networks into links: a bridge
``brq<net[:11]>`` per network with a port here, a ``vxlan-<vni>`` device in it for vxlan
networks (unicast, with flood FDB entries to the other hosts' VTEPs: no multicast), and each
port's ``tap<port[:11]>`` attached to its network's bridge, down when ``admin_state_up`` is
false. ``diff`` compares that with what the kernel has (read by the I/O shell into the same
:class:`L2State`) and returns typed actions; the shell carries them out with the idempotent
``kernel.links`` verbs. Applying ``diff(d, a)`` to ``a`` and diffing again gives ``[]``.

Taps are made by whoever plugs the VIF (compute, DHCP, L3), so a missing tap produces no
action (the port is simply not wired yet), and a tap whose port left is only detached.
Only names ``kernel.names.is_ours`` accepts are ever touched: a host's own bridges and
interfaces are never detached, changed or removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from neutrino.kernel.names import bridge_name, is_ours, tap_name, vxlan_name  # pure naming helpers

BRIDGE, VXLAN, TAP, PHYS = "bridge", "vxlan", "tap", "phys"
BRIDGED_TYPES = ("local", "flat", "vxlan")  # what the Linux-bridge driver binds (ml2/mech_linuxbridge)


@dataclass(frozen=True)
class Link:
    name: str
    kind: str  # bridge | vxlan | tap (veth/tun host ends) | phys (a mapped physical interface)
    up: bool = True
    master: str | None = None
    vni: int | None = None
    local_ip: str | None = None
    flood: frozenset[str] = frozenset()  # VTEPs in the all-zeros FDB entry (vxlan only)


@dataclass(frozen=True)
class L2State:
    links: dict[str, Link] = field(default_factory=dict)


@dataclass(frozen=True)
class EnsureBridge:
    name: str


@dataclass(frozen=True)
class EnsureVxlan:
    """Create, or recreate with these parameters (the kernel cannot change them in place)."""

    name: str
    vni: int
    local_ip: str


@dataclass(frozen=True)
class AttachLink:
    name: str
    bridge: str


@dataclass(frozen=True)
class DetachLink:
    name: str


@dataclass(frozen=True)
class SetLinkState:
    name: str
    up: bool


@dataclass(frozen=True)
class FdbAppend:
    vxlan: str
    dst_ip: str


@dataclass(frozen=True)
class FdbRemove:
    vxlan: str
    dst_ip: str


@dataclass(frozen=True)
class RemoveLink:
    name: str


Action = EnsureBridge | EnsureVxlan | AttachLink | DetachLink | SetLinkState | FdbAppend | FdbRemove | RemoveLink


def desired(host_ports: Iterable[Mapping[str, Any]], networks: Mapping[str, Mapping[str, Any]],
            local_ip: str, remote_vteps: Mapping[str, Iterable[str]],
            physical_interfaces: Mapping[str, str] | None = None) -> L2State:
    """The links this host should have.

    ``host_ports`` are the ports bound here (API dicts: ``id``, ``network_id``,
    ``admin_state_up``); ``networks`` maps network id to the network as the API shows it
    (``provider:network_type``, ``provider:segmentation_id``); ``remote_vteps`` maps network id
    to the tunnel IPs of the other hosts with ports on it; ``physical_interfaces`` maps a
    physical network to this host's interface for it (Neutron's
    ``physical_interface_mappings``): a flat network's bridge gets that interface. Ports of
    unknown networks or of types Linux bridge cannot do (their binding failed) are left out.
    A flat network whose physical network has no interface here gets a bridge without an
    uplink: host-only, like the all-in-one ``public`` network when no machine link is wanted.
    """
    phys = physical_interfaces or {}
    links: dict[str, Link] = {}
    for port in host_ports:
        net = networks.get(str(port["network_id"]))
        if net is None or net.get("provider:network_type") not in BRIDGED_TYPES:
            continue
        uplink = phys.get(str(net.get("provider:physical_network")))
        bridge = bridge_name(str(net["id"]))
        links[bridge] = Link(bridge, BRIDGE)
        if net["provider:network_type"] == "flat" and uplink is not None:
            links[uplink] = Link(uplink, PHYS, master=bridge)
        if net["provider:network_type"] == VXLAN:
            vni = int(net["provider:segmentation_id"])
            flood = frozenset(remote_vteps.get(str(net["id"]), ())) - {local_ip}
            links[vxlan_name(vni)] = Link(vxlan_name(vni), VXLAN, master=bridge, vni=vni, local_ip=local_ip,
                                          flood=flood)
        tap = tap_name(str(port["id"]))
        links[tap] = Link(tap, TAP, up=bool(port.get("admin_state_up", True)), master=bridge)
    return L2State(links)


def diff(want: L2State, have: L2State) -> list[Action]:
    """Actions that turn ``have`` into ``want``: create, wire and set state, then tear down."""
    actions: list[Action] = []
    for link in sorted(want.links.values(), key=_creation_order):
        actions += _converge(link, have.links.get(link.name))
    actions += _teardown(want, have)
    return actions


def _creation_order(link: Link) -> tuple[int, str]:
    return ((BRIDGE, VXLAN, PHYS, TAP).index(link.kind), link.name)


def _converge(link: Link, cur: Link | None) -> list[Action]:
    if link.kind in (TAP, PHYS):
        if cur is None:
            return []  # not plugged yet (the VIF's owner creates it) or no such interface here
        return _wire(link, cur)
    out: list[Action] = []
    if cur is not None and cur.kind != link.kind:
        out.append(RemoveLink(cur.name))
        cur = None
    if link.kind == BRIDGE and cur is None:
        out.append(EnsureBridge(link.name))
        cur = Link(link.name, BRIDGE, up=False)
    if link.kind == VXLAN and (cur is None or (cur.vni, cur.local_ip) != (link.vni, link.local_ip)):
        assert link.vni is not None and link.local_ip is not None
        out.append(EnsureVxlan(link.name, link.vni, link.local_ip))
        cur = Link(link.name, VXLAN, up=False, vni=link.vni, local_ip=link.local_ip)  # a new device: no FDB
    assert cur is not None
    out += _wire(link, cur)
    out += [FdbAppend(link.name, ip) for ip in sorted(link.flood - cur.flood)]
    out += [FdbRemove(link.name, ip) for ip in sorted(cur.flood - link.flood)]
    return out


def _wire(link: Link, cur: Link) -> list[Action]:
    out: list[Action] = []
    if link.master is not None and cur.master != link.master:
        out.append(AttachLink(link.name, link.master))
    if cur.up != link.up:
        out.append(SetLinkState(link.name, link.up))
    return out


def _teardown(want: L2State, have: L2State) -> list[Action]:
    """Detach our taps that left, then remove our vxlan devices and bridges nobody wants."""
    out: list[Action] = []
    stale = [cur for name, cur in sorted(have.links.items()) if name not in want.links and is_ours(name)]
    for cur in stale:
        if cur.kind == TAP and cur.master is not None and is_ours(cur.master):
            out.append(DetachLink(cur.name))
    out += [RemoveLink(cur.name) for cur in stale if cur.kind == VXLAN]
    out += [RemoveLink(cur.name) for cur in stale if cur.kind == BRIDGE]
    return out
