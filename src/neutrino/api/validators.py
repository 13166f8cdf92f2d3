"""Validators and converters for attribute values, after neutron-lib's ``type:*`` validators.

A validator returns ``None`` when the value is fine, else the reason (Neutron's wording, which
ends up in "Invalid input for <attr>. Reason: <reason>."). A converter returns the converted
value or raises :class:`ConversionError` with the reason.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import netaddr

Validator = Callable[[Any], str | None]
Converter = Callable[[Any], Any]

# Every pattern is applied with ``fullmatch`` and anchored with \A...\Z: ``$`` would also match
# before a final newline, and "fa:16:3e:00:00:01\n" would pass as a MAC (and dodge uniqueness).
MAC_RE = re.compile(r"\A[0-9a-fA-F]{2}([:-])(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}\Z")  # one separator
DNS_LABEL_RE = re.compile(r"\A(?!-)[a-zA-Z0-9-]{1,63}(?<!-)\Z")
# C0 and C1 controls, DEL and the Unicode line/paragraph separators: anything that can end a
# line or a token in a file, command line or rule set the agents write.
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# An address then a prefix length without leading zeros; the address part is checked strictly
# (inet_pton) by :func:`parse_cidr`. netaddr alone would take "10.0.0.0/24\n" and "10.0.0.0/024".
CIDR_RE = re.compile(r"\A([0-9A-Fa-f:.]+)/(0|[1-9][0-9]{0,2})\Z")


class ConversionError(ValueError):
    """A value that cannot be converted; the message is the reason shown to the client."""


def has_control(value: str) -> bool:
    return CONTROL_RE.search(value) is not None


def shown(value: Any) -> str:
    """A value for an error message, control characters escaped so the message stays one line."""
    if not isinstance(value, str):
        return str(value)
    return CONTROL_RE.sub(lambda m: m.group().encode("unicode_escape").decode(), value)


def parse_ip(value: Any) -> netaddr.IPAddress | None:
    """The address ``value`` spells exactly (inet_pton rules, IPv4 without leading zeros), else None."""
    if not isinstance(value, str) or not value or has_control(value) or value != value.strip():
        return None
    try:
        addr = netaddr.IPAddress(value, flags=netaddr.INET_PTON)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None
    if addr.version == 4 and str(addr) != value:
        return None
    return addr


def parse_cidr(value: Any) -> netaddr.IPNetwork | None:
    """The network ``value`` spells exactly as ``address/prefixlen``, else None (host bits allowed)."""
    if not isinstance(value, str) or (m := CIDR_RE.fullmatch(value)) is None:
        return None
    addr = parse_ip(m.group(1))
    if addr is None or int(m.group(2)) > (32 if addr.version == 4 else 128):
        return None
    return netaddr.IPNetwork(f"{addr}/{m.group(2)}")


# ---------------------------------------------------------------- converters


def to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no"):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConversionError(f"'{value}' cannot be converted to boolean")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ConversionError(f"'{value}' is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConversionError(f"'{value}' is not an integer") from None


def to_int_or_none(value: Any) -> int | None:
    return None if value is None else to_int(value)


def to_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def to_protocol(value: Any) -> Any:
    """Security group protocols: a name, or a number 0-255 kept as the string clients sent."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ConversionError(f"'{value}' is not a valid protocol")
    return value.lower()


def to_mac(value: Any) -> str:
    """The canonical form of a MAC: lower case, colon separated (what uniqueness compares)."""
    if not isinstance(value, str) or not MAC_RE.fullmatch(value):
        raise ConversionError(f"'{value}' is not a valid MAC address")
    return value.lower().replace("-", ":")


def to_mac_if_valid(value: Any) -> Any:
    """A MAC's canonical form when ``value`` is one, else ``value`` as given (for filters: an
    invalid MAC matches nothing rather than being an error, as in Neutron)."""
    return value.lower().replace("-", ":") if isinstance(value, str) and MAC_RE.fullmatch(value) else value


def to_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def to_canonical_cidr(value: Any) -> Any:
    """neutron-lib's convert_cidr_to_canonical_format: IPv6 compressed and lower case; a value
    that is not a CIDR is left for the validator to refuse."""
    net = parse_cidr(value)
    if net is None or net.version == 4:
        return value
    return f"{net.ip.format(netaddr.ipv6_compact)}/{net.prefixlen}"


def to_canonical_ip(value: Any) -> Any:
    """neutron-lib's convert_ip_to_canonical_format: IPv6 compressed and lower case."""
    addr = parse_ip(value)
    return value if addr is None or addr.version == 4 else str(addr)


# ---------------------------------------------------------------- validators


def string(max_len: int | None = 255, multiline: bool = False) -> Validator:
    """neutron-lib's ``type:string``, and one line without control characters: any string a
    project sets may end up in a file, command line or rule set on a host. ``multiline`` (free
    text such as descriptions, which never reach a host) still refuses every other control."""

    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"'{value}' is not a valid string"
        if max_len is not None and len(value) > max_len:
            return f"'{shown(value)}' exceeds maximum length of {max_len}"
        text = value.replace("\n", "").replace("\r", "").replace("\t", "") if multiline else value
        if has_control(text):
            return f"'{shown(value)}' contains control characters"
        return None

    return check


