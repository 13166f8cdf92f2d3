"""Security groups as one nftables script per host: a pure render from ports, groups and members.

Layout (two tables, both replaced atomically by one ``nft -f`` transaction):

* ``table bridge neutrino-antispoof``: stateless, per tap. Frames entering the bridge from a
  port's tap may carry only the port's MAC (or an allowed pair's MAC) with its fixed or
  allowed-pair IPs (IP, ARP, IPv6), plus DHCP discovery from 0.0.0.0; no DHCP/RA server.
  The bridge family has no conntrack here, so nothing stateful lives in this table. It fails
  closed: its prerouting and postrouting chains name every tap that may pass (guarded ports
  through their spoof chain; the network's own DHCP/router ports and ports without port
  security as they are) and drop any other ``tap*`` both ways, so a port whose filter is not
  rendered (a value that cannot be, or one nft refused) sends and receives nothing. Its
  ``outbound`` chain (forward hook) marks each copy of a frame with the guarded port it is about to leave by
  (``meta mark``, one number per port), for the inet table's ingress dispatch below.
* ``table inet neutrino-sg``: stateful, through br_netfilter. Bridged packets reach the inet
  forward hook with the bridge as iif/oif, so the sender is told apart by its network's bridge
  and MAC (``iifname . ether saddr``; MACs are unique per network only, so a port elsewhere
  with the same MAC never takes over its chains), which picks its egress chain (``return`` =
  allowed, end = drop); then the receiver by the bridge table's mark (``meta mark``), which
  picks its ingress chain (``accept`` = allowed, end = drop). Not ``ether daddr``: a frame to
  the broadcast or a multicast MAC may carry a unicast IP packet (Linux takes it) and the
  bridge floods a copy to every port; each copy passes this hook with its own port's mark, so
  every receiver's rules judge it, as Neutron's per-tap ``physdev-out`` rules do. Remote groups are named
  sets of member addresses. ``ct state established,related accept`` comes first, so
  replacing the rules (the whole table, atomically) never cuts a flow already admitted:
  conntrack entries live outside the ruleset and survive the replacement.

Conntrack zones (optional, ``zones`` in :func:`render`): two networks on one host may use the
same addresses (both 10.0.0.0/24), and conntrack keys on addresses, not on bridges, so a flow
admitted on one network would otherwise make the mirrored packet on the other network look
``established`` and pass. With zones the inet table gets a ``zones`` chain at priority raw
(-300, before conntrack at -200) with one rule per network that has guarded ports::

    iifname "brq<net[:11]>" ct zone set <zone> comment "net:<network id>"

Bridged packets in *both* directions of a flow enter br_netfilter's prerouting with the bridge
as iif, so that one rule puts the original and the reply direction into the network's zone
(verified by real traffic in tests/functional/test_conntrack_zones.py). No output-hook rule is
needed: the host namespace sends nothing of its own through the bridges. :func:`assign_zones`
keeps zones stable across re-renders and agent restarts, :func:`read_zones` reads them back
from the kernel. Without ``zones`` the script is exactly what it was before zones existed.

Bridges per port (:data:`PER_PORT`, Open vSwitch with hybrid plugging): each port's tap has its
own ``qbr<port[:11]>``, and everything above keyed by network is keyed by port instead: the
egress dispatch by (qbr, MAC), one zone per port (``comment "port:<port id>"``). A frame between
two ports crosses both their bridges in the same namespace, so with one zone for both the
receiver's bridge would see the sender's entry (a reply from a port whose ingress refused the
flow would pass as ``established`` without its egress rules); a zone each keeps them apart.

Stateless groups (``stateful`` false, Neutron's stateful-security-group): a ``stateless``
chain at priority -310 gives frames from or to such a port's MACs ``notrack`` (Neutron's
iptables driver uses NOTRACK in the raw table), and the zone chain lets untracked packets
through untouched. Their packets are never ``established``: each direction, replies
included, passes only where a rule allows it.

Protocols: every name of neutron-lib's IP_PROTOCOL_MAP and every number 0-255, for both
ethertypes. Ports only for tcp/udp/sctp/udplite/dccp, type/code for icmp/ipv6-icmp,
``meta l4proto N`` for the rest; 0 (``ip``, ``hopopt``) is any protocol, as in Neutron.

Ports with ``port_security_enabled`` false get no chains: their taps pass as they are.
:func:`render_host` leaves out (and names) any rule or port that cannot be rendered, so one
such object never stops the rest of the host's rules; :func:`render` raises instead.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from neutrino import tokens
from neutrino.kernel.names import bridge_name, hybrid_bridge_name, tap_name  # pure naming helpers, no I/O

SG_TABLE = "neutrino-sg"
ANTISPOOF_TABLE = "neutrino-antispoof"
OWNED_TABLES: tuple[tuple[str, str], ...] = (("bridge", ANTISPOOF_TABLE), ("inet", SG_TABLE))
MARK_CHAIN = "outbound"  # in the bridge table: which guarded port a frame's copy leaves by (see _marks)
ZONE_CHAIN = "zones"  # in the inet table; its rules are the network -> conntrack zone map
ZONE_MIN, ZONE_MAX = 1, 65535  # zone 0 is the kernel's default zone, shared by everything unzoned
_ZONE_COMMENT = "net:"
_SAFE_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,99}")  # quoted in the script: no quote, space or backslash

Port = Mapping[str, Any]
Group = Mapping[str, Any]


@dataclass(frozen=True)
class Layout:
    """Which Linux bridge carries a port's frames in the host namespace, as the L2 driver lays them
    out: one per network (the Linux-bridge driver's ``brq<network>``, the default) or one per port
    (Open vSwitch with hybrid plugging: ``qbr<port>``, joined to br-int by a veth). The bridge's
    key (a network or a port id) also keys its conntrack zone, so with a bridge per port each port
    has its own zone, as in Neutron's iptables_hybrid: a frame crosses two such bridges (the
    sender's and the receiver's) and each must judge it as a new flow of its own port."""

    bridge: Callable[[str], str]  # key -> bridge name; ValueError for a key that cannot name one
    per_port: bool = False

    @property
    def comment(self) -> str:
        """The zone rule's comment prefix: the full key follows (read_zones maps it back)."""
        return "port:" if self.per_port else _ZONE_COMMENT

    def key(self, port: Port) -> str:
        return str(port["id"]) if self.per_port else str(port["network_id"])

    def bridge_of(self, port: Port) -> str:
        return self.bridge(self.key(port))


