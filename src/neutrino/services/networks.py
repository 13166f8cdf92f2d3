"""Networks: create with an ML2 segment, MTU from the segment type, shared/external visibility."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.orm import Session

from neutrino.context import Context
from neutrino.db.guards import guard
from neutrino.db.models.network import IPAllocation, Network, NetworkSegment, Port, Subnet
from neutrino.errors import Conflict, HTTPBadRequest, InUse, NetworkInUse
from neutrino.ml2.types import SegmentSpec
from neutrino.services import address_runs, common, free_ranges, listing, security_groups
from neutrino.services.deps import Deps

# Ports the network owns itself and removes with it (Neutron's auto-delete owners).
AUTO_DELETE_OWNERS = ("network:dhcp",)
EXTERNAL_OWNERS = ("network:router_gateway", "network:floatingip")
PROVIDER_KEYS = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
COLUMNS = {"router:external": "external"}


class ExternalNetworkInUse(InUse):
    message = ("External network {net_id} cannot be updated to be made non-external, since it has "
               "existing gateway ports.")
    type_name = "ExternalNetworkInUse"


class InvalidSharedSetting(Conflict):
    message = "Unable to reconfigure sharing settings for network {network}. Multiple tenants are using it."
    type_name = "InvalidSharedSetting"


def shared_guard(network_id: str) -> str:
    """The write guard of "no other project's port while unshared": unsharing a network and a
    port create by another project than its owner take it (``neutrino.db.guards``)."""
    return f"network-shared:{network_id}"


def external_guard(network_id: str) -> str:
    """The write guard of "no gateway or floating IP port once not external"."""
    return f"network-external:{network_id}"


def visible_clause(ctx: Context) -> tuple[ColumnElement[bool], ...]:
    """Besides its own, a project sees shared and external networks."""
    return (Network.shared.is_(True), Network.external.is_(True))


def get_visible(s: Session, ctx: Context, id: str) -> Network:
    return common.get_or_404(s, Network, ctx, id, "network", *visible_clause(ctx))


def _first_segment(column: Any) -> Any:
    """A network's provider:* attribute in SQL: the column of its first segment."""
    return (select(column).where(NetworkSegment.network_id == Network.id)
            .order_by(NetworkSegment.segment_index).limit(1).scalar_subquery())


def _with_subnets(wanted: list[Any]) -> Any:
    """``?subnets=<id>``: networks holding any of these subnets."""
    return exists(select(Subnet.id).where(Subnet.network_id == Network.id,
                                          Subnet.id.in_([str(w) for w in wanted])))


