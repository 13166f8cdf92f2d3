"""Security groups and their rules, with Neutron's validation, duplicate and in-use rules.

Each project's default group is created on first use (:func:`ensure_default`): by network and
port creation, by creating a group, and by listing groups or rules. Neutron's checks, in
Neutron's order and with its error types: port ranges by protocol, remote prefix against the
ethertype, remote group / prefix / address group exclusive, duplicates (409 with the existing
rule's id), the default group protected from renaming and from non-admin deletion, a group
bound to a port cannot be deleted.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

import netaddr
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from neutrino.api import validators
from neutrino.context import Context
from neutrino.db.guards import guard
from neutrino.db.models.base import new_id
from neutrino.db.models.network import PortSecurityGroup
from neutrino.db.models.security import DefaultSecurityGroup, SecurityGroup, SecurityGroupRule
from neutrino.errors import BadRequest, Conflict, InUse, InvalidInput, NotFound
from neutrino.services import common, listing
from neutrino.services.deps import Deps

ETHERTYPES = ("IPv4", "IPv6")

# neutron_lib.constants.IP_PROTOCOL_MAP: the protocol names a rule accepts, with their numbers.
IP_PROTOCOL_MAP = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2,
    "ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58,
    "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46,
    "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}
IP_PROTOCOL_NUM_TO_NAME = {str(n): name for name, n in IP_PROTOCOL_MAP.items() if name != "icmpv6"}
PROTO_ANY = "any"  # the same as no protocol: stored as null
SUPPORTED_PROTOCOLS: list[str | None] = [None, PROTO_ANY, *IP_PROTOCOL_MAP]
# Protocols with ports (neutron.common._constants.SG_PORT_PROTO_NAMES / _NUMS).
PORT_PROTO_NAMES = ("dccp", "sctp", "tcp", "udp", "udplite")
PORT_PROTO_NUMS = tuple(IP_PROTOCOL_MAP[p] for p in PORT_PROTO_NAMES)
ICMP_NUMS = (1, 58)
IPV6_ICMP_LEGACY = ("icmp", "icmpv6")
IPV6_ONLY_PROTOCOLS = ("ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route",
                       "41", "44", "58", "59", "60", "43")


# ---------------------------------------------------------------- errors (Neutron's types)


class SecurityGroupNotFound(NotFound):
    message = "Security group {id} does not exist"
    type_name = "SecurityGroupNotFound"


class SecurityGroupRuleNotFound(NotFound):
    message = "Security group rule {id} does not exist"
    type_name = "SecurityGroupRuleNotFound"


class AddressGroupNotFound(NotFound):
    message = "Address group {address_group_id} could not be found."
    type_name = "AddressGroupNotFound"


class SecurityGroupInUse(InUse):
    message = "Security Group {id} {reason}."
    type_name = "SecurityGroupInUse"

    def __init__(self, id: str, reason: str = "in use") -> None:
        super().__init__(id=id, reason=reason)


class SecurityGroupCannotRemoveDefault(InUse):
    message = "Insufficient rights for removing default security group."
    type_name = "SecurityGroupCannotRemoveDefault"


class SecurityGroupCannotUpdateDefault(InUse):
    message = "Updating default security group not allowed."
    type_name = "SecurityGroupCannotUpdateDefault"


class SecurityGroupDefaultAlreadyExists(InUse):
    message = "Default security group already exists."
    type_name = "SecurityGroupDefaultAlreadyExists"


class SecurityGroupRuleExists(InUse):
    message = "Security group rule already exists. Rule id is {rule_id}."
    type_name = "SecurityGroupRuleExists"


class SecurityGroupConflict(Conflict):
    message = "Error {reason} while attempting the operation."
    type_name = "SecurityGroupConflict"


class DuplicateSecurityGroupRuleInPost(InUse):
    message = "Duplicate Security Group Rule in POST."
    type_name = "DuplicateSecurityGroupRuleInPost"


class SecurityGroupRuleInvalidProtocol(InvalidInput):
    message = ("Security group rule protocol {protocol} not supported. Only protocol values {values} "
               "and integer representations [0 to 255] are supported.")
    type_name = "SecurityGroupRuleInvalidProtocol"


class SecurityGroupRuleInvalidEtherType(InvalidInput):
    message = "Security group rule for ethertype '{ethertype}' not supported. Allowed values are {values}."
    type_name = "SecurityGroupRuleInvalidEtherType"


class SecurityGroupInvalidPortValue(InvalidInput):
    message = "Invalid value for port {port}"
    type_name = "SecurityGroupInvalidPortValue"


class SecurityGroupInvalidPortRange(InvalidInput):
    message = "For TCP/UDP protocols, port_range_min must be <= port_range_max"
    type_name = "SecurityGroupInvalidPortRange"


class SecurityGroupInvalidIcmpValue(InvalidInput):
    message = "Invalid value for ICMP {field} ({attr}) {value}. It must be 0 to 255."
    type_name = "SecurityGroupInvalidIcmpValue"


class SecurityGroupMissingIcmpType(InvalidInput):
    message = "ICMP code (port-range-max) {value} is provided but ICMP type (port-range-min) is missing."
    type_name = "SecurityGroupMissingIcmpType"


class SecurityGroupInvalidProtocolForPort(InvalidInput):
    message = ("Invalid protocol {protocol} for port range, only supported for "
               "{valid_port_protocols} protocols.")
    type_name = "SecurityGroupInvalidProtocolForPort"


class SecurityGroupProtocolRequiredWithPorts(InvalidInput):
    message = "Must also specify protocol if port range is given."
    type_name = "SecurityGroupProtocolRequiredWithPorts"


class SecurityGroupEthertypeConflictWithProtocol(InvalidInput):
    message = "Invalid ethertype {ethertype} for protocol {protocol}."
    type_name = "SecurityGroupEthertypeConflictWithProtocol"


class SecurityGroupRuleParameterConflict(InvalidInput):
    message = "Conflicting value ethertype {ethertype} for CIDR {cidr}"
    type_name = "SecurityGroupRuleParameterConflict"


class SecurityGroupRemoteGroupAndRemoteIpPrefix(InvalidInput):
    message = "Only remote_ip_prefix or remote_group_id may be provided."
    type_name = "SecurityGroupRemoteGroupAndRemoteIpPrefix"


class SecurityGroupRemoteGroupAndRemoteAddressGroup(InvalidInput):
    message = "Only remote_group_id or remote_address_group_id may be provided."
    type_name = "SecurityGroupRemoteGroupAndRemoteAddressGroup"


class SecurityGroupRemoteAddressGroupAndRemoteIpPrefix(InvalidInput):
    message = "Only remote_ip_prefix or remote_address_group_id may be provided."
    type_name = "SecurityGroupRemoteAddressGroupAndRemoteIpPrefix"


class InvalidCIDR(BadRequest):
    message = "Invalid CIDR {input} given as IP prefix."
    type_name = "InvalidCIDR"


# ---------------------------------------------------------------- converters (definitions use them)


BINDING_SHARDS = 64  # a port joining a group bumps one of these, a stateful change (rare) all of them


def _binding_guard(group_id: str, shard: int) -> str:
    return f"sg-bindings:{group_id}:{shard}"


def guard_binding(s: Session, group_id: str, port_id: str) -> None:
    """A port joins ``group_id``: meet a concurrent change of the group's ``stateful`` (which may
    only change while no port uses it), without making every port create of a project (all of
    them join ``default``) meet each other: each bumps one of ``BINDING_SHARDS`` guards."""
    guard(s, _binding_guard(group_id, zlib.crc32(port_id.encode()) % BINDING_SHARDS))


def convert_protocol(value: Any) -> str | None:
    """A name from Neutron's list (lower-cased), or a number 0-255 kept as a string; 'any' is null."""
    if value is None:
        return None
    if isinstance(value, str) and value.lower() == PROTO_ANY:
        return None
    if isinstance(value, bool):
        raise SecurityGroupRuleInvalidProtocol(protocol=value, values=SUPPORTED_PROTOCOLS)
    try:
        number = int(value)
    except (TypeError, ValueError):
        if isinstance(value, str) and value.lower() in IP_PROTOCOL_MAP:
            return value.lower()
        raise SecurityGroupRuleInvalidProtocol(protocol=value, values=SUPPORTED_PROTOCOLS) from None
    if 0 <= number <= 255 and not isinstance(value, float):
        return str(number)
    raise SecurityGroupRuleInvalidProtocol(protocol=value, values=SUPPORTED_PROTOCOLS)


