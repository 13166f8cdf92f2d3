"""The Open vSwitch L2 driver, laid out as Neutron's openvswitch agent: br-int, br-tun, br-<physnet>.

Each host has its own OVS (``kernel.ovs.OvsInstance``, userspace datapath, run directory
``/run/neutrino/ovs/<node namespace>``). Ports are OVS ports of ``br-int`` carrying their
network's local VLAN as ``tag``; ``br-tun`` holds one VXLAN/GRE/Geneve port per remote host
that shares a network with this one, and the tables that turn local VLANs into tunnel ids and
back; ``br-<physnet>`` joins br-int by a patch pair and carries flat and VLAN networks to the
physical interface mapped to that physnet. Every pass reads OVSDB, sets ports and tunnels in
one transaction each, and replaces each bridge's flows in one bundle (only differences are
touched), so a restarted agent or ovs-vswitchd converges in one pass.

Taps are made by whoever plugs the VIF (compute, DHCP, L3): an instance's tap appears in the
node namespace and the pass that its link event wakes adds it to br-int with Neutron's
external_ids (``iface-id``, ``attached-mac``). A port whose filter is not in place passes
nothing: a guarded port (port security on, not the network's own) sits on the dead VLAN (4095)
with its frames dropped until its conntrack flows (``ovs_firewall``, written with br-int's other
flows in the same bundle) and its ``no-flood`` setting are in place; only then does it get its
network's tag. One that cannot be filtered stays there, reported and retried (``OvsFirewall``).

With ``hybrid`` (``[agent] firewall_driver = nftables``, Neutron's iptables_hybrid layout) the
conntrack flows give way to the nftables firewall: each instance's tap sits on a Linux bridge of
its own, ``qbr<port[:11]>``, joined to br-int by a veth pair ``qvb<port[:11]>`` (on the qbr) /
``qvo<port[:11]>`` (the OVS port, with the external_ids and tag the tap would have had). The
nftables firewall filters on the qbr exactly as on the Linux-bridge driver's brq bridges (a
bridge per port, so a conntrack zone per port); a tap joins its qbr only while the firewall's
tables are in place, and a tap the tables do not name passes nothing there. The network's own
ports (DHCP, router) stay on br-int directly, unfiltered, as in Neutron. A port whose tap goes
loses its qbr/qvb/qvo; so does every hybrid device no port wants (a host switched back to the
conntrack firewall).

Userspace tunnels leave from the IP stack of OVS itself: the underlay address must sit on an
internal port (``br-phy``) whose bridge has the underlay interface as a port. The driver
moves it there only when the underlay interface lives in the node namespace (a host of
``neutrino lab``, which neutrino made); a machine's own interface is never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neutrino.agent.l2 import driver, firewall
from neutrino.agent.l2 import ovs_firewall as fw
from neutrino.agent.l2 import ovs_flows as flows
from neutrino.agent.l2.nft_host import NftFirewall
from neutrino.agent.retry import Retries, fingerprint
from neutrino.kernel import KernelError, TimedOut, linkdump, links, names, ovs, procs
from neutrino.kernel.names import tap_name
from neutrino.messages import OVS_AGENT

LOG = logging.getLogger(__name__)
INTEGRATION, TUNNEL, UNDERLAY = names.OVS_INTEGRATION_BRIDGE, names.OVS_TUNNEL_BRIDGE, "br-phy"
PATCH_INT, PATCH_TUN = names.OVS_PATCH_INT, names.OVS_PATCH_TUN  # on br-tun and br-int
DATAPATH = "netdev"


def run_dir(node_ns: str) -> Path:
    """Where the OVS of one node namespace keeps its database, sockets and logs."""
    return procs.run_path("ovs", node_ns)


@dataclass(frozen=True)
class OvsPlug:
    """A network's DHCP or router port joins br-int; the driver's next pass gives it its tag."""

    namespace: str
    switch: ovs.OvsInstance

    def attach(self, dev: str, port: Mapping[str, Any], peer: tuple[str, str] | None = None) -> bool:
        """Add ``dev`` to br-int on the dead VLAN (the pass that follows gives it its network's tag;
        one already there keeps its tag). Checksum offload goes off on both ends of the veth: the
        userspace datapath forwards partial checksums that the receiver then drops (gotcha 1)."""
        changed = False
        if dev not in {p.name for p in self.switch.ports(INTEGRATION)}:
            changed = self.switch.ensure_ports(INTEGRATION, [_instance_port(dev, port, flows.DEAD_VLAN)])
        changed |= links.disable_tx_checksum(self.namespace, dev)
        if peer is not None:
            changed |= links.disable_tx_checksum(*peer)
        return links.set_up(self.namespace, dev) | changed


def _patches(physnet: str) -> tuple[str, str]:
    """(on br-int, on br-<physnet>): Neutron's ``int-br-X`` / ``phy-br-X``."""
    bridge = names.ovs_physical_bridge(physnet)
    return names.ovs_int_patch(bridge), names.ovs_phys_patch(bridge)