class NetworkService:
    special_filters: dict[str, Any] = {}

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.ml2 = deps.ml2
        # Neutron's NETWORK BEFORE_DELETE callbacks (an external network's disassociated
        # floating IPs): (session, network id), wired where the services are built.
        self.before_delete_hooks: list[Callable[[Session, str], None]] = []
        self.listing = listing.Source(Network, self.load, columns={
            "router:external": Network.external,
            **{key: _first_segment(col) for key, col in (
                ("provider:network_type", NetworkSegment.network_type),
                ("provider:physical_network", NetworkSegment.physical_network),
                ("provider:segmentation_id", NetworkSegment.segmentation_id))},
        }, filters={"subnets": _with_subnets})

    def to_dict(self, net: Network, subnet_ids: list[str]) -> dict[str, Any]:
        seg = net.segments[0] if net.segments else None
        return {
            **common.standard(net),
            "admin_state_up": net.admin_state_up,
            "status": net.status,
            "subnets": subnet_ids,
            "shared": net.shared,
            "mtu": net.mtu,
            "router:external": net.external,
            "provider:network_type": seg.network_type if seg else None,
            "provider:physical_network": seg.physical_network if seg else None,
            "provider:segmentation_id": seg.segmentation_id if seg else None,
            "port_security_enabled": net.port_security_enabled,
            "dns_domain": net.dns_domain,
            "availability_zone_hints": list(net.availability_zone_hints or []),
            "availability_zones": ["nova"],
            "ipv4_address_scope": None,
            "ipv6_address_scope": None,
            "l2_adjacency": True,
            "is_default": net.is_default,
        }

    def _subnet_ids(self, s: Session, net_ids: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {i: [] for i in net_ids}
        if not net_ids:
            return out
        rows = s.execute(select(Subnet.network_id, Subnet.id).where(Subnet.network_id.in_(net_ids))
                         .order_by(Subnet.created_at, Subnet.id))
        for net_id, sub_id in rows:
            out[net_id].append(sub_id)
        return out

    def row(self, s: Session, ctx: Context, id: str) -> Network:
        return get_visible(s, ctx, id)

    def get_all(self, s: Session, ctx: Context, filters: dict[str, list[Any]]) -> list[dict[str, Any]]:
        stmt = common.visible(Network, ctx, *visible_clause(ctx))
        stmt = common.prefilter(stmt, Network.__table__, filters)
        return self._views(s, list(s.scalars(stmt)))

    def _views(self, s: Session, nets: list[Network]) -> list[dict[str, Any]]:
        subnets = self._subnet_ids(s, [n.id for n in nets])
        return [self.to_dict(n, subnets[n.id]) for n in nets]

    def load(self, s: Session, ids: list[str]) -> list[dict[str, Any]]:
        """The networks of these ids, in this order (a list page, see :mod:`.listing`)."""
        if not ids:
            return []
        return listing.in_order(ids, self._views(s, list(s.scalars(select(Network).where(Network.id.in_(ids))))))

    def get(self, s: Session, ctx: Context, id: str) -> dict[str, Any]:
        net = get_visible(s, ctx, id)
        return self.to_dict(net, self._subnet_ids(s, [id])[id])

    def create(self, s: Session, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        project = body["project_id"]
        self.deps.quotas.check(s, project, "network", Network)
        security_groups.ensure_default(s, project)
        provider = self._provider_spec(body)
        net = Network(
            project_id=project,
            name=body["name"],
            description=body["description"],
            admin_state_up=body["admin_state_up"],
            shared=body["shared"],
            external=body["router:external"],
            is_default=body["is_default"],
            port_security_enabled=body["port_security_enabled"],
            dns_domain=body["dns_domain"],
            availability_zone_hints=body["availability_zone_hints"],
            tags=body["tags"],
        )
        s.add(net)
        s.flush()
        seg = self.ml2.create_segment(s, net, provider)
        max_mtu = self.ml2.mtu(seg)
        net.mtu = self._checked_mtu(body.get("mtu"), max_mtu)
        return self.to_dict(net, [])

    @staticmethod
    def _provider_spec(body: dict[str, Any]) -> SegmentSpec | None:
        if not any(k in body for k in PROVIDER_KEYS):
            return None
        if "provider:network_type" not in body:
            raise HTTPBadRequest(msg="Invalid input for operation: network_type required.")
        return SegmentSpec(
            body["provider:network_type"],
            body.get("provider:physical_network") or None,
            body.get("provider:segmentation_id"),
        )

    @staticmethod
    def _checked_mtu(requested: int | None, max_mtu: int) -> int:
        if requested is None:
            return max_mtu
        if requested > max_mtu:
            raise HTTPBadRequest(msg=f"Requested MTU is too big, maximum is {max_mtu}")
        return requested

    def update(self, s: Session, ctx: Context, id: str, body: dict[str, Any]) -> dict[str, Any]:
        net = get_visible(s, ctx, id)
        if "mtu" in body:
            body = {**body, "mtu": self._checked_mtu(body["mtu"], self.ml2.mtu(net.segments[0]))}
        if body.get("shared") is False and net.shared:
            guard(s, shared_guard(id))  # meets other projects' port creates (ports.create_internal)
            if s.scalar(select(Port.id).where(Port.network_id == id, Port.project_id.not_in((net.project_id, "")))):
                raise InvalidSharedSetting(network=id)
        if body.get("router:external") is False and net.external:
            guard(s, external_guard(id))  # meets gateway and floating IP port creates
            if s.scalar(select(Port.id).where(Port.network_id == id, Port.device_owner.in_(EXTERNAL_OWNERS))):
                raise ExternalNetworkInUse(net_id=id)
        if common.apply(net, body, COLUMNS):
            common.touch(net)
        return self.get(s, ctx, id)

    def before_delete(self, s: Session, ctx: Context, id: str) -> None:
        """What Neutron removes before it checks the network is unused, in a transaction of its
        own: a delete then refused (409 NetworkInUse) keeps these removed, as in Neutron."""
        get_visible(s, ctx, id)
        for hook in self.before_delete_hooks:
            hook(s, id)

    def delete(self, s: Session, ctx: Context, id: str) -> None:
        net = get_visible(s, ctx, id)
        in_use = sorted(s.scalars(select(Port.id).where(Port.network_id == id,
                                                         Port.device_owner.not_in(AUTO_DELETE_OWNERS))))
        if in_use:  # Neutron's _ensure_network_not_in_use names them
            raise NetworkInUse(net_id=id, reason="There are one or more ports still in use on the network, "
                                                 f"id for these ports is: {','.join(in_use)}")
        for port in s.scalars(select(Port).where(Port.network_id == id)):
            s.delete(port)
        s.flush()
        s.execute(delete(IPAllocation).where(IPAllocation.network_id == id))
        free_ranges.drop(s, [address_runs.pool_name(sid) for sid in
                             s.scalars(select(Subnet.id).where(Subnet.network_id == id))])
        s.execute(delete(Subnet).where(Subnet.network_id == id))
        self.ml2.release_segments(s, net)
        s.delete(net)
