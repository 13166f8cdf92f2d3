"""Floating IPs: an address from an external network, NATed by a router to a port's fixed IP.

Each floating IP owns a port on its external network (``network:floatingip``, device_id the
floating IP's id, project "" as Neutron hides it; status ``N/A``). Association finds the router
Neutron's way: one with an interface on the fixed IP's subnet and its gateway on the floating
network, preferring the router holding the subnet's gateway IP.

Status: with no L3 agent to report it, the API itself says ``DOWN`` for an unassociated floating
IP and ``ACTIVE`` once it is associated (what an agent reports as soon as it wires the NAT).
"""

from __future__ import annotations

from typing import Any

import netaddr
from sqlalchemy import select
from sqlalchemy.orm import Session

from neutrino.context import Context
from neutrino.db.guards import guard
from neutrino.db.models.base import new_id
from neutrino.db.models.l3 import FloatingIP, Router, RouterPort
from neutrino.db.models.network import IPAllocation, Port, Subnet
from neutrino.errors import BadRequest, InUse, NotFound
from neutrino.services import common, listing, routers
from neutrino.services import networks as networks_svc
from neutrino.services.deps import Deps
from neutrino.services.ports import PortService, delete_port
from neutrino.services.ports import get_visible as get_port

STATUS_ACTIVE, STATUS_DOWN = "ACTIVE", "DOWN"
PORT_STATUS_NOTAPPLICABLE = "N/A"


class FloatingIPNotFound(NotFound):
    message = "Floating IP {floatingip_id} could not be found"
    type_name = "FloatingIPNotFound"


class ExternalGatewayForFloatingIPNotFound(NotFound):
    message = ("External network {external_network_id} is not reachable from subnet {subnet_id}.  Therefore, "
               "cannot associate Port {port_id} with a Floating IP.")
    type_name = "ExternalGatewayForFloatingIPNotFound"


class FloatingIPPortAlreadyAssociated(InUse):
    message = ("Cannot associate floating IP {floating_ip_address} ({fip_id}) with port {port_id} using fixed "
               "IP {fixed_ip}, as that fixed IP already has a floating IP on external network {net_id}.")
    type_name = "FloatingIPPortAlreadyAssociated"


class ExternalIpAddressExhausted(BadRequest):
    message = "Unable to find any IP address on external network {net_id}."
    type_name = "ExternalIpAddressExhausted"


def bad_fip(msg: str) -> BadRequest:
    return BadRequest(resource="floatingip", msg=msg)


def get_visible(s: Session, ctx: Context, id: str) -> FloatingIP:
    row = s.scalars(common.visible(FloatingIP, ctx).where(FloatingIP.id == id)).first()
    if row is None:
        raise FloatingIPNotFound(floatingip_id=id)
    return row


def _ipv4(allocs: list[Any]) -> list[Any]:
    return [a for a in allocs if netaddr.IPAddress(a.ip_address).version == 4]


def port_details(port: Port | None) -> dict[str, Any] | None:
    if port is None:
        return None
    return {"name": port.name, "network_id": port.network_id, "mac_address": port.mac_address,
            "admin_state_up": port.admin_state_up, "status": port.status, "device_id": port.device_id,
            "device_owner": port.device_owner}


