"""What dnsmasq needs for one network, rendered from API dicts: hosts, addn-hosts and opts files, argv.

Pure functions over the dict shapes the API returns; the file formats follow Neutron's dnsmasq
driver so operators find what they expect. IPv4 only for now.

Every value is tenant data until ``neutrino.tokens`` has parsed it into a canonical token, and
what does not parse is left out (a port, an option, a route), never written: one object
renders to exactly its own lines, whatever the API let through. A port's extra_dhcp_opts are
always tagged with the port (``tag:port-<id>``, set on its hosts line), their names are
dnsmasq's known options or codes and their values are checked against the option's type.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from neutrino import tokens

LOG = logging.getLogger(__name__)

DOMAIN = "openstacklocal"
LEASE_SECONDS = 86400
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")

Dict = Mapping[str, Any]


@dataclass(frozen=True)
class Paths:
    """Where the files of one network live; dnsmasq gets them on its command line."""

    pidfile: str
    hosts: str
    addn_hosts: str
    opts: str


@dataclass(frozen=True)
class Rendered:
    hosts: str
    addn_hosts: str
    opts: str


def dhcp_subnets(subnets: Iterable[Dict]) -> list[Dict]:
    """The subnets dnsmasq serves: IPv4 with DHCP enabled, a well-formed id and CIDR (others are left out)."""
    return [s for s in subnets if s.get("enable_dhcp") and s.get("ip_version", 4) == 4
            and tokens.resource_id(s.get("id")) and _subnet_network(s) is not None]


def _subnet_network(subnet: Dict) -> ipaddress.IPv4Network | None:
    return tokens.ipv4_network(subnet.get("cidr"))


def _port_tag(port: Dict) -> str:
    return f"port-{port['id']}"


def _subnet_tag(subnet: Dict) -> str:
    return f"subnet-{subnet['id']}"


def host_names(port: Dict, ip: str, domain: str = DOMAIN) -> tuple[str, str]:
    """(hostname, fqdn) for one address: the port's dns_assignment, else Neutron's ``host-10-0-0-5``.

    A dns_assignment entry whose names are not valid DNS names is ignored, not written. The
    hostname may be dotted (a port's dns_name may be a PQDN such as ``web.lab`` or an FQDN, as
    in Neutron): it is written as the fqdn's alias, both checked by ``tokens.fqdn``.
    """
    domain = _domain(domain)
    for entry in port.get("dns_assignment") or ():
        if entry.get("ip_address") != ip:
            continue
        hostname = tokens.fqdn(entry.get("hostname"))
        if hostname is None:
            continue
        fqdn = tokens.fqdn(entry["fqdn"]) if entry.get("fqdn") else tokens.fqdn(f"{hostname}.{domain}")
        if fqdn is not None:
            return hostname, fqdn
    hostname = "host-" + ip.replace(".", "-").replace(":", "-")
    return hostname, f"{hostname}.{domain}"


def _domain(domain: str) -> str:
    checked = tokens.fqdn(domain)
    if checked is None:
        raise ValueError(f"invalid DHCP domain {domain!r}")
    return checked


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
_MAX_OPTION_BYTES = 255


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
        sum(len(item) + 2 for item in items) <= _MAX_OPTION_BYTES
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


def _v4_extra_opts(port: Dict) -> list[tuple[str, str]]:
    """(option token, value) of the port's IPv4 extra_dhcp_opts that dnsmasq can take; the rest is left out."""
    opts = []
    for opt in port.get("extra_dhcp_opts") or ():
        if opt.get("ip_version", 4) != 4:
            continue
        token = option_token(opt.get("opt_name"))
        value = option_value(opt["opt_name"], opt.get("opt_value")) if token else None
        if token is None or value is None:
            LOG.debug("port %s: DHCP option %r=%r cannot be rendered; left out", port.get("id"),
                        opt.get("opt_name"), opt.get("opt_value"))
            continue
        opts.append((token, value))
    return opts