def oneline_not_empty(max_len: int) -> Validator:
    """neutron-lib's ``type:oneline_not_empty_string`` (extra DHCP option names and values)."""
    inner = string(max_len)

    def check(value: Any) -> str | None:
        if (msg := inner(value)) is not None:
            return msg
        if not value.strip():
            return f"'{value}' Blank strings are not permitted"
        return None

    return check


def string_or_none(max_len: int | None = 255) -> Validator:
    inner = string(max_len)
    return lambda value: None if value is None else inner(value)


UUID_RE = re.compile(r"\A[0-9a-fA-F]{8}(-?)[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{12}\Z")


def uuid_(value: Any) -> str | None:
    """neutron-lib's ``type:uuid``: 8-4-4-4-12 hex digits (or the 32 without dashes), whole."""
    if not isinstance(value, str) or not UUID_RE.fullmatch(value):
        return f"'{shown(value)}' is not a valid UUID"
    uuid.UUID(value)
    return None


def uuid_or_none(value: Any) -> str | None:
    return None if value is None else uuid_(value)


def uuid_list(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"'{value}' is not a list"
    for item in value:
        if (msg := uuid_(item)) is not None:
            return msg
    if len(set(value)) != len(value):
        return f"Duplicate items in the list: '{', '.join(value)}'"
    return None


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"'{value}' is not a valid boolean value"


def integer_range(lo: int | None, hi: int | None) -> Validator:
    def check(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"'{value}' is not an integer"
        if lo is not None and value < lo:
            return f"'{value}' is too small - must be at least '{lo}'"
        if hi is not None and value > hi:
            return f"'{value}' is too large - must be no larger than '{hi}'"
        return None

    return check


def values(allowed: tuple[Any, ...]) -> Validator:
    def check(value: Any) -> str | None:
        if value not in allowed:
            shown = ", ".join(str(a) for a in allowed)
            return f"'{value}' is not in [{shown}]" if len(allowed) > 1 else f"'{value}' is not '{shown}'"
        return None

    return check


def ip_address(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"'{value}' is not a valid IP address"
    if parse_ip(value) is not None:
        return None
    try:  # Neutron's hint for an IPv4 address with leading zeros
        addr = netaddr.IPAddress(value, flags=netaddr.ZEROFILL)
        if addr.version == 4 and not has_control(value) and value == value.strip():
            return f"'{value}' is not an accepted IP address, '{addr}' is recommended"
    except (netaddr.AddrFormatError, ValueError, TypeError):
        pass
    return f"'{shown(value)}' is not a valid IP address"


def ip_address_or_none(value: Any) -> str | None:
    return None if value is None else ip_address(value)


def subnet_cidr(value: Any) -> str | None:
    """A CIDR with a prefix length, host bits zero (Neutron's ``type:subnet``)."""
    net = parse_cidr(value)
    if net is None:
        return f"'{shown(value)}' is not a valid IP subnet"
    if net.ip != net.network:
        return f"'{value}' isn't a recommended CIDR, '{net.cidr}' is recommended"
    return None


def subnet_cidr_or_none(value: Any) -> str | None:
    return None if value is None else subnet_cidr(value)


def ip_or_cidr(value: Any) -> str | None:
    """A remote_ip_prefix: an address or a network (normalised later, as Neutron does)."""
    if parse_ip(value) is None and parse_cidr(value) is None:
        return f"'{shown(value)}' is neither a valid IP address, nor is it a valid IP subnet"
    return None


def mac_address(value: Any) -> str | None:
    if not isinstance(value, str) or not MAC_RE.fullmatch(value):
        return f"'{shown(value)}' is not a valid MAC address"
    if netaddr.EUI(value).words[0] & 1:
        return f"'{value}' is not a valid unicast MAC address"
    if value.replace("-", ":").lower() == "00:00:00:00:00:00":
        return f"'{value}' is not a valid MAC address"
    return None


def dns_name(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"'{value}' is not a valid string"
    if len(value) > 255:
        return f"'{value}' exceeds the 255 character FQDN limit"
    if value == "":
        return None
    labels = (value[:-1] if value.endswith(".") else value).split(".")
    for label in labels:
        if not DNS_LABEL_RE.fullmatch(label):
            return f"'{shown(value)}' not a valid PQDN or FQDN. Reason: '{shown(label)}' is not a valid DNS label"
    if len(labels) > 1 and labels[-1].isdigit():
        return f"'{value}' not a valid PQDN or FQDN. Reason: TLD '{labels[-1]}' must not be all numeric"
    return None


def fip_dns_name(value: Any) -> str | None:
    """neutron-lib's ``type:fip_dns_host_name``: a relative name, with room for a domain."""
    if msg := dns_name(value):
        return msg
    if value.endswith("."):
        return f"'{value}' is a FQDN. It should be a relative domain name"
    if len(value) > 255 - 3:
        return (f"'{value}' contains {len(value)} characters. Adding a domain name will cause it to exceed "
                "the maximum length of a FQDN of '255'")
    return None


def dns_domain(value: Any) -> str | None:
    """neutron-lib's ``type:dns_domain_name``: empty, or an FQDN (final dot) with room for a
    sub-domain. A port's names are completed with it, so a relative domain would make them
    relative too."""
    if msg := dns_name(value):
        return msg
    if value and not value.endswith("."):
        return f"'{value}' is not a FQDN"
    if len(value) > 255 - 2:
        return (f"'{value}' contains {len(value)} characters. Adding a sub-domain will cause it to exceed "
                "the maximum length of a FQDN of '255'")
    return None


def dict_list(item_check: Callable[[Any], str | None]) -> Validator:
    """A list of dicts, each validated by ``item_check``."""

    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return f"Invalid data format for list: '{value}'"
        for item in value:
            if not isinstance(item, dict):
                return f"'{item}' is not a dictionary"
            if (msg := item_check(item)) is not None:
                return msg
        return None

    return check


def dict_keys(required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Callable[[dict[str, Any]], str | None]:
    def check(item: dict[str, Any]) -> str | None:
        missing = [k for k in required if k not in item]
        if missing:
            return f"Validation of dictionary's keys failed. Expected keys: {set(required)} Provided keys: {set(item)}"
        extra = [k for k in item if k not in required + optional]
        if extra:
            return f"Unrecognized attribute(s) '{', '.join(extra)}'"
        return None

    return check


def list_of(inner: Validator, unique: bool = True) -> Validator:
    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return f"'{value}' is not a list"
        for item in value:
            if (msg := inner(item)) is not None:
                return msg
        if unique:
            seen: list[Any] = []
            for item in value:
                if item in seen:
                    return f"Duplicate items in the list: '{item}'"
                seen.append(item)
        return None

    return check


def all_of(*checks: Validator) -> Validator:
    def check(value: Any) -> str | None:
        for c in checks:
            if (msg := c(value)) is not None:
                return msg
        return None

    return check


def string_list(value: Any) -> str | None:
    return list_of(string(255))(value)


MAX_TAGS = 50  # Neutron's tagging.MAX_TAGS_COUNT: tags are stored and listed with their resource


def too_many_tags(value: list[str]) -> str | None:
    """Neutron's validate_tags_limit: without it a project grows one row without bound, one
    ``PUT .../tags/<tag>`` at a time, and every listing of that resource carries it."""
    if len(set(value)) > MAX_TAGS:
        return f"The number of tags exceed the per-resource limit of {MAX_TAGS}"
    return None


def tags(value: Any) -> str | None:
    """neutron-lib's ``type:list_of_unique_strings`` of 255, at most MAX_TAGS of them."""
    return list_of(string(255))(value) or too_many_tags(value)


def route_cidr(value: Any) -> str | None:
    """neutron-lib's validate_route_cidr: a network address with a prefix, not loopback."""
    net = parse_cidr(value)
    if net is None or net.network != net.ip:
        return f"'{shown(value)}' is not a valid CIDR"
    if net.is_loopback():
        return f"'{value}' is not a routable CIDR"
    return None


def verify_dict_keys(expected: list[str], target: Any, strict: bool = True) -> str | None:
    if not isinstance(target, dict):
        return f"Invalid input. '{target}' must be a dictionary with keys: {expected}"
    want, have = set(expected), set(target)
    if not (want == have if strict else want <= have):
        return f"Validation of dictionary's keys failed. Expected keys: {want} Provided keys: {have}"
    return None


def hostroutes(value: Any) -> str | None:
    """neutron-lib's ``type:hostroutes`` (subnet host_routes and router routes): unique
    {destination, nexthop} dicts, the destination a routable network address."""
    if not isinstance(value, list):
        return f"Invalid data format for hostroute: '{value}'"
    seen: list[Any] = []
    for route in value:
        if msg := verify_dict_keys(["destination", "nexthop"], route):
            return msg
        if msg := route_cidr(route["destination"]):
            return msg
        if msg := ip_address(route["nexthop"]):
            return msg
        if route in seen:
            return f"Duplicate hostroute '{route}'"
        seen.append(route)
    return None


def to_canonical_routes(value: Any) -> Any:
    """Routes as stored: destination and nexthop in canonical form (None is no routes)."""
    if value is None:
        return []
    if not isinstance(value, list):
        return value
    return [{**r, "destination": to_canonical_cidr(r["destination"]), "nexthop": to_canonical_ip(r["nexthop"])}
            if isinstance(r, dict) and "destination" in r and "nexthop" in r else r for r in value]


def any_dict(value: Any) -> str | None:
    return None if isinstance(value, dict) else f"'{value}' is not a dictionary"
