"""Routers: external gateways, interfaces, extra routes — Neutron's l3_db rules and errors.

A router's ports are ordinary ports whose ``device_id`` is the router's id: the gateway port
(``network:router_gateway``, project "" as Neutron hides it, referenced by
``routers.gw_port_id``) and interface ports (``network:router_interface``, owned by the
router's project, or by the port's own project when attached by port). Every check follows
Neutron's order so the first error a client sees is Neutron's: duplicate/overlapping subnets,
interfaces still needed by floating IPs or routes, gateways still needed by floating IPs.
"""

from __future__ import annotations

import uuid
from typing import Any

import netaddr
from sqlalchemy import select
from sqlalchemy.orm import Session

from neutrino.context import Context
from neutrino.db.guards import guard
from neutrino.db.models.base import new_id
from neutrino.db.models.l3 import FloatingIP, Router, RouterPort
from neutrino.db.models.network import IPAllocation, Network, Port, Subnet
from neutrino.errors import BadRequest, InUse, InvalidInput, NotFound, PortInUse
from neutrino.services import common, ipam, listing
from neutrino.services import networks as networks_svc
from neutrino.services import subnets as subnets_svc
from neutrino.services.deps import Deps
from neutrino.services.ports import INTERFACE_OWNERS, PortService, delete_port
from neutrino.services.ports import get_visible as get_port

ROUTER_INTF = "network:router_interface"
ROUTER_GW = "network:router_gateway"
FLOATINGIP_OWNER = "network:floatingip"
ROUTER_PORT_OWNERS = INTERFACE_OWNERS + (ROUTER_GW, "network:router_centralized_snat", "network:router_ha_interface")
MAX_ROUTES = 30  # Neutron's [DEFAULT] max_routes
DEFAULT_ZONE = "nova"


# ---------------------------------------------------------------- Neutron's l3 errors


class RouterNotFound(NotFound):
    message = "Router {router_id} could not be found"
    type_name = "RouterNotFound"


class RouterInUse(InUse):
    message = "Router {router_id} {reason}"
    type_name = "RouterInUse"


class RouterInterfaceNotFound(NotFound):
    message = "Router {router_id} does not have an interface with id {port_id}"
    type_name = "RouterInterfaceNotFound"


class RouterInterfaceNotFoundForSubnet(NotFound):
    message = "Router {router_id} has no interface on subnet {subnet_id}"
    type_name = "RouterInterfaceNotFoundForSubnet"


class RouterInterfaceInUseByFloatingIP(InUse):
    message = ("Router interface for subnet {subnet_id} on router {router_id} cannot be deleted, "
               "as it is required by one or more floating IPs.")
    type_name = "RouterInterfaceInUseByFloatingIP"


class RouterInterfaceInUseByRoute(InUse):
    message = ("Router interface for subnet {subnet_id} on router {router_id} cannot be deleted, "
               "as it is required by one or more routes.")
    type_name = "RouterInterfaceInUseByRoute"


class RouterExternalGatewayInUseByFloatingIp(InUse):
    message = ("Gateway cannot be updated for router {router_id}, since a gateway to external network "
               "{net_id} is required by one or more floating IPs.")
    type_name = "RouterExternalGatewayInUseByFloatingIp"


class InvalidRoutes(InvalidInput):
    message = "Invalid format for routes: {routes}, {reason}"
    type_name = "InvalidRoutes"


class RoutesExhausted(BadRequest):
    message = "Unable to complete operation for {router_id}. The number of routes exceeds the maximum {quota}."
    type_name = "RoutesExhausted"


class SubnetMismatchForPort(BadRequest):
    message = "Subnet on port {port_id} does not match the requested subnet {subnet_id}."
    type_name = "SubnetMismatchForPort"


class FlavorNotFound(NotFound):
    message = "Flavor {flavor_id} could not be found."
    type_name = "FlavorNotFound"


def router_guard(router_id: str) -> str:
    """The write guard of "an interface or gateway goes only while no floating IP uses it": their
    removal and a floating IP association through the router take it (``neutrino.db.guards``)."""
    return f"router:{router_id}"


