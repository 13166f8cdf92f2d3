"""The Linux-bridge L2 agent's kernel shell for one host namespace: read our links, apply actions, reconcile.

``read_actual`` reports the links ``kernel.names.is_ours`` accepts in the shape
:mod:`neutrino.agent.l2.state` defines; ``apply`` carries out its typed actions with the
idempotent ``kernel.links`` verbs; ``reconcile`` is desired -> read -> diff -> apply. Links
that are not ours (the underlay, ``lo``, the host's own bridges) are never reported, so the
diff never touches them; ``kernel.links`` refuses them as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from neutrino.agent.l2 import state as l2
from neutrino.agent.l2.state import BRIDGE, PHYS, TAP, VXLAN, Action, L2State, Link
from neutrino.kernel import KernelError, linkdump, links
from neutrino.kernel.names import is_ours

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


class L2Incomplete(KernelError):
    """Some actions failed; every other one was carried out. ``failed`` names the links they were for."""

    def __init__(self, ns: str | None, failures: dict[str, str], have: L2State | None = None) -> None:
        super().__init__("apply L2", ns or "host", detail="; ".join(f"{k}: {v}" for k, v in sorted(failures.items())))
        self.failed = failures
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