def _instance_port(dev: str, port: Mapping[str, Any], tag: int) -> ovs.PortSpec:
    return ovs.instance_port(dev, tag, str(port["id"]), str(port["mac_address"]))


def _usable(port: Mapping[str, Any]) -> bool:
    """Whether the port's values can be written into OVSDB and flows (a MAC past the API cannot):
    a port that cannot sits on the dead VLAN with its frames dropped, hurting only itself."""
    try:
        _instance_port(tap_name(str(port["id"])), port, flows.DEAD_VLAN)
    except (KeyError, TypeError, ValueError):
        return False
    return _local_port(1, port) is not None


def _dead_port(dev: str, port: Mapping[str, Any]) -> ovs.PortSpec | None:
    """The spec of an unusable port: the dead VLAN and only the external_ids that can be written."""
    try:
        return ovs.PortSpec(dev, "", flows.DEAD_VLAN, external_ids={"iface-id": str(port["id"])})
    except ValueError:
        return None


def _local_port(ofport: int, port: Mapping[str, Any]) -> flows.LocalPort | None:
    try:
        pairs = port.get("allowed_address_pairs") or ()
        return flows.LocalPort(ofport, str(port["mac_address"]),
                               port_security=bool(port.get("port_security_enabled", True)),
                               allowed_macs=tuple(str(a["mac_address"]) for a in pairs if a.get("mac_address")))
    except (KeyError, TypeError, ValueError):
        return None


