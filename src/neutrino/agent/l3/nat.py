"""A router's NAT as one nftables table (``ip neutrino-nat``): a pure render from API dicts.

Inside ``qrouter-<id>``, one table replaced atomically by each apply (conntrack entries live
outside the ruleset, so replacing it never cuts an established flow):

* ``prerouting`` / ``output``: per floating IP, ``ip daddr FIP dnat to FIXED`` (``output``
  so the router itself reaches the instance through its floating IP too).
* ``postrouting``: per floating IP, ``oifname qg-… ip saddr FIXED snat to FIP`` first, then
  with ``enable_snat`` the generic ``oifname qg-… ip saddr INTERNAL ip daddr != INTERNAL
  snat to GATEWAY_IP`` for every other instance behind the router.
* with ``metadata_port`` (the metadata proxy runs in the namespace): ``prerouting`` first
  redirects ``169.254.169.254:80`` arriving on a ``qr-`` port to that local port, as
  Neutron's qrouter does, and an ``input`` filter chain drops connections to the port that
  were not redirected (Neutron's mark-and-drop): only instances, through the redirect, reach
  the proxy, never the external network through the gateway address.

IPv4 only (Neutron does not NAT IPv6). Same input, same text: sorted, no timestamps. Every
address goes through ``neutrino.tokens`` and is written in canonical form: a value that is not
an IPv4 address never reaches the script (that floating IP or interface address is left out),
so no API value can end a rule or add one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from neutrino import tokens
from neutrino.agent.metadata import METADATA_IP  # a constant, no I/O
from neutrino.kernel.names import qg_name  # pure naming helper, no I/O

NAT_TABLE = "neutrino-nat"
FAMILY = "ip"

Port = Mapping[str, Any]


def gateway_ip(router: Mapping[str, Any]) -> str | None:
    """The router's first IPv4 address on the external network (the SNAT source), if any."""
    info = router.get("external_gateway_info") or {}
    v4 = [ip for f in info.get("external_fixed_ips") or () if (ip := tokens.ipv4(f.get("ip_address")))]
    return v4[0] if v4 else None


def internal_cidrs(interfaces: Iterable[Port]) -> list[str]:
    """The IPv4 subnets attached to the router, merged where they overlap (nft sets refuse overlaps)."""
    nets = {net for port in interfaces for f in port.get("fixed_ips") or () if (net := _network(f)) is not None}
    return [str(n) for n in ipaddress.collapse_addresses(sorted(nets))]


def floating_pairs(floating_ips: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(floating IP, fixed IP) of every associated IPv4 floating IP, sorted, each pair once."""
    return sorted({(fip, fixed) for f in floating_ips
                   if (fip := tokens.ipv4(f.get("floating_ip_address")))
                   and (fixed := tokens.ipv4(f.get("fixed_ip_address")))})


def render(router: Mapping[str, Any], gateway_port: Port | None, interfaces: Sequence[Port],
           floating_ips: Iterable[Mapping[str, Any]], *, metadata_port: int | None = None) -> str:
    """The nft script that makes the router's NAT exactly what the API says (no gateway: no NAT rules).

    ``metadata_port`` adds the metadata redirect (gateway or not); None leaves it out.
    """
    if metadata_port is not None and tokens.integer(metadata_port, 1, 65535) is None:
        raise ValueError(f"metadata port {metadata_port} is outside 1..65535")
    pre: list[str] = []
    post: list[str] = []
    gw_ip = gateway_ip(router)
    if gateway_port is not None and gw_ip is not None:
        port_id = tokens.resource_id(gateway_port.get("id"))
        if port_id is None:
            raise ValueError(f"invalid gateway port id {gateway_port.get('id')!r}")
        qg = qg_name(port_id)
        for fip, fixed in floating_pairs(floating_ips):
            pre.append(f"ip daddr {fip} dnat to {fixed}")
            post.append(f'oifname "{qg}" ip saddr {fixed} snat to {fip}')
        cidrs = internal_cidrs(interfaces)
        if cidrs and (router.get("external_gateway_info") or {}).get("enable_snat", True):
            inside = "{ " + ", ".join(cidrs) + " }"
            post.append(f'oifname "{qg}" ip saddr {inside} ip daddr != {inside} snat to {gw_ip}')
    metadata = [] if metadata_port is None else [
        f'iifname "qr-*" ip daddr {METADATA_IP} tcp dport 80 redirect to :{metadata_port}']
    guard = [] if metadata_port is None else [f"tcp dport {metadata_port} ct status ! dnat drop"]
    return "\n".join([
        f"table {FAMILY} {NAT_TABLE} {{}}",  # declared first so the delete is valid on a fresh namespace
        f"delete table {FAMILY} {NAT_TABLE}",
        f"table {FAMILY} {NAT_TABLE} {{",
        *_chain("prerouting", "prerouting", "dstnat", metadata + pre),
        *_chain("output", "output", "-100", pre),
        *_chain("postrouting", "postrouting", "srcnat", post),
        *(_chain("input", "input", "filter", guard, kind="filter") if guard else []),
        "}",
        "",
    ])


def _chain(name: str, hook: str, priority: str, rules: list[str], kind: str = "nat") -> list[str]:
    return [f"  chain {name} {{", f"    type {kind} hook {hook} priority {priority}; policy accept;",
            *(f"    {rule}" for rule in rules), "  }"]


def _network(fixed_ip: Mapping[str, Any]) -> ipaddress.IPv4Network | None:
    """The IPv4 subnet of one interface address (``prefixlen`` or ``cidr``); None if not a well-formed one."""
    address = tokens.ipv4(fixed_ip.get("ip_address"))
    if address is None:
        return None
    length = tokens.integer(fixed_ip.get("prefixlen"), 0, 32)
    if length is None:
        cidr = tokens.ipv4_network(fixed_ip.get("cidr"))
        length = cidr.prefixlen if cidr is not None else None
    return None if length is None else ipaddress.IPv4Interface(f"{address}/{length}").network