PER_NETWORK = Layout(bridge_name)
PER_PORT = Layout(hybrid_bridge_name, per_port=True)

# neutron_lib.constants.IP_PROTOCOL_MAP: every protocol name a rule may carry, with its number.
IP_PROTOCOL_MAP = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2,
    "ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58,
    "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46,
    "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}
# The protocols whose rules carry a destination port range (Neutron's SG_PORT_PROTO_NUMS), by nft keyword.
_PORT_PROTOS = {6: "tcp", 17: "udp", 132: "sctp", 136: "udplite", 33: "dccp"}
_FAMILY = {"IPv4": ("ipv4", "ip", 4), "IPv6": ("ipv6", "ip6", 6)}
# ICMPv6 the stack needs whatever the group says (Neutron allows the same): MLD, RA, NS, NA.
_ICMPV6_IN = "130, 131, 132, 134, 135, 136, 143"
_ICMPV6_OUT = "130, 131, 132, 133, 135, 136, 143"
NOTRACK_CHAIN = "stateless"  # raw-priority prerouting: stateless groups' ports never enter conntrack
_NOTRACK_PRIORITY = -310  # before the zone chain (raw, -300): a zone template would undo notrack


class Unrealisable(ValueError):
    """One object (a rule, a port's filter) that cannot be written as nft: it alone is left out."""


@dataclass
class Rendered:
    """A host's script plus what it leaves out, so the agent can report and retry just those.

    A port in ``failed_ports`` is in neither table, so its tap hits the unknown-tap drop: it
    sends and receives nothing. A rule in ``failed_rules`` is left out of its ports' chains;
    since rules only ever allow, the port is filtered as if the rule did not exist (closed).
    """

    script: str
    failed_ports: dict[str, str] = field(default_factory=dict)
    failed_rules: dict[str, str] = field(default_factory=dict)


def is_trusted(port: Port) -> bool:
    """The network's own ports (DHCP, router): Neutron never firewalls them."""
    return str(port.get("device_owner") or "").startswith("network:")


def render(ports: Iterable[Port], groups: Iterable[Group], members: Mapping[str, Iterable[str]],
           zones: Mapping[str, int] | None = None, layout: Layout = PER_NETWORK) -> str:
    """The nft script that makes this host's firewall exactly what ``ports`` and ``groups`` say.

    Strict: raises ValueError when any port or rule cannot be rendered (tests, tools). The
    agent uses :func:`render_host`, which leaves such objects out (closed) and says which.
    """
    rendered = render_host(ports, groups, members, zones, layout=layout)
    problems = [*rendered.failed_ports.values(), *rendered.failed_rules.values()]
    if problems:
        raise ValueError(problems[0])
    return rendered.script