class OvsFirewall:
    """The security-group hook of the OVS driver: conntrack flows on br-int (``ovs_firewall``).

    ``apply`` (before the L2 step) validates and compiles the host's filters and records, per
    port, whether it can be filtered; the driver's ``reconcile`` then places the filters at
    their ofports and writes them with br-int's other flows in one bundle. A guarded port
    whose filter cannot be written (a value past the API, flows ovs-ofctl refuses) stays on
    the dead VLAN with its frames dropped, is reported under ``port:<id>`` and retried: when
    its values change, or after its back-off when ovs-ofctl refused it.
    """

    def __init__(self, retries: Retries) -> None:
        self.retries = retries
        self.compiled = fw.Compiled()
        self.closed: set[str] = set()  # guarded ports kept on the dead VLAN
        self.refused: dict[str, str] = {}  # port -> why ovs-ofctl refused its flows (timed retries)
        self._ports: dict[str, Mapping[str, Any]] = {}

    def apply(self, state: Mapping[str, Any], verify: bool) -> bool:
        """Compile the filters; True when they differ from the last pass's (reconcile writes them)."""
        ports = list(state["ports"])
        self._ports = {str(p["id"]): p for p in ports}
        self.refused = {pid: why for pid, why in self.refused.items() if pid in self._ports}
        waiting = {pid for pid in self.refused if not self.retries.due(f"port:{pid}", fingerprint(self._ports[pid]))}
        compiled = fw.compile_host(ports, state["security_groups"], state["members"], closed=waiting)
        for port in ports:
            pid, key = str(port["id"]), f"port:{port['id']}"
            if pid in waiting or (pid in self.refused and pid not in compiled.failed_ports):
                continue  # refused by ovs-ofctl: succeeds once its flows are in (``accepted``)
            if pid in compiled.failed_ports:
                self.retries.failed(key, f"firewall: {compiled.failed_ports[pid]}", fingerprint(port), timed=False)
            else:
                self.retries.succeeded(key)
        self.retries.keep_only((f"port:{p['id']}" for p in ports), "port:")
        for rule_id, why in compiled.failed_rules.items():
            self.retries.failed(f"rule:{rule_id}", why, timed=False)
        self.retries.keep_only((f"rule:{r}" for r in compiled.failed_rules), "rule:")
        changed = compiled != self.compiled
        self.compiled = compiled
        self.closed = set(compiled.failed_ports)
        return changed

    def accepted(self, port_ids: Iterable[str]) -> None:
        """These ports' flows are in br-int: a refusal of theirs is over."""
        for pid in port_ids:
            if self.refused.pop(pid, None) is not None:
                self.retries.succeeded(f"port:{pid}")

    def refuse(self, port_id: str, why: str) -> None:
        """ovs-ofctl refused this port's flows: close it, retry after its back-off."""
        self.refused[port_id] = why
        self.closed.add(port_id)
        self.compiled.filters.pop(port_id, None)
        port = self._ports.get(port_id, {})
        self.retries.failed(f"port:{port_id}", f"firewall: {why}", fingerprint(port), timed=True)


