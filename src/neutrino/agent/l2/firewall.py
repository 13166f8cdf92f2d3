"""Security groups as one nftables script per host: a pure render from ports, groups and members.

Layout (two tables, both replaced atomically by one ``nft -f`` transaction):

* ``table bridge neutrino-antispoof``: stateless, per tap. Frames entering the bridge from a
  port's tap may carry only the port's MAC (or an allowed pair's MAC) with its fixed or
  allowed-pair IPs (IP, ARP, IPv6), plus DHCP discovery from 0.0.0.0; no DHCP/RA server.
  The bridge family has no conntrack here, so nothing stateful lives in this table.
* ``table inet neutrino-sg``: stateful, through br_netfilter. Bridged packets reach the inet
  forward hook with the bridge as iif/oif, so ports are told apart by MAC: ``ether saddr``
  picks the sender's egress chain (``return`` = allowed, end = drop) and then ``ether daddr``
  the receiver's ingress chain (``accept`` = allowed, end = drop). Remote groups are named
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

Ports with ``port_security_enabled`` false appear in neither table.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from neutrino.kernel.names import bridge_name, tap_name  # pure naming helpers, no I/O

SG_TABLE = "neutrino-sg"
ANTISPOOF_TABLE = "neutrino-antispoof"
OWNED_TABLES: tuple[tuple[str, str], ...] = (("bridge", ANTISPOOF_TABLE), ("inet", SG_TABLE))
ZONE_CHAIN = "zones"  # in the inet table; its rules are the network -> conntrack zone map
ZONE_MIN, ZONE_MAX = 1, 65535  # zone 0 is the kernel's default zone, shared by everything unzoned
_ZONE_COMMENT = "net:"
_SAFE_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,99}")  # quoted in the script: no quote, space or backslash

Port = Mapping[str, Any]
Group = Mapping[str, Any]

# Neutron accepts names or numbers; these get port/type matches, the rest only an l4proto match.
_PROTO_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58}
_PORT_PROTOS = {6: "tcp", 17: "udp", 132: "sctp"}
_FAMILY = {"IPv4": ("ipv4", "ip", 4), "IPv6": ("ipv6", "ip6", 6)}
# ICMPv6 the stack needs whatever the group says (Neutron allows the same): MLD, RA, NS, NA.
_ICMPV6_IN = "130, 131, 132, 134, 135, 136, 143"
_ICMPV6_OUT = "130, 131, 132, 133, 135, 136, 143"


def render(ports: Iterable[Port], groups: Iterable[Group], members: Mapping[str, Iterable[str]],
           zones: Mapping[str, int] | None = None) -> str:
    """The nft script that makes this host's firewall exactly what ``ports`` and ``groups`` say.

    ``groups`` are security groups as the API shows them (``id``, ``security_group_rules``);
    ``members`` maps a group id to the addresses of its member ports, for ``remote_group_id``.
    ``zones`` maps a network id to its conntrack zone (see :func:`assign_zones`); when given
    (non-empty), every network with a guarded port must be in it and each port needs its
    ``network_id``. None or empty: no zone chain, the script is byte-identical to a render
    without the argument.
    """
    guarded = sorted((p for p in ports if p.get("port_security_enabled", True)), key=lambda p: str(p["id"]))
    rules = {str(g["id"]): list(g.get("security_group_rules") or ()) for g in groups}
    return render_antispoof(guarded) + render_sg(guarded, rules, members, zones)


def guarded_network_ids(ports: Iterable[Port]) -> set[str]:
    """The networks that need a conntrack zone: those of the ports whose security is enabled."""
    found: set[str] = set()
    for port in ports:
        if not port.get("port_security_enabled", True):
            continue
        if not port.get("network_id"):
            raise ValueError(f"port {port.get('id')} has no network_id, so it cannot get a conntrack zone")
        found.add(str(port["network_id"]))
    return found


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


def read_zones(objects: Iterable[Mapping[str, Any]]) -> dict[str, int]:
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
        if not isinstance(comment, str) or not comment.startswith(_ZONE_COMMENT):
            continue
        net = comment[len(_ZONE_COMMENT):]
        iifname, zone = _zone_rule(rule.get("expr") or ())
        if net and iifname == bridge_name(net) and _valid_zone(zone):
            found.setdefault(net, zone)
    return found


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


def render_antispoof(ports: Sequence[Port]) -> str:
    """The stateless bridge-family table: what may enter the bridge from each port's tap."""
    lines = _replace("bridge", ANTISPOOF_TABLE)
    lines += ["  chain prerouting {", "    type filter hook prerouting priority -200; policy accept;"]
    if ports:
        entries = ", ".join(f'"{tap_name(str(p["id"]))}" : jump spoof-{p["id"]}' for p in ports)
        lines.append(f"    iifname vmap {{ {entries} }}")
    lines.append("  }")
    for port in ports:
        lines += [f"  chain spoof-{port['id']} {{", *(f"    {r}" for r in _spoof_rules(port)), "  }"]
    return "\n".join([*lines, "}", ""])