def render_host(ports: Iterable[Port], groups: Iterable[Group], members: Mapping[str, Iterable[str]],
                zones: Mapping[str, int] | None = None, closed: Iterable[str] = (),
                layout: Layout = PER_NETWORK) -> Rendered:
    """The host's script; every port or rule that cannot be rendered is left out and named.

    ``ports`` are all the host's ports: the network's own (``device_owner`` ``network:*``) and
    those with ``port_security_enabled`` false are let through unfiltered; every other port
    gets its anti-spoof and security-group chains. Any other tap on a bridge is dropped in
    both directions. ``groups`` are security groups as the API shows them (``id``,
    ``stateful``, ``security_group_rules``); ``members`` maps a group id to the addresses of
    its member ports, for ``remote_group_id``. ``zones`` maps a network id to its conntrack
    zone (see :func:`assign_zones`); None or empty: no zone chain. ``closed`` names ports the
    caller wants kept closed (e.g. ones nft itself refused). ``layout`` says which bridge carries
    a port's frames in the host namespace (the L2 driver's: a bridge per network by default, or
    per port), and so what ``zones`` is keyed by.
    """
    out = Rendered(script="")
    keep_closed = set(closed)
    trusted: list[Port] = []
    guarded: list[Port] = []
    everyone = sorted(ports, key=lambda p: str(p.get("id")))
    shared = _shared_taps(everyone)
    for port in everyone:
        problem = _port_problem(port, zones, layout)
        if problem is None and str(port["id"]) in keep_closed:
            problem = "nft refused this port's rules"
        if problem is None and tap_name(str(port["id"])) in shared:
            problem = f"its device name {tap_name(str(port['id']))} is another port's too"
        if problem is not None:
            out.failed_ports[str(port.get("id"))] = problem
        elif is_trusted(port) or not port.get("port_security_enabled", True):
            trusted.append(port)
        else:
            guarded.append(port)
    group_list = list(groups)
    rules = {str(g["id"]): list(g.get("security_group_rules") or ()) for g in group_list}
    stateless = {str(g["id"]) for g in group_list if g.get("stateful", True) is False}
    zone_lines = _zone_chain(guarded, zones, out.failed_ports, layout)
    guarded = [p for p in guarded if str(p["id"]) not in out.failed_ports]
    if zone_lines and any(set(map(str, p.get("security_groups") or ())) & stateless for p in guarded):
        zone_lines.insert(2, "    ct state untracked accept")  # keep notrack: a zone template would undo it
    out.script = (render_antispoof(guarded, trusted)
                  + render_sg(guarded, rules, members, zone_lines, stateless, out.failed_rules, layout))
    return out


def _shared_taps(ports: Sequence[Port]) -> set[str]:
    """Device names two ports would share (ids alike in their first 11 characters): whose tap
    it really is cannot be told, so neither port gets filtered through it; both stay closed."""
    seen: set[str] = set()
    shared: set[str] = set()
    for port in ports:
        pid = port.get("id")
        if isinstance(pid, str) and _SAFE_ID.fullmatch(pid):
            tap = tap_name(pid)
            (shared if tap in seen else seen).add(tap)
    return shared


def _port_problem(port: Port, zones: Mapping[str, int] | None, layout: Layout = PER_NETWORK) -> str | None:
    """Why this port's filter cannot be written (a hostile or broken value), or None."""
    pid = port.get("id")
    if not isinstance(pid, str) or not _SAFE_ID.fullmatch(pid):
        return f"port id {pid!r} cannot be written into an nft script"
    if is_trusted(port) or not port.get("port_security_enabled", True):
        return None
    net = port.get("network_id")
    if not net or not _SAFE_ID.fullmatch(str(net)):
        return f"port {pid}: network id {net!r} cannot name a bridge in an nft script"
    try:
        layout.bridge_of(port)
    except ValueError as exc:
        return f"port {pid}: {exc}"
    try:
        for mac in _macs(port):
            if tokens.mac(mac) != mac:  # _macs() lower-cases: anything else is not one MAC
                raise Unrealisable(f"MAC address {mac!r} cannot be matched")
        _sources(port)
    except (KeyError, TypeError, ValueError) as exc:
        return f"port {pid}: {exc}"
    if zones:
        key, what = layout.key(port), "port" if layout.per_port else "network"
        if key not in zones:
            return f"no conntrack zone for {what}(s) {key}"
        if not _valid_zone(zones[key]):
            return f"conntrack zone {zones[key]!r} of {what} {key} is outside {ZONE_MIN}..{ZONE_MAX}"
    return None


def guarded_network_ids(ports: Iterable[Port], layout: Layout = PER_NETWORK) -> set[str]:
    """The bridges' keys that need a conntrack zone (networks, or ports with a bridge per port):
    those of the ports whose security is enabled."""
    found: set[str] = set()
    for port in ports:
        if not port.get("port_security_enabled", True):
            continue
        if not port.get("network_id"):
            raise ValueError(f"port {port.get('id')} has no network_id, so it cannot get a conntrack zone")
        found.add(layout.key(port))
    return found


def zoned_network_ids(ports: Iterable[Port], layout: Layout = PER_NETWORK) -> set[str]:
    """The keys that need a conntrack zone, skipping the ports :func:`render_host` keeps closed."""
    # _port_problem already refuses a guarded port whose network id cannot name a bridge
    return guarded_network_ids((p for p in ports if not is_trusted(p) and _port_problem(p, None, layout) is None),
                               layout)


def port_problem(port: Port, layout: Layout = PER_NETWORK) -> str | None:
    """Why this port's filter cannot be written (a hostile or broken value), or None."""
    return _port_problem(port, None, layout)


def _valid_zone(zone: Any) -> bool:
    return isinstance(zone, int) and not isinstance(zone, bool) and ZONE_MIN <= zone <= ZONE_MAX


