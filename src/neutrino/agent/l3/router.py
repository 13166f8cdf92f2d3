"""One router made real: the ``qrouter-<id>`` namespace, its qr-/qg- veths, addresses, routes, floating IPs and NAT.

``RouterNamespace.apply`` reconciles the namespace with the router as the API shows it and
says whether anything changed; applying the same state again changes nothing. Each port is
a veth: ``qr-``/``qg-<port[:11]>`` (with the port's MAC) inside the router namespace and
``tap<port[:11]>`` attached to the network where the L2 driver says (a
``Plug`` per network). Forwarding is switched on inside the router namespace only.
Desired state comes in as API dicts:

* interfaces and the gateway port: ``id``, ``mac_address``, ``network_id``, ``fixed_ips``
  of ``{ip_address, cidr | prefixlen}``; the gateway port's fixed IP also carries the
  external subnet's ``gateway_ip`` (the default route).
* the router: ``external_gateway_info`` (``enable_snat``, ``external_fixed_ips``) and ``routes``
  (``destination``, ``nexthop``); floating IPs: ``floating_ip_address``, ``fixed_ip_address``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from neutrino.agent.l2.driver import Plug
from neutrino.agent.l3 import nat
from neutrino.kernel import links, netns, nft
from neutrino.kernel.names import qg_name, qr_name, qrouter_ns, tap_name

Port = Mapping[str, Any]
OWNED_LINK_PREFIXES = ("qr-", "qg-")
DEFAULT_ROUTE = "0.0.0.0/0"


@dataclass(frozen=True)
class RouterState:
    """Everything one router needs on this host, as the server describes it."""

    router: Mapping[str, Any]
    interfaces: Sequence[Port] = ()
    gateway_port: Port | None = None
    floating_ips: Sequence[Mapping[str, Any]] = ()
    plugs: Mapping[str, Plug] = field(default_factory=dict)  # network_id -> Plug
    metadata_port: int | None = None  # redirect 169.254.169.254:80 from qr- to the proxy on this port


def port_addresses(port: Port) -> list[str]:
    """The port's IPv4 fixed IPs as ``ip/prefixlen`` of their subnets, sorted."""
    out = []
    for fixed in port.get("fixed_ips") or ():
        ip = ipaddress.ip_address(str(fixed["ip_address"]))
        plen = fixed.get("prefixlen")
        plen = int(plen) if plen is not None else ipaddress.ip_network(str(fixed["cidr"]), strict=False).prefixlen
        if ip.version == 4:
            out.append(f"{ip}/{plen}")
    return sorted(out)


def desired_routes(state: RouterState) -> dict[str, tuple[str | None, str | None]]:
    """dst CIDR -> (gateway, device): the default route out of qg, then the router's extra routes."""
    routes: dict[str, tuple[str | None, str | None]] = {}
    for extra in state.router.get("routes") or ():
        dst = ipaddress.ip_network(str(extra["destination"]), strict=False)
        if dst.version == 4:
            routes[str(dst)] = (str(extra["nexthop"]), None)
    if state.gateway_port is not None:
        gateways = [str(f["gateway_ip"]) for f in state.gateway_port.get("fixed_ips") or () if f.get("gateway_ip")
                    and ipaddress.ip_address(str(f["gateway_ip"])).version == 4]
        if gateways:
            routes[DEFAULT_ROUTE] = (gateways[0], qg_name(str(state.gateway_port["id"])))
    return routes