def _uuid_error(value: Any) -> str | None:
    """neutron-lib's validate_uuid message, for member-action bodies."""
    try:
        if isinstance(value, str) and len(value) in (32, 36):
            uuid.UUID(value)
            return None
    except ValueError:
        pass
    return f"'{value}' is not a valid UUID"


def bad_router(msg: str) -> BadRequest:
    return BadRequest(resource="router", msg=msg)


# ---------------------------------------------------------------- lookups


ADMIN = Context.admin()


def get_visible(s: Session, ctx: Context, id: str) -> Router:
    row = s.scalars(common.visible(Router, ctx).where(Router.id == id)).first()
    if row is None:
        raise RouterNotFound(router_id=id)
    return row


def router_ports(s: Session, router_id: str, owners: tuple[str, ...] = ROUTER_PORT_OWNERS) -> list[Port]:
    stmt = (select(Port).join(RouterPort, RouterPort.port_id == Port.id)
            .where(RouterPort.router_id == router_id, RouterPort.port_type.in_(owners))
            .order_by(Port.created_at, Port.id))
    return list(s.scalars(stmt))


def attach(s: Session, router: Router, port: Port, port_type: str) -> None:
    """Record the port as the router's (see RouterPort for why this is not the port's fields)."""
    s.add(RouterPort(router_id=router.id, port_id=port.id, port_type=port_type))


def network_subnets(s: Session, network_id: str) -> list[Subnet]:
    return list(s.scalars(select(Subnet).where(Subnet.network_id == network_id)
                          .order_by(Subnet.created_at, Subnet.id)))


def _has_ipv6(port: Port) -> bool:
    return any(netaddr.IPAddress(a.ip_address).version == 6 for a in port.fixed_ips)


def _raise_on_overlap(existing: Subnet, new: Subnet) -> None:
    if ipam.overlaps(existing.cidr, new.cidr):
        raise bad_router(f"Cidr {new.cidr} of subnet {new.id} overlaps with cidr {existing.cidr} "
                         f"of subnet {existing.id}")


def _check_subnet_address_mode(sub: Subnet) -> None:
    if sub.ip_version == 6 and sub.ipv6_ra_mode is None and sub.ipv6_address_mode is not None:
        raise bad_router(f"IPv6 subnet {sub.id} configured to receive RAs from an external router "
                         "cannot be added to Neutron Router.")


def normalize_routes(routes: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"destination": str(netaddr.IPNetwork(r["destination"])), "nexthop": str(netaddr.IPAddress(r["nexthop"]))}
            for r in routes]


def add_routes(old: list[dict[str, str]], add: list[dict[str, str]]) -> list[dict[str, str]]:
    """extraroute-atomic's union: exact duplicates merge, everything else is kept (in order)."""
    out: list[dict[str, str]] = []
    for r in old + add:
        if r not in out:
            out.append(r)
    return out


def remove_routes(old: list[dict[str, str]], remove: list[dict[str, str]]) -> list[dict[str, str]]:
    """extraroute-atomic's difference: removing a route that is not there is fine."""
    return [r for r in old if r not in remove]


# ---------------------------------------------------------------- the service


