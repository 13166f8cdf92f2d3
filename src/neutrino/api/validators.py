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

MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-])(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}$")  # one separator
DNS_LABEL_RE = re.compile(r"^(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$")


class ConversionError(ValueError):
    """A value that cannot be converted; the message is the reason shown to the client."""


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
    if not isinstance(value, str) or not MAC_RE.match(value):
        raise ConversionError(f"'{value}' is not a valid MAC address")
    return value.lower().replace("-", ":")


def to_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


# ---------------------------------------------------------------- validators


def string(max_len: int | None = 255) -> Validator:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"'{value}' is not a valid string"
        if max_len is not None and len(value) > max_len:
            return f"'{value}' exceeds maximum length of {max_len}"
        return None

    return check


def string_or_none(max_len: int | None = 255) -> Validator:
    inner = string(max_len)
    return lambda value: None if value is None else inner(value)


def uuid_(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"'{value}' is not a valid UUID"
    try:
        uuid.UUID(value)
    except ValueError:
        return f"'{value}' is not a valid UUID"
    if len(value) not in (32, 36):
        return f"'{value}' is not a valid UUID"
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
    try:
        addr = netaddr.IPAddress(value, flags=netaddr.INET_PTON)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return f"'{value}' is not a valid IP address"
    if addr.version == 4 and str(addr) != value:
        return f"'{value}' is not an accepted IP address, '{addr}' is recommended"
    return None


def ip_address_or_none(value: Any) -> str | None:
    return None if value is None else ip_address(value)


def subnet_cidr(value: Any) -> str | None:
    """A CIDR with a prefix length, host bits zero (Neutron's ``type:subnet``)."""
    if not isinstance(value, str) or "/" not in value:
        return f"'{value}' is not a valid IP subnet"
    try:
        net = netaddr.IPNetwork(value)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return f"'{value}' is not a valid IP subnet"
    if net.ip != net.network:
        return f"'{value}' isn't a recommended CIDR, '{net.cidr}' is recommended"
    return None


def subnet_cidr_or_none(value: Any) -> str | None:
    return None if value is None else subnet_cidr(value)


def ip_or_cidr(value: Any) -> str | None:
    """A remote_ip_prefix: an address or a network (normalised later, as Neutron does)."""
    if not isinstance(value, str):
        return f"'{value}' is not a valid IP address or CIDR"
    try:
        netaddr.IPNetwork(value)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return f"'{value}' is not a valid IP address or CIDR"
    return None


def mac_address(value: Any) -> str | None:
    if not isinstance(value, str) or not MAC_RE.match(value):
        return f"'{value}' is not a valid MAC address"
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
    labels = value.rstrip(".").split(".")
    for label in labels:
        if not DNS_LABEL_RE.match(label):
            return f"'{value}' not a valid PQDN or FQDN. Reason: '{label}' is not a valid DNS label"
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


def tags(value: Any) -> str | None:
    return list_of(string(255), unique=False)(value)


def any_dict(value: Any) -> str | None:
    return None if isinstance(value, dict) else f"'{value}' is not a dictionary"