def convert_port(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, float)):
        raise SecurityGroupInvalidPortValue(port=value)
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise SecurityGroupInvalidPortValue(port=value) from None
    if not 0 <= port <= 65535:
        raise SecurityGroupInvalidPortValue(port=value)
    return port


def convert_ethertype(value: Any) -> str:
    if isinstance(value, str):
        for ethertype in ETHERTYPES:
            if ethertype.lower() == value.lower():
                return ethertype
    raise SecurityGroupRuleInvalidEtherType(ethertype=value, values=list(ETHERTYPES))


def convert_ip_prefix(value: Any) -> str | None:
    if not value:
        return None
    # An address alone is its /32 or /128; anything not spelled exactly (whitespace, control
    # characters, netmask or zero-padded prefixes) is refused, as it would reach the firewall.
    addr = validators.parse_ip(value)
    net = validators.parse_cidr(value) if addr is None else netaddr.IPNetwork(addr)
    if net is None:
        raise InvalidCIDR(input=validators.shown(value))
    return str(net)


def convert_name_not_default(value: Any) -> Any:
    """Neutron's ``type:name_not_default``: no second group may be called 'default' (409)."""
    if isinstance(value, str) and value.lower() == "default":
        raise SecurityGroupDefaultAlreadyExists()
    return value


