"""IPAM arithmetic: default and validated allocation pools, gateways, picking a free address.

Pure functions over netaddr values; the services own the database side (allocations are rows
whose primary key (subnet, address) rejects a duplicate even when two requests race).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

import netaddr

from neutrino.errors import BadRequest, Conflict, InvalidInput, IpAddressGenerationFailureNoMatchingSubnet

DEVICE_OWNER_DHCP = "network:dhcp"


class GatewayConflictWithAllocationPools(Conflict):
    message = "Gateway ip {ip_address} conflicts with allocation pool {pool}"
    type_name = "GatewayConflictWithAllocationPools"


class OverlappingAllocationPools(Conflict):
    message = "Found overlapping allocation pools: {pool_1} and {pool_2} for subnet {subnet_cidr}."
    type_name = "OverlappingAllocationPools"


class InvalidAllocationPool(BadRequest):
    message = "The allocation pool {pool} is not valid."
    type_name = "InvalidAllocationPool"


class OutOfBoundsAllocationPool(BadRequest):
    message = "The allocation pool {pool} spans beyond the subnet cidr {subnet_cidr}."
    type_name = "OutOfBoundsAllocationPool"


class ServiceSubnet(Protocol):
    service_types: Any
    enable_dhcp: bool


S = TypeVar("S", bound=ServiceSubnet)


def subnets_for_service(subnets: list[S], device_owner: str, network_id: str) -> list[S]:
    """The subnets a port of ``device_owner`` may take addresses from (subnet-service-types):
    those whose service_types name it, then those without service types; a DHCP port may use
    any subnet with DHCP enabled. None of several: IpAddressGenerationFailureNoMatchingSubnet."""
    fit = [sub for sub in subnets
           if not sub.service_types or device_owner in sub.service_types
           or (device_owner == DEVICE_OWNER_DHCP and sub.enable_dhcp)]
    if subnets and not fit:
        raise IpAddressGenerationFailureNoMatchingSubnet(network_id=network_id, service_type=device_owner)
    return sorted(fit, key=lambda sub: not sub.service_types)  # stable: typed subnets first


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
    """Check requested pools as Neutron's validate_allocation_pools does: ordered, of the
    subnet's version, within its usable range (never the network address, nor an IPv4
    broadcast address), disjoint, not holding the gateway."""
    lo, hi = usable_range(net)
    ranges: list[netaddr.IPRange] = []
    for pool in pools:
        try:
            start, end = netaddr.IPAddress(pool["start"]), netaddr.IPAddress(pool["end"])
            if start > end:
                raise ValueError
        except (netaddr.AddrFormatError, ValueError, TypeError):
            raise InvalidAllocationPool(pool=f"{pool.get('start')}-{pool.get('end')}") from None
        if start.version != net.version or end.version != net.version:
            raise InvalidAllocationPool(pool=f"{start}-{end}")
        if int(start) < lo or int(end) > hi:
            raise OutOfBoundsAllocationPool(pool=f"{start}-{end}", subnet_cidr=str(net.cidr))
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
