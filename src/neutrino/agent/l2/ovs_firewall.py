"""Security groups as br-int flows with OVS conntrack (``ct()``): a pure render, no I/O.

The same semantics as the nftables firewall (``agent.l2.firewall``: which ports are guarded,
trusted or closed, every protocol by name or number, port ranges, ICMP type/code, remote
prefixes and groups, stateless groups, allowed address pairs, DHCP/RA/ND), in the table
layout of Neutron's openvswitch firewall, so ``ovs-ofctl dump-flows br-int`` reads alike:

    0   a guarded port's frames: reg5 = its ofport, reg6 = its local VLAN, to 71
        (every other local port gets reg6 in ``ovs_flows``; a closed port's frames are dropped)
    71  BASE_EGRESS: anti-spoofing, the only table with a guarded port's addresses: DHCP
        discovery and ARP from the port's own (MAC, address) pairs and NAs naming its own
        addresses pass to 73; IP from its own addresses (ICMPv6 also from ``::``) goes on to 74
        (or 75 for a stateless port); the rest is dropped
    74  SOURCE_CHECKED (75 stateless): the same for every port, so a port costs no flows here:
        DHCP/DHCPv6 server, router advertisements and other NAs dropped; the DHCP client and
        the ICMPv6 the stack needs pass to 73; anything else from ``::`` dropped; the rest
        enters conntrack in the port's zone (reg6, its local VLAN) and goes on to 72
    72  RULES_EGRESS: invalid and revoked (ct_mark 1) dropped; replies and related pass; a new
        connection a rule allows is committed; an established one is re-checked against the
        rules on every packet and, when no rule allows it any more, marked revoked and dropped
    73  ACCEPT_OR_INGRESS: accepted egress goes back to 60, where a local guarded receiver's
        ingress tables see it like any other frame
    60  (TRANSIENT, ``ovs_flows``: NORMAL) a frame to a guarded port's MAC on its VLAN goes to
        81 with reg5 = that port; a broadcast/multicast frame goes to 81 once per guarded port of
        the VLAN (``clone``), then NORMAL, which floods to the other ports only: guarded ports
        are ``no-flood`` (``flood_off`` lists them), so no copy reaches them unfiltered
    83  FAN_OUT: the copies of a broadcast to a VLAN's guarded ports beyond the first 64, 64 a
        flow (one action list must fit in an OpenFlow message)
    81  BASE_INGRESS: ARP, DHCP replies and the ICMPv6 the stack needs pass; IP enters conntrack
        (a stateless port's leaves the sender's conntrack state behind instead)
    82  RULES_INGRESS: as 72, and an accepted frame is output to the port

Only the tables' own flows name a port (``reg5=<ofport>``): its addresses in 71, its rules in
72/82, where its frames go in 0/60. What every guarded port shares (the ICMPv6 and DHCP
allowances, replies, revocation) is written once, with the port and its zone taken from
reg5/reg6, so a host of a thousand guarded ports has ~16 000 flows, not ~54 000: each
OpenFlow message costs ovs-vswitchd a turn of its main loop, which polls every port.

Revocation is structural, as in Neutron: established packets in the original direction meet
the rules again, so a rule removed (a group's member gone, the port out of a group) cuts the
connections it admitted at their next packet; nothing needs to find their conntrack entries.

Remote groups are conjunctions (see :func:`_conjunctions`): a host with a hundred ports in the
default group (which names itself) has about 1 800 flows: they grow with ports plus members, not
with their product.

Stateless groups (``stateful`` false) skip conntrack: each direction, replies included,
passes only where a rule allows it. A port is stateless when any of its groups is.

Two steps, so that the agent knows before wiring which ports can be filtered: :func:`compile_host`
turns the API's ports, groups and members into typed ``PortFilter``s (a port or rule whose
values cannot be rendered is left out and named, so that port stays closed and the rule
allows nothing); :func:`render` places them at their ofports and VLANs as flows, and cannot
fail: every token it writes was validated by the first step.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from neutrino import tokens
from neutrino.agent.l2 import firewall
from neutrino.agent.l2.ovs_flows import MAX_OFPORT, MAX_VLAN, MIN_VLAN, TRANSIENT_TABLE, Flow

BASE_EGRESS, RULES_EGRESS, ACCEPT_OR_INGRESS = 71, 72, 73
SOURCE_CHECKED, SOURCE_CHECKED_STATELESS = 74, 75  # a port's own source, to conntrack (74) or not (75)
BASE_INGRESS, RULES_INGRESS = 81, 82
FAN_OUT = 83  # the rest of a broadcast's copies to guarded ports, FAN_OUT_CHUNK at a time
FAN_OUT_CHUNK = 64
REG_PORT, REG_NET, REG_CHUNK = "reg5", "reg6", "reg7"
REVOKED = 1  # ct_mark of a connection no rule allows any more
ZONE = f"NXM_NX_{REG_NET.upper()}[0..15]"  # the port's conntrack zone: its network's local VLAN
TO_PORT = f"output:NXM_NX_{REG_PORT.upper()}[]"  # to the guarded port whose ingress tables these are
MULTICAST = "01:00:00:00:00:00/01:00:00:00:00:00"

# ICMPv6 the stack needs whatever the groups say (as the nft firewall): MLD, RS/RA, NS, NA
ICMPV6_IN = (130, 131, 132, 134, 135, 136, 143)
ICMPV6_OUT = (130, 131, 132, 133, 135, 143)  # NA (136) out only for the port's own addresses
_PORT_PROTOS = {6: "tcp", 17: "udp", 132: "sctp"}  # ports OVS can match (tp_dst)
_NO_PORTS_IN_OVS = {33: "dccp", 136: "udplite"}

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
GroupMatch = tuple[str, str, tuple[str, ...]]  # (L3/L4 match, nw_src/nw_dst/ipv6_src/ipv6_dst, addresses)


class Unrealisable(firewall.Unrealisable):
    """One rule or port that cannot be written as flows: it alone is left out (closed)."""


@dataclass(frozen=True)
class PortFilter:
    """One guarded port's filter, every value already validated: what :func:`render` writes."""

    port_id: str
    macs: tuple[str, ...]  # own MAC first, then allowed pairs' MACs
    sources: tuple[tuple[str, Net], ...]  # (MAC, network) it may send from
    stateful: bool
    ingress: tuple[str, ...]  # match fields of each ingress rule (one flow each)
    egress: tuple[str, ...]
    nd_targets: tuple[str, ...] | None  # addresses an NA may name; None: not checked (a pair is a network)
    # remote-group rules: (L3/L4 match, address field, the group's member addresses), as conjunctions
    ingress_groups: tuple[GroupMatch, ...] = ()
    egress_groups: tuple[GroupMatch, ...] = ()