# ---------------------------------------------------------------- the default group


def ensure_default(s: Session, project_id: str) -> str:
    """The project's default group id, creating it (and its four rules) on first use.

    Two first requests of one project race on the default_security_groups primary key; the
    loser's transaction fails at flush and is retried whole, then finds the winner's group.
    """
    if not project_id:
        return ""
    row = s.get(DefaultSecurityGroup, project_id)
    if row is not None:
        return row.security_group_id
    sg = SecurityGroup(id=new_id(), project_id=project_id, name="default",
                       description="Default security group", stateful=True)
    s.add(sg)
    s.flush()  # the default_security_groups row references it: insert the group first
    s.add(DefaultSecurityGroup(project_id=project_id, security_group_id=sg.id))
    for ethertype in ("IPv4", "IPv6"):
        s.add(new_rule(project_id=project_id, security_group_id=sg.id, direction="ingress",
                       ethertype=ethertype, remote_group_id=sg.id))
        s.add(new_rule(project_id=project_id, security_group_id=sg.id, direction="egress", ethertype=ethertype))
    s.flush()
    return sg.id


def ensure_default_for_listing(deps: Deps, ctx: Context, filters: dict[str, list[Any]]) -> None:
    """Listing groups or rules creates the asking project's default group, as Neutron does.

    Runs in its own write transaction before the listing's read transaction starts, so the
    listing sees the new group. Neutron uses the first ``project_id``/``tenant_id`` filter
    value; here only an admin may so create another project's group.
    """
    project = ctx.project_id
    wanted = filters.get("project_id") or filters.get("tenant_id")
    if wanted and ctx.is_admin:
        project = str(wanted[0])
    if not project:
        return
    if deps.db.read(lambda r: r.get(DefaultSecurityGroup, project)) is not None:
        return
    deps.db.transaction(lambda w: ensure_default(w, project))


def default_group_ids(s: Session, sg_ids: list[str] | None = None) -> set[str]:
    stmt = select(DefaultSecurityGroup.security_group_id)
    if sg_ids is not None:
        stmt = stmt.where(DefaultSecurityGroup.security_group_id.in_(sg_ids))
    return set(s.scalars(stmt))


# ---------------------------------------------------------------- rules as dicts


def normalized_cidr(prefix: str | None) -> str | None:
    return str(netaddr.IPNetwork(prefix).cidr) if prefix else None