def assign_zones(network_ids: Iterable[str], current: Mapping[str, int]) -> dict[str, int]:
    """A conntrack zone for each of ``network_ids``, changing as little of ``current`` as possible.

    Every network of ``network_ids`` that already has a valid zone in ``current`` keeps it (so
    established flows survive re-renders, agent restarts and networks coming and going); each
    new network gets the lowest free zone >= 1, in network-id order; networks not in
    ``network_ids`` are dropped and their zones become free. Deterministic: the same inputs
    give the same map, in any order. Should ``current`` hold one zone twice (it never does
    when it comes from :func:`read_zones` of our own render), the lower network id keeps it and
    the other is treated as new. Raises ValueError when more than 65535 networks need a zone.
    """
    wanted = sorted({str(n) for n in network_ids})
    present = set(wanted)
    zones: dict[str, int] = {}
    used: set[int] = set()
    valid = [(zone, str(net)) for net, zone in current.items() if _valid_zone(zone)]
    for zone, net in sorted(valid):
        if net in present and net not in zones and zone not in used:
            zones[net] = zone
            used.add(zone)
    candidate = ZONE_MIN
    for net in wanted:
        if net in zones:
            continue
        while candidate in used:
            candidate += 1
        if candidate > ZONE_MAX:
            raise ValueError(f"no free conntrack zone for network {net}: all {ZONE_MAX} are in use")
        zones[net] = candidate
        used.add(candidate)
    return dict(sorted(zones.items()))


def read_zones(objects: Iterable[Mapping[str, Any]], layout: Layout = PER_NETWORK) -> dict[str, int]:
    """The network -> zone map that the kernel holds, from ``nft -j`` objects of our inet table.

    ``objects`` is what ``kernel.nft.read_table(ns, "inet", SG_TABLE)`` (or ``read_ruleset``)
    returns. The network is taken from the rule's ``comment "net:<network id>"``, not from
    the bridge name: a bridge name carries only ``network_id[:11]``, so it cannot be mapped back
    without a list of candidate networks, while the comment holds the full id and travels with
    the rule through every listing. A rule is believed only if it still has the shape render
    gives it (iifname of that network's bridge, ``ct zone set`` with a zone in 1..65535);
    anything else in the chain is ignored, and a network named twice keeps its first rule.
    """
    found: dict[str, int] = {}
    for obj in objects:
        rule = obj.get("rule")
        if not isinstance(rule, Mapping) or rule.get("chain") != ZONE_CHAIN:
            continue
        if rule.get("family", "inet") != "inet" or rule.get("table", SG_TABLE) != SG_TABLE:
            continue
        comment = rule.get("comment")
        if not isinstance(comment, str) or not comment.startswith(layout.comment):
            continue
        net = comment[len(layout.comment):]
        iifname, zone = _zone_rule(rule.get("expr") or ())
        if net and iifname == _bridge_or_none(layout, net) and _valid_zone(zone):
            found.setdefault(net, zone)
    return found


def _bridge_or_none(layout: Layout, key: str) -> str | None:
    try:
        return layout.bridge(key)
    except ValueError:
        return None


def _zone_rule(exprs: Iterable[Any]) -> tuple[Any, Any]:
    """(iifname, zone) of a rendered zone rule's JSON expressions; None where one is missing."""
    iifname = zone = None
    for expr in exprs:
        if not isinstance(expr, Mapping):
            continue
        match, mangle = expr.get("match"), expr.get("mangle")
        if isinstance(match, Mapping) and match.get("left") == {"meta": {"key": "iifname"}} \
                and match.get("op", "==") == "==":
            iifname = match.get("right")
        if isinstance(mangle, Mapping) and mangle.get("key") == {"ct": {"key": "zone"}}:
            zone = mangle.get("value")
    return iifname, zone


def _replace(family: str, table: str) -> list[str]:
    # Declaring before deleting makes the delete valid on a fresh host; all in one transaction.
    return [f"table {family} {table} {{}}", f"delete table {family} {table}", f"table {family} {table} {{"]


def _macs(port: Port) -> list[str]:
    """The port's MAC first, then any other MAC its allowed address pairs may use."""
    own = str(port["mac_address"]).lower()
    pairs = {str(p.get("mac_address") or own).lower() for p in port.get("allowed_address_pairs") or ()}
    return [own, *sorted(pairs - {own})]


def _sources(port: Port) -> list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """(MAC, network) pairs the port may send from: fixed IPs with its MAC, pairs with theirs."""
    own = str(port["mac_address"]).lower()
    found = {(own, ipaddress.ip_network(f["ip_address"])) for f in port.get("fixed_ips") or ()}
    for pair in port.get("allowed_address_pairs") or ():
        found.add((str(pair.get("mac_address") or own).lower(), ipaddress.ip_network(pair["ip_address"], strict=False)))
    return sorted(found, key=lambda s: (s[0], s[1].version, s[1]))