class FloatingIPService:
    special_filters: dict[str, Any] = {}

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.ports = PortService(deps)
        self.listing = listing.Source(FloatingIP, self.load, columns={"port_id": FloatingIP.fixed_port_id})

    def to_dict(self, fip: FloatingIP, fixed_port: Port | None) -> dict[str, Any]:
        return {
            **common.standard(fip),
            "floating_ip_address": fip.floating_ip_address,
            "floating_network_id": fip.floating_network_id,
            "router_id": fip.router_id,
            "port_id": fip.fixed_port_id,
            "fixed_ip_address": fip.fixed_ip_address,
            "status": fip.status,
            "port_details": port_details(fixed_port),
            "port_forwardings": [],
            "dns_name": fip.dns_name,
            "dns_domain": fip.dns_domain,
        }

    def _view(self, s: Session, fip: FloatingIP) -> dict[str, Any]:
        return self.to_dict(fip, s.get(Port, fip.fixed_port_id) if fip.fixed_port_id else None)

    def row(self, s: Session, ctx: Context, id: str) -> FloatingIP:
        return get_visible(s, ctx, id)

    def get_all(self, s: Session, ctx: Context, filters: dict[str, list[Any]]) -> list[dict[str, Any]]:
        stmt = common.visible(FloatingIP, ctx)
        for key, col in (("id", FloatingIP.id), ("floating_network_id", FloatingIP.floating_network_id)):
            if key in filters:
                stmt = stmt.where(col.in_([str(i) for i in filters[key]]))
        return self._views(s, list(s.scalars(stmt)))

    def load(self, s: Session, ids: list[str]) -> list[dict[str, Any]]:
        """The floating IPs of these ids, in this order (a list page, see :mod:`.listing`)."""
        if not ids:
            return []
        return listing.in_order(ids, self._views(s, list(s.scalars(select(FloatingIP).where(FloatingIP.id.in_(ids))))))

    def _views(self, s: Session, fips: list[FloatingIP]) -> list[dict[str, Any]]:
        port_ids = [f.fixed_port_id for f in fips if f.fixed_port_id]
        ports = {p.id: p for p in s.scalars(select(Port).where(Port.id.in_(port_ids)))} if port_ids else {}
        return [self.to_dict(f, ports.get(f.fixed_port_id or "")) for f in fips]

    def get(self, s: Session, ctx: Context, id: str) -> dict[str, Any]:
        return self._view(s, get_visible(s, ctx, id))

    # ------------------------------------------------------------ create / update / delete

    def create(self, s: Session, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        project = body["project_id"]
        self.deps.quotas.check(s, project, "floatingip", FloatingIP)
        net_id = body["floating_network_id"]
        network = networks_svc.get_visible(s, ctx, net_id)
        if not network.external:
            raise bad_fip(f"Network {net_id} is not a valid external network")
        if not s.scalar(select(Subnet.id).where(Subnet.network_id == net_id, Subnet.ip_version == 4).limit(1)):
            raise bad_fip(f"Network {net_id} does not contain any IPv4 subnet")
        fip_id = new_id()
        fixed_ip = {}
        if body.get("subnet_id"):
            fixed_ip["subnet_id"] = body["subnet_id"]
        if body.get("floating_ip_address"):
            fixed_ip["ip_address"] = body["floating_ip_address"]
        port = self.ports.create_internal(s, routers.ADMIN, network, {
            "project_id": "", "network_id": net_id, "admin_state_up": True, "device_id": fip_id,
            "device_owner": routers.FLOATINGIP_OWNER, "name": "", "fixed_ips": [fixed_ip] if fixed_ip else None,
        })
        port.status = PORT_STATUS_NOTAPPLICABLE
        v4 = _ipv4(list(port.fixed_ips))
        if not v4:
            raise ExternalIpAddressExhausted(net_id=net_id)
        fip = FloatingIP(
            id=fip_id, project_id=project, status=STATUS_DOWN, floating_network_id=net_id,
            floating_ip_address=v4[0].ip_address, floating_port_id=port.id, description=body["description"],
            dns_name=body["dns_name"], dns_domain=body["dns_domain"], tags=body["tags"],
        )
        self._update_association(s, ctx, fip, body)
        fip.status = STATUS_ACTIVE if fip.fixed_port_id else STATUS_DOWN
        s.add(fip)
        s.flush()
        return self._view(s, fip)

    def update(self, s: Session, ctx: Context, id: str, body: dict[str, Any]) -> dict[str, Any]:
        fip = get_visible(s, ctx, id)
        before = (fip.fixed_port_id, fip.fixed_ip_address, fip.router_id, fip.description)
        self._update_association(s, ctx, fip, body)
        if "description" in body:
            fip.description = body["description"]
        if before[0] != fip.fixed_port_id:
            fip.status = STATUS_ACTIVE if fip.fixed_port_id else STATUS_DOWN
        if before != (fip.fixed_port_id, fip.fixed_ip_address, fip.router_id, fip.description):
            common.touch(fip)
        s.flush()
        return self._view(s, fip)

    def delete(self, s: Session, ctx: Context, id: str) -> None:
        _remove(s, get_visible(s, ctx, id))

    @staticmethod
    def delete_disassociated(s: Session, network_id: str) -> None:
        """Neutron's delete_disassociated_floatingips, its external network's BEFORE_DELETE
        callback: the floating IPs on the network that neither a port nor a router holds go
        (every project's: the network's deleter may remove them); an associated one stays, and
        its port, like the router gateway it needs, keeps the network in use."""
        for fip in s.scalars(select(FloatingIP).where(
                FloatingIP.floating_network_id == network_id, FloatingIP.fixed_port_id.is_(None),
                FloatingIP.router_id.is_(None)).order_by(FloatingIP.id)):
            _remove(s, fip)

    # ------------------------------------------------------------ association

    def _update_association(self, s: Session, ctx: Context, fip: FloatingIP, body: dict[str, Any]) -> None:
        """Neutron's _check_and_get_fip_assoc: port_id (+ fixed_ip_address) picks port, address, router.

        ``port_id: null`` removes the association, and so does an empty body: Neutron keeps the
        association only for a non-empty body without ``port_id`` (bug #1610045), and then works
        it out again from the associated port as if its id had been given (a port with several
        IPv4 addresses then needs ``fixed_ip_address``, as in Neutron). A router_id without a
        port (Neutron's port forwarding) stays.
        """
        if body and "port_id" not in body and fip.fixed_port_id:
            body = {**body, "port_id": fip.fixed_port_id}
        port_id, fixed = body.get("port_id"), body.get("fixed_ip_address")
        if fixed and not port_id:
            raise bad_fip("fixed_ip_address cannot be specified without a port_id")
        if not port_id:
            if fip.fixed_port_id:
                fip.fixed_port_id = fip.fixed_ip_address = fip.router_id = None
            return
        port, subnet_id, internal_ip = self._internal_port_data(s, ctx, port_id, fixed, fip.project_id)
        router_id = self._router_for(s, port, subnet_id, fip.floating_network_id)
        guard(s, routers.router_guard(router_id))  # meets the router losing this interface or its gateway meanwhile
        if port_id != fip.fixed_port_id:
            guard(s, f"fip-port:{port_id}")  # two floating IPs must not both find the fixed address free
            other = s.scalar(select(FloatingIP.id).where(
                FloatingIP.fixed_port_id == port_id, FloatingIP.floating_network_id == fip.floating_network_id,
                FloatingIP.fixed_ip_address == internal_ip, FloatingIP.id != fip.id).limit(1))
            if other:
                raise FloatingIPPortAlreadyAssociated(
                    port_id=port_id, fip_id=fip.id, floating_ip_address=fip.floating_ip_address,
                    fixed_ip=internal_ip, net_id=fip.floating_network_id)
        fip.fixed_port_id, fip.fixed_ip_address, fip.router_id = port_id, internal_ip, router_id

    @staticmethod
    def _internal_port_data(s: Session, ctx: Context, port_id: str, fixed: str | None,
                            project_id: str) -> tuple[Port, str, str]:
        port = get_port(s, ctx, port_id)
        if port.project_id != project_id and not ctx.is_admin:
            raise bad_fip(f"Cannot process floating IP association with Port {port_id}, since that port is "
                          "owned by a different tenant")
        if port.device_owner == "network:dhcp":
            raise bad_fip(f"Port {port_id} is unable to be assigned a floating IP")
        if fixed:
            if netaddr.IPAddress(fixed).version != 4:
                raise bad_fip(f"Cannot process floating IP association with {fixed}, since that is not an IPv4 "
                              "address")
            match = [a for a in port.fixed_ips if a.ip_address == fixed]
            if not match:
                raise bad_fip(f"Port {port.id} does not have fixed ip {fixed}")
            return port, match[-1].subnet_id, fixed
        v4 = _ipv4(list(port.fixed_ips))
        if not v4:
            raise bad_fip(f"Cannot add floating IP to port {port.id} that has no fixed IPv4 addresses")
        if len(v4) > 1:
            raise bad_fip(f"Port {port.id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 "
                          "address when assigning a floating IP")
        return port, v4[0].subnet_id, v4[0].ip_address

    @staticmethod
    def _router_for(s: Session, port: Port, subnet_id: str, external_network_id: str) -> str:
        """A router with an interface on the subnet and its gateway on the external network;
        the one holding the subnet's gateway IP first (Neutron's get_router_for_floatingip)."""
        subnet = s.get(Subnet, subnet_id)
        assert subnet is not None
        gw = select(Router.id).join(Port, Port.id == Router.gw_port_id).where(Port.network_id == external_network_id)
        rows = s.execute(
            select(RouterPort.router_id, IPAllocation.ip_address)
            .join(Port, Port.id == RouterPort.port_id)
            .join(IPAllocation, IPAllocation.port_id == Port.id)
            .where(Port.network_id == port.network_id, RouterPort.port_type.in_(routers.INTERFACE_OWNERS),
                   IPAllocation.subnet_id == subnet.id, RouterPort.router_id.in_(gw))
            .order_by(Port.created_at, Port.id))
        first = None
        for router_id, interface_ip in rows:
            if interface_ip == subnet.gateway_ip:
                return str(router_id)
            first = first or str(router_id)
        if first:
            return first
        raise ExternalGatewayForFloatingIPNotFound(subnet_id=subnet.id, external_network_id=external_network_id,
                                                   port_id=port.id)


def _remove(s: Session, fip: FloatingIP) -> None:
    """A floating IP and the port on its external network that holds its address."""
    port = s.get(Port, fip.floating_port_id)
    s.delete(fip)
    s.flush()
    if port is not None:
        delete_port(s, port)