def _spoof_rules(port: Port) -> list[str]:
    own = str(port["mac_address"]).lower()
    rules = [
        f"ether saddr {own} ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept",
        "ether type ip udp sport 67 udp dport 68 counter drop",
        "ether type ip6 udp sport 547 udp dport 546 counter drop",
        "ether type ip6 icmpv6 type nd-router-advert counter drop",
        f"ether saddr {own} arp saddr ether {own} arp saddr ip 0.0.0.0 accept",  # address-conflict probes
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


def _addr(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def render_sg(ports: Sequence[Port], rules: Mapping[str, Sequence[Mapping[str, Any]]],
              members: Mapping[str, Iterable[str]], zones: Mapping[str, int] | None = None) -> str:
    """The stateful inet table: remote-group sets, the zone chain, the forward dispatch and per-port chains."""
    chains: list[str] = []
    wanted_sets: set[tuple[str, int]] = set()
    for port in ports:
        port_rules = [r for g in sorted(set(port.get("security_groups") or ())) for r in rules.get(str(g), ())]
        for direction, verdict in (("ingress", "accept"), ("egress", "return")):
            mine = (r for r in port_rules if r.get("direction") == direction)
            rendered = (_rule(r, direction, verdict, wanted_sets) for r in mine)
            body = sorted({line for line in rendered if line})  # sorted and deduplicated: stable across groups
            chains += [f"  chain {direction}-{port['id']} {{", *(f"    {x}" for x in _chain(direction, body)), "  }"]
    lines = _replace("inet", SG_TABLE)
    for group_id, version in sorted(wanted_sets):
        lines += _member_set(group_id, version, members.get(group_id, ()))
    lines += _zone_chain(ports, zones)
    lines += ["  chain forward {", "    type filter hook forward priority filter; policy accept;",
              "    ct state established,related accept"]
    lines += _dispatch(ports)
    return "\n".join([*lines, "  }", *chains, "}", ""])


def _zone_chain(ports: Sequence[Port], zones: Mapping[str, int] | None) -> list[str]:
    """The raw-priority prerouting chain that puts each network's bridged traffic in its own zone."""
    if not zones:
        return []
    networks = sorted(guarded_network_ids(ports))
    missing = [net for net in networks if net not in zones]
    if missing:
        raise ValueError(f"no conntrack zone for network(s) {', '.join(missing)}")
    owner: dict[int, str] = {}
    lines = [f"  chain {ZONE_CHAIN} {{", "    type filter hook prerouting priority raw; policy accept;"]
    for net in networks:
        if not _SAFE_ID.fullmatch(net):
            raise ValueError(f"network id {net!r} cannot be written into an nft comment")
        zone = zones[net]
        if not _valid_zone(zone):
            raise ValueError(f"conntrack zone {zone!r} of network {net} is outside {ZONE_MIN}..{ZONE_MAX}")
        if zone in owner:
            raise ValueError(f"networks {owner[zone]} and {net} would share conntrack zone {zone}")
        owner[zone] = net
        lines.append(f'    iifname "{bridge_name(net)}" ct zone set {zone} comment "{_ZONE_COMMENT}{net}"')
    return [*lines, "  }"]


def _dispatch(ports: Sequence[Port]) -> list[str]:
    owner: dict[str, str] = {}
    for port in ports:  # sorted by id, so a MAC shared through allowed pairs goes to the same port every time
        for mac in _macs(port):
            owner.setdefault(mac, str(port["id"]))
    if not owner:
        return []
    out = ", ".join(f"{mac} : jump egress-{pid}" for mac, pid in sorted(owner.items()))
    into = ", ".join(f"{mac} : jump ingress-{pid}" for mac, pid in sorted(owner.items()))
    return [f"    ether saddr vmap {{ {out} }}", f"    ether daddr vmap {{ {into} }}"]


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
    nets = sorted({n for n in (ipaddress.ip_network(a, strict=False) for a in addresses) if n.version == version})
    kind = "ipv4_addr" if version == 4 else "ipv6_addr"
    head = f"  set {_set_name(group_id, version)} {{ type {kind}; flags interval; auto-merge;"
    if not nets:
        return [head + " }"]
    return [head + " elements = { " + ", ".join(_addr(n) for n in nets) + " } }"]


def _set_name(group_id: str, version: int) -> str:
    return f"sg-{group_id}-v{version}"


def _rule(rule: Mapping[str, Any], direction: str, verdict: str, sets: set[tuple[str, int]]) -> str | None:
    """One SG rule as one nft line, or None when it can never match (e.g. a CIDR of the other family)."""
    ethertype = rule.get("ethertype") or "IPv4"
    if ethertype not in _FAMILY:
        return None
    nfproto, ipkw, version = _FAMILY[ethertype]
    parts = [f"meta nfproto {nfproto}"]
    side = "saddr" if direction == "ingress" else "daddr"
    if rule.get("remote_group_id"):
        group_id = str(rule["remote_group_id"])
        sets.add((group_id, version))
        parts.append(f"{ipkw} {side} @{_set_name(group_id, version)}")
    elif rule.get("remote_ip_prefix"):
        net = ipaddress.ip_network(rule["remote_ip_prefix"], strict=False)
        if net.version != version:
            return None
        if net.prefixlen:
            parts.append(f"{ipkw} {side} {_addr(net)}")
    proto = _protocol(rule.get("protocol"), version)
    if proto is not None:
        parts.append(_l4(proto, rule.get("port_range_min"), rule.get("port_range_max")))
    return " ".join([*parts, verdict])


def _protocol(value: Any, version: int) -> int | None:
    if value in (None, "", "any"):
        return None
    text = str(value).lower()
    number = int(text) if text.isdigit() else _PROTO_NUMBERS.get(text)
    if number is None:
        raise ValueError(f"unknown protocol {value!r}")
    if number == 1 and version == 6:  # Neutron lets "icmp" stand for ICMPv6 in IPv6 rules
        return 58
    return number


def _l4(proto: int, low: Any, high: Any) -> str:
    if proto in _PORT_PROTOS:
        name = _PORT_PROTOS[proto]
        if low is None and high is None:
            return f"meta l4proto {name}"
        low, high = int(low if low is not None else 1), int(high if high is not None else 65535)
        return f"{name} dport {low}" if low == high else f"{name} dport {low}-{high}"
    if proto in (1, 58):
        # For ICMP Neutron reuses the range fields: min is the type, max the code.
        name = "icmp" if proto == 1 else "icmpv6"
        match = f"meta l4proto {'icmp' if proto == 1 else 'ipv6-icmp'}"
        if low is not None:
            match = f"{name} type {int(low)}"
            if high is not None:
                match += f" {name} code {int(high)}"
        return match
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