def _link_local(mac: str) -> ipaddress.IPv6Address:
    octets = [int(b, 16) for b in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    return ipaddress.IPv6Address(bytes([0xFE, 0x80] + [0] * 6 + eui))


def render_antispoof(ports: Sequence[Port], trusted: Sequence[Port] = ()) -> str:
    """The stateless bridge-family table: what may enter the bridge from each port's tap.

    Fail closed: a tap that is neither a guarded port (its spoof chain) nor a trusted one
    (the network's DHCP/router ports, ports without port security) sends nothing into the
    bridge and gets nothing out of it, so a port whose filter is missing is cut off, never open.
    """
    lines = _replace("bridge", ANTISPOOF_TABLE)
    lines += ["  chain prerouting {", "    type filter hook prerouting priority -200; policy accept;"]
    entries = [f'"{tap_name(str(p["id"]))}" : jump spoof-{p["id"]}' for p in ports]
    entries += [f'"{tap_name(str(p["id"]))}" : accept' for p in trusted]
    if entries:
        lines.append(f"    iifname vmap {{ {', '.join(entries)} }}")
    lines += ['    iifname "tap*" counter drop', "  }"]
    lines += ["  chain postrouting {", "    type filter hook postrouting priority -200; policy accept;"]
    known = sorted({tap_name(str(p["id"])) for p in (*ports, *trusted)})
    if known:
        lines.append("    oifname vmap { " + ", ".join(f'"{tap}" : accept' for tap in known) + " }")
    lines += ['    oifname "tap*" counter drop', "  }"]
    lines += [f"  chain {MARK_CHAIN} {{", "    type filter hook forward priority -200; policy accept;",
              "    meta mark set 0x0"]
    marks = _marks(ports)
    if marks:
        lines.append("    meta mark set oifname map { "
                     + ", ".join(f'"{tap_name(pid)}" : {mark:#010x}' for pid, mark in marks.items()) + " }")
    lines += ["  }"]
    for port in ports:
        lines += [f"  chain spoof-{port['id']} {{", *(f"    {r}" for r in _spoof_rules(port)), "  }"]
    return "\n".join([*lines, "}", ""])


def _marks(ports: Sequence[Port]) -> dict[str, int]:
    """The ``meta mark`` (1, 2 ...) of each guarded port, in port-id order: the bridge table sets
    it on every copy of a frame leaving by the port's tap, the inet table picks the port's
    ingress chain by it (0: no guarded port, no ingress chain)."""
    return {pid: number for number, pid in enumerate(sorted(str(p["id"]) for p in ports), start=1)}


def _spoof_rules(port: Port) -> list[str]:
    own = str(port["mac_address"]).lower()
    rules = [
        f"ether saddr {own} ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept",
        "ether type ip udp sport 67 udp dport 68 counter drop",
        "ether type ip6 udp sport 547 udp dport 546 counter drop",
        "ether type ip6 icmpv6 type nd-router-advert counter drop",
        f"ether saddr {own} arp saddr ether {own} arp saddr ip 0.0.0.0 accept",  # address-conflict probes
        *_nd_target_rule(port),
    ]
    for mac in _macs(port):
        rules.append(f"ether saddr {mac} ip6 saddr {_link_local(mac)} accept")
        rules.append(f"ether saddr {mac} ip6 saddr :: icmpv6 type {{ {_ICMPV6_OUT} }} accept")
    for mac, net in _sources(port):
        if net.version == 4:
            rules.append(f"ether saddr {mac} ip saddr {_addr(net)} accept")
            rules.append(f"ether saddr {mac} arp saddr ether {mac} arp saddr ip {_addr(net)} accept")
        else:
            rules.append(f"ether saddr {mac} ip6 saddr {_addr(net)} accept")
    return [*rules, "counter drop"]


def _nd_target_rule(port: Port) -> list[str]:
    """ND spoofing, the IPv6 twin of ARP spoofing: a Neighbor Advertisement may name as its target
    only one of the port's own addresses (link-local of each of its MACs, fixed and pair IPv6
    addresses). nft 1.0.6 has no ``icmpv6 taddr``: the target is the 128 bits at offset 64 of
    the ICMPv6 header. A pair given as an IPv6 network (not one address) cannot be listed, so
    such a port keeps today's looser check (its source address only).
    """
    targets = {_link_local(mac) for mac in _macs(port)}
    for _mac, net in _sources(port):
        if net.version == 6:
            if net.prefixlen != net.max_prefixlen:
                return []
            targets.add(net.network_address)  # type: ignore[arg-type]
    listed = ", ".join(f"{int(t):#034x}" for t in sorted(targets))
    return [f"ether type ip6 icmpv6 type nd-neighbor-advert @th,64,128 != {{ {listed} }} counter drop"]


def _addr(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def render_sg(ports: Sequence[Port], rules: Mapping[str, Sequence[Mapping[str, Any]]],
              members: Mapping[str, Iterable[str]], zone_lines: Sequence[str] = (),
              stateless: Iterable[str] = (), failed_rules: dict[str, str] | None = None,
              layout: Layout = PER_NETWORK) -> str:
    """The stateful inet table: remote-group sets, raw chains, the forward dispatch and per-port chains.

    A rule that cannot be rendered is left out of every chain and named in ``failed_rules``.
    Ports in a ``stateless`` group (``stateful`` false) never enter conntrack (see
    :func:`_notrack_chain`): their rules match each direction on its own, as Neutron's
    iptables driver does with NOTRACK, so a reply passes only where a rule allows it.
    """
    failed = failed_rules if failed_rules is not None else {}
    chains: list[str] = []
    wanted_sets: set[tuple[str, int]] = set()
    for port in ports:
        port_rules = [r for g in sorted(set(port.get("security_groups") or ())) for r in rules.get(str(g), ())]
        for direction, verdict in (("ingress", "accept"), ("egress", "return")):
            body: set[str] = set()
            for rule in port_rules:
                if rule.get("direction") != direction:
                    continue
                try:
                    line = _rule(rule, direction, verdict, wanted_sets)
                except (Unrealisable, TypeError, ValueError) as exc:
                    failed[str(rule.get("id") or rule)] = f"security group rule {rule.get('id')}: {exc}"
                    continue
                if line:
                    body.add(line)
            # sorted and deduplicated: stable across groups
            chains += [f"  chain {direction}-{port['id']} {{", *(f"    {x}" for x in _chain(direction, sorted(body))),
                       "  }"]
    lines = _replace("inet", SG_TABLE)
    for group_id, version in sorted(wanted_sets):
        lines += _member_set(group_id, version, members.get(group_id, ()))
    untracked = [p for p in ports if set(map(str, p.get("security_groups") or ())) & set(stateless)]
    lines += _notrack_chain(untracked, layout)
    lines += zone_lines
    lines += ["  chain forward {", "    type filter hook forward priority filter; policy accept;",
              "    ct state established,related accept"]
    lines += _dispatch(ports, layout)
    return "\n".join([*lines, "  }", *chains, "}", ""])


def _notrack_chain(ports: Sequence[Port], layout: Layout) -> list[str]:
    """Frames from or to a stateless port's MACs skip conntrack entirely (before the zone chain).

    Untracked packets are never ``established`` nor ``invalid``: every one of them, replies
    included, is judged by the port's rules alone. A zone rule would attach a conntrack
    template and so undo ``notrack``; the ``accept`` ends this priority's evaluation and the
    zone chain skips untracked packets.
    """
    macs = sorted({(layout.bridge_of(p), mac) for p in ports for mac in _macs(p)})
    if not macs:
        return []
    listed = ", ".join(f'"{bridge}" . {mac}' for bridge, mac in macs)  # MACs are unique per network only
    return [f"  chain {NOTRACK_CHAIN} {{",
            f"    type filter hook prerouting priority {_NOTRACK_PRIORITY}; policy accept;",
            f"    iifname . ether saddr {{ {listed} }} notrack", f"    iifname . ether daddr {{ {listed} }} notrack",
            "  }"]


def _zone_chain(ports: Sequence[Port], zones: Mapping[str, int] | None, failed_ports: dict[str, str],
                layout: Layout) -> list[str]:
    """The raw-priority prerouting chain that puts each network's bridged traffic in its own zone.

    Ports whose network cannot get its own zone (two networks given one zone) are added to
    ``failed_ports`` and kept closed, rather than sharing conntrack with another network.
    """
    if not zones:
        return []
    by_zone: dict[int, list[str]] = {}
    for net in sorted(guarded_network_ids(ports, layout)):
        by_zone.setdefault(zones[net], []).append(net)
    lines = [f"  chain {ZONE_CHAIN} {{", "    type filter hook prerouting priority raw; policy accept;"]
    for zone, nets in sorted(by_zone.items(), key=lambda item: item[1][0]):
        if len(nets) > 1:
            for port in ports:
                if layout.key(port) in nets:
                    failed_ports[str(port["id"])] = (f"networks {nets[0]} and {nets[1]} would share "
                                                     f"conntrack zone {zone}")
            continue
        net = nets[0]
        lines.append(f'    iifname "{layout.bridge(net)}" ct zone set {zone} comment "{layout.comment}{net}"')
    return [*lines, "  }"]


def _dispatch(ports: Sequence[Port], layout: Layout) -> list[str]:
    """Egress by (bridge, source MAC), ingress by the mark the bridge table gave the copy (see above)."""
    owner: dict[tuple[str, str], str] = {}
    for port in sorted(ports, key=lambda p: str(p["id"])):  # a MAC shared through pairs: the same port each time
        for mac in _macs(port):
            owner.setdefault((layout.bridge_of(port), mac), str(port["id"]))
    if not owner:
        return []
    out = ", ".join(f'"{bridge}" . {mac} : jump egress-{pid}' for (bridge, mac), pid in sorted(owner.items()))
    into = ", ".join(f"{mark:#010x} : jump ingress-{pid}" for pid, mark in _marks(ports).items())
    return [f"    iifname . ether saddr vmap {{ {out} }}", f"    meta mark vmap {{ {into} }}"]


def _chain(direction: str, body: list[str]) -> list[str]:
    if direction == "ingress":
        always = ["meta nfproto ipv4 udp sport 67 udp dport 68 accept",
                  f"meta nfproto ipv6 icmpv6 type {{ {_ICMPV6_IN} }} accept",
                  "meta nfproto ipv6 udp sport 547 udp dport 546 accept"]
    else:
        always = ["meta nfproto ipv4 udp sport 68 udp dport 67 return",
                  f"meta nfproto ipv6 icmpv6 type {{ {_ICMPV6_OUT} }} return",
                  "meta nfproto ipv6 udp sport 546 udp dport 547 return"]
    return ["ct state invalid counter drop", *always, *body, "counter drop"]


def _member_set(group_id: str, version: int, addresses: Iterable[str]) -> list[str]:
    nets: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
    for address in addresses:
        try:
            nets.add(ipaddress.ip_network(address, strict=False))
        except (TypeError, ValueError):  # never matched: a member address that is not one
            continue
    kind = "ipv4_addr" if version == 4 else "ipv6_addr"
    head = f"  set {_set_name(group_id, version)} {{ type {kind}; flags interval; auto-merge;"
    found = sorted(n for n in nets if n.version == version)
    if not found:
        return [head + " }"]
    return [head + " elements = { " + ", ".join(_addr(n) for n in found) + " } }"]


def _set_name(group_id: str, version: int) -> str:
    return f"sg-{group_id}-v{version}"


def _rule(rule: Mapping[str, Any], direction: str, verdict: str, sets: set[tuple[str, int]]) -> str | None:
    """One SG rule as one nft line, or None when it can never match (e.g. a CIDR of the other family).

    Raises :class:`Unrealisable` (or ValueError) for a value that is not what the API accepts:
    every part of the line is built from a parsed, typed value, never from the raw string.
    """
    ethertype = rule.get("ethertype") or "IPv4"
    if ethertype not in _FAMILY:
        raise Unrealisable(f"ethertype {ethertype!r} is neither IPv4 nor IPv6")
    nfproto, ipkw, version = _FAMILY[ethertype]
    parts = [f"meta nfproto {nfproto}"]
    side = "saddr" if direction == "ingress" else "daddr"
    if rule.get("remote_group_id"):
        group_id = str(rule["remote_group_id"])
        if not _SAFE_ID.fullmatch(group_id):
            raise Unrealisable(f"remote group id {group_id!r} cannot be a set name")
        sets.add((group_id, version))
        parts.append(f"{ipkw} {side} @{_set_name(group_id, version)}")
    elif rule.get("remote_ip_prefix"):
        net = ipaddress.ip_network(str(rule["remote_ip_prefix"]), strict=False)
        if net.version != version:
            return None
        if net.prefixlen:
            parts.append(f"{ipkw} {side} {_addr(net)}")
    proto = protocol_number(rule.get("protocol"), version)
    if proto is not None:
        parts.append(_l4(proto, rule.get("port_range_min"), rule.get("port_range_max")))
    return " ".join([*parts, verdict])


def protocol_number(value: Any, version: int) -> int | None:
    """The IP protocol number a rule's ``protocol`` means, or None for any protocol.

    As Neutron: a name from IP_PROTOCOL_MAP or a number 0-255; 0 (``ip``, ``hopopt``) is no
    constraint (Neutron's iptables driver writes no ``-p`` for it); in an IPv6 rule the legacy
    ``icmp``/``icmpv6``/1 mean ICMPv6 (58).
    """
    if value is None or value == "" or (isinstance(value, str) and value.lower() == "any"):
        return None
    if isinstance(value, bool):
        raise Unrealisable(f"protocol {value!r} is not a protocol")
    text = str(value).lower()
    if text.isascii() and text.isdigit() and len(text) <= 3:
        number = int(text)
    elif text in IP_PROTOCOL_MAP:
        number = IP_PROTOCOL_MAP[text]
    else:
        raise Unrealisable(f"unknown protocol {value!r}")
    if not 0 <= number <= 255:
        raise Unrealisable(f"protocol {value!r} is outside 0..255")
    if number == 0:
        return None
    if number == 1 and version == 6:
        return 58
    return number


def _int_in(value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise Unrealisable(f"{what} {value!r} is not a number")
    text = str(value)
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise Unrealisable(f"{what} {value!r} is outside {low}..{high}")
    return int(text)


def _l4(proto: int, low: Any, high: Any) -> str:
    if proto in _PORT_PROTOS:
        name = _PORT_PROTOS[proto]
        if low is None and high is None:
            return f"meta l4proto {name}"
        first = _int_in(low if low is not None else 1, 1, 65535, "port_range_min")
        last = _int_in(high if high is not None else 65535, 1, 65535, "port_range_max")
        if first > last:
            raise Unrealisable(f"port range {first}-{last} is empty")
        return f"{name} dport {first}" if first == last else f"{name} dport {first}-{last}"
    if proto in (1, 58):
        if low is None and high is not None:
            raise Unrealisable(f"ICMP code {high!r} without a type")
        # For ICMP Neutron reuses the range fields: min is the type, max the code.
        name = "icmp" if proto == 1 else "icmpv6"
        match = f"meta l4proto {'icmp' if proto == 1 else 'ipv6-icmp'}"
        if low is not None:
            match = f"{name} type {_int_in(low, 0, 255, 'ICMP type')}"
            if high is not None:
                match += f" {name} code {_int_in(high, 0, 255, 'ICMP code')}"
        return match
    # Any other protocol: only its number (Neutron: ports only for tcp/udp/sctp/udplite/dccp).
    if low is not None or high is not None:
        raise Unrealisable(f"protocol {proto} has no ports")
    return f"meta l4proto {proto}"


# ---------------------------------------------------------------- incremental updates

Blocks = dict[str, list[str]]  # "chain NAME" / "set NAME" -> its lines, in script order


def parse_tables(script: str) -> dict[tuple[str, str], Blocks]:
    """The chain and set blocks of each table a :func:`render` script defines (its own format only)."""
    tables: dict[tuple[str, str], Blocks] = {}
    current: Blocks | None = None
    block: list[str] | None = None
    for line in script.splitlines():
        if line.startswith("table ") and line.endswith(" {"):
            family, name = line.split()[1:3]
            current = tables.setdefault((family, name), {})
        elif current is not None and block is None and line.startswith(("  chain ", "  set ")):
            kind, name = line.split()[:2]
            block = [line]
            current[f"{kind} {name}"] = block
            if kind == "set":  # one line: "  set NAME { ...; elements = { ... } }"
                block = None
        elif block is not None:
            block.append(line)
            if line == "  }":
                block = None
        elif line == "}":
            current = None
    return tables


def set_elements(block: Sequence[str]) -> set[str]:
    """The elements of one ``set`` block as :func:`render` writes it (one line, ``elements = { ... }``)."""
    line = " ".join(block)
    if "elements = {" not in line:
        return set()
    inside = line.split("elements = {", 1)[1].split("}", 1)[0]
    return {item.strip() for item in inside.split(",") if item.strip()}


def revoked(old: str, new: str, ports: Iterable[Port]) -> list[tuple[str, str | None, str | None]]:
    """The flows a change from script ``old`` to ``new`` no longer allows, as (port id, src, dst).

    A port whose ingress (egress) chain lost a line loses every flow to (from) its addresses; a
    remote group's set that lost members cuts the flows between those members and the ports
    whose chains name the set. ``src``/``dst`` are addresses or networks, None for any. Ports
    that were not filtered in ``old`` (new, or port security just turned on) lose every flow.
    """
    tables = parse_tables(old)
    before, after = tables.get(("inet", SG_TABLE), {}), parse_tables(new).get(("inet", SG_TABLE), {})
    let_through = " ".join(tables.get(("bridge", ANTISPOOF_TABLE), {}).get("chain prerouting", []))
    shrunk = {name.split()[1]: set_elements(lines) - set_elements(after.get(name, []))
              for name, lines in before.items() if name.startswith("set ")}
    out: list[tuple[str, str | None, str | None]] = []
    for port in ports:
        pid = str(port.get("id"))
        mine = [str(net) for _mac, net in _sources(port)] if f"chain ingress-{pid}" in after else []
        for direction in ("ingress", "egress"):
            was, now = before.get(f"chain {direction}-{pid}"), after.get(f"chain {direction}-{pid}")
            if now is None:
                continue  # not filtered now: gone, trusted, or kept closed (its tap passes nothing)
            if was is None and f'"{tap_name(pid)}" : accept' not in let_through:
                continue  # a new port: no flow of it to cut
            if was is None or set(was) - set(now):
                out += [(pid, None, a) if direction == "ingress" else (pid, a, None) for a in mine]
                continue
            for name in sorted({ref for line in now for ref in re.findall(r"@(sg-\S+)", line)}):
                for member in sorted(shrunk.get(name, ())):
                    out += [(pid, member, a) if direction == "ingress" else (pid, a, member) for a in mine
                            if ipaddress.ip_network(a).version == ipaddress.ip_network(member).version]
    return out


def delta(old: str, new: str) -> str:
    """One nft transaction that turns the tables ``old`` made into the tables ``new`` makes.

    Only what changed is sent: chains whose rules changed are flushed and refilled, chains and
    sets that left are deleted, new ones are added; an unchanged port's chain is not touched.
    With a hundred ports the full script is ~185 KB and takes nft ~150 ms; a port's delta is a
    few KB. Applied to the ruleset ``old`` left, the result equals applying ``new`` whole
    (tests/functional/test_security_groups_nft.py checks exactly that).
    """
    before, after = parse_tables(old), parse_tables(new)
    whole = _split_tables(new)
    out: list[str] = []
    for key, blocks in after.items():
        family, table = key
        if key not in before:
            out.append(whole[key])
            continue
        prior = before[key]
        changed = [name for name, lines in blocks.items() if prior.get(name) != lines]
        stale = [name for name in prior if name not in blocks]
        for name in changed + stale:
            kind, obj = name.split()
            if name in prior:
                out.append(f"flush {kind} {family} {table} {obj}")
        out += [f"delete chain {family} {table} {name.split()[1]}" for name in stale if name.startswith("chain ")]
        out += [f"delete set {family} {table} {name.split()[1]}" for name in stale if name.startswith("set ")]
        if changed:
            out.append(f"table {family} {table} {{")
            for name in changed:
                out += blocks[name]
            out.append("}")
    for family, table in before:
        if (family, table) not in after:
            out.append(f"delete table {family} {table}")
    return "\n".join(out) + "\n" if out else ""


def _split_tables(script: str) -> dict[tuple[str, str], str]:
    """Each table's full replacement text (declare, delete, define) as :func:`render` writes it."""
    parts: dict[tuple[str, str], str] = {}
    lines = script.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("table ") and line.endswith(" {}"):
            family, name = line.split()[1:3]
            end = lines.index("}", i)
            parts[(family, name)] = "\n".join(lines[i:end + 1])
    return parts
