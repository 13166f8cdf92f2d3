"""What dnsmasq takes as a DHCPv4 option: the names it knows, the codes a port may set, and the
values each option's type admits.

One table for both sides of the trust boundary: the API accepts a port's IPv4 extra DHCP
option exactly when the DHCP agent's renderer writes it, so an option is never stored only to
be dropped by the agent, and the renderer still checks on its own whatever reaches it.
"""

from __future__ import annotations

from typing import Any

from neutrino import tokens

# dnsmasq's value type per option (dhcp-common.c's table); what dnsmasq lists as known options.
ADDRESSES, NAME, DOMAINS, ANY = "addresses", "name", "domains", "any"
ADDRESSES_OR_DOMAINS = "addresses-or-domains"  # sip-server (RFC 3361): a list of one or the other
_OPTIONS: dict[str, tuple[int, str | int]] = {
    "netmask": (1, ADDRESSES), "time-offset": (2, 4), "router": (3, ADDRESSES), "dns-server": (6, ADDRESSES),
    "log-server": (7, ADDRESSES), "lpr-server": (9, ADDRESSES), "boot-file-size": (13, 2),
    "domain-name": (15, NAME), "swap-server": (16, ADDRESSES), "root-path": (17, NAME),
    "extension-path": (18, NAME), "ip-forward-enable": (19, 1), "non-local-source-routing": (20, 1),
    "policy-filter": (21, ADDRESSES), "max-datagram-reassembly": (22, 2), "default-ttl": (23, 1),
    "mtu": (26, 2), "all-subnets-local": (27, 1), "router-discovery": (31, 1),
    "router-solicitation": (32, ADDRESSES), "static-route": (33, ADDRESSES), "trailer-encapsulation": (34, 1),
    "arp-timeout": (35, 4), "ethernet-encap": (36, 1), "tcp-ttl": (37, 1), "tcp-keepalive": (38, 4),
    "nis-domain": (40, NAME), "nis-server": (41, ADDRESSES), "ntp-server": (42, ADDRESSES),
    "netbios-ns": (44, ADDRESSES), "netbios-dd": (45, ADDRESSES), "netbios-nodetype": (46, 1),
    "netbios-scope": (47, ANY), "x-windows-fs": (48, ADDRESSES), "x-windows-dm": (49, ADDRESSES),
    "T1": (58, 4), "T2": (59, 4), "vendor-class": (60, ANY), "nis+-domain": (64, NAME),
    "nis+-server": (65, ADDRESSES), "tftp-server": (66, NAME), "bootfile-name": (67, NAME),
    "mobile-ip-home": (68, ADDRESSES), "smtp-server": (69, ADDRESSES), "pop3-server": (70, ADDRESSES),
    "nntp-server": (71, ADDRESSES), "irc-server": (74, ADDRESSES), "user-class": (77, ANY),
    "rapid-commit": (80, ANY), "client-arch": (93, 2), "client-interface-id": (94, ANY),
    "client-machine-id": (97, ANY), "posix-timezone": (100, NAME), "tzdb-timezone": (101, NAME),
    "ipv6-only": (108, 4), "domain-search": (119, DOMAINS), "sip-server": (120, ADDRESSES_OR_DOMAINS),
    "classless-static-route": (121, ANY), "vendor-id-encap": (125, ANY),
    "tftp-server-address": (150, ADDRESSES), "server-ip-address": (255, ADDRESSES),
}
_BY_CODE = {code: kind for code, kind in _OPTIONS.values()}
# Set by dnsmasq itself (hostname, lease time, message type, client id...): never from a port.
_INTERNAL = frozenset({12, 28, 43, 50, 51, 52, 53, 54, 55, 56, 57, 61, 81, 82, 118})
_BLANK_OK = frozenset({"router", "classless-static-route", "3", "121"})  # Neutron's VALID_BLANK_EXTRA_DHCP_OPTS
# Inside a dnsmasq option a value may hold commas (lists), never what ends a line, starts a comment or quotes.
_VALUE_FORBIDDEN = " \"'#"
# dnsmasq guesses the type of an untyped value: digits with dots, commas or slashes (and nothing
# else) are IPv4 addresses to it, and it refuses the line when they are not ("bad IPv4 address").
_ADDRESS_LIKE = frozenset("0123456789.,/")
# An option holds at most 255 bytes; a domain list is encoded as RFC 1035 names (label lengths
# and a final zero byte), which dnsmasq refuses beyond that ("dhcp-option too long").
MAX_OPTION_BYTES = 255


def option_token(name: Any) -> str | None:
    """``option:<name>`` for a name dnsmasq knows, or the bare code 1..254 it can be set by; else None."""
    if not isinstance(name, str):
        return None
    if name.isascii() and name.isdigit() and len(name) <= 3:
        code = int(name)
        return str(code) if 0 < code < 255 and code not in _INTERNAL else None
    return f"option:{name}" if name in _OPTIONS else None


def option_value(name: str, value: Any) -> str | None:
    """The value as one dnsmasq option field, checked against the option's type; None if it cannot be."""
    if value is None or value == "":
        return "" if name in _BLANK_OK else None
    text = tokens.printable(value, _VALUE_FORBIDDEN)
    if text is None:
        return None
    kind = _OPTIONS[name][1] if name in _OPTIONS else _BY_CODE.get(int(name), ANY)
    items = text.split(",")
    addresses = all(tokens.ipv4(item) == item for item in items)
    domains = all(tokens.fqdn(item) == item for item in items) and \
        sum(len(item) + 2 for item in items) <= MAX_OPTION_BYTES
    if kind == ADDRESSES:
        ok = addresses
    elif kind == DOMAINS:
        ok = domains
    elif isinstance(kind, int):
        ok = text.isdigit() and len(text) <= 10 and int(text) < 2 ** (8 * kind)
    elif set(text) <= _ADDRESS_LIKE and not text.isdigit():
        ok = addresses  # what dnsmasq will read as addresses must be addresses
    elif kind == ADDRESSES_OR_DOMAINS:
        ok = domains
    else:  # NAME, ANY: one line of printable characters, which the check above already is
        ok = True
    return text if ok else None
