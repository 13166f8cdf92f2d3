"""Ports: MAC and IP allocation, security groups, address pairs, DHCP options, binding.

:func:`create_port` is also how routers, floating IPs and DHCP get their own ports, so every
port — user or internal — goes through one allocation path and one set of constraints.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import netaddr
from sqlalchemy import and_, exists, false, or_, select
from sqlalchemy.orm import Session, aliased

from neutrino.api import dhcp_options
from neutrino.api import validators as v
from neutrino.context import Context
from neutrino.db.guards import guard
from neutrino.db.models.base import new_id
from neutrino.db.models.l3 import FloatingIP, Router, RouterPort
from neutrino.db.models.network import IPAllocation, Network, Port, PortSecurityGroup, Subnet
from neutrino.db.models.security import SecurityGroup
from neutrino.errors import (
    BadRequest,
    Conflict,
    InvalidInput,
    IpAddressAlreadyAllocated,
    IpAddressGenerationFailure,
    MacAddressInUse,
    ResourceNotFound,
)
from neutrino.ml2.manager import VIF_TYPE_BINDING_FAILED
from neutrino.policy.sql import ABSENT
from neutrino.services import address_runs, common, ipam, listing, security_groups
from neutrino.services import agents as agents_svc
from neutrino.services.deps import Deps
from neutrino.services.networks import EXTERNAL_OWNERS, external_guard, shared_guard

DEFAULT_DNS_DOMAIN = "openstacklocal."
# Neutron's ROUTER_INTERFACE_OWNERS: a port with one of these owners claims to be an interface
# of the router named by its device_id
INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                    "network:ha_router_replicated_interface")


class InvalidIpForSubnet(BadRequest):
    message = "IP address {ip_address} is not a valid IP for the specified subnet."
    type_name = "InvalidIpForSubnet"


class L3PortInUse(Conflict):
    message = ("Port {port_id} cannot be deleted directly via the port API: has device owner "
               "{device_owner}.")
    type_name = "L3PortInUse"


class AddressPairAndPortSecurityRequired(Conflict):
    message = "Port Security must be enabled in order to have allowed address pairs on a port."
    type_name = "AddressPairAndPortSecurityRequired"


class PortSecurityAndIPRequiredForSecurityGroups(BadRequest):
    message = ("Port security must be enabled and port must have an IP address in order to use "
               "security groups.")
    type_name = "PortSecurityAndIPRequiredForSecurityGroups"


class PortSecurityPortHasSecurityGroup(Conflict):
    message = ("Port has security group associated. Cannot disable port security or IP address "
               "until security group is removed.")
    type_name = "PortSecurityPortHasSecurityGroup"


class DeviceIDNotOwnedByTenant(Conflict):
    message = ("The following device_id {device_id} is not owned by your project or matches another "
               "project router.")
    type_name = "DeviceIDNotOwnedByTenant"


def check_device_id(s: Session, ctx: Context, device_owner: str, device_id: str, project_id: str) -> None:
    """Neutron's ``_enforce_device_owner_not_router_intf_or_device_id``: only an admin may make a
    port that claims to be an interface of another project's router (409), whatever the policy
    lets the caller set; the router is looked up whoever owns it, as Neutron does (elevated)."""
    if device_owner not in INTERFACE_OWNERS or ctx.is_admin or not device_id:
        return
    owner = s.scalar(select(Router.project_id).where(Router.id == device_id))
    if owner is not None and owner != project_id:
        raise DeviceIDNotOwnedByTenant(device_id=device_id)


@dataclass
class PortSpec:
    """What an internal caller (router, floating IP, DHCP) asks of a new port."""

    project_id: str
    network_id: str
    device_owner: str = ""
    device_id: str = ""
    name: str = ""
    fixed_ips: list[dict[str, Any]] | None = None  # None: automatic
    security_groups: list[str] | None = None  # None: the project's default (if port security)
    extra: dict[str, Any] = field(default_factory=dict)


def visible_clause(ctx: Context) -> tuple[Any, ...]:
    """Besides its own, a project sees the ports on networks it owns (Neutron's network owner)."""
    return (Port.network_id.in_(select(Network.id).where(Network.project_id == ctx.project_id)),)


def get_visible(s: Session, ctx: Context, id: str) -> Port:
    return common.get_or_404(s, Port, ctx, id, "port", *visible_clause(ctx))


def fixed_ips_of(port: Port) -> list[dict[str, str]]:
    return [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips]


def to_dict(port: Port) -> dict[str, Any]:
    return port_dict(port, fixed_ips_of(port), [b.security_group_id for b in port.security_group_bindings])


def _hostname(host: str, ip: str) -> str:
    return host or "host-" + ip.replace(".", "-").replace(":", "-")


def _fqdn(host: str, ip: str, domain: str) -> str:
    """Neutron's dns_assignment fqdn: a dns_name given as an FQDN is its own; any other name is
    completed with the port's domain."""
    return host if host.endswith(".") else f"{_hostname(host, ip)}.{domain}"


FQDN_MAX_LEN = 253  # a DNS name in text, without its final dot (what resolvers and dnsmasq take)


def check_dns_name(dns_name: str, dns_domain: str) -> None:
    """neutron-lib's _validate_dns_name_with_dns_domain, with the port's domain: a PQDN plus the
    domain fits in one DNS name, and an FQDN ends with the domain and has labels left of it.
    Otherwise the port's dns_assignment would name what its DHCP server cannot serve."""
    if not dns_name:
        return
    domain = (dns_domain or DEFAULT_DNS_DOMAIN).rstrip(".")
    if not dns_name.endswith("."):
        if len(dns_name) + 1 + len(domain) > FQDN_MAX_LEN:
            raise InvalidInput(error_message=(
                f"The dns_name passed is a PQDN and its size is '{len(dns_name)}'. The dns_domain is set to "
                f"{domain}., with a length of '{len(domain) + 2}'. When the two are concatenated to form a "
                f"FQDN (with a '.' at the end), the resulting length exceeds the maximum size of "
                f"'{FQDN_MAX_LEN + 1}'"))
        return
    if not dns_name.endswith(f".{domain}.") or len(dns_name) <= len(domain) + 2:
        raise InvalidInput(error_message=(
            f"The dns_name passed is a FQDN. Its higher level labels must be equal to the dns_domain "
            f"option in neutron.conf, that has been set to '{domain}.'. It must also include one or more "
            f"valid DNS labels to the left of '{domain}.'"))


def port_dict(port: Any, ips: list[dict[str, str]], sgs: list[str]) -> dict[str, Any]:
    """The API view of a port row (ORM object or Core row: same column names)."""
    domain = port.dns_domain or DEFAULT_DNS_DOMAIN
    return {
        **common.standard(port),
        "network_id": port.network_id,
        "admin_state_up": port.admin_state_up,
        "mac_address": port.mac_address,
        "fixed_ips": ips,
        "device_id": port.device_id,
        "device_owner": port.device_owner,
        "status": port.status,
        "security_groups": sgs,
        "port_security_enabled": port.port_security_enabled,
        "allowed_address_pairs": [
            {"ip_address": p["ip_address"], "mac_address": p.get("mac_address") or port.mac_address}
            for p in port.allowed_address_pairs or []
        ],
        "extra_dhcp_opts": [
            {"opt_name": o["opt_name"], "opt_value": o["opt_value"], "ip_version": o.get("ip_version", 4)}
            for o in port.extra_dhcp_opts or []
        ],
        "dns_name": port.dns_name,
        "dns_domain": port.dns_domain,
        "dns_assignment": [
            {"hostname": _hostname(port.dns_name, ip["ip_address"]), "ip_address": ip["ip_address"],
             "fqdn": _fqdn(port.dns_name, ip["ip_address"], domain)}
            for ip in ips
        ],
        "ip_allocation": "immediate",
        "binding:host_id": port.binding_host_id,
        "binding:vif_type": port.binding_vif_type,
        "binding:vif_details": dict(port.binding_vif_details or {}),
        "binding:vnic_type": port.binding_vnic_type,
        "binding:profile": dict(port.binding_profile or {}),
    }


def _fixed_ips_filter(item: dict[str, Any], wanted: list[Any]) -> bool:
    """``fixed_ips=ip_address=X``, ``subnet_id=Y`` or ``ip_address_substr=Z``; all must hold."""
    for want in wanted:
        key, _, value = str(want).partition("=")
        if key == "ip_address":
            value = v.to_canonical_ip(value)  # stored canonical: "FD00::0:7" is fd00::7
        if key == "ip_address_substr":
            ok = any(value in ip["ip_address"] for ip in item["fixed_ips"])
        elif key in ("ip_address", "subnet_id"):
            ok = any(ip[key] == value for ip in item["fixed_ips"])
        else:
            ok = False
        if not ok:
            return False
    return True


def _fixed_ips_clause(wanted: list[Any]) -> Any:
    """_fixed_ips_filter in SQL: each condition holds for one of the port's addresses."""
    conds = []
    for want in wanted:
        key, _, value = str(want).partition("=")
        of_port = select(IPAllocation.port_id).where(IPAllocation.port_id == Port.id)
        if key == "ip_address":
            conds.append(exists(of_port.where(IPAllocation.ip_address == v.to_canonical_ip(value))))
        elif key == "subnet_id":
            conds.append(exists(of_port.where(IPAllocation.subnet_id == value)))
        elif key == "ip_address_substr":
            conds.append(exists(of_port.where(IPAllocation.ip_address.contains(value, autoescape=True))))
        else:
            return false()
    return and_(*conds)


def _security_groups_clause(wanted: list[Any]) -> Any:
    """``?security_groups=<id>``: ports in any of these groups."""
    return exists(select(PortSecurityGroup.port_id).where(
        PortSecurityGroup.port_id == Port.id,
        PortSecurityGroup.security_group_id.in_([str(w) for w in wanted if w is not None])))


# ---------------------------------------------------------------- allocation


def generate_mac(s: Session, network_id: str, base_mac: str) -> str:
    """A random MAC under the configured prefix (base_mac's non-zero octets), unused on the network."""
    base = base_mac.split(":")
    fixed = base[:3]
    for _ in range(50):
        mac = ":".join(fixed + [f"{random.randint(0, 255):02x}" for _ in range(3)])
        if s.scalar(select(Port.id).where(Port.network_id == network_id, Port.mac_address == mac)) is None:
            return mac
    raise Conflict(msg=f"Unable to generate a unique MAC address on network {network_id}")


def _subnets_of(s: Session, network_id: str) -> list[Subnet]:
    return list(s.scalars(select(Subnet).where(Subnet.network_id == network_id).order_by(Subnet.created_at, Subnet.id)))


def _is_auto_address(sub: Subnet) -> bool:
    return sub.ip_version == 6 and sub.ipv6_address_mode in ("slaac", "dhcpv6-stateless")


def _subnet_for_ip(subnets: list[Subnet], ip: str, network_id: str) -> Subnet:
    addr = netaddr.IPAddress(ip)
    for sub in subnets:
        if addr in netaddr.IPNetwork(sub.cidr):
            return sub
    raise InvalidInput(error_message=f"IP address {ip} does not belong to any subnet of network {network_id}")


def _guard_network_invariants(s: Session, network: Network, project: str, owner: str) -> None:
    """A new port meets what its network may be changing meanwhile: unsharing (another project's
    port) and leaving ``router:external`` (a gateway or floating IP port). The owner's own ports,
    the common case, meet nothing here (``neutrino.db.guards``)."""
    if project not in (network.project_id, ""):
        guard(s, shared_guard(network.id))
    if owner in EXTERNAL_OWNERS:
        guard(s, external_guard(network.id))


def allocate_ips(s: Session, network_id: str, requested: list[dict[str, Any]] | None, mac: str,
                 device_owner: str, keep: list[dict[str, str]] | None = None) -> list[tuple[str, str]]:
    """(subnet_id, address) pairs for a port; ``keep`` are addresses the port already holds.

    Only subnets whose service types admit ``device_owner`` take part, for automatic and
    requested addresses alike (a requested subnet outside them is an invalid subnet)."""
    subnets = ipam.subnets_for_service(_subnets_of(s, network_id), device_owner, network_id)
    by_id = {sub.id: sub for sub in subnets}
    kept = {(k["subnet_id"], k["ip_address"]) for k in keep or []}
    out: list[tuple[str, str]] = []
    if requested is None:
        return _automatic(s, network_id, subnets, mac, device_owner)
    for req in requested:
        if "subnet_id" in req and req["subnet_id"] not in by_id:
            raise InvalidInput(error_message=f"Failed to create port on network {network_id}, because "
                               f"fixed_ips included invalid subnet {req['subnet_id']}")
        sub = by_id[req["subnet_id"]] if "subnet_id" in req else _subnet_for_ip(subnets, req["ip_address"], network_id)
        if "ip_address" in req:
            ip = str(netaddr.IPAddress(req["ip_address"]))
            lo, hi = ipam.usable_range(netaddr.IPNetwork(sub.cidr))
            if not lo <= int(netaddr.IPAddress(ip)) <= hi:  # outside, or the network/broadcast address
                raise InvalidIpForSubnet(ip_address=ip)
            if (sub.id, ip) not in kept and (address_runs.in_use(s, sub.id, ip) or any(o == (sub.id, ip) for o in out)):
                raise IpAddressAlreadyAllocated(ip=ip, subnet_id=sub.id)
            if (ip == sub.gateway_ip and not device_owner.startswith("network:router")
                    and (sub.id, ip) not in kept):
                raise IpAddressAlreadyAllocated(ip=ip, subnet_id=sub.id)
            if (sub.id, ip) not in kept:
                if ip == sub.gateway_ip:  # a router takes the gateway: meets a gateway change meanwhile
                    guard(s, address_runs.gateway_guard(sub.id))
                address_runs.claim(s, sub, ip)
        elif _is_auto_address(sub):
            ip = ipam.eui64(netaddr.IPNetwork(sub.cidr), mac)
        else:
            prior = [k for k in kept if k[0] == sub.id and k not in out]
            if prior:
                out.append(prior[0])
                continue
            ip = _pick(s, sub, network_id)
        out.append((sub.id, ip))
    return out


def _pick(s: Session, sub: Subnet, network_id: str) -> str:
    """The subnet's lowest free address (addresses picked earlier in this request are no longer
    free: taking one takes it out of the subnet's free runs)."""
    ip = address_runs.take(s, sub)
    if ip is None:
        raise IpAddressGenerationFailure(net_id=network_id)
    return ip


def _automatic(s: Session, network_id: str, subnets: list[Subnet], mac: str, owner: str) -> list[tuple[str, str]]:
    """One address from the first IPv4 subnet with room, one from a stateful IPv6 subnet, and
    the SLAAC address of every auto-address IPv6 subnet (not for router ports)."""
    out: list[tuple[str, str]] = []
    for version in (4, 6):
        candidates = [sub for sub in subnets if sub.ip_version == version and not _is_auto_address(sub)]
        for sub in candidates:
            try:
                out.append((sub.id, _pick(s, sub, network_id)))
                break
            except IpAddressGenerationFailure:
                continue
        else:
            if candidates:
                raise IpAddressGenerationFailure(net_id=network_id)
    if not owner.startswith("network:router"):
        for sub in subnets:
            if _is_auto_address(sub):
                out.append((sub.id, ipam.eui64(netaddr.IPNetwork(sub.cidr), mac)))
    return out


def _set_ips(port: Port, pairs: list[tuple[str, str]]) -> None:
    old = {(a.subnet_id, a.ip_address): a for a in port.fixed_ips}
    port.fixed_ips = [
        old.get(pair) or IPAllocation(subnet_id=pair[0], ip_address=pair[1], port_id=port.id,
                                      network_id=port.network_id)
        for pair in pairs
    ]
    for i, alloc in enumerate(port.fixed_ips):
        alloc.position = i


def _check_security_groups(s: Session, ctx: Context, project_id: str, ids: list[str]) -> None:
    found = []
    for sg_id in ids:
        sg = s.get(SecurityGroup, sg_id)
        if sg is None or (sg.project_id != project_id and not ctx.is_admin and not sg.shared):
            raise security_groups.SecurityGroupNotFound(id=sg_id)
        found.append(sg)
    security_groups.validate_port_groups(found)


def _check_address_pairs(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = set()
    out = []
    for p in pairs:
        key = (str(netaddr.IPNetwork(p["ip_address"])) if "/" in p["ip_address"] else p["ip_address"],
               (p.get("mac_address") or "").lower())
        if key in seen:
            raise InvalidInput(error_message="Request contains duplicate address pair: "
                               f"mac_address {p.get('mac_address')} ip_address {p['ip_address']}.")
        seen.add(key)
        entry = {"ip_address": p["ip_address"]}
        if p.get("mac_address"):
            entry["mac_address"] = p["mac_address"].lower()
        out.append(entry)
    return out


# ---------------------------------------------------------------- the service


# Attributes PortService.update handles itself; the rest are columns of the same name.
_UPDATED_APART = frozenset({"mac_address", "fixed_ips", "port_security_enabled", "security_groups",
                            "allowed_address_pairs", "binding:host_id", "binding:vnic_type", "binding:profile",
                            "extra_dhcp_opts"})


class PortService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.special_filters = {"fixed_ips": _fixed_ips_filter}
        net = aliased(Network)
        self.listing = listing.Source(Port, self.load, columns={
            "binding:host_id": Port.binding_host_id, "binding:vif_type": Port.binding_vif_type,
            "binding:vnic_type": Port.binding_vnic_type,
            "network:project_id": net.project_id, "network:tenant_id": net.project_id,
            "network:shared": net.shared, "network:router:external": net.external,
            "shared": ABSENT, "router:external": ABSENT,
        }, joins=[(net, net.id == Port.network_id)],
            filters={"fixed_ips": _fixed_ips_clause, "security_groups": _security_groups_clause})

    def row(self, s: Session, ctx: Context, id: str) -> Port:
        return get_visible(s, ctx, id)

    def get_all(self, s: Session, ctx: Context, filters: dict[str, list[Any]]) -> list[dict[str, Any]]:
        """Core rows rather than ORM objects: listing 1000 ports is the hot path of every agent
        resync and every `port list`, and object loading would triple its cost."""
        table = Port.__table__
        stmt = select(table)
        if not ctx.sees_all:
            stmt = stmt.where(or_(table.c.project_id == ctx.project_id, *visible_clause(ctx)))
        stmt = common.prefilter(stmt, table, filters)
        return self._views(s, stmt)

    def views_where(self, s: Session, *where: Any) -> list[dict[str, Any]]:
        """Every port matching SQL conditions, as the API shows them to an admin (the agents'
        sync: the ports of one host, of some networks)."""
        return self._views(s, select(Port.__table__).where(*where))

    def _views(self, s: Session, stmt: Any) -> list[dict[str, Any]]:
        rows = s.execute(stmt).all()
        ids = select(stmt.subquery().c.id)
        ips: dict[str, list[dict[str, str]]] = {r.id: [] for r in rows}
        for port_id, subnet_id, ip in s.execute(
                select(IPAllocation.port_id, IPAllocation.subnet_id, IPAllocation.ip_address)
                .where(IPAllocation.port_id.in_(ids)).order_by(IPAllocation.port_id, IPAllocation.position)):
            ips[port_id].append({"subnet_id": subnet_id, "ip_address": ip})
        sgs: dict[str, list[str]] = {r.id: [] for r in rows}
        for port_id, sg_id in s.execute(select(PortSecurityGroup.port_id, PortSecurityGroup.security_group_id)
                                        .where(PortSecurityGroup.port_id.in_(ids))):
            sgs[port_id].append(sg_id)
        return [port_dict(r, ips[r.id], sgs[r.id]) for r in rows]

    def load(self, s: Session, ids: list[str]) -> list[dict[str, Any]]:
        """The ports of these ids, in this order (a list page, see :mod:`.listing`)."""
        if not ids:
            return []
        table = Port.__table__
        return listing.in_order(ids, self._views(s, select(table).where(table.c.id.in_(ids))))

    def get(self, s: Session, ctx: Context, id: str) -> dict[str, Any]:
        return to_dict(get_visible(s, ctx, id))

    def create(self, s: Session, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        network = s.get(Network, body["network_id"])  # the policy engine let the caller use it
        if network is None:
            raise ResourceNotFound("network", body["network_id"])
        self.deps.quotas.check(s, body["project_id"], "port", Port)
        if body.get("device_owner"):
            check_device_id(s, ctx, body["device_owner"], body.get("device_id", ""), body["project_id"])
        return to_dict(self.create_internal(s, ctx, network, body))

    def create_internal(self, s: Session, ctx: Context, network: Network, body: dict[str, Any]) -> Port:
        """Create a port from a validated body (defaults filled); shared with routers and FIPs.

        No quota check here: a router's or floating IP's own quota already allowed it, and
        Neutron counts such ports without ever refusing them.
        """
        project = body["project_id"]
        default_sg = security_groups.ensure_default(s, project)
        mac = body.get("mac_address")
        if mac:
            if s.scalar(select(Port.id).where(Port.network_id == network.id, Port.mac_address == mac)):
                raise MacAddressInUse(net_id=network.id, mac=mac)
        else:
            mac = generate_mac(s, network.id, self.deps.cfg.DEFAULT.base_mac)
        owner = body.get("device_owner", "")
        port_security = body.get("port_security_enabled")
        if port_security is None:
            port_security = network.port_security_enabled
        sgs = body.get("security_groups")
        if sgs is None:
            sgs = [default_sg] if port_security and not owner.startswith("network:") else []
        elif sgs and not port_security:
            raise PortSecurityAndIPRequiredForSecurityGroups()
        _check_security_groups(s, ctx, project, sgs)
        pairs = _check_address_pairs(body.get("allowed_address_pairs") or [])
        if pairs and not port_security:
            raise AddressPairAndPortSecurityRequired()
        check_dns_name(body.get("dns_name", ""), body.get("dns_domain", ""))
        port = Port(
            project_id=project, network_id=network.id, name=body.get("name", ""),
            description=body.get("description", ""), mac_address=mac,
            admin_state_up=body.get("admin_state_up", True), device_id=body.get("device_id", ""),
            device_owner=owner, port_security_enabled=port_security, allowed_address_pairs=pairs,
            extra_dhcp_opts=dhcp_options.created(body.get("extra_dhcp_opts") or []), dns_name=body.get("dns_name", ""),
            dns_domain=body.get("dns_domain", ""), binding_vnic_type=body.get("binding:vnic_type", "normal"),
            binding_profile=body.get("binding:profile") or {}, tags=body.get("tags") or [],
            status="DOWN",
        )
        port.id = new_id()
        port.security_group_bindings = [PortSecurityGroup(port_id=port.id, security_group_id=g) for g in sgs]
        _guard_network_invariants(s, network, project, owner)
        for group in dict.fromkeys(sgs):
            security_groups.guard_binding(s, group, port.id)
        _set_ips(port, allocate_ips(s, network.id, body.get("fixed_ips"), mac, owner))
        self._bind(s, port, body.get("binding:host_id", ""))
        s.add(port)
        s.flush()
        return port

    def _bind(self, s: Session, port: Port, host: str) -> bool:
        """Bind ``port`` to ``host`` (unbind when empty); True if its binding changed."""
        before = (port.binding_host_id, port.binding_vif_type, dict(port.binding_vif_details or {}))
        if port.binding_host_id != host and port.status == "ACTIVE":
            port.status = "DOWN"  # wired by the old host, not yet by the new one (or by none)
        port.binding_host_id = host
        if not host:
            port.binding_vif_type, port.binding_vif_details = "unbound", {}
        else:
            segments = list(s.get(Network, port.network_id).segments)  # type: ignore[union-attr]
            agents = agents_svc.host_agents(s, host, self.deps.cfg.DEFAULT.agent_down_time)
            binding = self.deps.ml2.bind(host, port.binding_vnic_type, segments, agents, port_id=port.id)
            port.binding_vif_type, port.binding_vif_details = binding.vif_type, dict(binding.vif_details)
        return before != (port.binding_host_id, port.binding_vif_type, dict(port.binding_vif_details or {}))

    def rebind_failed(self, s: Session, host: str) -> list[str]:
        """Bind again the ports whose binding failed on ``host`` (its agent just reported in, as
        Neutron retries them when an agent revives); the ids whose binding changed."""
        failed = s.scalars(select(Port).where(Port.binding_host_id == host,
                                              Port.binding_vif_type == VIF_TYPE_BINDING_FAILED))
        changed = []
        for port in failed:
            if self._bind(s, port, host):
                common.touch(port)
                changed.append(port.id)
        return changed

    def update(self, s: Session, ctx: Context, id: str, body: dict[str, Any]) -> dict[str, Any]:
        port = get_visible(s, ctx, id)
        owner = body.get("device_owner") or port.device_owner
        if body.get("device_owner") in EXTERNAL_OWNERS and port.device_owner not in EXTERNAL_OWNERS:
            guard(s, external_guard(port.network_id))
        device_id = body.get("device_id") or port.device_id
        if (owner and body.get("device_id") != port.device_id) or "device_owner" in body:
            check_device_id(s, ctx, owner, device_id, port.project_id)
        changed = False
        if "dns_name" in body or "dns_domain" in body:
            check_dns_name(body.get("dns_name", port.dns_name), body.get("dns_domain", port.dns_domain))
        if "mac_address" in body:
            changed |= self._update_mac(s, ctx, port, body["mac_address"])
        if "fixed_ips" in body:
            pairs = allocate_ips(s, port.network_id, body["fixed_ips"] or [], port.mac_address,
                                 port.device_owner, keep=fixed_ips_of(port))
            if pairs != [(a.subnet_id, a.ip_address) for a in port.fixed_ips]:
                _set_ips(port, pairs)
                changed = True
        changed |= self._update_security(s, ctx, port, body)
        host = body.get("binding:host_id")
        rebind = host is not None and host != port.binding_host_id
        if "binding:vnic_type" in body:
            rebind |= common.apply(port, {"binding_vnic_type": body["binding:vnic_type"]})
        if "binding:profile" in body:
            rebind |= common.apply(port, {"binding_profile": body["binding:profile"] or {}})
        if body.get("extra_dhcp_opts"):
            opts = dhcp_options.updated(port.extra_dhcp_opts or [], body["extra_dhcp_opts"])
            changed |= common.apply(port, {"extra_dhcp_opts": opts})
        changed |= common.apply(port, {k: v for k, v in body.items() if k not in _UPDATED_APART})
        # Neutron's _bind_port_if_needed: a change to the binding attributes binds anew, and any
        # update of a port whose binding failed tries again (the host's agent may be up now).
        if rebind or port.binding_vif_type == VIF_TYPE_BINDING_FAILED:
            changed |= self._bind(s, port, port.binding_host_id if host is None else host) or rebind
        if changed:
            common.touch(port)
        s.flush()
        return to_dict(port)

    def _update_mac(self, s: Session, ctx: Context, port: Port, mac: str | None) -> bool:
        if mac is None:
            mac = generate_mac(s, port.network_id, self.deps.cfg.DEFAULT.base_mac)
        if mac == port.mac_address:
            return False
        if s.scalar(select(Port.id).where(Port.network_id == port.network_id, Port.mac_address == mac)):
            raise MacAddressInUse(net_id=port.network_id, mac=mac)
        port.mac_address = mac
        return True

    def _update_security(self, s: Session, ctx: Context, port: Port, body: dict[str, Any]) -> bool:
        changed = False
        security = body.get("port_security_enabled", port.port_security_enabled)
        sgs = body.get("security_groups")
        current = [b.security_group_id for b in port.security_group_bindings]
        if sgs is None:
            sgs = current
        if not security and sgs:
            raise PortSecurityPortHasSecurityGroup()
        pairs = port.allowed_address_pairs
        if "allowed_address_pairs" in body:
            pairs = _check_address_pairs(body["allowed_address_pairs"] or [])
        if pairs and not security:
            raise AddressPairAndPortSecurityRequired()
        if pairs != port.allowed_address_pairs:
            port.allowed_address_pairs = pairs
            changed = True
        if security != port.port_security_enabled:
            port.port_security_enabled = security
            changed = True
        if sgs != current:
            _check_security_groups(s, ctx, port.project_id, sgs)
            for group in dict.fromkeys(sgs):
                security_groups.guard_binding(s, group, port.id)
            port.security_group_bindings = [PortSecurityGroup(port_id=port.id, security_group_id=g)
                                            for g in dict.fromkeys(sgs)]
            changed = True
        return changed

    def delete(self, s: Session, ctx: Context, id: str) -> None:
        port = get_visible(s, ctx, id)
        if _is_l3_port(s, port):
            raise L3PortInUse(port_id=id, device_owner=port.device_owner)
        delete_port(s, port)


def _is_l3_port(s: Session, port: Port) -> bool:
    """A router's port or a floating IP's: the routers and floating IPs own their removal."""
    if s.scalar(select(RouterPort.port_id).where(RouterPort.port_id == port.id)) is not None:
        return True
    return s.scalar(select(FloatingIP.id).where(FloatingIP.floating_port_id == port.id)) is not None


def delete_port(s: Session, port: Port) -> None:
    """Remove a port and detach floating IPs from it (internal callers skip the owner checks)."""
    for fip in s.scalars(select(FloatingIP).where(FloatingIP.fixed_port_id == port.id)):
        fip.fixed_port_id, fip.fixed_ip_address, fip.router_id, fip.status = None, None, None, "DOWN"
        common.touch(fip)
    s.delete(port)