def _addresses(ports: Iterable[Dict], subnets: Iterable[Dict]) -> list[tuple[Dict, str, str]]:
    """(port, MAC, IP) per served address, in canonical form.

    A port without a well-formed id or MAC is left out whole (it could not be told apart from
    another), as is the second port with a MAC already seen; an address outside its subnet too.
    """
    served = {s["id"]: _subnet_network(s) for s in dhcp_subnets(subnets)}
    seen: set[str] = set()
    found = []
    for port in ports:
        mac = tokens.mac(port.get("mac_address"))
        if mac is None or tokens.resource_id(port.get("id")) is None or mac in seen:
            LOG.debug("port %r (MAC %r) cannot be rendered for DHCP; left out", port.get("id"),
                        port.get("mac_address"))
            continue
        seen.add(mac)
        for fixed in port.get("fixed_ips") or ():
            net = served.get(fixed.get("subnet_id"))
            ip = tokens.ipv4(fixed.get("ip_address"))
            if net is not None and ip is not None and ipaddress.IPv4Address(ip) in net:
                found.append((port, mac, ip))
    return found


def render_hosts(ports: Sequence[Dict], subnets: Sequence[Dict], domain: str = DOMAIN) -> str:
    """``--dhcp-hostsfile``: ``<mac>,[set:port-<id>,]<fqdn>,<ip>`` per served address.

    A port with options is tagged with its own id, so its options (``tag:port-<id>``) reach that
    port only, as Neutron's dnsmasq driver does it.
    """
    lines = []
    for port, mac, ip in _addresses(ports, subnets):
        tag = f"set:{_port_tag(port)}," if _v4_extra_opts(port) else ""
        lines.append(f"{mac},{tag}{host_names(port, ip, domain)[1]},{ip}")
    return "".join(line + "\n" for line in lines)


def render_addn_hosts(ports: Sequence[Dict], subnets: Sequence[Dict], domain: str = DOMAIN) -> str:
    """``--addn-hosts``: ``<ip>\\t<fqdn> <hostname>`` so instances resolve each other."""
    lines = []
    for port, _, ip in _addresses(ports, subnets):
        hostname, fqdn = host_names(port, ip, domain)
        lines.append(f"{ip}\t{fqdn} {hostname}")
    return "".join(line + "\n" for line in lines)


def _routes(subnet: Dict, served: Sequence[Dict]) -> list[tuple[str, str]]:
    """Option 121: host routes, other served subnets on-link, then the default route (as Neutron).

    Routes whose destination or nexthop is not an IPv4 network/address are left out.
    """
    routes = []
    for route in subnet.get("host_routes") or ():
        dest, hop = tokens.ipv4_network(route.get("destination")), tokens.ipv4(route.get("nexthop"))
        if dest is not None and hop is not None:
            routes.append((str(dest), hop))
    routes += [(str(_subnet_network(s)), "0.0.0.0") for s in served if s["id"] != subnet["id"]]
    gateway = tokens.ipv4(subnet.get("gateway_ip"))
    default = next(((d, hop) for d, hop in routes if d == "0.0.0.0/0"), ("0.0.0.0/0", gateway) if gateway else None)
    return _fitting([r for r in routes if r[0] != "0.0.0.0/0"], default)


def _route_bytes(dest: str) -> int:
    """RFC 3442's encoding of one route: prefix length, the significant octets, the router."""
    length = int(dest.partition("/")[2])
    return 1 + (length + 7) // 8 + 4


def _fitting(routes: list[tuple[str, str]], default: tuple[str, str] | None) -> list[tuple[str, str]]:
    """The routes that fit in one option (255 bytes; dnsmasq refuses a longer one, and then the
    subnet's clients get no routes at all), in order, the default route always kept: with
    option 121 present a client ignores option 3, so without it the subnet has no gateway.
    Many subnets on one network with many host routes each can exceed it; the rest is left out."""
    budget = _MAX_OPTION_BYTES - (_route_bytes(default[0]) if default else 0)
    kept = []
    for dest, hop in routes:
        if _route_bytes(dest) > budget:
            LOG.debug("route %s via %s does not fit in the DHCP routes option; left out", dest, hop)
            continue
        budget -= _route_bytes(dest)
        kept.append((dest, hop))
    return kept + ([default] if default else [])


def _dhcp_ip(dhcp_port: Dict, subnet_id: str) -> str | None:
    return next((ip for f in dhcp_port.get("fixed_ips") or () if f.get("subnet_id") == subnet_id
                 and (ip := tokens.ipv4(f.get("ip_address")))), None)


