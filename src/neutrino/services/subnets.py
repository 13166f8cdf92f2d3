"""Subnets: CIDR, gateway and pool validation, overlap checks, in-use protection on delete."""

from __future__ import annotations

from typing import Any

import netaddr
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, aliased

from neutrino.context import Context
from neutrino.db.guards import guard
from neutrino.db.models.network import IPAllocation, Network, Port, Subnet
from neutrino.errors import BadRequest, Conflict, InvalidInput, SubnetInUse
from neutrino.services import address_runs, common, free_ranges, ipam, listing
from neutrino.services.deps import Deps
from neutrino.services.networks import AUTO_DELETE_OWNERS
from neutrino.services.networks import get_visible as get_network

UPDATABLE = ("name", "description", "gateway_ip", "allocation_pools", "dns_nameservers", "host_routes",
             "enable_dhcp", "service_types", "segment_id", "dns_publish_fixed_ip")


def visible_clause(ctx: Context) -> tuple[Any, ...]:
    """A project sees the subnets of shared and external networks, as it sees those networks, and
    those on networks it owns (Neutron's get_subnet: ``role:reader and rule:network_owner``)."""
    shared = select(Network.id).where((Network.shared.is_(True)) | (Network.external.is_(True))
                                      | (Network.project_id == ctx.project_id))
    return (Subnet.network_id.in_(shared),)


def get_visible(s: Session, ctx: Context, id: str) -> Subnet:
    return common.get_or_404(s, Subnet, ctx, id, "subnet", *visible_clause(ctx))


class GatewayIpInUse(Conflict):
    message = "Current gateway ip {ip_address} already in use by port {port_id}. Unable to update."
    type_name = "GatewayIpInUse"


def to_dict(sub: Subnet, external: bool) -> dict[str, Any]:
    """``external``: whether the subnet's network is external (subnet-external-network)."""
    return {
        **common.standard(sub),
        "network_id": sub.network_id,
        "ip_version": sub.ip_version,
        "cidr": sub.cidr,
        "subnetpool_id": sub.subnetpool_id,
        "gateway_ip": sub.gateway_ip,
        "allocation_pools": list(sub.allocation_pools or []),
        "dns_nameservers": list(sub.dns_nameservers or []),
        "host_routes": list(sub.host_routes or []),
        "enable_dhcp": sub.enable_dhcp,
        "ipv6_ra_mode": sub.ipv6_ra_mode,
        "ipv6_address_mode": sub.ipv6_address_mode,
        "service_types": list(sub.service_types or []),
        "segment_id": sub.segment_id,
        "dns_publish_fixed_ip": sub.dns_publish_fixed_ip,
        "router:external": external,
    }


def views(s: Session, subs: list[Subnet]) -> list[dict[str, Any]]:
    """The items of these subnets, their networks' flags read in one query: ``router:external``
    and ``shared`` (not shown, but a filter, ``?shared=false``, as in Neutron)."""
    net_ids = {sub.network_id for sub in subs}
    flags = {net_id: (shared, external) for net_id, shared, external in s.execute(
        select(Network.id, Network.shared, Network.external).where(Network.id.in_(net_ids)))} if net_ids else {}
    return [{**to_dict(sub, flags[sub.network_id][1]), "shared": flags[sub.network_id][0]} for sub in subs]


def view(s: Session, sub: Subnet) -> dict[str, Any]:
    return views(s, [sub])[0]


# neutron.conf's max_dns_nameservers and max_subnet_host_routes defaults: each one becomes a
# line or option on the host, so their number is bounded too.
MAX_DNS_NAMESERVERS = 5
MAX_HOST_ROUTES = 20
AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")


class DNSNameServersExhausted(BadRequest):
    message = ("Unable to complete operation for {subnet_id}. The number of DNS nameservers exceeds "
               "the limit {quota}.")
    type_name = "DNSNameServersExhausted"


class HostRoutesExhausted(BadRequest):
    message = "Unable to complete operation for {subnet_id}. The number of host routes exceeds the limit {quota}."
    type_name = "HostRoutesExhausted"


def _check_cidr(net: netaddr.IPNetwork, enable_dhcp: bool) -> None:
    """Neutron's _validate_subnet checks of the CIDR itself."""
    if net.version == 6 and net.network == netaddr.IPAddress("::"):
        raise InvalidInput(error_message="IPv6 subnet '::' is not supported")
    if not enable_dhcp:
        return
    if net.prefixlen > (30 if net.version == 4 else 126):
        raise InvalidInput(error_message="Subnet has a prefix length that is incompatible with DHCP service enabled")
    if net.is_multicast():
        raise InvalidInput(error_message="Multicast IP subnet is not supported if enable_dhcp is True")
    if net.is_loopback():
        raise InvalidInput(error_message="Loopback IP subnet is not supported if enable_dhcp is True")
    if net.version == 4 and net.first == 0:
        raise InvalidInput(error_message="First IP '0.0.0.0' of network is not supported if enable_dhcp is True.")


