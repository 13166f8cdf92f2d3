"""The OpenFlow tables of br-int, br-tun and br-<physnet>, rendered from a typed desired state.

Pure: no I/O. The openvswitch L2 driver reads ofports from OVSDB, builds a ``HostState``
and hands each bridge's text to ``OvsInstance.replace_flows`` (one bundle per bridge, only
the differences are touched). The layout is Neutron's openvswitch agent's, so an operator's
``ovs-ofctl dump-flows`` reads the same:

br-int (local switching; instance ports carry their network's local VLAN as OVSDB ``tag``)
    0   dead VLAN 4095 dropped; per physnet ``int-br-X``: the segment's VLAN (or untagged for
        flat) becomes the local VLAN, anything else from it is dropped; a local port's frames
        get its local VLAN in reg6 and go through 25 (MAC anti-spoofing) with port security,
        to 60 without (a port the firewall guards goes to its tables instead, 71..82: see
        ``ovs_firewall``)
    23  canary: empty means ovs-vswitchd restarted and lost its flows
    25  a port's frames pass only with its own MAC as source
    60  NORMAL (MAC learning within each local VLAN)
br-tun
    0   from patch-int -> 2; from a tunnel port -> its type's table (3 gre, 4 vxlan, 6 geneve)
    2   unicast -> 20, multicast/broadcast -> 22
    3/4/6  tunnel id -> local VLAN, then 10
    10  learn the source MAC into 20, deliver to br-int
    20  unicast to MACs known on other hosts (pre-populated as l2population does); else 22
    22  flood to exactly the hosts that have a port on the network; else drop
br-<physnet>
    0   from ``phy-br-X``: local VLAN -> segment VLAN (vlan) or untagged (flat), NORMAL;
        other local VLANs dropped; everything else NORMAL

Local networks have no flow outside br-int, so their frames go nowhere else (br-tun and
the physical bridges drop local VLANs they do not know).

Every flow carries ``COOKIE`` ("neutrino" in ASCII); flows that br-tun learns carry
``LEARNED_COOKIE``. Values are validated where they enter (``__post_init__``): a MAC,
address or number that could produce another token never reaches the text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from neutrino import tokens

COOKIE = int.from_bytes(b"neutrino", "big")
LEARNED_COOKIE = int.from_bytes(b"neutrinL", "big")

MIN_VLAN, MAX_VLAN = 1, 4094
DEAD_VLAN = 4095
VID_PRESENT = 0x1000
MAX_OFPORT = 0xFFFFFEFF

TUNNEL_TYPES = ("gre", "vxlan", "geneve")
PHYSICAL_TYPES = ("flat", "vlan")
NETWORK_TYPES = ("local", *PHYSICAL_TYPES, *TUNNEL_TYPES)
SEGMENT_RANGES = {"vlan": (1, 4094), "vxlan": (1, 2**24 - 1), "geneve": (1, 2**24 - 1), "gre": (1, 2**32 - 1)}

# br-int (neutron_lib ovs_constants)
LOCAL_SWITCHING = 0
CANARY_TABLE = 23
MAC_SPOOF_TABLE = 25
TRANSIENT_TABLE = 60
REG_NET = "reg6"  # the local VLAN of a frame that entered from an access port
# br-tun
PATCH_LV_TO_TUN = 2
TUN_TABLE = {"gre": 3, "vxlan": 4, "geneve": 6}
LEARN_FROM_TUN = 10
UCAST_TO_TUN = 20
FLOOD_TO_TUN = 22

_BRIDGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
UNICAST = "00:00:00:00:00:00/01:00:00:00:00:00"
MULTICAST = "01:00:00:00:00:00/01:00:00:00:00:00"


class LocalVlansExhausted(Exception):
    """More networks on one host than local VLANs (1..4094)."""


def _mac(value: str) -> str:
    mac = tokens.mac(value)  # the whole value, so "…:01\n" never reaches the flow text
    if mac is None or int(mac[:2], 16) & 1:
        raise ValueError(f"not a unicast MAC address: {value!r}")
    return mac


def _ofport(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_OFPORT:
        raise ValueError(f"not an ofport: {value!r}")
    return value


def _vlan(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_VLAN <= value <= MAX_VLAN:
        raise ValueError(f"not a VLAN id: {value!r}")
    return value


def _ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


def _bridge(value: str) -> str:
    if not _BRIDGE.fullmatch(value):
        raise ValueError(f"not a bridge name: {value!r}")
    return value


@dataclass(frozen=True)
class Segment:
    """A network's segment as ML2 bound it: type, physical network, segmentation id."""

    network_type: str
    physical_network: str | None = None
    segmentation_id: int | None = None

    def __post_init__(self) -> None:
        kind = self.network_type
        if kind not in NETWORK_TYPES:
            raise ValueError(f"unknown network type {kind!r}")
        if (kind in PHYSICAL_TYPES) != (self.physical_network is not None) or self.physical_network == "":
            raise ValueError(f"{kind} segment with physical network {self.physical_network!r}")
        if kind in SEGMENT_RANGES:
            low, high = SEGMENT_RANGES[kind]
            seg = self.segmentation_id
            if isinstance(seg, bool) or not isinstance(seg, int) or not low <= seg <= high:
                raise ValueError(f"{kind} segmentation id {seg!r} outside {low}..{high}")
        elif self.segmentation_id is not None:
            raise ValueError(f"{kind} segment with segmentation id {self.segmentation_id}")