def _subnet_opts(subnet: Dict, served: Sequence[Dict], dhcp_port: Dict, mtu: Any) -> list[str]:
    tag = f"tag:{_subnet_tag(subnet)},"
    gateway = tokens.ipv4(subnet.get("gateway_ip")) or ""
    lines = [f"{tag}option:router" + (f",{gateway}" if gateway else "")]  # empty: tell clients "no router"
    dns = [ip for d in subnet.get("dns_nameservers") or () if (ip := tokens.ipv4(d))]
    dns = dns or [ip for ip in [_dhcp_ip(dhcp_port, subnet["id"])] if ip]
    if dns:
        lines.append(f"{tag}option:dns-server," + ",".join(dns))
    routes = _routes(subnet, served)
    if routes:
        value = ",".join(f"{dest},{hop}" for dest, hop in routes)
        lines.append(f"{tag}option:classless-static-route,{value}")
        lines.append(f"{tag}249,{value}")  # the same routes for Windows clients
    if tokens.integer(mtu, 68, 65535):
        lines.append(f"{tag}option:mtu,{mtu}")
    return lines


def _port_opts(port: Dict) -> list[str]:
    return [f"tag:{_port_tag(port)},{token}" + (f",{value}" if value else "") for token, value in _v4_extra_opts(port)]


def render_opts(network: Dict, subnets: Sequence[Dict], ports: Sequence[Dict], dhcp_port: Dict) -> str:
    """``--dhcp-optsfile``: per-subnet router, DNS, routes, MTU; per-port extra_dhcp_opts, tagged to the port.

    Options go to the ports that appear in the hosts file (well-formed id and MAC) only: for any
    other, the tag would name no host.
    """
    served = dhcp_subnets(subnets)
    lines = [line for s in served for line in _subnet_opts(s, served, dhcp_port, network.get("mtu"))]
    rendered = {id(port) for port, _, _ in _addresses(ports, subnets)}
    lines += [line for p in ports if id(p) in rendered for line in _port_opts(p)]
    return "".join(line + "\n" for line in lines)


def render_files(network: Dict, subnets: Sequence[Dict], ports: Sequence[Dict], dhcp_port: Dict,
                 domain: str = DOMAIN) -> Rendered:
    return Rendered(hosts=render_hosts(ports, subnets, domain), addn_hosts=render_addn_hosts(ports, subnets, domain),
                    opts=render_opts(network, subnets, ports, dhcp_port))


def _dhcp_range(subnet: Dict, lease_seconds: int) -> str:
    net = _subnet_network(subnet)
    assert net is not None  # dhcp_subnets() keeps well-formed CIDRs only
    return f"--dhcp-range=set:{_subnet_tag(subnet)},{net.network_address},static,{net.netmask},{lease_seconds}s"


def render_args(paths: Paths, interface: str, subnets: Sequence[Dict], domain: str = DOMAIN,
                lease_seconds: int = LEASE_SECONDS, user: str | None = None, group: str | None = None) -> list[str]:
    """dnsmasq's argv: static leases only (unknown MACs get none), no host resolver, bound to ``interface``.

    ``user``/``group``: who dnsmasq becomes once it has bound its sockets (Neutron's runs as nobody).
    """
    if not _IFNAME.fullmatch(interface):
        raise ValueError(f"invalid interface name {interface!r}")
    args = ["dnsmasq", "--no-hosts", "--no-resolv", "--strict-order", "--except-interface=lo",
            "--conf-file=/dev/null", f"--pid-file={paths.pidfile}", f"--dhcp-hostsfile={paths.hosts}",
            f"--addn-hosts={paths.addn_hosts}", f"--dhcp-optsfile={paths.opts}", "--leasefile-ro",
            "--dhcp-authoritative", "--bind-interfaces", f"--interface={interface}"]
    args += [_dhcp_range(s, lease_seconds) for s in dhcp_subnets(subnets)]
    args.append(f"--domain={_domain(domain)}")
    if user:
        args.append(f"--user={user}")
    if group:
        args.append(f"--group={group}")
    return args
