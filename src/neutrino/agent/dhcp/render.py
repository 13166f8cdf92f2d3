"""What dnsmasq needs for one network, rendered from API dicts: hosts, addn-hosts and opts files, argv.

Pure functions over the dict shapes the API returns; the file formats follow Neutron's dnsmasq
driver so operators find what they expect in the state directory. IPv4 only for now.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DOMAIN = "openstacklocal"
LEASE_SECONDS = 86400

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
    """The subnets dnsmasq serves: IPv4 with DHCP enabled."""
    return [s for s in subnets if s.get("enable_dhcp") and s.get("ip_version", 4) == 4]


def _port_tag(port: Dict) -> str:
    return f"port-{port['id']}"


def _subnet_tag(subnet: Dict) -> str:
    return f"subnet-{subnet['id']}"


def host_names(port: Dict, ip: str, domain: str = DOMAIN) -> tuple[str, str]:
    """(hostname, fqdn) for one address: the port's dns_assignment, else Neutron's ``host-10-0-0-5``."""
    for entry in port.get("dns_assignment") or ():
        if entry.get("ip_address") == ip and entry.get("hostname"):
            hostname = str(entry["hostname"])
            return hostname, str(entry.get("fqdn") or f"{hostname}.{domain}").rstrip(".")
    hostname = "host-" + ip.replace(".", "-").replace(":", "-")
    return hostname, f"{hostname}.{domain}"


def _v4_extra_opts(port: Dict) -> list[Dict]:
    return [o for o in port.get("extra_dhcp_opts") or () if o.get("ip_version", 4) == 4]


def _addresses(ports: Iterable[Dict], subnets: Iterable[Dict]) -> list[tuple[Dict, str]]:
    served = {s["id"] for s in dhcp_subnets(subnets)}
    return [(p, ip["ip_address"]) for p in ports for ip in p.get("fixed_ips") or () if ip["subnet_id"] in served]


def render_hosts(ports: Sequence[Dict], subnets: Sequence[Dict], domain: str = DOMAIN) -> str:
    """``--dhcp-hostsfile``: ``<mac>,[set:port-<id>,]<fqdn>,<ip>`` per served address."""
    lines = []
    for port, ip in _addresses(ports, subnets):
        tag = f"set:{_port_tag(port)}," if _v4_extra_opts(port) else ""
        lines.append(f"{port['mac_address']},{tag}{host_names(port, ip, domain)[1]},{ip}")
    return "".join(line + "\n" for line in lines)


def render_addn_hosts(ports: Sequence[Dict], subnets: Sequence[Dict], domain: str = DOMAIN) -> str:
    """``--addn-hosts``: ``<ip>\\t<fqdn> <hostname>`` so instances resolve each other."""
    lines = []
    for port, ip in _addresses(ports, subnets):
        hostname, fqdn = host_names(port, ip, domain)
        lines.append(f"{ip}\t{fqdn} {hostname}")
    return "".join(line + "\n" for line in lines)


def _routes(subnet: Dict, served: Sequence[Dict]) -> list[tuple[str, str]]:
    """Option 121: host routes, other served subnets on-link, then the default route (as Neutron)."""
    routes = [(r["destination"], r["nexthop"]) for r in subnet.get("host_routes") or ()]
    routes += [(s["cidr"], "0.0.0.0") for s in served if s["id"] != subnet["id"]]
    gateway = subnet.get("gateway_ip")
    if gateway and not any(dest == "0.0.0.0/0" for dest, _ in routes):
        routes.append(("0.0.0.0/0", gateway))
    return routes


def _dhcp_ip(dhcp_port: Dict, subnet_id: str) -> str | None:
    return next((ip["ip_address"] for ip in dhcp_port.get("fixed_ips") or () if ip["subnet_id"] == subnet_id), None)


def _subnet_opts(subnet: Dict, served: Sequence[Dict], dhcp_port: Dict, mtu: int | None) -> list[str]:
    tag = f"tag:{_subnet_tag(subnet)},"
    gateway = subnet.get("gateway_ip") or ""
    lines = [f"{tag}option:router" + (f",{gateway}" if gateway else "")]  # empty: tell clients "no router"
    dns = list(subnet.get("dns_nameservers") or ()) or [ip for ip in [_dhcp_ip(dhcp_port, subnet["id"])] if ip]
    if dns:
        lines.append(f"{tag}option:dns-server," + ",".join(dns))
    routes = _routes(subnet, served)
    if routes:
        value = ",".join(f"{dest},{hop}" for dest, hop in routes)
        lines.append(f"{tag}option:classless-static-route,{value}")
        lines.append(f"{tag}249,{value}")  # the same routes for Windows clients
    if mtu:
        lines.append(f"{tag}option:mtu,{mtu}")
    return lines


def _port_opts(port: Dict) -> list[str]:
    lines = []
    for opt in _v4_extra_opts(port):
        name = str(opt["opt_name"])
        prefix = "" if name.isdigit() else "option:"  # numeric codes go as they are
        lines.append(f"tag:{_port_tag(port)},{prefix}{name},{opt['opt_value']}")
    return lines


def render_opts(network: Dict, subnets: Sequence[Dict], ports: Sequence[Dict], dhcp_port: Dict) -> str:
    """``--dhcp-optsfile``: per-subnet router, DNS, routes, MTU; per-port extra_dhcp_opts."""
    served = dhcp_subnets(subnets)
    lines = [line for s in served for line in _subnet_opts(s, served, dhcp_port, network.get("mtu"))]
    lines += [line for p in ports for line in _port_opts(p)]
    return "".join(line + "\n" for line in lines)


def render_files(network: Dict, subnets: Sequence[Dict], ports: Sequence[Dict], dhcp_port: Dict,
                 domain: str = DOMAIN) -> Rendered:
    return Rendered(hosts=render_hosts(ports, subnets, domain), addn_hosts=render_addn_hosts(ports, subnets, domain),
                    opts=render_opts(network, subnets, ports, dhcp_port))


def _dhcp_range(subnet: Dict, lease_seconds: int) -> str:
    net = ipaddress.ip_network(subnet["cidr"])
    return f"--dhcp-range=set:{_subnet_tag(subnet)},{net.network_address},static,{net.netmask},{lease_seconds}s"


def render_args(paths: Paths, interface: str, subnets: Sequence[Dict], domain: str = DOMAIN,
                lease_seconds: int = LEASE_SECONDS, user: str | None = None) -> list[str]:
    """dnsmasq's argv: static leases only (unknown MACs get none), no host resolver, bound to ``interface``."""
    args = ["dnsmasq", "--no-hosts", "--no-resolv", "--strict-order", "--except-interface=lo",
            "--conf-file=/dev/null", f"--pid-file={paths.pidfile}", f"--dhcp-hostsfile={paths.hosts}",
            f"--addn-hosts={paths.addn_hosts}", f"--dhcp-optsfile={paths.opts}", "--leasefile-ro",
            "--dhcp-authoritative", "--bind-interfaces", f"--interface={interface}"]
    args += [_dhcp_range(s, lease_seconds) for s in dhcp_subnets(subnets)]
    args.append(f"--domain={domain}")
    if user:
        args.append(f"--user={user}")
    return args
