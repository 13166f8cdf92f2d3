"""IPAM arithmetic: default and validated allocation pools, gateways, picking a free address.

Pure functions over netaddr values; the services own the database side (allocations are rows
whose primary key (subnet, address) rejects a duplicate even when two requests race).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import netaddr

from neutrino.errors import Conflict, InvalidInput


class GatewayConflictWithAllocationPools(Conflict):
    message = "Gateway ip {ip_address} conflicts with allocation pool {pool}"
    type_name = "GatewayConflictWithAllocationPools"


class OverlappingAllocationPools(Conflict):
    message = "Found overlapping allocation pools: {pool_1} and {pool_2} for subnet {subnet_cidr}."
    type_name = "OverlappingAllocationPools"


def first_usable(net: netaddr.IPNetwork) -> netaddr.IPAddress:
    """Neutron's default gateway: the first address after the network address."""
    return netaddr.IPAddress(net.first + 1, net.version)


def usable_range(net: netaddr.IPNetwork) -> tuple[int, int]:
    """Addresses that may be handed out: IPv4 skips network/broadcast (not for /31, /32);
    IPv6 skips the subnet-router anycast address."""
    if net.version == 4:
        if net.prefixlen >= 31:
            return net.first, net.last
        return net.first + 1, net.last - 1
    return net.first + 1, net.last


def default_pools(net: netaddr.IPNetwork, gateway: str | None) -> list[dict[str, str]]:
    lo, hi = usable_range(net)
    ranges = [(lo, hi)]
    if gateway:
        gw = int(netaddr.IPAddress(gateway))
        ranges = [r for r in ((lo, gw - 1), (gw + 1, hi)) if r[0] <= r[1]] if lo <= gw <= hi else ranges
    return [_pool(a, b, net.version) for a, b in ranges]


def _pool(a: int, b: int, version: int) -> dict[str, str]:
    return {"start": str(netaddr.IPAddress(a, version)), "end": str(netaddr.IPAddress(b, version))}


def validate_pools(net: netaddr.IPNetwork, pools: list[dict[str, Any]], gateway: str | None) -> list[dict[str, str]]:
    """Check requested pools: inside the subnet, ordered, disjoint, not holding the gateway."""
    ranges: list[netaddr.IPRange] = []
    for pool in pools:
        try:
            start, end = netaddr.IPAddress(pool["start"]), netaddr.IPAddress(pool["end"])
        except (netaddr.AddrFormatError, ValueError, TypeError):
            raise InvalidInput(error_message=f"Invalid allocation pool {pool}") from None
        if start.version != net.version or end.version != net.version:
            raise InvalidInput(
                error_message=f"Allocation pool {pool['start']} - {pool['end']} is not of the subnet's IP version")
        if start not in net or end not in net:
            raise InvalidInput(
                error_message=f"The allocation pool {start}-{end} spans beyond the subnet cidr {net.cidr}")
        if start > end:
            raise InvalidInput(error_message=f"The allocation pool {start}-{end} is not valid: start is after end")
        ranges.append(netaddr.IPRange(start, end))
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            if a.first <= b.last and b.first <= a.last:
                raise OverlappingAllocationPools(pool_1=str(a), pool_2=str(b), subnet_cidr=str(net.cidr))
    if gateway:
        gw = netaddr.IPAddress(gateway)
        for r in ranges:
            if gw in r:
                raise GatewayConflictWithAllocationPools(ip_address=gateway, pool=str(r))
    return [{"start": str(netaddr.IPAddress(r.first, net.version)), "end": str(netaddr.IPAddress(r.last, net.version))}
            for r in ranges]


def check_gateway(net: netaddr.IPNetwork, gateway: str) -> None:
    gw = netaddr.IPAddress(gateway)
    if gw.version != net.version:
        raise InvalidInput(error_message="Gateway IP version inconsistent with allocation pool IP version")
    if gw not in net:
        raise InvalidInput(error_message=f"Gateway is not valid on subnet: {gateway} is outside {net.cidr}")
    if net.version == 4 and net.prefixlen < 31 and int(gw) in (net.first, net.last):
        raise InvalidInput(
            error_message=f"Gateway is not valid on subnet: {gateway} is the network or broadcast address")


def pick_free(pools: list[dict[str, str]], used: Iterable[str], version: int) -> str | None:
    """The lowest free address of the pools, or None when they are full."""
    taken = {int(netaddr.IPAddress(u)) for u in used}
    for pool in pools:
        lo, hi = int(netaddr.IPAddress(pool["start"])), int(netaddr.IPAddress(pool["end"]))
        ip = lo
        while ip <= hi:
            if ip not in taken:
                return str(netaddr.IPAddress(ip, version))
            ip += 1
    return None


def pool_size(pools: list[dict[str, str]]) -> int:
    return sum(int(netaddr.IPAddress(p["end"])) - int(netaddr.IPAddress(p["start"])) + 1 for p in pools)


def eui64(net: netaddr.IPNetwork, mac: str) -> str:
    """The SLAAC address of ``mac`` in an IPv6 /64."""
    return str(netaddr.EUI(mac).ipv6(net.network))


def overlaps(a: str, b: str) -> bool:
    na, nb = netaddr.IPNetwork(a), netaddr.IPNetwork(b)
    return na.version == nb.version and na.first <= nb.last and nb.first <= na.last