class OvsDriver:
    """Open vSwitch on one host namespace."""

    agent_type = OVS_AGENT

    def __init__(self, node_ns: str, state_dir: Path, local_ip: str, underlay_dev: str,
                 physical_interfaces: Mapping[str, str],
                 tunnel_types: Iterable[str] = flows.TUNNEL_TYPES, hybrid: bool = False) -> None:
        self.node_ns = node_ns
        self.state_dir = Path(state_dir)
        self.local_ip = local_ip
        self.underlay_dev = underlay_dev
        self.physical_interfaces = physical_interfaces  # physnet -> interface in node_ns (may grow at start)
        self.tunnel_types = tuple(t for t in flows.TUNNEL_TYPES if t in set(tunnel_types))
        self.switch = ovs.OvsInstance(node_ns, run_dir(node_ns))
        self.hybrid = hybrid  # instances' taps on their own qbr, filtered there by nftables
        self._firewall: OvsFirewall | None = None
        self._nft: NftFirewall | None = None
        self._devs: dict[str, str] = {}  # port -> its device on br-int this pass (tap or qvo)
        self._unusable: set[str] = set()  # ports whose values cannot be written (kept dead)
        self._zones: dict[str, int] = {}  # network -> local VLAN (= its conntrack zone) last pass
        self._rendered: tuple[object, list[flows.Flow]] | None = None  # (inputs, firewall flows)
        self._ready = False

    # ------------------------------------------------------------ the frame's interface

    def start(self) -> None:
        """Our OVS and its fixed bridges: br-int, br-tun with its patch pair, br-<physnet> per
        mapping; idempotent (a full resync calls it again and repairs what went missing, flows
        included: the next pass compares them with what the switch has)."""
        self.switch.start()
        self.switch.forget_flows()
        self.switch.ensure_bridge(INTEGRATION, DATAPATH)
        self.switch.ensure_bridge(TUNNEL, DATAPATH)
        self.switch.ensure_ports(INTEGRATION, [ovs.patch_port(PATCH_TUN, PATCH_INT)])
        self.switch.ensure_ports(TUNNEL, [ovs.patch_port(PATCH_INT, PATCH_TUN)])
        for physnet, iface in sorted(self.physical_interfaces.items()):
            bridge = names.ovs_physical_bridge(physnet)
            on_int, on_phys = _patches(physnet)
            self.switch.ensure_bridge(bridge, DATAPATH)
            self.switch.ensure_ports(INTEGRATION, [ovs.patch_port(on_int, on_phys)])
            self.switch.ensure_ports(bridge, [ovs.patch_port(on_phys, on_int), ovs.PortSpec(iface)])
        self._underlay()
        self._ready = True

    def configurations(self) -> dict[str, Any]:
        return {"bridge_mappings": {p: names.ovs_physical_bridge(p) for p in sorted(self.physical_interfaces)},
                "tunnel_types": list(self.tunnel_types), "tunneling_ip": self.local_ip,
                "integration_bridge": INTEGRATION, "tunnel_bridge": TUNNEL, "datapath_type": DATAPATH,
                "ovs_hybrid_plug": self.hybrid, "l2_population": True, "arp_responder": False,
                "enable_distributed_routing": False, "firewall_driver": "nftables" if self.hybrid else "openvswitch"}

    def realises(self, network: Mapping[str, Any]) -> bool:
        kind = network.get("provider:network_type")
        if kind in flows.PHYSICAL_TYPES:
            return network.get("provider:physical_network") in self.physical_interfaces
        return kind == "local" or kind in self.tunnel_types

    def plug(self, network: Mapping[str, Any]) -> OvsPlug:
        return OvsPlug(self.node_ns, self.switch)

    def firewall(self, retries: Retries) -> OvsFirewall | NftFirewall:
        if self.hybrid:
            self._nft = NftFirewall(self.node_ns, self.state_dir, retries, firewall.PER_PORT)
            return self._nft
        self._firewall = OvsFirewall(retries)
        return self._firewall

    def reconcile(self, state: Mapping[str, Any]) -> driver.Wired:
        """Ports, tunnels and flows. A guarded port opens (gets its network's tag) only after its
        filter's flows and its no-flood setting are in place: until then it sits on the dead VLAN.
        OVSDB's ports are read once per pass, and again after each change the pass makes."""
        with self.switch.snapshot():
            return self._reconcile(state)

    def _reconcile(self, state: Mapping[str, Any]) -> driver.Wired:
        if not self._ready:
            self.start()
        networks: Mapping[str, Mapping[str, Any]] = state["networks"]
        ports = [p for p in state["ports"] if p["network_id"] in networks and self.realises(networks[p["network_id"]])]
        current = {p.name: p for p in self.switch.ports(INTEGRATION)}
        existing = self._existing_vlans(current, ports)
        vlans = flows.assign_local_vlans({str(p["network_id"]) for p in ports}, existing)
        for net_id, vlan in vlans.items():
            if existing.get(net_id) != vlan and self._zones.get(net_id) != vlan:
                self._flush_zone(vlan)  # a VLAN (= conntrack zone) given to this network now
        self._zones = dict(vlans)
        present = {link.name: link for link in linkdump.links(self.node_ns)}
        plugged = [p for p in ports if tap_name(str(p["id"])) in present]  # the others: their link event wakes us
        failures: dict[str, str] = {}
        hybrid_devs: set[str] = set()  # the qbr and qvb of every instance port whose tap is here
        self._devs = {str(p["id"]): tap_name(str(p["id"])) for p in plugged}
        if self.hybrid:
            plugged = self._hybrid_plug(plugged, present, failures, hybrid_devs)
        wired = {str(p["id"]) for p in plugged}
        filters = self._firewall.compiled.filters if self._firewall is not None else {}

        unusable = self._unusable = {str(p["id"]) for p in plugged if not _usable(p)}

        def tags() -> dict[str, int]:
            closed = self._closed(wired) | unusable
            return {str(p["id"]): vlans[str(p["network_id"])] if p["admin_state_up"] and str(p["id"]) not in closed
                    else flows.DEAD_VLAN for p in plugged}

        def spec(port: Mapping[str, Any], tag: int) -> ovs.PortSpec | None:
            dev = self._devs[str(port["id"])]
            return _dead_port(dev, port) if str(port["id"]) in unusable else _instance_port(dev, port, tag)

        wanted = tags()
        first = []  # a guarded port not open yet waits on the dead VLAN for its flows
        for port in plugged:
            pid = str(port["id"])
            have = current.get(self._devs[pid])
            waits = pid in filters and (have is None or have.tag != wanted[pid])
            first.append(spec(port, flows.DEAD_VLAN if waits else wanted[pid]))
        actions = int(self.switch.ensure_ports(INTEGRATION, [s for s in first if s is not None]))
        names_ = {s.name for s in first if s is not None}
        stale = [name for name, p in current.items() if p.external_ids.get("iface-id") and name not in names_]
        actions += int(self.switch.delete_ports(INTEGRATION, stale))
        nets = self._networks(state, plugged, vlans, wired)
        actions += self._tunnels(nets)
        actions += self._flows(nets, plugged, vlans)
        wanted = tags()  # the flows may have closed a port ovs-ofctl refused
        final = [spec(p, wanted[str(p["id"])]) for p in plugged]
        actions += int(self.switch.ensure_ports(INTEGRATION, [s for s in final if s is not None]))
        actions += self._remove_hybrid(present, hybrid_devs)
        if failures:
            raise driver.L2Incomplete(self.node_ns, failures, driver.Wired(actions=actions, ports=wired))
        return driver.Wired(actions=actions, ports=wired)

    def _closed(self, wired: set[str]) -> set[str]:
        """The ports br-int keeps on the dead VLAN for want of their filter. With hybrid plugging
        none: the filter sits on each port's qbr, where a tap without its rules passes nothing.
        Otherwise those the conntrack firewall could not filter, and every port before it exists."""
        if self.hybrid:
            return set()
        return self._firewall.closed if self._firewall is not None else set(wired)

    # ------------------------------------------------------------ hybrid plugging

    def _hybrid_plug(self, ports: list[Mapping[str, Any]], present: Mapping[str, linkdump.DumpedLink],
                     failures: dict[str, str], devices: set[str]) -> list[Mapping[str, Any]]:
        """Put each instance port's tap on its own qbr, joined to br-int by qvb/qvo; the ports
        ready for br-int (their qvo, or for the network's own ports their tap). A port that
        cannot be plugged (an id that cannot name its devices, a kernel error, the firewall's
        tables missing) goes to ``failures`` and stays off br-int: its tap passes nothing.
        ``devices`` gets the qbr and qvb of each, plugged or not (they stay for the next try)."""
        ready = []
        filtered: bool | None = None  # asked once a pass, and only when a tap needs its bridge
        for port in ports:
            pid = str(port["id"])
            if firewall.is_trusted(port):
                ready.append(port)  # DHCP and router ports: on br-int directly, as in Neutron
                continue
            tap = tap_name(pid)
            try:
                qbr, qvb, qvo = names.hybrid_names(pid)
                devices |= {qbr, qvb}
                if present[tap].master != qbr and filtered is None:
                    filtered = self._nft is not None and self._nft.in_place()
                self._plug_one(tap, qbr, qvb, qvo, present, bool(filtered))
            except (KernelError, OSError, ValueError) as exc:
                failures[tap] = f"hybrid plug of port {pid}: {exc}"
                continue
            self._devs[pid] = qvo
            ready.append(port)
        return ready

    def _plug_one(self, tap: str, qbr: str, qvb: str, qvo: str, present: Mapping[str, linkdump.DumpedLink],
                  filtered: bool) -> None:
        """qbr up; the qvb/qvo veth with TX checksum offload off on both ends (the userspace
        datapath forwards partial checksums as they are: gotcha 1), qvb on qbr, both up; then the
        tap on qbr, only where the firewall's tables are in place. Reads ``present`` first, so a
        converged port costs no call."""
        ns = self.node_ns
        bridge, b_end, o_end = present.get(qbr), present.get(qvb), present.get(qvo)
        if bridge is None or bridge.kind != "bridge" or not bridge.up:
            links.ensure_bridge(ns, qbr)
            links.set_up(ns, qbr)
        if b_end is None or o_end is None or b_end.master != qbr:
            links.ensure_veth(ns, qvb, ns, qvo)
            links.disable_tx_checksum(ns, qvb)  # before qvb joins qbr: a joined qvb has it off
            links.disable_tx_checksum(ns, qvo)
            links.set_master(ns, qvb, qbr)
        if b_end is None or o_end is None or not b_end.up or not o_end.up:
            links.set_up(ns, qvb)
            links.set_up(ns, qvo)
        if present[tap].master != qbr:
            if not filtered:
                raise KernelError("hybrid plug", f"{ns}/{tap}",
                                  detail="the nftables tables are not in place: the tap stays off its bridge")
            links.set_master(ns, tap, qbr)
        if not present[tap].up:
            links.set_up(ns, tap)

    def _remove_hybrid(self, present: Mapping[str, linkdump.DumpedLink], kept: set[str]) -> int:
        """Remove the qbr and qvb (its qvo goes with it) of every port not plugged the hybrid way
        now: its tap went, its port went, or the host left hybrid plugging."""
        stale = [name for name in sorted(present) if name.startswith(("qbr", "qvb")) and names.is_our_link(name)
                 and name not in kept]
        return sum(int(links.remove_link(self.node_ns, name)) for name in stale)

    def _flush_zone(self, zone: int) -> None:
        """Forget the conntrack entries of a zone that now belongs to another network (or none)."""
        try:
            self.switch.appctl("dpctl/flush-conntrack", f"zone={int(zone)}")
        except KernelError as exc:
            LOG.warning("ovs on %s: could not flush conntrack zone %d: %s", self.node_ns, zone, exc)

    # ------------------------------------------------------------ parts of a pass

    @staticmethod
    def _existing_vlans(current: Mapping[str, ovs.PortInfo], ports: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Local VLANs read back from the tags of the ports already in br-int (a restarted
        agent keeps them, so nothing is rewired)."""
        network_of = {str(p["id"]): str(p["network_id"]) for p in ports}
        found: dict[str, int] = {}
        for info in current.values():
            net = network_of.get(info.external_ids.get("iface-id", ""))
            if net is not None and info.tag is not None and info.tag != flows.DEAD_VLAN:
                found.setdefault(net, info.tag)
        return found

    def _networks(self, state: Mapping[str, Any], ports: list[Mapping[str, Any]], vlans: Mapping[str, int],
                  wired: set[str]) -> list[flows.NetworkState]:
        ofports = self.switch.ofports(INTEGRATION)
        out = []
        for net_id, vlan in sorted(vlans.items()):
            net = state["networks"][net_id]
            kind = str(net["provider:network_type"])
            segment = flows.Segment(kind, net.get("provider:physical_network") or None,
                                    net.get("provider:segmentation_id"))
            local = tuple(lp for p in ports if str(p["network_id"]) == net_id and str(p["id"]) in wired
                          and self._devs.get(str(p["id"])) in ofports
                          and (lp := _local_port(ofports[self._devs[str(p["id"])]], p)) is not None)
            remote: dict[str, frozenset[str]] = {}
            if kind in flows.TUNNEL_TYPES:  # a 1.0 server sends no MACs: unknown unicast floods
                macs = state.get("remote_macs", {}).get(net_id, {})
                remote = {ip: frozenset(macs.get(ip, ())) for ip in state["remote_vteps"].get(net_id, ())}
            out.append(flows.NetworkState(net_id, segment, vlan, local, remote))
        return out

    def _tunnels(self, nets: list[flows.NetworkState]) -> int:
        """One tunnel port per (type, remote host) the networks need; the others go."""
        specs = [ovs.tunnel_port(names.ovs_tunnel_port(kind, ip), kind, ip, self.local_ip)
                 for kind, ip in sorted(flows.wanted_tunnels(nets))]
        wanted = {s.name: s for s in specs}
        have = [p.name for p in self.switch.ports(TUNNEL) if p.type in flows.TUNNEL_TYPES]
        changed = self.switch.ensure_ports(TUNNEL, wanted.values())
        return int(changed) + int(self.switch.delete_ports(TUNNEL, [n for n in have if n not in wanted]))

    def _placement(self, ports: list[Mapping[str, Any]], vlans: Mapping[str, int]
                   ) -> tuple[dict[str, fw.Placement], list[int]]:
        """Where each open guarded port's filter goes, and the ofports that must send nothing
        (ports on the dead VLAN: closed, admin down, or not placed)."""
        ofports = self.switch.ofports(INTEGRATION)
        fwall = self._firewall
        filters = fwall.compiled.filters if fwall is not None else {}
        closed = self._closed({str(p["id"]) for p in ports}) | self._unusable
        placed, dead = {}, []
        for port in ports:
            pid = str(port["id"])
            ofport = ofports.get(self._devs.get(pid, tap_name(pid)))
            if ofport is None:
                continue
            if not port["admin_state_up"] or pid in closed:
                dead.append(ofport)
            elif pid in filters:
                placed[pid] = fw.Placement(ofport, vlans[str(port["network_id"])])
        return placed, dead

    def _flows(self, nets: list[flows.NetworkState], ports: list[Mapping[str, Any]], vlans: Mapping[str, int]) -> int:
        ports_ = self.switch.ports()
        by_bridge: dict[str, dict[str, int]] = {}
        for p in ports_:
            if p.ofport is not None:
                by_bridge.setdefault(p.bridge, {})[p.name] = p.ofport
        tunnels: dict[str, dict[str, int]] = {}
        for p in ports_:
            if p.bridge == TUNNEL and p.type in flows.TUNNEL_TYPES and p.ofport is not None:
                tunnels.setdefault(p.type, {})[p.options["remote_ip"]] = p.ofport
        physical = {}
        for physnet in self.physical_interfaces:
            on_int, on_phys = _patches(physnet)
            int_of, phys_of = by_bridge.get(INTEGRATION, {}).get(on_int), by_bridge.get(
                names.ovs_physical_bridge(physnet), {}).get(on_phys)
            if int_of is not None and phys_of is not None:
                physical[physnet] = flows.PhysicalBridge(names.ovs_physical_bridge(physnet), phys_of, int_of)
        host = flows.HostState(tuple(nets), by_bridge.get(TUNNEL, {}).get(PATCH_INT), tunnels, physical)
        filters = self._firewall.compiled.filters if self._firewall is not None else {}
        placed, dead = self._placement(ports, vlans)
        # no-flood first: a restarted ovs-vswitchd forgot it, and flows without it would let
        # NORMAL flood copies to guarded ports past their ingress tables
        changed = self._flood(fw.flood_off(filters, placed))
        rendered = flows.render(host, extra={INTEGRATION: self._firewall_flows(filters, placed, dead)})
        for problem in rendered.problems:
            LOG.warning("ovs on %s: %s", self.node_ns, problem)
        for bridge in sorted(rendered.flows):
            try:
                changed += int(self.switch.replace_flows(bridge, rendered.text(bridge),
                                                         keep_cookies=(flows.LEARNED_COOKIE,)))
            except TimedOut:
                raise  # too slow, not refused: checking each port's flows alone would find nothing
            except KernelError:
                if bridge != INTEGRATION or not self._isolate(filters, placed):
                    raise  # br-int keeps its old flows: no port opened by this pass passes anything
                placed, dead = self._placement(ports, vlans)
                text = "".join(f"{flow}\n" for flow in flows.render(
                    host, extra={INTEGRATION: fw.render(filters, placed, dead)}).flows[INTEGRATION])
                changed += int(self.switch.replace_flows(bridge, text, keep_cookies=(flows.LEARNED_COOKIE,)))
        if self._firewall is not None:
            self._firewall.accepted(placed)
        return changed

    def _firewall_flows(self, filters: Mapping[str, fw.PortFilter], placed: Mapping[str, fw.Placement],
                        dead: list[int]) -> list[flows.Flow]:
        """fw.render, remembered for the same inputs: a host with a hundred ports in one remote
        group has some 1 800 firewall flows, and most passes change none of them."""
        key = (frozenset(filters.items()), frozenset(placed.items()), frozenset(dead))
        if self._rendered is None or self._rendered[0] != key:
            self._rendered = (key, fw.render(filters, placed, dead))
        return self._rendered[1]

    def _isolate(self, filters: Mapping[str, fw.PortFilter], placed: Mapping[str, fw.Placement]) -> bool:
        """ovs-ofctl refused br-int's flows: find the ports whose own flows it refuses and close
        them (the firewall retries them after a back-off). True when any was found."""
        found = False
        for pid, where in sorted(placed.items()):
            text = "".join(f"{flow}\n" for flow in fw.render({pid: filters[pid]}, {pid: where}))
            try:
                self.switch.check_flows(text)
            except KernelError as exc:
                assert self._firewall is not None
                self._firewall.refuse(pid, f"ovs-ofctl refused its flows: {exc}")
                found = True
        return found

    def _flood(self, off: set[int]) -> int:
        """NORMAL floods to every br-int port except the guarded ones (their copies of a
        broadcast go through their ingress tables instead). Read back every pass: a restarted
        ovs-vswitchd forgets these settings."""
        have = self.switch.no_flood(INTEGRATION)
        ofports = set(self.switch.ofports(INTEGRATION).values())
        changes = {**dict.fromkeys(off - have, False), **dict.fromkeys((have - off) & ofports, True)}
        self.switch.set_floods(INTEGRATION, changes)  # one OpenFlow session: a full resync sets hundreds
        return len(changes)

    def _underlay(self) -> None:
        """Userspace tunnels need the underlay address on an OVS internal port (``br-phy``)."""
        if not self.tunnel_types or self.underlay_dev == "lo" or self.local_ip.startswith("127."):
            return
        if not links.link_exists(self.node_ns, self.underlay_dev):
            raise KernelError("tunnel underlay", self.node_ns,
                              detail=f"{self.underlay_dev} is not in the node namespace; userspace tunnels need it "
                                     "there (its address moves to the OVS internal port br-phy)")
        self.switch.ensure_bridge(UNDERLAY, DATAPATH, fail_mode=None)
        self.switch.ensure_ports(UNDERLAY, [ovs.PortSpec(self.underlay_dev)])
        cidrs = [c for c in links.list_addresses(self.node_ns, self.underlay_dev)
                 if c.split("/")[0] == self.local_ip]
        for cidr in cidrs:
            links.remove_address(self.node_ns, self.underlay_dev, cidr)
            links.add_address(self.node_ns, UNDERLAY, cidr)
        if not any(c.split("/")[0] == self.local_ip for c in links.list_addresses(self.node_ns, UNDERLAY)):
            raise KernelError("tunnel underlay", self.node_ns,
                              detail=f"tunneling_ip {self.local_ip} is on neither {self.underlay_dev} nor {UNDERLAY}")
        links.set_up(self.node_ns, UNDERLAY)
        links.disable_tx_checksum(self.node_ns, self.underlay_dev)
