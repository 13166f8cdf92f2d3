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
from neutrino.dnsmasq_options import MAX_OPTION_BYTES, option_token, option_value

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
    budget = MAX_OPTION_BYTES - (_route_bytes(default[0]) if default else 0)
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