def _check_ipv6_modes(body: dict[str, Any], net: netaddr.IPNetwork) -> None:
    """Neutron's IPv6 attribute rules: no modes on IPv4; modes need DHCP enabled; both modes
    set must agree; an auto-address (SLAAC, stateless) subnet must be a /64 (EUI-64)."""
    ra, addr = body.get("ipv6_ra_mode"), body.get("ipv6_address_mode")
    if net.version == 4:
        if ra:
            raise InvalidInput(error_message="ipv6_ra_mode is not valid when ip_version is 4")
        if addr:
            raise InvalidInput(error_message="ipv6_address_mode is not valid when ip_version is 4")
        return
    if (ra or addr) and not body.get("enable_dhcp", True):
        raise InvalidInput(error_message="ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is "
                                         "set to False")
    if ra and addr and ra != addr:
        raise InvalidInput(error_message=f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{addr}' "
                           "is not valid. If both attributes are set, they must be the same value")
    auto = addr in AUTO_ADDRESS_MODES or (not addr and ra in AUTO_ADDRESS_MODES)
    if auto and net.prefixlen != 64:
        raise InvalidInput(error_message=f"Invalid CIDR {net.cidr} for IPv6 address mode. OpenStack uses the "
                                         "EUI-64 address format, which requires the prefix to be /64")


def _check_ip_version(version: int, address: str, name: str) -> None:
    if netaddr.IPAddress(address).version != version:
        raise InvalidInput(error_message=f"{name} '{address}' does not match the ip_version '{version}'")


def _check_lists(net: netaddr.IPNetwork, body: dict[str, Any], subnet_id: str = "new subnet") -> None:
    nameservers, routes = body.get("dns_nameservers") or [], body.get("host_routes") or []
    if len(nameservers) > MAX_DNS_NAMESERVERS:
        raise DNSNameServersExhausted(subnet_id=subnet_id, quota=MAX_DNS_NAMESERVERS)
    for ns in nameservers:
        _check_ip_version(net.version, ns, "dns_nameserver")
    if len(routes) > MAX_HOST_ROUTES:
        raise HostRoutesExhausted(subnet_id=subnet_id, quota=MAX_HOST_ROUTES)
    for route in routes:
        _check_ip_version(net.version, route["nexthop"], "nexthop")
        if netaddr.IPNetwork(route["destination"]).version != net.version:
            raise InvalidInput(error_message=f"destination '{route['destination']}' does not match the ip_version "
                                             f"'{net.version}'")


def _check_segment(network: Network, segment_id: str | None) -> None:
    if segment_id is not None and segment_id not in {seg.id for seg in network.segments}:
        raise InvalidInput(error_message=f"Segment {segment_id} is not a segment of network {network.id}")


