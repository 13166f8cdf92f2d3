"""Extra DHCP option names a port may set: dnsmasq's known names, or an option number.

Neutron passes ``opt_name`` to dnsmasq as ``option:<name>`` (IPv4) or ``option6:<name>``
(IPv6), or as a bare number; dnsmasq refuses to start on a name it does not know, so a name
outside these lists would break DHCP for the whole network. The lists are dnsmasq 2.90's
``dnsmasq --help dhcp`` and ``--help dhcp6``.

An IPv4 option is accepted exactly when the DHCP renderer writes it (both ask
``neutrino.dnsmasq_options``): an option the API stored but the agent left out would be a
silent lie to the tenant, so the two share one judgement rather than two lists that drift.
Stored options follow Neutron's extradhcpopt_db: a value of None (or a blank value, where
blanks mean nothing) is not stored on create, and on update it deletes that option; other
updates change or add the option of that name and IP version, and leave the rest alone.
"""

from __future__ import annotations

import re
from typing import Any

from neutrino import dnsmasq_options
from neutrino.api import validators as v

DHCP4_NAMES = frozenset((
    "netmask", "time-offset", "router", "dns-server", "log-server", "lpr-server", "boot-file-size",
    "domain-name", "swap-server", "root-path", "extension-path", "ip-forward-enable",
    "non-local-source-routing", "policy-filter", "max-datagram-reassembly", "default-ttl", "mtu",
    "all-subnets-local", "router-discovery", "router-solicitation", "static-route",
    "trailer-encapsulation", "arp-timeout", "ethernet-encap", "tcp-ttl", "tcp-keepalive", "nis-domain",
    "nis-server", "ntp-server", "netbios-ns", "netbios-dd", "netbios-nodetype", "netbios-scope",
    "x-windows-fs", "x-windows-dm", "T1", "T2", "vendor-class", "nis+-domain", "nis+-server",
    "tftp-server", "bootfile-name", "mobile-ip-home", "smtp-server", "pop3-server", "nntp-server",
    "irc-server", "user-class", "rapid-commit", "client-arch", "client-interface-id",
    "client-machine-id", "posix-timezone", "tzdb-timezone", "ipv6-only", "domain-search", "sip-server",
    "classless-static-route", "vendor-id-encap", "tftp-server-address", "server-ip-address",
))
DHCP6_NAMES = frozenset((
    "sip-server-domain", "sip-server", "dns-server", "domain-search", "nis-server", "nis+-server",
    "nis-domain", "nis+-domain", "sntp-server", "information-refresh-time", "posix-timezone",
    "tzdb-timezone", "ntp-server", "bootfile-url", "bootfile-param",
))
# Options whose value dnsmasq parses as a list of addresses: anything else there and dnsmasq
# refuses the whole options file ("bad IP address"), which would stop DHCP for every port of
# the network. Measured with ``dnsmasq --test`` (2.90) for every known name.
ADDRESS_OPTIONS = {
    4: {"netmask": 1, "router": 3, "dns-server": 6, "log-server": 7, "lpr-server": 9, "swap-server": 16,
        "policy-filter": 21, "router-solicitation": 32, "static-route": 33, "nis-server": 41, "ntp-server": 42,
        "netbios-ns": 44, "netbios-dd": 45, "x-windows-fs": 48, "x-windows-dm": 49, "nis+-server": 65,
        "mobile-ip-home": 68, "smtp-server": 69, "pop3-server": 70, "nntp-server": 71, "irc-server": 74,
        "tftp-server-address": 150, "server-ip-address": 255},
    6: {"sip-server": 22, "dns-server": 23, "nis-server": 27, "nis+-server": 28, "sntp-server": 31},
}
# Option codes: DHCPv4 1-254 (0 and 255 are pad and end), DHCPv6 1-65535.
MAX_CODE = {4: 254, 6: 65535}
CODE_RE = re.compile(r"\A[1-9][0-9]{0,4}\Z")
# neutron-lib's extra_dhcp_opt: these two may have an empty value ("no router").
BLANK_ALLOWED = ("router", "classless-static-route")
NAME_MAX_LEN = 64
VALUE_MAX_LEN = 255


def canonical(value: Any) -> Any:
    """The attribute's converter: ip_version as an integer (neutron-lib's convert_to_int), so
    "6" and 6 are one option to every check and to storage."""
    if not isinstance(value, list):
        return value
    return [{**o, "ip_version": int(o["ip_version"])}
            if isinstance(o, dict) and isinstance(o.get("ip_version"), str) and o["ip_version"] in ("4", "6") else o
            for o in value]


