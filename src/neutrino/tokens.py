"""Typed values for renderers: each parses a value from the API and gives back one safe token, or None.

Renderers (dnsmasq files, nftables scripts, haproxy config, metadata answers) write tenant
data into formats where a newline, a comma, a quote or a space ends a token or a line. The
API validates input, but a renderer must not depend on that: every value goes through one of
these parsers, which either return the canonical form (which can only contain characters
that are plain inside a token) or None, and the renderer leaves out what got None. Full
matches only (``re.fullmatch``): ``$`` would accept a trailing newline.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
# Resource ids: Neutron's are UUIDs; anything of letters, digits and dashes is one token everywhere.
_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")


def mac(value: Any) -> str | None:
    """A MAC in canonical lower-case colon form; None unless ``value`` is exactly one."""
    if not isinstance(value, str):
        return None
    text = value.lower()
    return text if _MAC.fullmatch(text) else None


def ipv4(value: Any) -> str | None:
    """A dotted-quad IPv4 address in canonical form (no leading zeros, no whitespace)."""
    if not isinstance(value, str) or not _IPV4.fullmatch(value):
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        return None


def ipv4_network(value: Any) -> ipaddress.IPv4Network | None:
    """An IPv4 network given as ``a.b.c.d/len`` (host bits may be set: they are masked off)."""
    if not isinstance(value, str) or "/" not in value:
        return None
    address, _, length = value.partition("/")
    if ipv4(address) is None or not length.isascii() or not length.isdigit() or len(length) > 2:
        return None
    try:
        return ipaddress.IPv4Network(f"{address}/{int(length)}", strict=False)
    except ValueError:
        return None


def resource_id(value: Any) -> str | None:
    """An id made of letters, digits and inner dashes (every Neutron UUID), at most 64 characters."""
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def hostname(value: Any) -> str | None:
    """One DNS label (RFC 1123: letters, digits, inner dashes, at most 63)."""
    return value if isinstance(value, str) and _LABEL.fullmatch(value) else None


def fqdn(value: Any) -> str | None:
    """A dotted DNS name of valid labels, without the trailing dot, at most 253 characters."""
    if not isinstance(value, str):
        return None
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return None
    return name


def integer(value: Any, low: int, high: int) -> int | None:
    """An int (not a bool, not a string) within ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def printable(value: Any, forbidden: str = "", max_len: int = 255) -> str | None:
    """A string of printable ASCII (space to ``~``) without any of ``forbidden``; no leading/trailing space."""
    if not isinstance(value, str) or len(value) > max_len or value != value.strip(" "):
        return None
    if not all(" " <= ch <= "~" and ch not in forbidden for ch in value):
        return None
    return value
