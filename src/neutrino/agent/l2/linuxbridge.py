"""The Linux-bridge L2 driver: its kernel shell for one host namespace, and the driver the host agent uses.

``read_actual`` reports the links ``kernel.names.is_ours`` accepts in the shape
:mod:`neutrino.agent.l2.state` defines; ``apply`` carries out its typed actions with the
idempotent ``kernel.links`` verbs; ``reconcile`` is desired -> read -> diff -> apply. Links
that are not ours (the underlay, ``lo``, the host's own bridges) are never reported, so the
diff never touches them; ``kernel.links`` refuses them as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neutrino.agent.l2 import driver, firewall
from neutrino.agent.l2 import state as l2
from neutrino.agent.l2.nft_host import NftFirewall
from neutrino.agent.l2.state import BRIDGE, PHYS, TAP, VXLAN, Action, L2State, Link
from neutrino.agent.retry import Retries
from neutrino.kernel import KernelError, linkdump, links
from neutrino.kernel.names import bridge_name, is_ours, tap_name
from neutrino.messages import LINUXBRIDGE_AGENT

_KINDS = {"bridge": BRIDGE, "vxlan": VXLAN}  # anything else (veth, tun) is a VIF end: a tap


def read_actual(ns: str | None, physical: Iterable[str] = ()) -> L2State:
    """Our bridges, vxlan devices (VNI, local IP, flood list) and taps in ``ns``, with master and
    up state, plus the mapped ``physical`` interfaces (reported so flat bridges can enslave them).

    Two dumps per call whatever the number of links (``kernel.linkdump``): every pass reads
    the whole host, so this is the agent's hottest read.
    """
    uplinks = set(physical)
    found = linkdump.links(ns)
    floods = linkdump.flood_lists(ns) if any(link.kind == "vxlan" for link in found) else {}
    out: dict[str, Link] = {}
    for link in found:
        if link.name in uplinks:
            out[link.name] = Link(link.name, PHYS, up=link.up, master=link.master)
            continue
        if not is_ours(link.name):
            continue
        kind = _KINDS.get(link.kind, TAP)
        extra: dict[str, Any] = {}
        if kind == VXLAN:
            extra = {"vni": link.vni, "local_ip": link.local_ip, "flood": frozenset(floods.get(link.name, ()))}
        out[link.name] = Link(link.name, kind, up=link.up, master=link.master, **extra)
    return L2State(out)


class L2Incomplete(driver.L2Incomplete):
    """Some actions failed; every other one was carried out. ``failed`` names the links they were for."""

    def __init__(self, ns: str | None, failures: dict[str, str], have: L2State | None = None) -> None:
        super().__init__(ns, failures)
        self.have = have


def apply(ns: str | None, actions: Iterable[Action], underlay_dev: str) -> None:
    """Carry out ``actions`` in order; each verb is idempotent, so a repeated batch changes nothing.

    One action that fails (one network's bridge or vxlan, one tap) does not stop the others:
    another network is wired all the same, and the failures are raised together at the end
    (:class:`L2Incomplete`), so the agent reports and retries them.
    """
    failures: dict[str, str] = {}
    for action in actions:
        try:
            _apply_one(ns, action, underlay_dev)
        except (KernelError, OSError, ValueError) as exc:
            failures.setdefault(str(getattr(action, "name", getattr(action, "vxlan", action))), str(exc))
    if failures:
        raise L2Incomplete(ns, failures)


def _apply_one(ns: str | None, action: Action, underlay_dev: str) -> None:
    match action:
        case l2.EnsureBridge(name):
            links.ensure_bridge(ns, name)
        case l2.EnsureVxlan(name, vni, local_ip):
            links.ensure_vxlan(ns, name, vni, local_ip, underlay_dev)
        case l2.AttachLink(name, bridge):
            links.set_master(ns, name, bridge)
        case l2.DetachLink(name):
            links.detach(ns, name)
        case l2.SetLinkState(name, up):
            (links.set_up if up else links.set_down)(ns, name)
        case l2.FdbAppend(vxlan, dst_ip):
            links.fdb_append(ns, vxlan, dst_ip)
        case l2.FdbRemove(vxlan, dst_ip):
            links.fdb_remove(ns, vxlan, dst_ip)
        case l2.RemoveLink(name):
            links.remove_link(ns, name)


def reconcile(ns: str | None, host_ports: Iterable[Mapping[str, Any]], networks: Mapping[str, Mapping[str, Any]],
              local_ip: str, remote_vteps: Mapping[str, Iterable[str]], underlay_dev: str,
              physical_interfaces: Mapping[str, str] | None = None) -> tuple[list[Action], L2State]:
    """Bring ``ns`` to the desired state for these ports.

    Returns the actions applied ([] when converged) and the state read before them: every
    tap found there is wired as desired afterwards, which is what port status reports.
    """
    phys = physical_interfaces or {}
    want = l2.desired(host_ports, networks, local_ip, remote_vteps, phys)
    have = read_actual(ns, phys.values())
    actions = l2.diff(want, have)
    try:
        apply(ns, actions, underlay_dev)
    except L2Incomplete as exc:
        exc.have = have
        raise
    return actions, have


@dataclass(frozen=True)
class BridgePlug:
    """A network's service ports attach to its bridge ``brq<net[:11]>`` in the host namespace."""

    namespace: str
    bridge: str

    def attach(self, dev: str, port: Mapping[str, Any], peer: tuple[str, str] | None = None) -> bool:
        return links.set_master(self.namespace, dev, self.bridge) | links.set_up(self.namespace, dev)


class LinuxBridgeDriver:
    """Ports on a Linux bridge per network, VXLAN between hosts, nftables for security groups."""

    agent_type = LINUXBRIDGE_AGENT

    def __init__(self, node_ns: str, state_dir: Path, local_ip: str, underlay_dev: str,
                 physical_interfaces: Mapping[str, str]) -> None:
        self.node_ns = node_ns
        self.state_dir = Path(state_dir)
        self.local_ip = local_ip
        self.underlay_dev = underlay_dev
        self.physical_interfaces = physical_interfaces  # physnet -> interface in node_ns (may grow at start)

    def start(self) -> None:
        """An underlay interface inside the node namespace (a ``neutrino lab`` host, which
        neutrino made) sends VXLAN with full checksums: an Open vSwitch host on the same
        network drops the kernel's partial ones (dataplane-notes: LB and OVS on one VNI). A
        machine's own interface is never changed."""
        if self.underlay_dev != "lo" and links.link_exists(self.node_ns, self.underlay_dev):
            links.disable_tx_checksum(self.node_ns, self.underlay_dev)

    def configurations(self) -> dict[str, Any]:
        return {"bridge_mappings": {}, "interface_mappings": dict(self.physical_interfaces),
                "tunneling_ip": self.local_ip, "tunnel_types": ["vxlan"]}

    def realises(self, network: Mapping[str, Any]) -> bool:
        return network.get("provider:network_type") in l2.BRIDGED_TYPES

    def reconcile(self, state: Mapping[str, Any]) -> driver.Wired:
        try:
            actions, have = reconcile(self.node_ns, state["ports"], state["networks"], self.local_ip,
                                      state["remote_vteps"], self.underlay_dev, self.physical_interfaces)
        except L2Incomplete as exc:  # the rest is wired: its ports are ACTIVE, the failed links' not
            if exc.have is not None:
                exc.wired = driver.Wired(ports=_wired(state, exc.have, exc.failed))
            raise
        return driver.Wired(actions=len(actions), ports=_wired(state, have, {}))

    def plug(self, network: Mapping[str, Any]) -> BridgePlug:
        return BridgePlug(self.node_ns, bridge_name(str(network["id"])))

    def firewall(self, retries: Retries) -> NftFirewall:
        return NftFirewall(self.node_ns, self.state_dir, retries, firewall.PER_NETWORK)


def _wired(state: Mapping[str, Any], have: L2State, failed: Mapping[str, str]) -> set[str]:
    """Ports whose tap was found (and so wired by this pass), unless its own link failed."""
    taps = {name for name, link in have.links.items() if link.kind == TAP and name not in failed}
    return {str(p["id"]) for p in state["ports"] if tap_name(str(p["id"])) in taps}