def _ip_version(item: dict[str, Any]) -> int | str:
    """The entry's IP version (absent or None: 4), or why it is none; "4"/"6" were made
    integers by :func:`canonical`."""
    version = item.get("ip_version", 4)
    if version is None:
        return 4
    if version not in (4, 6) or isinstance(version, bool):
        return f"'{v.shown(version)}' is not in [4, 6]"
    return int(version)


def name_error(name: Any, version: int) -> str | None:
    if msg := v.oneline_not_empty(NAME_MAX_LEN)(name):
        return msg
    if CODE_RE.fullmatch(name):
        return None if int(name) <= MAX_CODE[version] else f"'{name}' is not a valid DHCPv{version} option code"
    if name not in (DHCP4_NAMES if version == 4 else DHCP6_NAMES):
        return f"'{name}' is not a known DHCPv{version} option name or number"
    return None


def _v4_name_error(name: str) -> str | None:
    """Option codes dnsmasq sets itself (lease time, message type, server id...) are not a port's."""
    if dnsmasq_options.option_token(name) is None:
        return f"'{name}' is set by the DHCP server itself and cannot be set for a port"
    return None


def _is_address_option(name: str, version: int) -> bool:
    table = ADDRESS_OPTIONS[version]
    return name in table or (name.isdigit() and int(name) in table.values())


def _address_list_error(value: str, version: int) -> str | None:
    for item in value.split(","):
        bare = item[1:-1] if version == 6 and item.startswith("[") and item.endswith("]") else item
        addr = v.parse_ip(bare)
        if addr is None or addr.version != version:
            return f"'{v.shown(value)}' is not a comma-separated list of IPv{version} addresses"
    return None


def value_error(name: str, value: Any, version: int = 4) -> str | None:
    """CVE-2021-40085: a value is one line without control characters, or dnsmasq reads the
    rest as options of its own; an address option holds addresses of its IP version only."""
    if value is None or (value == "" and name in BLANK_ALLOWED):
        return None
    if msg := v.oneline_not_empty(VALUE_MAX_LEN)(value):
        return msg
    if _is_address_option(name, version) and (msg := _address_list_error(value, version)):
        return msg
    if version == 4 and dnsmasq_options.option_value(name, value) is None:
        return f"'{v.shown(value)}' is not a valid value for DHCPv4 option {name}"
    return None


def extra_dhcp_opt(item: dict[str, Any]) -> str | None:
    """One entry of a port's ``extra_dhcp_opts``."""
    if msg := v.dict_keys(("opt_name", "opt_value"), ("ip_version",))(item):
        return msg
    version = _ip_version(item)
    if isinstance(version, str):
        return version
    if msg := name_error(item["opt_name"], version):
        return msg
    if version == 4 and (msg := _v4_name_error(item["opt_name"])):
        return msg
    return value_error(item["opt_name"], item["opt_value"], version)


def _key(item: dict[str, Any]) -> tuple[str, int]:
    return item["opt_name"], int(item.get("ip_version") or 4)


def extra_dhcp_opts(value: Any) -> str | None:
    """The whole list: each entry valid, and one entry per option name and IP version (Neutron's
    table is unique on them; two values for one option would leave dnsmasq to pick one).
    None is no options (neutron-lib's type:list_of_any_key_specs_or_none)."""
    if value is None:
        return None
    if msg := v.dict_list(extra_dhcp_opt)(value):
        return msg
    keys = [_key(item) for item in value]
    if dup := next((k for i, k in enumerate(keys) if k in keys[:i]), None):
        return f"Duplicate extra DHCP option '{dup[0]}' for IP version {dup[1]}"
    return None


def _stored(item: dict[str, Any]) -> dict[str, Any]:
    return {"opt_name": item["opt_name"], "opt_value": item["opt_value"], "ip_version": _key(item)[1]}


def _kept(item: dict[str, Any]) -> bool:
    """Neutron's ``_is_valid_opt_value``: a blank-able option is stored unless None, others unless blank."""
    if item["opt_name"] in BLANK_ALLOWED:
        return item["opt_value"] is not None
    return bool(item["opt_value"])


def created(opts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The options a new port stores: those with a value."""
    return [_stored(o) for o in opts if _kept(o)]


def updated(current: list[dict[str, Any]], changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neutron's ``_update_extra_dhcp_opts_on_port``: per (name, IP version), None deletes, a value
    replaces or adds; options the update does not name stay. An empty list changes nothing."""
    out = {_key(o): _stored(o) for o in current}
    for change in changes:
        key = _key(change)
        if change["opt_value"] is None:
            out.pop(key, None)
        elif _kept(change):
            out[key] = _stored(change)
    return list(out.values())