@dataclass
class Compiled:
    """The host's filters; ``trusted`` ports pass unfiltered (the network's own, port security off)."""

    filters: dict[str, PortFilter] = field(default_factory=dict)
    trusted: set[str] = field(default_factory=set)
    failed_ports: dict[str, str] = field(default_factory=dict)
    failed_rules: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Placement:
    """Where a filtered port sits on br-int: its ofport and its network's local VLAN (= ct zone)."""

    ofport: int
    vlan: int

    def __post_init__(self) -> None:
        for value, low, high in ((self.ofport, 1, MAX_OFPORT), (self.vlan, MIN_VLAN, MAX_VLAN)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"bad placement {self.ofport!r}/{self.vlan!r}")


# ---------------------------------------------------------------- step 1: validate and compile


def compile_host(ports: Iterable[Mapping[str, Any]], groups: Iterable[Mapping[str, Any]],
                 members: Mapping[str, Iterable[str]], closed: Iterable[str] = ()) -> Compiled:
    """Each guarded port's filter; a port that cannot be filtered is named in ``failed_ports``
    (it stays closed), a rule that cannot be written in ``failed_rules`` (it allows nothing).
    ``closed`` names ports the caller keeps closed whatever their values."""
    out = Compiled()
    keep_closed = set(closed)
    group_list = list(groups)
    rules = {str(g.get("id")): list(g.get("security_group_rules") or ()) for g in group_list}
    stateless = {str(g.get("id")) for g in group_list if g.get("stateful", True) is False}
    compiled_rules: dict[tuple[str, str], tuple[list[str], list[GroupMatch]]] = {}  # (rule id, direction) ->
    for port in sorted(ports, key=lambda p: str(p.get("id"))):
        pid = port.get("id")
        if not isinstance(pid, str) or not pid:
            out.failed_ports[str(pid)] = f"port id {pid!r} is not an id"
            continue
        if firewall.is_trusted(port) or not port.get("port_security_enabled", True):
            out.trusted.add(pid)
            continue
        if pid in keep_closed:
            out.failed_ports[pid] = "kept closed"
            continue
        try:
            macs, sources, targets = _addresses(port)
            port_groups = sorted({str(g) for g in port.get("security_groups") or ()})
        except (KeyError, TypeError, ValueError) as exc:
            out.failed_ports[pid] = f"port {pid}: {exc}"
            continue
        by_direction: dict[str, set[str]] = {"ingress": set(), "egress": set()}
        by_group: dict[str, set[GroupMatch]] = {"ingress": set(), "egress": set()}
        for group in port_groups:
            for rule in rules.get(group, ()):
                direction = rule.get("direction")
                if direction not in by_direction:
                    out.failed_rules[str(rule.get("id"))] = f"security group rule {rule.get('id')}: " \
                                                            f"direction {direction!r}"
                    continue
                key = (str(rule.get("id")), direction)
                if key not in compiled_rules:
                    try:
                        compiled_rules[key] = _split(rule, members)
                    except (Unrealisable, firewall.Unrealisable, TypeError, ValueError) as exc:
                        out.failed_rules[str(rule.get("id"))] = f"security group rule {rule.get('id')}: {exc}"
                        compiled_rules[key] = ([], [])
                by_direction[direction].update(compiled_rules[key][0])
                by_group[direction].update(compiled_rules[key][1])
        out.filters[pid] = PortFilter(pid, macs, sources, not (set(port_groups) & stateless),
                                      tuple(sorted(by_direction["ingress"])), tuple(sorted(by_direction["egress"])),
                                      targets, tuple(sorted(by_group["ingress"])), tuple(sorted(by_group["egress"])))
    return out