def rule_to_dict(rule: SecurityGroupRule, defaults: set[str]) -> dict[str, Any]:
    return {
        "id": rule.id,
        "project_id": rule.project_id,
        "tenant_id": rule.project_id,
        "security_group_id": rule.security_group_id,
        "direction": rule.direction,
        "ethertype": rule.ethertype,
        "protocol": rule.protocol,
        "port_range_min": rule.port_range_min,
        "port_range_max": rule.port_range_max,
        "remote_ip_prefix": rule.remote_ip_prefix,
        "remote_group_id": rule.remote_group_id,
        "remote_address_group_id": rule.remote_address_group_id,
        "normalized_cidr": normalized_cidr(rule.remote_ip_prefix),
        "belongs_to_default_sg": rule.security_group_id in defaults,
        "description": rule.description,
        "created_at": common.timestamp(rule.created_at),
        "updated_at": common.timestamp(rule.updated_at),
        "revision_number": rule.revision_number,
    }


def _rules_of(s: Session, sg_ids: list[str]) -> dict[str, list[SecurityGroupRule]]:
    out: dict[str, list[SecurityGroupRule]] = {i: [] for i in sg_ids}
    if not sg_ids:
        return out
    stmt = (select(SecurityGroupRule).where(SecurityGroupRule.security_group_id.in_(sg_ids))
            .order_by(SecurityGroupRule.created_at, SecurityGroupRule.id))
    for rule in s.scalars(stmt):
        out[rule.security_group_id].append(rule)
    return out


def _proto_name_and_num(protocol: str | None, ethertype: str | None) -> tuple[str, str] | None:
    """Neutron's ``_get_ip_proto_name_and_num``: 'tcp' and '6' are the same protocol."""
    if protocol is None:
        return None
    protocol = str(protocol)
    if ethertype == "IPv6":
        if protocol in IPV6_ICMP_LEGACY:
            protocol = "ipv6-icmp"
        elif protocol == "1":
            protocol = "58"
    if protocol in IP_PROTOCOL_MAP:
        return (protocol, str(IP_PROTOCOL_MAP[protocol]))
    if protocol in IP_PROTOCOL_NUM_TO_NAME:
        return (IP_PROTOCOL_NUM_TO_NAME[protocol], protocol)
    return (protocol, protocol)


