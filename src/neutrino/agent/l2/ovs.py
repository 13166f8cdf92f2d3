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
nothing: until this driver's firewall hook holds its rules, a guarded port sits on the dead
VLAN (4095), which br-int drops (see ``OvsFirewall``).

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

from neutrino.agent.l2 import driver
from neutrino.agent.l2 import ovs_flows as flows
from neutrino.agent.retry import Retries
from neutrino.kernel import KernelError, linkdump, links, names, ovs, procs
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


class OvsFirewall:
    """The security-group hook of the OVS driver. Not realised yet with ``ct()`` flows: every
    guarded port (port security on, not the network's own) is kept closed, on the dead VLAN,
    and reported as failed, so that no port passes traffic its groups would not allow."""

    REASON = "security groups are not enforced by the openvswitch driver yet; disable port security to use it"

    def __init__(self, retries: Retries) -> None:
        self.retries = retries
        self.closed: set[str] = set()

    def apply(self, state: Mapping[str, Any], verify: bool) -> bool:
        closed = {str(p["id"]) for p in state["ports"] if _guarded(p)}
        for port in state["ports"]:
            key = f"port:{port['id']}"
            if str(port["id"]) in closed:
                self.retries.failed(key, f"firewall: {self.REASON}", timed=False)
            else:
                self.retries.succeeded(key)
        self.retries.keep_only((f"port:{p['id']}" for p in state["ports"]), "port:")
        changed = closed != self.closed
        self.closed = closed
        return changed


def _guarded(port: Mapping[str, Any]) -> bool:
    owner = str(port.get("device_owner") or "")
    return bool(port.get("port_security_enabled", True)) and not owner.startswith("network:")


class OvsDriver:
    """Open vSwitch on one host namespace."""

    agent_type = OVS_AGENT

    def __init__(self, node_ns: str, state_dir: Path, local_ip: str, underlay_dev: str,
                 physical_interfaces: Mapping[str, str],
                 tunnel_types: Iterable[str] = flows.TUNNEL_TYPES) -> None:
        self.node_ns = node_ns
        self.state_dir = Path(state_dir)
        self.local_ip = local_ip
        self.underlay_dev = underlay_dev
        self.physical_interfaces = physical_interfaces  # physnet -> interface in node_ns (may grow at start)
        self.tunnel_types = tuple(t for t in flows.TUNNEL_TYPES if t in set(tunnel_types))
        self.switch = ovs.OvsInstance(node_ns, run_dir(node_ns))
        self._firewall: OvsFirewall | None = None
        self._ready = False

    # ------------------------------------------------------------ the frame's interface

    def start(self) -> None:
        """Our OVS and its fixed bridges: br-int, br-tun with its patch pair, br-<physnet> per
        mapping; idempotent (a full resync calls it again and repairs what went missing)."""
        self.switch.start()
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
                "ovs_hybrid_plug": False, "l2_population": True, "arp_responder": False,
                "enable_distributed_routing": False, "firewall_driver": "none (guarded ports closed)"}

    def realises(self, network: Mapping[str, Any]) -> bool:
        kind = network.get("provider:network_type")
        if kind in flows.PHYSICAL_TYPES:
            return network.get("provider:physical_network") in self.physical_interfaces
        return kind == "local" or kind in self.tunnel_types

    def plug(self, network: Mapping[str, Any]) -> OvsPlug:
        return OvsPlug(self.node_ns, self.switch)

    def firewall(self, retries: Retries) -> OvsFirewall:
        self._firewall = OvsFirewall(retries)
        return self._firewall

    def reconcile(self, state: Mapping[str, Any]) -> driver.Wired:
        if not self._ready:
            self.start()
        networks: Mapping[str, Mapping[str, Any]] = state["networks"]
        ports = [p for p in state["ports"] if p["network_id"] in networks and self.realises(networks[p["network_id"]])]
        current = {p.name: p for p in self.switch.ports(INTEGRATION)}
        vlans = flows.assign_local_vlans({str(p["network_id"]) for p in ports}, self._existing_vlans(current, ports))
        present = {link.name for link in linkdump.links(self.node_ns)}
        closed = self._firewall.closed if self._firewall is not None else {str(p["id"]) for p in ports}
        specs, wired = [], set()
        for port in ports:
            tap, pid = tap_name(str(port["id"])), str(port["id"])
            if tap not in present:
                continue  # not plugged yet: its link event wakes the next pass
            open_ = port["admin_state_up"] and pid not in closed
            specs.append(_instance_port(tap, port, vlans[str(port["network_id"])] if open_ else flows.DEAD_VLAN))
            wired.add(pid)
        actions = int(self.switch.ensure_ports(INTEGRATION, specs))
        wanted = {s.name for s in specs}
        stale = [name for name, p in current.items() if p.external_ids.get("iface-id") and name not in wanted]
        actions += int(self.switch.delete_ports(INTEGRATION, stale))
        nets = self._networks(state, ports, vlans, wired)
        actions += self._tunnels(nets)
        actions += self._flows(nets)
        return driver.Wired(actions=actions, ports=wired)

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
            local = tuple(flows.LocalPort(ofports[tap_name(str(p["id"]))], str(p["mac_address"]),
                                          port_security=bool(p.get("port_security_enabled", True)),
                                          allowed_macs=tuple(str(a["mac_address"]) for a in
                                                             p.get("allowed_address_pairs") or ()
                                                             if a.get("mac_address")))
                          for p in ports if str(p["network_id"]) == net_id and str(p["id"]) in wired
                          and tap_name(str(p["id"])) in ofports)
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

    def _flows(self, nets: list[flows.NetworkState]) -> int:
        ports = self.switch.ports()
        by_bridge: dict[str, dict[str, int]] = {}
        for p in ports:
            if p.ofport is not None:
                by_bridge.setdefault(p.bridge, {})[p.name] = p.ofport
        tunnels: dict[str, dict[str, int]] = {}
        for p in ports:
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
        rendered = flows.render(host)
        for problem in rendered.problems:
            LOG.warning("ovs on %s: %s", self.node_ns, problem)
        changed = 0
        for bridge in sorted(rendered.flows):
            changed += int(self.switch.replace_flows(bridge, rendered.text(bridge),
                                                     keep_cookies=(flows.LEARNED_COOKIE,)))
        return changed

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