@dataclass(frozen=True)
class LocalPort:
    """A port of this host in br-int. ``port_security``: only its own MAC (and ``allowed_macs``,
    as allowed address pairs) may be a source, as Neutron's MAC anti-spoofing table does."""

    ofport: int
    mac: str
    port_security: bool = True
    allowed_macs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _ofport(self.ofport)
        object.__setattr__(self, "mac", _mac(self.mac))
        object.__setattr__(self, "allowed_macs", tuple(sorted({_mac(m) for m in self.allowed_macs})))


@dataclass(frozen=True)
class NetworkState:
    """One network on this host: its local VLAN, segment, local ports and, for tunnel networks,
    the other hosts that have a port on it (tunnel endpoint IP -> the MACs of their ports)."""

    network_id: str
    segment: Segment
    local_vlan: int
    ports: tuple[LocalPort, ...] = ()
    remote: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _vlan(self.local_vlan)
        if self.remote and self.segment.network_type not in TUNNEL_TYPES:
            raise ValueError(f"network {self.network_id}: remote hosts on a {self.segment.network_type} network")
        object.__setattr__(self, "remote", {_ip(ip): frozenset(_mac(m) for m in macs)
                                            for ip, macs in self.remote.items()})


@dataclass(frozen=True)
class PhysicalBridge:
    """br-<physnet> and the ofports of its patch pair with br-int."""

    bridge: str
    phys_ofport: int  # phy-br-X, on the physical bridge
    int_ofport: int  # int-br-X, on br-int

    def __post_init__(self) -> None:
        _bridge(self.bridge)
        _ofport(self.phys_ofport)
        _ofport(self.int_ofport)


@dataclass(frozen=True)
class HostState:
    """Everything the flows of one host depend on. ``patch_int_ofport`` None: no br-tun."""

    networks: tuple[NetworkState, ...]
    patch_int_ofport: int | None = None
    tunnel_ofports: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # type -> remote IP -> ofport
    physical_bridges: Mapping[str, PhysicalBridge] = field(default_factory=dict)  # physnet -> bridge
    integration_bridge: str = "br-int"
    tunnel_bridge: str = "br-tun"

    def __post_init__(self) -> None:
        _bridge(self.integration_bridge)
        _bridge(self.tunnel_bridge)
        if self.patch_int_ofport is not None:
            _ofport(self.patch_int_ofport)
        for kind in self.tunnel_ofports:
            if kind not in TUNNEL_TYPES:
                raise ValueError(f"unknown tunnel type {kind!r}")
        object.__setattr__(self, "tunnel_ofports", {kind: {_ip(ip): _ofport(p) for ip, p in ports.items()}
                                                    for kind, ports in self.tunnel_ofports.items()})
        ids = [n.network_id for n in self.networks]
        if len(ids) != len(set(ids)):
            raise ValueError("a network listed twice")
        # two networks on one local VLAN or one segment would be bridged together
        _unique("local VLAN", ((n.local_vlan, n.network_id) for n in self.networks))
        _unique("segment", ((n.segment, n.network_id) for n in self.networks if n.segment.network_type != "local"))
        _unique("ofport", ((p.ofport, n.network_id) for n in self.networks for p in n.ports))


def _unique(what: str, pairs: Iterable[tuple[object, str]]) -> None:
    seen: dict[object, str] = {}
    for key, network_id in pairs:
        other = seen.setdefault(key, network_id)
        if other != network_id:
            raise ValueError(f"networks {other} and {network_id} share a {what}: {key}")


@dataclass(frozen=True, order=True)
class Flow:
    """One flow; ``str()`` is its line for ``ovs-ofctl replace-flows``.

    Actions are written as OpenFlow 1.3 keeps them (push_vlan/set_field/pop_vlan, never
    mod_vlan_vid or set_tunnel), so a dump reads back as equal and a converged bridge
    shows no difference.
    """

    table: int
    priority: int
    match: str
    actions: str
    cookie: int = COOKIE

    def __str__(self) -> str:
        match = f",{self.match}" if self.match else ""
        return f"cookie={self.cookie:#x},table={self.table},priority={self.priority}{match},actions={self.actions}"