def _mac(value: Any) -> str:
    mac = tokens.mac(value)
    if mac is None or int(mac[:2], 16) & 1:
        raise Unrealisable(f"MAC address {value!r} is not one unicast MAC")
    return mac


def _addresses(port: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[tuple[str, Net], ...], tuple[str, ...] | None]:
    """(MACs, (MAC, network) sources, NA targets) of a port, each value parsed and canonical."""
    own = _mac(port["mac_address"])
    found: set[tuple[str, Net]] = set()
    for fixed in port.get("fixed_ips") or ():
        found.add((own, ipaddress.ip_network(ipaddress.ip_address(str(fixed["ip_address"])))))
    for pair in port.get("allowed_address_pairs") or ():
        mac = _mac(pair["mac_address"]) if pair.get("mac_address") else own
        found.add((mac, ipaddress.ip_network(str(pair["ip_address"]), strict=False)))
    macs = (own, *sorted({m for m, _ in found} - {own}))
    sources = tuple(sorted(found, key=lambda s: (s[0], s[1].version, s[1])))
    targets: set[ipaddress.IPv6Address] = {_link_local(m) for m in macs}
    for _owner, net in sources:
        if net.version == 6:
            if net.prefixlen != net.max_prefixlen:
                return macs, sources, None
            targets.add(net.network_address)  # type: ignore[arg-type]
    return macs, sources, tuple(str(t) for t in sorted(targets))


def _link_local(mac: str) -> ipaddress.IPv6Address:
    octets = [int(b, 16) for b in mac.split(":")]
    octets[0] ^= 0x02
    return ipaddress.IPv6Address(bytes([0xFE, 0x80] + [0] * 6 + octets[:3] + [0xFF, 0xFE] + octets[3:]))