def _strip_handles(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Handles are renumbered by every replacement; the rest is what the table means.
    return [{kind: {k: v for k, v in body.items() if k != "handle"} for kind, body in o.items()} for o in objects]


class RouterNamespace:
    """The kernel side of one router; ``prefix`` lets tests keep the namespace among their own."""

    def __init__(self, router_id: str, prefix: str = "") -> None:
        self.router_id = router_id
        self.namespace = prefix + qrouter_ns(router_id)
        self._nat_applied: tuple[str, list[dict[str, Any]]] | None = None  # (script, table read back)
        self._applied: RouterState | None = None

    def apply(self, state: RouterState, verify: bool = True) -> bool:
        """Make the namespace match ``state``; True if anything changed.

        With ``verify`` false, a state equal to the one this object last applied is trusted to
        still be in place (event-driven passes); full resyncs verify everything.
        """
        if not verify and self._applied == state:
            return False
        self._applied = None
        changed = self._apply(state)
        self._applied = state
        return changed

    def _apply(self, state: RouterState) -> bool:
        ns = self.namespace
        changed = netns.ensure_namespace(ns)
        changed |= netns.set_sysctl(ns, "net.ipv4.ip_forward", 1)
        wanted: dict[str, Port] = {qr_name(str(p["id"])): p for p in state.interfaces}
        if state.gateway_port is not None:
            wanted[qg_name(str(state.gateway_port["id"]))] = state.gateway_port
        changed |= self._remove_links(set(wanted))
        fips = [f"{fip}/32" for fip, _ in nat.floating_pairs(state.floating_ips)]
        for dev, port in sorted(wanted.items()):
            changed |= self._plug(dev, port, state.plugs[str(port["network_id"])])
            addr_changed, added = self._addresses(dev, port_addresses(port) + (fips if dev.startswith("qg-") else []))
            for cidr in sorted(set(added) & set(fips)):
                links.gratuitous_arp(ns, dev, cidr.split("/")[0])  # neighbours learn the FIP's new home now
            changed |= addr_changed
        changed |= self._routes(desired_routes(state))
        changed |= self._nat(nat.render(state.router, state.gateway_port, state.interfaces, state.floating_ips,
                                        metadata_port=state.metadata_port))
        return changed

    def teardown(self) -> bool:
        """Remove the namespace; each veth takes its host-side tap along. False if nothing was there."""
        if not netns.namespace_exists(self.namespace):
            return False
        self._remove_links(set())  # explicit, so the taps on the bridges go even if a link outlives the ns
        self._nat_applied = None
        self._applied = None
        return netns.remove_namespace(self.namespace)

    def _remove_links(self, keep: set[str]) -> bool:
        stale = [link.name for link in links.list_links(self.namespace)
                 if link.name.startswith(OWNED_LINK_PREFIXES) and link.name not in keep]
        return any([links.remove_link(self.namespace, name) for name in stale])

    def _plug(self, dev: str, port: Port, plug: Plug) -> bool:
        tap = tap_name(str(port["id"]))
        changed = links.ensure_veth(plug.namespace, tap, self.namespace, dev, mac_b=str(port["mac_address"]))
        changed |= plug.attach(tap, port, peer=(self.namespace, dev))
        return links.set_up(self.namespace, dev) | changed

    def _addresses(self, dev: str, wanted: list[str]) -> tuple[bool, list[str]]:
        """Reconcile the IPv4 addresses of ``dev``: (anything changed, the addresses added)."""
        current = {c for c in links.list_addresses(self.namespace, dev) if ipaddress.ip_interface(c).version == 4}
        removed = [links.remove_address(self.namespace, dev, c) for c in sorted(current - set(wanted))]
        added = [c for c in wanted if links.add_address(self.namespace, dev, c)]
        return bool(added) or any(removed), added

    def _routes(self, wanted: dict[str, tuple[str | None, str | None]]) -> bool:
        current = [r for r in links.list_routes(self.namespace) if r.proto != links.RTPROT_KERNEL]
        changed = any([links.remove_route(self.namespace, r.dst) for r in current if r.dst not in wanted])
        for dst, (gateway, dev) in sorted(wanted.items()):
            changed |= links.ensure_route(self.namespace, dst, gateway, dev)
        return changed

    def _nat(self, script: str) -> bool:
        now = self._read_nat()
        if self._nat_applied is not None and self._nat_applied == (script, now):
            return False
        nft.apply(self.namespace, script)
        after = self._read_nat()
        self._nat_applied = (script, after)
        return after != now

    def _read_nat(self) -> list[dict[str, Any]]:
        if (nat.FAMILY, nat.NAT_TABLE) not in nft.list_tables(self.namespace):
            return []
        return _strip_handles(nft.read_table(self.namespace, nat.FAMILY, nat.NAT_TABLE))