@dataclass
class Rendered:
    """Each bridge's flows in a fixed order, and what could not be realised (the rest still is)."""

    flows: dict[str, list[Flow]]
    problems: list[str]

    def text(self, bridge: str) -> str:
        return "".join(f"{flow}\n" for flow in self.flows.get(bridge, []))


def _set_vlan(vlan: int) -> str:
    return f"set_field:{VID_PRESENT | vlan}->vlan_vid"


def _push_vlan(vlan: int) -> str:
    return f"push_vlan:0x8100,{_set_vlan(vlan)}"


def _to_tunnel(seg: int) -> str:
    return f"pop_vlan,set_field:{seg:#x}->tun_id"


def _outputs(ofports: Iterable[int]) -> str:
    return ",".join(f"output:{p}" for p in sorted(set(ofports)))


def _ordered(flows: Iterable[Flow]) -> list[Flow]:
    return sorted(set(flows), key=lambda f: (f.table, -f.priority, f.match, f.actions, f.cookie))


def render_integration(state: HostState) -> list[Flow]:
    flows = [
        Flow(LOCAL_SWITCHING, 65535, f"dl_vlan={DEAD_VLAN}", "drop"),
        Flow(LOCAL_SWITCHING, 0, "", f"goto_table:{TRANSIENT_TABLE}"),
        Flow(CANARY_TABLE, 0, "", "drop"),
        Flow(MAC_SPOOF_TABLE, 0, "", "drop"),
        Flow(TRANSIENT_TABLE, 1, "", "NORMAL"),
    ]
    for bridge in state.physical_bridges.values():
        flows.append(Flow(LOCAL_SWITCHING, 2, f"in_port={bridge.int_ofport}", "drop"))
    for net in state.networks:
        seg = net.segment
        phys = state.physical_bridges.get(seg.physical_network or "")
        if phys is not None and seg.network_type == "vlan":
            flows.append(Flow(LOCAL_SWITCHING, 3, f"in_port={phys.int_ofport},dl_vlan={seg.segmentation_id}",
                              f"{_set_vlan(net.local_vlan)},goto_table:{TRANSIENT_TABLE}"))
        elif phys is not None and seg.network_type == "flat":
            flows.append(Flow(LOCAL_SWITCHING, 3, f"in_port={phys.int_ofport},vlan_tci=0x0000/0x1fff",
                              f"{_push_vlan(net.local_vlan)},goto_table:{TRANSIENT_TABLE}"))
        for port in net.ports:
            # reg6: the local VLAN a frame from an access port belongs to (the pipeline sees it
            # untagged); the firewall's table 60 tells the VLANs of its receivers apart by it
            to = MAC_SPOOF_TABLE if port.port_security else TRANSIENT_TABLE
            flows.append(Flow(LOCAL_SWITCHING, 9, f"in_port={port.ofport}",
                              f"set_field:{net.local_vlan}->{REG_NET},goto_table:{to}"))
            if not port.port_security:
                continue
            for mac in sorted({port.mac, *port.allowed_macs}):
                flows.append(Flow(MAC_SPOOF_TABLE, 2, f"in_port={port.ofport},dl_src={mac}",
                                  f"goto_table:{TRANSIENT_TABLE}"))
    return _ordered(flows)


def render_tunnel(state: HostState, problems: list[str]) -> list[Flow]:
    patch_int = state.patch_int_ofport
    assert patch_int is not None
    flows = [
        Flow(0, 1, f"in_port={patch_int}", f"goto_table:{PATCH_LV_TO_TUN}"),
        Flow(0, 0, "", "drop"),
        Flow(PATCH_LV_TO_TUN, 0, f"dl_dst={UNICAST}", f"goto_table:{UCAST_TO_TUN}"),
        Flow(PATCH_LV_TO_TUN, 0, f"dl_dst={MULTICAST}", f"goto_table:{FLOOD_TO_TUN}"),
        *(Flow(table, 0, "", "drop") for table in TUN_TABLE.values()),
        Flow(LEARN_FROM_TUN, 1, "",
             f"learn(table={UCAST_TO_TUN},priority=1,hard_timeout=300,cookie={LEARNED_COOKIE:#x},"
             "NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],"
             f"load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:{patch_int}"),
        Flow(UCAST_TO_TUN, 0, "", f"goto_table:{FLOOD_TO_TUN}"),
        Flow(FLOOD_TO_TUN, 0, "", "drop"),
    ]
    for kind, ports in state.tunnel_ofports.items():
        for ofport in ports.values():
            flows.append(Flow(0, 1, f"in_port={ofport}", f"goto_table:{TUN_TABLE[kind]}"))
    for net in state.networks:
        kind, seg = net.segment.network_type, net.segment.segmentation_id
        if kind not in TUNNEL_TYPES:
            continue
        assert seg is not None
        flows.append(Flow(TUN_TABLE[kind], 1, f"tun_id={seg:#x}",
                          f"{_push_vlan(net.local_vlan)},goto_table:{LEARN_FROM_TUN}"))
        ports = state.tunnel_ofports.get(kind, {})
        flood = []
        for ip in sorted(net.remote):
            tunnel = ports.get(ip)
            if tunnel is None:
                problems.append(f"network {net.network_id}: no {kind} tunnel port to {ip}")
                continue
            flood.append(tunnel)
            for mac in sorted(net.remote[ip]):
                flows.append(Flow(UCAST_TO_TUN, 2, f"dl_vlan={net.local_vlan},dl_dst={mac}",
                                  f"{_to_tunnel(seg)},output:{tunnel}"))
        if flood:
            flows.append(Flow(FLOOD_TO_TUN, 1, f"dl_vlan={net.local_vlan}", f"{_to_tunnel(seg)},{_outputs(flood)}"))
    return _ordered(flows)