def _number(value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise Unrealisable(f"{what} {value!r} is not a number")
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or not low <= int(text) <= high:
        raise Unrealisable(f"{what} {value!r} is outside {low}..{high}")
    return int(text)


def port_masks(first: int, last: int) -> list[tuple[int, int]]:
    """The (value, mask) pairs whose union is exactly the ports first..last (OpenFlow has no ranges)."""
    out = []
    while first <= last:
        size = first & -first if first else 1 << 16
        while size > last - first + 1:
            size >>= 1
        out.append((first, 0xFFFF & ~(size - 1)))
        first += size
    return out


def rule_matches(rule: Mapping[str, Any], members: Mapping[str, Iterable[str]]) -> list[str]:
    """The match fields of one rule (one flow each; none when it can never match, e.g. a prefix
    of the other family or a remote group without members). Raises :class:`Unrealisable`
    for a value that is not what the API accepts."""
    plain, grouped = _split(rule, members)
    return plain + [f"{l4},{side}={addr}" for l4, side, addrs in grouped for addr in addrs]


def _split(rule: Mapping[str, Any], members: Mapping[str, Iterable[str]]) -> tuple[list[str], list[GroupMatch]]:
    """(plain matches, remote-group matches) of one rule; see :func:`rule_matches`."""
    ethertype = rule.get("ethertype") or "IPv4"
    if ethertype not in ("IPv4", "IPv6"):
        raise Unrealisable(f"ethertype {ethertype!r} is neither IPv4 nor IPv6")
    version = 4 if ethertype == "IPv4" else 6
    l3 = "ip" if version == 4 else "ipv6"
    side = ("nw_src" if version == 4 else "ipv6_src") if rule.get("direction") == "ingress" else \
        ("nw_dst" if version == 4 else "ipv6_dst")
    proto = firewall.protocol_number(rule.get("protocol"), version)
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    l4: list[str]
    if proto is None:
        if low is not None or high is not None:
            raise Unrealisable("ports without a protocol")
        l4 = [l3]
    elif proto in _PORT_PROTOS:
        base = f"{l3},nw_proto={proto}"
        if low is None and high is None:
            l4 = [base]
        else:
            first = _number(low if low is not None else 1, 1, 65535, "port_range_min")
            last = _number(high if high is not None else 65535, 1, 65535, "port_range_max")
            if first > last:
                raise Unrealisable(f"port range {first}-{last} is empty")
            l4 = [f"{base},tp_dst={v}" if m == 0xFFFF else f"{base},tp_dst={v:#06x}/{m:#06x}"
                  for v, m in port_masks(first, last)]
    elif proto in (1, 58):
        base = f"{l3},nw_proto={proto}"
        if low is None and high is not None:
            raise Unrealisable(f"ICMP code {high!r} without a type")
        key = "icmp" if proto == 1 else "icmpv6"
        if low is not None:
            base += f",{key}_type={_number(low, 0, 255, 'ICMP type')}"
            if high is not None:
                base += f",{key}_code={_number(high, 0, 255, 'ICMP code')}"
        l4 = [base]
    else:
        if low is not None or high is not None:
            name = _NO_PORTS_IN_OVS.get(proto)
            raise Unrealisable(f"Open vSwitch cannot match the ports of {name}" if name
                               else f"protocol {proto} has no ports")
        l4 = [f"{l3},nw_proto={proto}"]
    remotes: list[str | None]
    if rule.get("remote_group_id"):
        nets = set()
        for address in members.get(str(rule["remote_group_id"]), ()):
            try:
                nets.add(ipaddress.ip_network(str(address), strict=False))
            except ValueError:
                continue  # never matched: a member address that is not one
        found = tuple(_net(n) for n in sorted(n for n in nets if n.version == version))
        return [], [(m, side, found) for m in l4] if found else []
    elif rule.get("remote_ip_prefix"):
        net = ipaddress.ip_network(str(rule["remote_ip_prefix"]), strict=False)
        if net.version != version:
            return [], []
        remotes = [_net(net) if net.prefixlen else None]
    else:
        remotes = [None]
    return [m if r is None else f"{m},{side}={r}" for m in l4 for r in remotes], []


def _net(net: Net) -> str:
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


# ---------------------------------------------------------------- step 2: flows


def render(filters: Mapping[str, PortFilter], placed: Mapping[str, Placement],
           closed_ofports: Iterable[int] = ()) -> list[Flow]:
    """br-int's firewall flows for the ``filters`` that have a place; ``closed_ofports`` (ports
    on the dead VLAN, ports whose filter is missing) send nothing at all."""
    flows = _shared()
    closed = set(closed_ofports)
    for ofport in sorted(closed):
        flows.append(Flow(0, 100, f"in_port={int(ofport)}", "drop"))
    by_vlan: dict[int, list[tuple[str, Placement]]] = {}
    owner: dict[tuple[int, str], int] = {}
    for pid in sorted(placed):
        where, fil = placed[pid], filters.get(pid)
        if fil is None or where.ofport in closed:
            continue
        by_vlan.setdefault(where.vlan, []).append((pid, where))
        flows += _egress(fil, where) + _ingress(fil, where)
        for mac in fil.macs:
            owner.setdefault((where.vlan, mac), where.ofport)  # a MAC shared through pairs: the lower id's
    flows += _conjunctions({pid: filters[pid] for pid, _where in (p for ps in by_vlan.values() for p in ps)},
                           placed)
    for (vlan, mac), ofport in sorted(owner.items()):
        to = f"set_field:{ofport}->{REG_PORT},resubmit(,{BASE_INGRESS})"
        flows.append(Flow(TRANSIENT_TABLE, 100, f"{REG_NET}={vlan},dl_dst={mac}", to))
        flows.append(Flow(TRANSIENT_TABLE, 100, f"dl_vlan={vlan},dl_dst={mac}",
                          f"pop_vlan,set_field:{vlan}->{REG_NET},{to}"))
    for vlan, ports in sorted(by_vlan.items()):
        each = [f"set_field:{p.ofport}->{REG_PORT},resubmit(,{BASE_INGRESS})" for _pid, p in ports]
        flows += _fan_out(f"{REG_NET}={vlan},dl_dst={MULTICAST}", each)
        flows += _fan_out(f"dl_vlan={vlan},dl_dst={MULTICAST}",
                          [f"pop_vlan,set_field:{vlan}->{REG_NET},{x}" for x in each])
    return sorted(set(flows), key=lambda f: (f.table, -f.priority, f.match, f.actions))


def _shared() -> list[Flow]:
    """The flows every guarded port shares, written once: the port is reg5, its zone reg6.

    Only frames a port's own flows sent here meet them: 74/75 from its checked source in 71,
    81 from its MAC or a broadcast's copy in 60, the stateful part of 72/82 by their conntrack
    state (a stateless port's frames are never tracked there: 75 skips conntrack, and its
    ingress flow in 81 clears the state a stateful sender's egress left on the frame)."""
    accept = f"resubmit(,{ACCEPT_OR_INGRESS})"
    flows = [
        Flow(BASE_EGRESS, 0, "", "drop"),
        Flow(RULES_EGRESS, 0, "", "drop"),
        Flow(ACCEPT_OR_INGRESS, 0, "", f"resubmit(,{TRANSIENT_TABLE})"),
        Flow(BASE_INGRESS, 0, "", "drop"),
        Flow(RULES_INGRESS, 0, "", "drop"),
        # ingress: what the stack needs passes, IP enters conntrack in the receiver's zone
        Flow(BASE_INGRESS, 100, "arp", TO_PORT),
        Flow(BASE_INGRESS, 95, "udp,tp_src=67,tp_dst=68", TO_PORT),
        Flow(BASE_INGRESS, 95, "udp6,tp_src=547,tp_dst=546", TO_PORT),
        *(Flow(BASE_INGRESS, 95, f"icmp6,icmp_type={t}", TO_PORT) for t in ICMPV6_IN),
        *(Flow(BASE_INGRESS, 90, l3, f"ct(table={RULES_INGRESS},zone={ZONE})") for l3 in ("ip", "ipv6")),
    ]
    for table, track in ((SOURCE_CHECKED, f"ct(table={RULES_EGRESS},zone={ZONE})"),
                         (SOURCE_CHECKED_STATELESS, f"resubmit(,{RULES_EGRESS})")):
        flows += [
            # no DHCP/DHCPv6 server, no router advertisements, no NA but those 71 let through
            Flow(table, 100, "udp,tp_src=67,tp_dst=68", "drop"),
            Flow(table, 100, "udp6,tp_src=547,tp_dst=546", "drop"),
            Flow(table, 100, "icmp6,icmp_type=134", "drop"),
            Flow(table, 100, "icmp6,icmp_type=136", "drop"),
            Flow(table, 95, "udp,tp_src=68,tp_dst=67", accept),  # a DHCP client from its address
            Flow(table, 95, "udp6,tp_src=546,tp_dst=547", accept),  # a DHCPv6 client
            *(Flow(table, 95, f"icmp6,icmp_type={t}", accept) for t in ICMPV6_OUT),
            Flow(table, 90, "ipv6,ipv6_src=::", "drop"),  # from :: only the ICMPv6 above
            *(Flow(table, 1, l3, track) for l3 in ("ip", "ipv6")),
            Flow(table, 0, "", "drop"),  # only IP comes here
        ]
    for table, to in ((RULES_EGRESS, accept), (RULES_INGRESS, TO_PORT)):
        flows += [
            Flow(table, 100, "ct_state=+inv+trk", "drop"),
            Flow(table, 100, f"ct_state=+trk,ct_mark={REVOKED:#x}", "drop"),
            Flow(table, 90, "ct_state=-new+est-rel+rpl+trk", to),
            Flow(table, 90, "ct_state=-new-est+rel-inv+trk", to),
            # an established connection that no rule allows any more: revoked for good
            *(Flow(table, 40, f"ct_state=-new+est-rel-rpl+trk,{l3}",
                   f"ct(commit,zone={ZONE},exec(set_field:{REVOKED:#x}->ct_mark))") for l3 in ("ip", "ipv6")),
        ]
    return flows


def _fan_out(match: str, copies: list[str]) -> list[Flow]:
    """A broadcast/multicast frame's copy to each guarded port of its VLAN (``clone``), then NORMAL.

    One flow's actions must fit in an OpenFlow message (64 KB; about 1 000 clones do not), so
    the copies go ``FAN_OUT_CHUNK`` at a time: the flow in TRANSIENT makes the first ones and
    resubmits to FAN_OUT with ``REG_CHUNK`` = 1, whose flow makes the next ones and so on.
    """
    chunks = [copies[i:i + FAN_OUT_CHUNK] for i in range(0, len(copies), FAN_OUT_CHUNK)] or [[]]

    def step(k: int) -> str:
        clones = ",".join(f"clone({x})" for x in chunks[k])
        more = f"set_field:{k + 1}->{REG_CHUNK},resubmit(,{FAN_OUT})" if k + 1 < len(chunks) else ""
        return ",".join(a for a in (clones, more) if a)
    flows = [Flow(TRANSIENT_TABLE, 90, match, ",".join(a for a in (step(0), "NORMAL") if a))]
    flows += [Flow(FAN_OUT, 90, f"{match},{REG_CHUNK}={k}", step(k)) for k in range(1, len(chunks))]
    return flows


def _conjunctions(filters: Mapping[str, PortFilter], placed: Mapping[str, Placement]) -> list[Flow]:
    """Remote-group rules as conjunctions, so that flows grow with ports + members, not ports x members.

    One conjunction per (table, connection state, L3/L4 match, address field, member set):
    clause 1 is each port that has such a rule (``reg5`` and the state and L3/L4 match), clause
    2 each member address; the conjunction's own flow accepts for whichever port ``reg5`` names
    (``output:NXM_NX_REG5[]``) in its network's zone (``reg6``). Priority 71, above the plain
    rules (both only accept) and below replies (90); an established connection that neither
    allows falls to the revocation flow (40) as before.
    """
    ids: dict[tuple[int, str, str, str, tuple[str, ...]], int] = {}
    clauses: dict[tuple[int, str], set[str]] = {}
    wanted = []
    for pid in sorted(filters):
        fil, at = filters[pid], placed[pid]
        states = ("+new-est", "-new+est-rel-rpl") if fil.stateful else ("",)
        for table, groups in ((RULES_EGRESS, fil.egress_groups), (RULES_INGRESS, fil.ingress_groups)):
            for l4, side, addrs in groups:
                for state in states:
                    wanted.append((table, state, l4, side, addrs, at.ofport))
    for key in sorted({w[:5] for w in wanted}):
        ids[key] = len(ids) + 1
    for table, state, l4, side, addrs, ofport in wanted:
        conj = ids[(table, state, l4, side, addrs)]
        first = f"{REG_PORT}={ofport},ct_state={state}+trk,{l4}" if state else f"{REG_PORT}={ofport},{l4}"
        clauses.setdefault((table, first), set()).add(f"conjunction({conj},1/2)")
    for (table, _state, l4, side, addrs), conj in ids.items():  # once per conjunction, not per port
        for addr in addrs:
            clauses.setdefault((table, f"{l4.split(',')[0]},{side}={addr}"), set()).add(f"conjunction({conj},2/2)")
    flows = [Flow(table, 71, match, ",".join(sorted(acts, key=lambda a: (len(a), a))))
             for (table, match), acts in clauses.items()]
    for (table, state, l4, _side, _addrs), conj in ids.items():
        accept = f"resubmit(,{ACCEPT_OR_INGRESS})" if table == RULES_EGRESS else f"output:NXM_NX_{REG_PORT.upper()}[]"
        if state == "+new-est":
            accept = f"ct(commit,zone=NXM_NX_{REG_NET.upper()}[0..15]),{accept}"
        flows.append(Flow(table, 71, f"conj_id={conj},{l4.split(',')[0]}", accept))
    return flows


def flood_off(filters: Mapping[str, PortFilter], placed: Mapping[str, Placement]) -> set[int]:
    """The ofports NORMAL must not flood to: every placed guarded port (its copies come through 81)."""
    return {where.ofport for pid, where in placed.items() if pid in filters}


def _egress(fil: PortFilter, at: Placement) -> list[Flow]:
    """A port's own sources (table 71): what it may send from, to the shared tables or accepted."""
    p, zone, reg = at.ofport, at.vlan, f"{REG_PORT}={at.ofport}"
    accept = f"resubmit(,{ACCEPT_OR_INGRESS})"
    checked = f"resubmit(,{SOURCE_CHECKED if fil.stateful else SOURCE_CHECKED_STATELESS})"
    own = fil.macs[0]
    flows = [
        Flow(0, 100, f"in_port={p}", f"set_field:{p}->{REG_PORT},set_field:{zone}->{REG_NET},"
                                     f"goto_table:{BASE_EGRESS}"),
        # DHCP discovery from 0.0.0.0; ARP probes for address conflicts
        Flow(BASE_EGRESS, 95, f"{reg},udp,dl_src={own},nw_src=0.0.0.0,nw_dst=255.255.255.255,tp_src=68,tp_dst=67",
             accept),
        Flow(BASE_EGRESS, 95, f"{reg},arp,dl_src={own},arp_sha={own},arp_spa=0.0.0.0", accept),
    ]
    for mac in fil.macs:
        flows.append(Flow(BASE_EGRESS, 65, f"{reg},ipv6,dl_src={mac},ipv6_src={_link_local(mac)}", checked))
        flows.append(Flow(BASE_EGRESS, 65, f"{reg},icmp6,dl_src={mac},ipv6_src=::", checked))  # DAD, MLD
        if fil.nd_targets is not None:
            flows += [Flow(BASE_EGRESS, 95, f"{reg},icmp6,dl_src={mac},icmp_type=136,icmp_code=0,nd_target={t}", accept)
                      for t in fil.nd_targets]
    for mac, net in fil.sources:
        addr = _net(net)
        if net.version == 4:
            flows += [
                Flow(BASE_EGRESS, 95, f"{reg},arp,dl_src={mac},arp_sha={mac},arp_spa={addr}", accept),
                Flow(BASE_EGRESS, 65, f"{reg},ip,dl_src={mac},nw_src={addr}", checked),
            ]
        else:
            flows.append(Flow(BASE_EGRESS, 65, f"{reg},ipv6,dl_src={mac},ipv6_src={addr}", checked))
            if fil.nd_targets is None:
                flows.append(Flow(BASE_EGRESS, 95, f"{reg},icmp6,dl_src={mac},ipv6_src={addr},icmp_type=136",
                                  accept))
    flows += _rules(RULES_EGRESS, fil.egress, fil.stateful, reg, zone, accept)
    return flows


def _ingress(fil: PortFilter, at: Placement) -> list[Flow]:
    """A port's own ingress flows: its rules; and for a stateless port, IP past conntrack."""
    zone, reg = at.vlan, f"{REG_PORT}={at.ofport}"
    flows = [] if fil.stateful else [Flow(BASE_INGRESS, 91, f"{reg},{l3}", f"ct_clear,resubmit(,{RULES_INGRESS})")
                                     for l3 in ("ip", "ipv6")]
    return flows + _rules(RULES_INGRESS, fil.ingress, fil.stateful, reg, zone, f"output:{at.ofport}")


def _rules(table: int, matches: Iterable[str], stateful: bool, reg: str, zone: int, accept: str) -> list[Flow]:
    """One direction's rules: new connections committed, established ones re-checked against
    them (replies, related and revocation are the shared flows of ``_shared``)."""
    if not stateful:
        return [Flow(table, 70, f"{reg},{m}", accept) for m in matches]
    flows = []
    for m in matches:
        flows.append(Flow(table, 70, f"{reg},ct_state=+new-est+trk,{m}", f"ct(commit,zone={zone}),{accept}"))
        flows.append(Flow(table, 70, f"{reg},ct_state=-new+est-rel-rpl+trk,{m}", accept))
    return flows
