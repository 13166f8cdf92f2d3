"""Network IP availability: per network and subnet, addresses in the allocation pools and in use.

``total_ips`` counts the allocation pools' addresses; ``used_ips`` the subnet's IP allocation
rows (every port's address, DHCP and router ports included), as Neutron counts them. Admin
only: others list nothing and see no single network (Neutron's policy).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neutrino.context import Context
from neutrino.db.models.network import IPAllocation, Network, Subnet
from neutrino.errors import MethodNotAllowed, ResourceNotFound
from neutrino.services import ipam
from neutrino.services.deps import Deps

# Neutron reports IPv6 totals exactly (2**80 for a /48); JSON here is orjson, which stops at 64 bits.
MAX_REPORTED = 2**64 - 1


def _clamp(n: int) -> int:
    return min(n, MAX_REPORTED)


def _ip_versions(filters: dict[str, list[Any]]) -> set[int] | None:
    if "ip_version" not in filters:
        return None
    out = set()
    for value in filters["ip_version"]:
        try:
            out.add(int(value))
        except (TypeError, ValueError):
            continue
    return out


class NetworkIpAvailabilityService:
    # ip_version selects subnets in list() itself; the generic filter pass has nothing to do.
    special_filters: dict[str, Any] = {"ip_version": lambda item, wanted: True}
    unsupported = frozenset({"create", "update", "delete"})  # 405 before any policy question

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def availabilities(self, s: Session, network_ids: list[str] | None,
                       versions: set[int] | None) -> list[dict[str, Any]]:
        stmt = select(Network).order_by(Network.created_at, Network.id)
        if network_ids is not None:
            stmt = stmt.where(Network.id.in_(network_ids))
        nets = list(s.scalars(stmt))
        ids = [n.id for n in nets]
        subnets: dict[str, list[Subnet]] = {i: [] for i in ids}
        used: dict[str, int] = {}
        if ids:
            for sub in s.scalars(select(Subnet).where(Subnet.network_id.in_(ids))
                                 .order_by(Subnet.created_at, Subnet.id)):
                if versions is None or sub.ip_version in versions:
                    subnets[sub.network_id].append(sub)
            counts = select(IPAllocation.subnet_id, func.count()).where(IPAllocation.network_id.in_(ids)) \
                .group_by(IPAllocation.subnet_id)
            used = {sid: n for sid, n in s.execute(counts)}
        out = []
        for net in nets:
            if versions is not None and not subnets[net.id]:
                continue
            per_subnet: list[dict[str, Any]] = [
                {"subnet_id": sub.id, "subnet_name": sub.name, "cidr": sub.cidr, "ip_version": sub.ip_version,
                 "total_ips": _clamp(ipam.pool_size(sub.allocation_pools)), "used_ips": used.get(sub.id, 0)}
                for sub in subnets[net.id]
            ]
            out.append({
                "id": net.id,  # internal: the generic engine sorts and pages by "id"
                "network_id": net.id,
                "network_name": net.name,
                "project_id": net.project_id,
                "total_ips": _clamp(sum(x["total_ips"] for x in per_subnet)),
                "used_ips": sum(x["used_ips"] for x in per_subnet),
                "subnet_ip_availability": per_subnet,
            })
        return out

    def row(self, s: Session, ctx: Context, id: str) -> Any:
        raise MethodNotAllowed()

    def get_all(self, s: Session, ctx: Context, filters: dict[str, list[Any]]) -> list[dict[str, Any]]:
        ids = [str(i) for i in filters["network_id"]] if "network_id" in filters else None
        return self.availabilities(s, ids, _ip_versions(filters))

    def get(self, s: Session, ctx: Context, id: str) -> dict[str, Any]:
        found = self.availabilities(s, [id], None)
        if not found:
            raise ResourceNotFound("network", id)
        return found[0]

    def create(self, s: Session, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        raise MethodNotAllowed()

    def update(self, s: Session, ctx: Context, id: str, body: dict[str, Any]) -> dict[str, Any]:
        raise MethodNotAllowed()

    def delete(self, s: Session, ctx: Context, id: str) -> None:
        raise MethodNotAllowed()
