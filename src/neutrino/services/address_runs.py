"""A subnet's free addresses as runs (:mod:`neutrino.services.free_ranges`): the next address
of a /8 with thousands taken is found by reading one run, not the subnet's allocations.

The allocation pools, minus the gateway, in the order the subnet lists them, are what is handed
out, lowest first; ``ipallocations`` stays the truth (its primary key (subnet, address)). An
address whose allocation row is deleted through the ORM (a port deleted or given other
addresses) goes back into the runs, so it is the next one handed out again, as before.
"""

from __future__ import annotations

from typing import Any

import netaddr
from sqlalchemy import event, select

from neutrino.db.models.network import IPAllocation, Subnet
from neutrino.services import free_ranges


def pool_name(subnet_id: str) -> str:
    return f"subnet:{subnet_id}"


def _ranges(pools: list[dict[str, str]], gateway: str | None) -> list[tuple[int, int]]:
    gw = int(netaddr.IPAddress(gateway)) if gateway else None
    out = []
    for p in pools or []:
        lo, hi = int(netaddr.IPAddress(p["start"])), int(netaddr.IPAddress(p["end"]))
        if gw is not None and lo <= gw <= hi:
            out += [r for r in ((lo, gw - 1), (gw + 1, hi)) if r[0] <= r[1]]
        else:
            out.append((lo, hi))
    return out


def pool(s: Any, subnet_id: str, pools: list[dict[str, str]], gateway: str | None, version: int) -> free_ranges.Pool:
    def used() -> list[int]:
        return [int(netaddr.IPAddress(ip)) for ip in
                s.execute(select(IPAllocation.ip_address).where(IPAllocation.subnet_id == subnet_id)).scalars()]

    def taken(value: int) -> bool:
        return in_use(s, subnet_id, str(netaddr.IPAddress(value, version)))

    return free_ranges.Pool(pool_name(subnet_id), _ranges(pools, gateway), used, taken)


def in_use(s: Any, subnet_id: str, ip: str) -> bool:
    """One primary-key lookup (the session's pending allocations are flushed first)."""
    return s.execute(select(IPAllocation.port_id).where(
        IPAllocation.subnet_id == subnet_id, IPAllocation.ip_address == ip)).first() is not None


def take(s: Any, sub: Subnet) -> str | None:
    """The lowest free address of the subnet's pools (now taken), or None when they are full."""
    value = free_ranges.take(s, pool(s, sub.id, sub.allocation_pools, sub.gateway_ip, sub.ip_version))
    return None if value is None else str(netaddr.IPAddress(value, sub.ip_version))


def claim(s: Any, sub: Subnet, ip: str) -> None:
    """``ip`` was asked for by address: it is no longer free."""
    free_ranges.remove(s, pool(s, sub.id, sub.allocation_pools, sub.gateway_ip, sub.ip_version),
                       int(netaddr.IPAddress(ip)))


@event.listens_for(IPAllocation, "after_delete")
def _given_back(_mapper: Any, connection: Any, alloc: IPAllocation) -> None:
    row = connection.execute(select(Subnet.allocation_pools, Subnet.gateway_ip, Subnet.ip_version)
                             .where(Subnet.id == alloc.subnet_id)).first()
    if row is None:
        return
    free_ranges.give_back(connection, pool(connection, alloc.subnet_id, row.allocation_pools, row.gateway_ip,
                                           row.ip_version), int(netaddr.IPAddress(alloc.ip_address)))


def gateway_guard(subnet_id: str) -> str:
    """The write guard of "the gateway moves only while no router port holds it": a gateway
    change and a port taking the gateway address take it (``neutrino.db.guards``)."""
    return f"subnet-gateway:{subnet_id}"