class RouterService:
    special_filters: dict[str, Any] = {}

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.ports = PortService(deps)
        self.listing = listing.Source(Router, self.load)

    # ------------------------------------------------------------ views

    def to_dict(self, router: Router, gw_port: Port | None) -> dict[str, Any]:
        gw_info = None
        if gw_port is not None:
            gw_info = {
                "network_id": gw_port.network_id,
                "enable_snat": router.enable_snat,
                "external_fixed_ips": [{"subnet_id": a.subnet_id, "ip_address": a.ip_address}
                                       for a in gw_port.fixed_ips],
            }
        return {
            **common.standard(router),
            "admin_state_up": router.admin_state_up,
            "status": router.status,
            "external_gateway_info": gw_info,
            "routes": [dict(r) for r in router.routes or []],
            "distributed": router.distributed,
            "ha": router.ha,
            "availability_zone_hints": list(router.availability_zone_hints or []),
            "availability_zones": [DEFAULT_ZONE],
            "flavor_id": None,
        }

    def _view(self, s: Session, router: Router) -> dict[str, Any]:
        return self.to_dict(router, s.get(Port, router.gw_port_id) if router.gw_port_id else None)

    def row(self, s: Session, ctx: Context, id: str) -> Router:
        return get_visible(s, ctx, id)

    def get_all(self, s: Session, ctx: Context, filters: dict[str, list[Any]]) -> list[dict[str, Any]]:
        stmt = common.visible(Router, ctx)
        if "id" in filters:
            stmt = stmt.where(Router.id.in_([str(i) for i in filters["id"]]))
        return self._views(s, list(s.scalars(stmt)))

    def load(self, s: Session, ids: list[str]) -> list[dict[str, Any]]:
        """The routers of these ids, in this order (a list page, see :mod:`.listing`)."""
        if not ids:
            return []
        return listing.in_order(ids, self._views(s, list(s.scalars(select(Router).where(Router.id.in_(ids))))))

    def _views(self, s: Session, routers: list[Router]) -> list[dict[str, Any]]:
        gw_ids = [r.gw_port_id for r in routers if r.gw_port_id]
        gws = {p.id: p for p in s.scalars(select(Port).where(Port.id.in_(gw_ids)))} if gw_ids else {}
        return [self.to_dict(r, gws.get(r.gw_port_id or "")) for r in routers]

    def get(self, s: Session, ctx: Context, id: str) -> dict[str, Any]:
        return self._view(s, get_visible(s, ctx, id))

    # ------------------------------------------------------------ create / update / delete

    def create(self, s: Session, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        info = body.get("external_gateway_info")
        project = body["project_id"]
        self.deps.quotas.check(s, project, "router", Router)
        if body.get("flavor_id"):
            raise FlavorNotFound(flavor_id=body["flavor_id"])
        router = Router(
            id=new_id(), project_id=project, name=body["name"], description=body["description"],
            admin_state_up=body["admin_state_up"], status="ACTIVE", enable_snat=True, routes=[],
            distributed=bool(body.get("distributed")), ha=bool(body.get("ha")),
            availability_zone_hints=body["availability_zone_hints"], tags=body["tags"],
        )
        s.add(router)
        s.flush()
        if info:
            self._update_gateway(s, ctx, router, info)
        return self._view(s, router)

    def update(self, s: Session, ctx: Context, id: str, body: dict[str, Any]) -> dict[str, Any]:
        router = get_visible(s, ctx, id)
        changed = False
        if "routes" in body:
            routes = normalize_routes(body["routes"])
            self.validate_routes(s, router, routes)
            if routes != list(router.routes or []):
                router.routes = routes
                changed = True
        if "external_gateway_info" in body:
            changed |= self._update_gateway(s, ctx, router, body["external_gateway_info"])
        changed |= common.apply(router, {k: bool(val) if k in ("distributed", "ha") else val
                                         for k, val in body.items()
                                         if k in ("name", "description", "admin_state_up", "distributed", "ha")})
        if changed:
            common.touch(router)
        s.flush()
        return self._view(s, router)

    def delete(self, s: Session, ctx: Context, id: str) -> None:
        router = get_visible(s, ctx, id)
        attached = [p.id for p in router_ports(s, id, (ROUTER_INTF,))]
        if attached:
            raise RouterInUse(router_id=id, reason="has ports still attached: " + ", ".join(attached))
        self._delete_gateway_port(s, router, None)
        for port in router_ports(s, id):
            delete_port(s, port)
        s.flush()
        s.delete(router)

    # ------------------------------------------------------------ gateway

    def _update_gateway(self, s: Session, ctx: Context, router: Router, info: dict[str, Any] | None) -> bool:
        """Neutron's _update_router_gw_info (with ext-gw-mode); True when anything changed."""
        gw_port = s.get(Port, router.gw_port_id) if router.gw_port_id else None
        before = (router.gw_port_id, router.enable_snat,
                  [(a.subnet_id, a.ip_address) for a in gw_port.fixed_ips] if gw_port else None)
        ext_ips = (info.get("external_fixed_ips") or []) if info else []
        if any("subnet_id" not in ip and "ip_address" not in ip for ip in ext_ips):
            raise InvalidInput(error_message="IP allocation requires subnet_id or ip_address")
        ip_change = self._external_ip_change(gw_port, ext_ips)
        network_id = self._validate_gateway_info(s, ctx, router, info, ext_ips)
        router.enable_snat = info.get("enable_snat", True) if info else True
        if gw_port is not None and ip_change and gw_port.network_id == network_id:
            self.ports.update(s, ADMIN, gw_port.id, {"fixed_ips": ext_ips})
        else:
            self._delete_gateway_port(s, router, network_id)
            self._create_gateway_port(s, router, network_id, ext_ips)
        gw_port = s.get(Port, router.gw_port_id) if router.gw_port_id else None
        after = (router.gw_port_id, router.enable_snat,
                 [(a.subnet_id, a.ip_address) for a in gw_port.fixed_ips] if gw_port else None)
        return before != after

    @staticmethod
    def _external_ip_change(gw_port: Port | None, ext_ips: list[dict[str, Any]]) -> bool:
        if not ext_ips:
            return False
        if gw_port is None:
            return True
        if {a.subnet_id for a in gw_port.fixed_ips} != {f["subnet_id"] for f in ext_ips if f.get("subnet_id")}:
            return True
        return {a.ip_address for a in gw_port.fixed_ips} != {f["ip_address"] for f in ext_ips if f.get("ip_address")}

    def _validate_gateway_info(self, s: Session, ctx: Context, router: Router, info: dict[str, Any] | None,
                               ext_ips: list[dict[str, Any]]) -> str | None:
        network_id = info["network_id"] if info else None
        gw_subnets: list[Subnet] = []
        if network_id:
            network = networks_svc.get_visible(s, ctx, network_id)
            if not network.external:
                raise bad_router(f"Network {network_id} is not an external network")
            gw_subnets = network_subnets(s, network_id)
            for ext_ip in ext_ips:
                for sub in gw_subnets:
                    if sub.gateway_ip and ext_ip.get("ip_address") == sub.gateway_ip:
                        raise bad_router(f"External IP {ext_ip['ip_address']} is the same as the gateway IP")
        if router.routes:
            cidrs, ips = [], []
            for port in router_ports(s, router.id):
                if port.id == router.gw_port_id:
                    continue
                for alloc in port.fixed_ips:
                    cidrs.append(s.get(Subnet, alloc.subnet_id).cidr)  # type: ignore[union-attr]
                    ips.append(alloc.ip_address)
            cidrs += [sub.cidr for sub in gw_subnets]
            self.validate_routes(s, router, list(router.routes), cidrs, ips)
        return network_id

    def _delete_gateway_port(self, s: Session, router: Router, new_network_id: str | None) -> None:
        gw_port = s.get(Port, router.gw_port_id) if router.gw_port_id else None
        if gw_port is None or gw_port.network_id == new_network_id:
            return
        guard(s, router_guard(router.id))  # meets a floating IP associated through it meanwhile
        if s.scalar(select(FloatingIP.id).where(FloatingIP.router_id == router.id).limit(1)):
            raise RouterExternalGatewayInUseByFloatingIp(router_id=router.id, net_id=gw_port.network_id)
        router.gw_port_id = None
        s.flush()
        delete_port(s, gw_port)
        s.flush()

    def _create_gateway_port(self, s: Session, router: Router, network_id: str | None,
                             ext_ips: list[dict[str, Any]]) -> None:
        if not network_id:
            return
        current = s.get(Port, router.gw_port_id) if router.gw_port_id else None
        if current is not None and current.network_id == network_id:
            return
        self._check_for_dup_router_subnets(s, router, network_subnets(s, network_id))
        network = s.get(Network, network_id)
        assert network is not None
        port = self.ports.create_internal(s, ADMIN, network, {
            "project_id": "", "network_id": network_id, "fixed_ips": ext_ips or None,
            "device_id": router.id, "device_owner": ROUTER_GW, "admin_state_up": True, "name": "",
        })
        attach(s, router, port, ROUTER_GW)
        router.gw_port_id = port.id
        s.flush()

    # ------------------------------------------------------------ routes

    def validate_routes(self, s: Session, router: Router, routes: list[dict[str, str]],
                        cidrs: list[str] | None = None, ips: list[str] | None = None) -> None:
        """Neutron's extraroute _validate_routes: count, nexthop on a router subnet, not the router."""
        if len(routes) > MAX_ROUTES:
            raise RoutesExhausted(router_id=router.id, quota=MAX_ROUTES)
        cidrs, ips = list(cidrs or []), list(ips or [])
        if not (cidrs or ips):
            for port in router_ports(s, router.id):
                for alloc in port.fixed_ips:
                    cidrs.append(s.get(Subnet, alloc.subnet_id).cidr)  # type: ignore[union-attr]
                    ips.append(alloc.ip_address)
        nets = [netaddr.IPNetwork(c) for c in cidrs]
        for route in routes:
            nexthop = netaddr.IPAddress(route["nexthop"])
            if not any(nexthop.version == n.version and nexthop in n for n in nets):
                raise InvalidRoutes(routes=routes, reason="the nexthop is not connected with router")
            if route["nexthop"] in ips:
                raise InvalidRoutes(routes=routes, reason="the nexthop is used by router")

    def change_routes(
        self, s: Session, ctx: Context, id: str, routes: list[dict[str, Any]], add: bool
    ) -> dict[str, Any]:
        """add_extraroutes / remove_extraroutes: merge with the current routes, then update."""
        router = get_visible(s, ctx, id)
        old = list(router.routes or [])
        new = add_routes(old, normalize_routes(routes)) if add else remove_routes(old, normalize_routes(routes))
        return self.update(s, ctx, id, {"routes": new})

    # ------------------------------------------------------------ interfaces

    def _check_for_dup_router_subnets(self, s: Session, router: Router, new_subnets: list[Subnet]) -> None:
        new_ids = {sub.id for sub in new_subnets}
        router_subnets: list[str] = []
        for port in router_ports(s, router.id):
            for alloc in port.fixed_ips:
                if alloc.subnet_id in new_ids:
                    raise bad_router(f"Router already has a port on subnet {alloc.subnet_id}")
                if port.device_owner == ROUTER_GW:
                    router_subnets += [sub.id for sub in network_subnets(s, port.network_id)]
                else:
                    router_subnets.append(alloc.subnet_id)
        for sub_id in dict.fromkeys(router_subnets):
            existing = s.get(Subnet, sub_id)
            if existing is None:
                continue
            for new in new_subnets:
                _raise_on_overlap(existing, new)

    @staticmethod
    def _interface_info(info: Any, for_removal: bool = False) -> tuple[bool, bool]:
        info = info if isinstance(info, dict) else {}
        by_port, by_subnet = "port_id" in info, "subnet_id" in info
        if not (by_port or by_subnet):
            raise bad_router("Either subnet_id or port_id must be specified")
        for key in ("port_id", "subnet_id"):
            if key in info and (msg := _uuid_error(info[key])):
                raise bad_router(msg)
        if not for_removal and by_port and by_subnet:
            raise bad_router("Cannot specify both subnet-id and port-id")
        return by_port, by_subnet

    @staticmethod
    def _interface_view(router: Router, port_project: str, port_id: str, network_id: str,
                        subnet_id: str, subnet_ids: list[str]) -> dict[str, Any]:
        return {"id": router.id, "tenant_id": port_project, "project_id": port_project, "port_id": port_id,
                "network_id": network_id, "subnet_id": subnet_id, "subnet_ids": subnet_ids}

    def add_interface(self, s: Session, ctx: Context, router_id: str, info: Any) -> dict[str, Any]:
        router = get_visible(s, ctx, router_id)
        by_port, _ = self._interface_info(info)
        if by_port:
            port, subnets = self._add_interface_by_port(s, ctx, router, info["port_id"])
        else:
            port, subnets = self._add_interface_by_subnet(s, ctx, router, info["subnet_id"])
        common.touch(router)
        s.flush()
        return self._interface_view(router, port.project_id, port.id, port.network_id, subnets[-1].id,
                                    [sub.id for sub in subnets])

    def _add_interface_by_subnet(self, s: Session, ctx: Context, router: Router,
                                 subnet_id: str) -> tuple[Port, list[Subnet]]:
        sub = subnets_svc.get_visible(s, ctx, subnet_id)
        if not sub.gateway_ip:
            raise bad_router("Subnet for router interface must have a gateway IP")
        if sub.project_id != ctx.project_id and not ctx.is_admin:
            raise bad_router(f"Cannot add interface to router because subnet {subnet_id} is not owned by "
                             "project making the request")
        _check_subnet_address_mode(sub)
        self._check_for_dup_router_subnets(s, router, [sub])
        fixed_ip = {"ip_address": sub.gateway_ip, "subnet_id": sub.id}
        if sub.ip_version == 6:
            # another IPv6 prefix on a network the router already has an IPv6 port on joins that port
            for port in router_ports(s, router.id, (ROUTER_INTF,)):
                if port.network_id == sub.network_id and _has_ipv6(port):
                    ips = [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips]
                    self.ports.update(s, ADMIN, port.id, {"fixed_ips": ips + [fixed_ip]})
                    return port, [sub]
        network = s.get(Network, sub.network_id)
        assert network is not None
        port = self.ports.create_internal(s, ctx, network, {
            "project_id": router.project_id, "network_id": sub.network_id, "fixed_ips": [fixed_ip],
            "admin_state_up": True, "device_id": router.id, "device_owner": ROUTER_INTF, "name": "",
        })
        attach(s, router, port, ROUTER_INTF)
        return port, [sub]

    def _add_interface_by_port(self, s: Session, ctx: Context, router: Router,
                               port_id: str) -> tuple[Port, list[Subnet]]:
        port = get_port(s, ctx, port_id)
        if port.device_id != "":
            raise PortInUse(net_id=port.network_id, port_id=port.id, device_id=port.device_id)
        if not port.fixed_ips:
            raise bad_router("Router port must have at least one fixed IP")
        subnets = [s.get(Subnet, a.subnet_id) for a in port.fixed_ips]
        subs = [sub for sub in subnets if sub is not None]
        for sub in subs:
            _check_subnet_address_mode(sub)
        if _has_ipv6(port):
            for existing in router_ports(s, router.id):
                if existing.network_id == port.network_id and _has_ipv6(existing):
                    raise bad_router(f"Router already contains IPv6 port {existing.id} belonging to network id "
                                     f"{existing.network_id}. Only one IPv6 port from the same network subnet "
                                     "can be connected to a router.")
        self._check_for_dup_router_subnets(s, router, subs)
        if len([sub for sub in subs if sub.ip_version == 4]) > 1:
            raise bad_router("Cannot have multiple IPv4 subnets on router port")
        self._check_port_in_range_or_admin(ctx, subs, port)
        port.device_id, port.device_owner = router.id, ROUTER_INTF
        attach(s, router, port, ROUTER_INTF)
        common.touch(port)
        return port, subs

    @staticmethod
    def _check_port_in_range_or_admin(ctx: Context, subs: list[Subnet], port: Port) -> None:
        if ctx.is_admin:
            return
        by_id = {sub.id: sub for sub in subs}
        for alloc in port.fixed_ips:
            sub = by_id[alloc.subnet_id]
            pools = netaddr.IPSet()
            for pool in sub.allocation_pools or []:
                pools.add(netaddr.IPRange(pool["start"], pool["end"]))
            if netaddr.IPAddress(alloc.ip_address) not in pools and ctx.project_id != sub.project_id:
                raise bad_router(f"Cannot add interface to router because specified port {port.id} has an IP "
                                 f"address out of the allocation pool of subnet {sub.id}, which is not owned by "
                                 "the project making the request")

    def remove_interface(self, s: Session, ctx: Context, router_id: str, info: Any) -> dict[str, Any]:
        router = get_visible(s, ctx, router_id)
        by_port, _ = self._interface_info(info, for_removal=True)
        if by_port:
            view, subnets = self._remove_interface_by_port(s, router, info["port_id"], info.get("subnet_id"))
        else:
            view, subnets = self._remove_interface_by_subnet(s, ctx, router, info["subnet_id"])
        common.touch(router)
        s.flush()
        project, port_id, network_id = view
        return self._interface_view(router, project, port_id, network_id, subnets[0].id, [sub.id for sub in subnets])

    def _remove_interface_by_port(self, s: Session, router: Router, port_id: str,
                                  subnet_id: str | None) -> tuple[tuple[str, str, str], list[Subnet]]:
        port = next((p for p in router_ports(s, router.id, (ROUTER_INTF,)) if p.id == port_id), None)
        if port is None:
            raise RouterInterfaceNotFound(router_id=router.id, port_id=port_id)
        subnet_ids = [a.subnet_id for a in port.fixed_ips]
        if subnet_id and subnet_id not in subnet_ids:
            raise SubnetMismatchForPort(port_id=port_id, subnet_id=subnet_id)
        subs = [sub for sub in (s.get(Subnet, i) for i in subnet_ids) if sub is not None]
        for sub in subs:
            self._confirm_interface_not_in_use(s, router, sub)
        view = (port.project_id, port.id, port.network_id)
        delete_port(s, port)
        s.flush()
        return view, subs

    def _remove_interface_by_subnet(self, s: Session, ctx: Context, router: Router,
                                    subnet_id: str) -> tuple[tuple[str, str, str], list[Subnet]]:
        sub = subnets_svc.get_visible(s, ctx, subnet_id)
        ports = [p for p in router_ports(s, router.id, (ROUTER_INTF,)) if p.network_id == sub.network_id]
        if ports:
            self._confirm_interface_not_in_use(s, router, sub)
        for port in ports:
            ips = [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips]
            view = (port.project_id, port.id, port.network_id)
            if subnet_id in [ip["subnet_id"] for ip in ips] and len(ips) > 1:
                self.ports.update(s, ADMIN, port.id, {"fixed_ips": [ip for ip in ips if ip["subnet_id"] != subnet_id]})
                return view, [sub]
            if subnet_id in [ip["subnet_id"] for ip in ips]:
                delete_port(s, port)
                s.flush()
                return view, [sub]
        raise RouterInterfaceNotFoundForSubnet(router_id=router.id, subnet_id=subnet_id)

    @staticmethod
    def _confirm_interface_not_in_use(s: Session, router: Router, sub: Subnet) -> None:
        guard(s, router_guard(router.id))  # meets a floating IP associated through it meanwhile
        cidr = netaddr.IPNetwork(sub.cidr)
        on_subnet = set(s.scalars(select(IPAllocation.port_id).where(IPAllocation.subnet_id == sub.id)))
        for fip in s.scalars(select(FloatingIP).where(FloatingIP.router_id == router.id)):
            if (fip.fixed_ip_address and netaddr.IPAddress(fip.fixed_ip_address) in cidr
                    and fip.fixed_port_id in on_subnet):
                raise RouterInterfaceInUseByFloatingIP(router_id=router.id, subnet_id=sub.id)
        for route in router.routes or []:
            nexthop = netaddr.IPAddress(route["nexthop"])
            if nexthop.version == cidr.version and nexthop in cidr:
                raise RouterInterfaceInUseByRoute(router_id=router.id, subnet_id=sub.id)