class SubnetService:
    special_filters: dict[str, Any] = {}

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        net = aliased(Network)
        self.listing = listing.Source(Subnet, self.load, columns={
            "network:project_id": net.project_id, "network:tenant_id": net.project_id,
            "network:shared": net.shared, "network:router:external": net.external,
            "shared": net.shared, "router:external": net.external,
        }, joins=[(net, net.id == Subnet.network_id)])

    def load(self, s: Session, ids: list[str]) -> list[dict[str, Any]]:
        """The subnets of these ids, in this order (a list page, see :mod:`.listing`), each with
        its network's ``shared``: not shown, but a filter (``?shared=false``) as in Neutron."""
        if not ids:
            return []
        return listing.in_order(ids, views(s, list(s.scalars(select(Subnet).where(Subnet.id.in_(ids))))))

    def row(self, s: Session, ctx: Context, id: str) -> Subnet:
        return get_visible(s, ctx, id)

    def get_all(self, s: Session, ctx: Context, filters: dict[str, list[Any]]) -> list[dict[str, Any]]:
        stmt = common.visible(Subnet, ctx, *visible_clause(ctx))
        stmt = common.prefilter(stmt, Subnet.__table__, filters)
        return views(s, list(s.scalars(stmt)))

    def get(self, s: Session, ctx: Context, id: str) -> dict[str, Any]:
        return view(s, get_visible(s, ctx, id))

    def create(self, s: Session, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        network = get_network(s, ctx, body["network_id"])
        if not body.get("cidr"):
            raise InvalidInput(error_message="A cidr must be specified in the absence of a subnet pool"
                               if not body.get("subnetpool_id") else "Subnet pools are not supported yet")
        net = netaddr.IPNetwork(body["cidr"])
        if net.version != body["ip_version"]:
            raise InvalidInput(error_message=f"Cidr {body['cidr']} does not match the IP version {body['ip_version']}")
        if net.version == 6 and net.prefixlen > 126 or net.version == 4 and net.prefixlen > 32:
            raise InvalidInput(error_message=f"Invalid CIDR {body['cidr']} for IPv{net.version} subnet")
        _check_cidr(net, body["enable_dhcp"])
        _check_ipv6_modes(body, net)
        _check_lists(net, body)
        _check_segment(network, body.get("segment_id"))
        self.deps.quotas.check(s, body["project_id"], "subnet", Subnet)
        guard(s, f"network-subnets:{network.id}")  # two creates must not both find no overlap
        for other in s.scalars(select(Subnet.cidr).where(Subnet.network_id == network.id)):
            if ipam.overlaps(other, str(net.cidr)):
                raise InvalidInput(error_message=f"Requested subnet with cidr: {net.cidr} for network: "
                                   f"{network.id} overlaps with another subnet")
        gateway = str(ipam.first_usable(net)) if "gateway_ip" not in body else body["gateway_ip"]
        if gateway:
            ipam.check_gateway(net, gateway)
        if body.get("allocation_pools") is not None:
            pools = ipam.validate_pools(net, body["allocation_pools"], gateway)
        else:
            pools = ipam.default_pools(net, gateway)
        sub = Subnet(
            project_id=body["project_id"], name=body["name"], description=body["description"],
            network_id=network.id, ip_version=net.version, cidr=str(net.cidr), gateway_ip=gateway,
            allocation_pools=pools, dns_nameservers=body["dns_nameservers"], host_routes=body["host_routes"],
            enable_dhcp=body["enable_dhcp"], ipv6_ra_mode=body["ipv6_ra_mode"],
            ipv6_address_mode=body["ipv6_address_mode"], service_types=body["service_types"],
            segment_id=body["segment_id"], dns_publish_fixed_ip=body["dns_publish_fixed_ip"], tags=body["tags"],
            subnetpool_id=None,
        )
        s.add(sub)
        common.touch_once(s, network)
        s.flush()
        return to_dict(sub, network.external)

    def update(self, s: Session, ctx: Context, id: str, body: dict[str, Any]) -> dict[str, Any]:
        sub = get_visible(s, ctx, id)
        net = netaddr.IPNetwork(sub.cidr)
        _check_lists(net, body, sub.id)
        if body.get("enable_dhcp") is False and (sub.ipv6_ra_mode or sub.ipv6_address_mode):
            raise InvalidInput(error_message="Cannot disable enable_dhcp with ipv6 attributes set")
        if body.get("enable_dhcp") and not sub.enable_dhcp:
            _check_cidr(net, True)
        if "segment_id" in body:
            network = s.get(Network, sub.network_id)
            assert network is not None
            _check_segment(network, body["segment_id"])
        gateway = body.get("gateway_ip", sub.gateway_ip)
        if "gateway_ip" in body and body["gateway_ip"] != sub.gateway_ip:
            self._check_gateway_change(s, sub, body["gateway_ip"], net)
        if "allocation_pools" in body:
            body = {**body, "allocation_pools": ipam.validate_pools(net, body["allocation_pools"] or [], gateway)}
        elif gateway:
            ipam.validate_pools(net, sub.allocation_pools, gateway)
        if common.apply(sub, {k: v for k, v in body.items() if k in UPDATABLE}):
            common.touch(sub)
        return view(s, sub)

    def _check_gateway_change(self, s: Session, sub: Subnet, new_gw: str | None, net: netaddr.IPNetwork) -> None:
        if sub.gateway_ip:
            guard(s, address_runs.gateway_guard(sub.id))  # meets a router port taking the old gateway meanwhile
            holder = s.scalar(select(IPAllocation.port_id).join(Port, Port.id == IPAllocation.port_id).where(
                IPAllocation.subnet_id == sub.id, IPAllocation.ip_address == sub.gateway_ip,
                Port.device_owner.like("network:router%")))
            if holder:
                raise GatewayIpInUse(ip_address=sub.gateway_ip, port_id=holder)
        if new_gw:
            ipam.check_gateway(net, new_gw)

    def delete(self, s: Session, ctx: Context, id: str) -> None:
        sub = get_visible(s, ctx, id)
        owners = s.execute(select(Port.device_owner).join(IPAllocation, IPAllocation.port_id == Port.id)
                           .where(IPAllocation.subnet_id == id))
        if any(o not in AUTO_DELETE_OWNERS for (o,) in owners):
            raise SubnetInUse(subnet_id=id, reason="One or more ports have an IP allocation from this subnet")
        s.execute(delete(IPAllocation).where(IPAllocation.subnet_id == id))
        free_ranges.drop(s, [address_runs.pool_name(id)])
        network = s.get(Network, sub.network_id)
        assert network is not None
        common.touch_once(s, network)
        s.delete(sub)