def rule_key(rule: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two rules the same (Neutron's ``_rule_to_key``); 0.0.0.0/0 and ::/0 are no prefix."""
    prefix = rule.get("remote_ip_prefix")
    prefix = None if prefix in (None, "0.0.0.0/0", "::/0") else normalized_cidr(prefix)
    proto = _proto_name_and_num(rule.get("protocol"), rule.get("ethertype"))
    return (rule.get("direction"), rule.get("ethertype"), rule.get("port_range_max"), rule.get("port_range_min"),
            proto[1] if proto else None, rule.get("remote_group_id"), rule.get("remote_address_group_id"),
            prefix, rule.get("security_group_id"))


def new_rule(**columns: Any) -> SecurityGroupRule:
    """A rule row with its fingerprint: the unique (group, fingerprint) key is what stops two
    concurrent identical rules on PostgreSQL/MySQL, where the duplicate check alone can race."""
    key = rule_key({k: columns.get(k) for k in (
        "direction", "ethertype", "port_range_max", "port_range_min", "protocol", "remote_group_id",
        "remote_address_group_id", "remote_ip_prefix", "security_group_id")})
    return SecurityGroupRule(fingerprint=hashlib.sha256(repr(key).encode()).hexdigest(), **columns)


def _proto_number(protocol: str | None) -> int | None:
    if protocol is None:
        return None
    if protocol == "icmpv6":
        protocol = "ipv6-icmp"
    return int(IP_PROTOCOL_MAP.get(protocol, protocol))


def validate_rule(rule: dict[str, Any]) -> None:
    """The checks of Neutron's ``_validate_security_group_rule`` that need no database."""
    # legacy IPv6 ICMP names and number become ipv6-icmp / 58
    if rule["ethertype"] == "IPv6":
        if rule["protocol"] in IPV6_ICMP_LEGACY:
            rule["protocol"] = "ipv6-icmp"
        elif rule["protocol"] == "1":
            rule["protocol"] = "58"
    _validate_port_range(rule)
    prefix = rule["remote_ip_prefix"]
    if prefix:
        net = netaddr.IPNetwork(prefix)
        rule["remote_ip_prefix"] = str(net)  # always with a mask: 10.0.0.1 -> 10.0.0.1/32
        if rule["ethertype"] != f"IPv{net.version}":
            raise SecurityGroupRuleParameterConflict(ethertype=rule["ethertype"], cidr=prefix)
    if rule["protocol"] in IPV6_ONLY_PROTOCOLS and rule["ethertype"] == "IPv4":
        raise SecurityGroupEthertypeConflictWithProtocol(ethertype=rule["ethertype"], protocol=rule["protocol"])
    if rule["remote_ip_prefix"] and rule["remote_group_id"]:
        raise SecurityGroupRemoteGroupAndRemoteIpPrefix()
    if rule["remote_address_group_id"] and rule["remote_group_id"]:
        raise SecurityGroupRemoteGroupAndRemoteAddressGroup()
    if rule["remote_address_group_id"] and rule["remote_ip_prefix"]:
        raise SecurityGroupRemoteAddressGroupAndRemoteIpPrefix()


def validate_port_groups(groups: list[SecurityGroup]) -> None:
    """Neutron's ``_validate_sgs_for_port``: a port's groups are all stateful or all stateless.

    The host filters a port either through conntrack or without it (NOTRACK); it cannot do both.
    """
    if any(g.stateful for g in groups) and any(not g.stateful for g in groups):
        raise SecurityGroupConflict(reason="Cannot apply both stateful and stateless security groups on the same "
                                           "port at the same time")


def _validate_port_range(rule: dict[str, Any]) -> None:
    lo, hi = rule["port_range_min"], rule["port_range_max"]
    if lo is None and hi is None:
        return
    if not rule["protocol"]:
        raise SecurityGroupProtocolRequiredWithPorts()
    proto = _proto_number(rule["protocol"])
    if proto in PORT_PROTO_NUMS:
        if lo == 0 or hi == 0:
            raise SecurityGroupInvalidPortValue(port=0)
        if lo is None or hi is None or lo > hi:
            raise SecurityGroupInvalidPortRange()
    elif proto in ICMP_NUMS:
        for attr, field in (("port_range_min", "type"), ("port_range_max", "code")):
            if rule[attr] is not None and not 0 <= rule[attr] <= 255:
                raise SecurityGroupInvalidIcmpValue(field=field, attr=attr, value=rule[attr])
        if lo is None and hi is not None:
            raise SecurityGroupMissingIcmpType(value=hi)
    else:
        raise SecurityGroupInvalidProtocolForPort(
            protocol=proto, valid_port_protocols=", ".join(p.upper() for p in PORT_PROTO_NAMES))


# ---------------------------------------------------------------- visibility


def _visible_group(s: Session, ctx: Context, id: str) -> SecurityGroup:
    """A group the context may see (own project, or any for admins), else SecurityGroupNotFound."""
    sg = s.get(SecurityGroup, id) if isinstance(id, str) else None
    if sg is None or not (ctx.sees_all or sg.project_id == ctx.project_id or sg.shared):
        raise SecurityGroupNotFound(id=id)
    return sg


def _group_in_use(s: Session, id: str) -> bool:
    return s.scalar(select(PortSecurityGroup.port_id).where(PortSecurityGroup.security_group_id == id).limit(1)) \
        is not None


# ---------------------------------------------------------------- services


class SecurityGroupService:
    special_filters: dict[str, Any] = {}

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.listing = listing.Source(SecurityGroup, self.load)

    def before_list(self, ctx: Context, filters: dict[str, list[Any]]) -> None:
        ensure_default_for_listing(self.deps, ctx, filters)

    def load(self, s: Session, ids: list[str]) -> list[dict[str, Any]]:
        """The groups of these ids, in this order (a list page, see :mod:`.listing`)."""
        if not ids:
            return []
        return listing.in_order(ids, self._views(s, list(s.scalars(select(SecurityGroup)
                                                                  .where(SecurityGroup.id.in_(ids))))))

    def _views(self, s: Session, groups: list[SecurityGroup]) -> list[dict[str, Any]]:
        ids = [g.id for g in groups]
        rules = _rules_of(s, ids)
        defaults = default_group_ids(s, ids)
        return [self.to_dict(g, rules[g.id], defaults) for g in groups]

    def to_dict(self, sg: SecurityGroup, rules: list[SecurityGroupRule], defaults: set[str]) -> dict[str, Any]:
        return {
            **common.standard(sg),
            "stateful": sg.stateful,
            "shared": sg.shared,
            "security_group_rules": [rule_to_dict(r, defaults) for r in rules],
        }

    def row(self, s: Session, ctx: Context, id: str) -> SecurityGroup:
        return _visible_group(s, ctx, id)

    def get_all(self, s: Session, ctx: Context, filters: dict[str, list[Any]]) -> list[dict[str, Any]]:
        ensure_default_for_listing(self.deps, ctx, filters)
        stmt = common.prefilter(common.visible(SecurityGroup, ctx, SecurityGroup.shared.is_(True)),
                                SecurityGroup.__table__, filters)
        groups = list(s.scalars(stmt))
        ids = [g.id for g in groups]
        rules = _rules_of(s, ids)
        defaults = default_group_ids(s, ids)
        return [self.to_dict(g, rules[g.id], defaults) for g in groups]

    def get(self, s: Session, ctx: Context, id: str) -> dict[str, Any]:
        sg = _visible_group(s, ctx, id)
        return self.to_dict(sg, _rules_of(s, [sg.id])[sg.id], default_group_ids(s, [sg.id]))

    def create(self, s: Session, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        project = body["project_id"]
        self.deps.quotas.check(s, project, "security_group", SecurityGroup)
        # its default egress rules count against the rule quota too (Neutron's quota_limit_check)
        self.deps.quotas.check(s, project, "security_group_rule", SecurityGroupRule, extra=len(ETHERTYPES))
        ensure_default(s, project)
        sg = SecurityGroup(id=new_id(), project_id=project, name=body["name"], description=body["description"],
                           stateful=body["stateful"], shared=False, tags=body["tags"])
        s.add(sg)
        s.flush()
        for ethertype in ETHERTYPES:
            s.add(new_rule(project_id=project, security_group_id=sg.id, direction="egress", ethertype=ethertype))
        s.flush()
        return self.get(s, ctx, sg.id)

    def update(self, s: Session, ctx: Context, id: str, body: dict[str, Any]) -> dict[str, Any]:
        sg = _visible_group(s, ctx, id)
        if "stateful" in body and body["stateful"] != sg.stateful:
            guard(s, *(_binding_guard(id, shard) for shard in range(BINDING_SHARDS)))  # every port joining meanwhile
            if _group_in_use(s, id):
                raise SecurityGroupInUse(id=id)
        if "name" in body and id in default_group_ids(s, [id]):
            raise SecurityGroupCannotUpdateDefault()
        if common.apply(sg, body):
            common.touch(sg)
        return self.get(s, ctx, id)

    def delete(self, s: Session, ctx: Context, id: str) -> None:
        sg = _visible_group(s, ctx, id)
        if _group_in_use(s, id):
            raise SecurityGroupInUse(id=id)
        is_default = s.get(DefaultSecurityGroup, sg.project_id)
        if is_default is not None and is_default.security_group_id == id:
            if not ctx.is_admin:
                raise SecurityGroupCannotRemoveDefault()
            s.delete(is_default)  # recreated on the project's next use
        # Rules of other groups that name this one as their remote group go with it.
        for rule in s.scalars(select(SecurityGroupRule).where(
                or_(SecurityGroupRule.security_group_id == id, SecurityGroupRule.remote_group_id == id))):
            if rule.security_group_id != id:
                parent = s.get(SecurityGroup, rule.security_group_id)
                if parent is not None:
                    common.touch(parent)
            s.delete(rule)
        s.flush()
        s.delete(sg)


class SecurityGroupRuleService:
    special_filters: dict[str, Any] = {}

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        sg = aliased(SecurityGroup)
        self.listing = listing.Source(SecurityGroupRule, self.load, columns={
            "security_group:project_id": sg.project_id, "security_group:tenant_id": sg.project_id,
            "security_group:shared": sg.shared,
        }, joins=[(sg, sg.id == SecurityGroupRule.security_group_id)],
            order=(SecurityGroupRule.created_at, SecurityGroupRule.id))

    def before_list(self, ctx: Context, filters: dict[str, list[Any]]) -> None:
        ensure_default_for_listing(self.deps, ctx, filters)

    def load(self, s: Session, ids: list[str]) -> list[dict[str, Any]]:
        """The rules of these ids, in this order (a list page, see :mod:`.listing`)."""
        if not ids:
            return []
        rules = list(s.scalars(select(SecurityGroupRule).where(SecurityGroupRule.id.in_(ids))))
        defaults = default_group_ids(s, list({r.security_group_id for r in rules}))
        return listing.in_order(ids, [rule_to_dict(r, defaults) for r in rules])

    def _visible(self, ctx: Context) -> Any:
        """Own rules, and every rule of the project's own groups (Neutron's sg_owner rule)."""
        stmt = select(SecurityGroupRule)
        if not ctx.sees_all:
            owned = select(SecurityGroup.id).where(SecurityGroup.project_id == ctx.project_id)
            stmt = stmt.where(or_(SecurityGroupRule.project_id == ctx.project_id,
                                  SecurityGroupRule.security_group_id.in_(owned)))
        return stmt

    def row(self, s: Session, ctx: Context, id: str) -> SecurityGroupRule:
        rule = s.scalars(self._visible(ctx).where(SecurityGroupRule.id == id)).first()
        if rule is None:
            raise SecurityGroupRuleNotFound(id=id)
        return rule

    def get_all(self, s: Session, ctx: Context, filters: dict[str, list[Any]]) -> list[dict[str, Any]]:
        ensure_default_for_listing(self.deps, ctx, filters)
        stmt = common.prefilter(self._visible(ctx), SecurityGroupRule.__table__, filters)
        rules = list(s.scalars(stmt.order_by(SecurityGroupRule.created_at, SecurityGroupRule.id)))
        defaults = default_group_ids(s, list({r.security_group_id for r in rules}))
        return [rule_to_dict(r, defaults) for r in rules]

    def get(self, s: Session, ctx: Context, id: str) -> dict[str, Any]:
        rule = self.row(s, ctx, id)
        return rule_to_dict(rule, default_group_ids(s, [rule.security_group_id]))

    def create(self, s: Session, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        project = body["project_id"]
        self.deps.quotas.check(s, project, "security_group_rule", SecurityGroupRule)
        rule = dict(body)
        validate_rule(rule)
        if rule["remote_group_id"]:
            _visible_group(s, ctx, rule["remote_group_id"])
        sg = _visible_group(s, ctx, rule["security_group_id"])
        if rule["remote_address_group_id"]:
            raise AddressGroupNotFound(address_group_id=rule["remote_address_group_id"])
        self._check_duplicate(s, sg.id, rule)
        row = new_rule(
            id=new_id(), project_id=project, security_group_id=sg.id, direction=rule["direction"],
            ethertype=rule["ethertype"], protocol=rule["protocol"], port_range_min=rule["port_range_min"],
            port_range_max=rule["port_range_max"], remote_ip_prefix=rule["remote_ip_prefix"],
            remote_group_id=rule["remote_group_id"], remote_address_group_id=rule["remote_address_group_id"],
            description=rule["description"],
        )
        s.add(row)
        common.touch(sg)
        s.flush()
        s.info.setdefault("sg_rules_created", set()).add(row.id)
        return rule_to_dict(row, default_group_ids(s, [sg.id]))

    @staticmethod
    def _check_duplicate(s: Session, sg_id: str, rule: dict[str, Any]) -> None:
        key = rule_key({**rule, "security_group_id": sg_id})
        existing = s.scalars(select(SecurityGroupRule).where(SecurityGroupRule.security_group_id == sg_id))
        for other in existing:
            if rule_key(rule_to_dict(other, set())) == key:
                if other.id in s.info.get("sg_rules_created", ()):
                    raise DuplicateSecurityGroupRuleInPost()
                raise SecurityGroupRuleExists(rule_id=other.id)

    def update(self, s: Session, ctx: Context, id: str, body: dict[str, Any]) -> dict[str, Any]:
        rule = self.row(s, ctx, id)
        if common.apply(rule, body):
            common.touch(rule)
        return self.get(s, ctx, id)

    def delete(self, s: Session, ctx: Context, id: str) -> None:
        rule = self.row(s, ctx, id)
        sg = s.get(SecurityGroup, rule.security_group_id)
        if sg is not None:
            common.touch(sg)
        s.delete(rule)