def render_physical(state: HostState, physnet: str) -> list[Flow]:
    phys = state.physical_bridges[physnet]
    flows = [Flow(0, 0, "", "NORMAL"), Flow(0, 2, f"in_port={phys.phys_ofport}", "drop")]
    for net in state.networks:
        seg = net.segment
        if seg.physical_network != physnet:
            continue
        match = f"in_port={phys.phys_ofport},dl_vlan={net.local_vlan}"
        if seg.network_type == "vlan":
            assert seg.segmentation_id is not None
            flows.append(Flow(0, 4, match, f"{_set_vlan(seg.segmentation_id)},NORMAL"))
        else:
            flows.append(Flow(0, 4, match, "pop_vlan,NORMAL"))
    return _ordered(flows)


def render(state: HostState, extra: Mapping[str, Iterable[Flow]] | None = None) -> Rendered:
    """The flows of every bridge of the host (br-tun only if it has one), and the problems.

    A network that cannot be fully realised (its physnet has no bridge, a tunnel port to a
    host is missing) still gets everything else; the problem is reported, not raised.
    ``extra`` adds flows another renderer owns (``ovs_firewall``) to a bridge, so that each
    bridge still changes in one bundle.
    """
    problems: list[str] = []
    flows = {state.integration_bridge: render_integration(state)}
    for bridge, more in (extra or {}).items():  # e.g. the firewall's br-int tables
        flows[bridge] = _ordered([*flows.get(bridge, []), *more])
    if state.patch_int_ofport is not None:
        flows[state.tunnel_bridge] = render_tunnel(state, problems)
    for physnet in sorted(state.physical_bridges):
        flows[state.physical_bridges[physnet].bridge] = render_physical(state, physnet)
    for net in state.networks:
        seg = net.segment
        if seg.network_type in PHYSICAL_TYPES and seg.physical_network not in state.physical_bridges:
            problems.append(f"network {net.network_id}: no bridge for physical network {seg.physical_network}")
        if seg.network_type in TUNNEL_TYPES and state.patch_int_ofport is None:
            problems.append(f"network {net.network_id}: no tunnel bridge for a {seg.network_type} network")
    return Rendered(flows, sorted(set(problems)))


def wanted_tunnels(networks: Iterable[NetworkState]) -> set[tuple[str, str]]:
    """(tunnel type, remote IP) of every tunnel port the host's networks need."""
    return {(n.segment.network_type, ip) for n in networks if n.segment.network_type in TUNNEL_TYPES
            for ip in n.remote}


def assign_local_vlans(network_ids: Iterable[str], existing: Mapping[str, int]) -> dict[str, int]:
    """A local VLAN for each network, as Neutron's LocalVLANMapping keeps them.

    A network that already has a tag (``existing``, e.g. read back from its ports' OVSDB
    tags after an agent restart) keeps it, so its ports and flows are not rewired; a new
    network gets the lowest free tag. Tags of networks no longer wanted are released.
    """
    wanted = sorted(set(network_ids))
    assigned: dict[str, int] = {}
    used: set[int] = set()
    for net in wanted:
        tag = existing.get(net)
        if tag is not None and MIN_VLAN <= tag <= MAX_VLAN and tag not in used:
            assigned[net] = tag
            used.add(tag)
    free = (v for v in range(MIN_VLAN, MAX_VLAN + 1) if v not in used)
    for net in wanted:
        if net not in assigned:
            tag = next(free, None)
            if tag is None:
                raise LocalVlansExhausted(f"no local VLAN left for network {net}")
            assigned[net] = tag
    return assigned
