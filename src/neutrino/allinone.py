"""The all-in-one cloud: the server and this host's agents in one process, on the in-process bus.

``start_agents`` prepares the host side (the node namespace and, for the host-only external
network, the veth whose machine end holds the gateway address) and starts the reconcile
loop. ``ensure_public_network`` creates the external network ``public`` through the API, as
an operator would, and is idempotent.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

from neutrino.agent import node
from neutrino.agent.host import L2_DRIVERS, HostAgent, HostConfig
from neutrino.client import Client
from neutrino.config import Config, ConfigError, firewall_driver
from neutrino.kernel.names import node_ns
from neutrino.server import Server


def parse_mappings(items: list[str]) -> dict[str, str]:
    """``physnet:interface`` pairs (Neutron's physical_interface_mappings)."""
    out = {}
    for item in items:
        physnet, sep, iface = item.partition(":")
        if not sep or not physnet or not iface:
            raise ConfigError(f"physical_interface_mappings: {item!r} is not PHYSNET:INTERFACE")
        out[physnet] = iface
    return out


def host_config(cfg: Config) -> HostConfig:
    if cfg.agent.l2_driver not in L2_DRIVERS:
        raise ConfigError(f"[agent] l2_driver: {cfg.agent.l2_driver!r} is not one of {', '.join(L2_DRIVERS)}")
    host = cfg.agent.host or socket.gethostname()
    try:
        return _host_config(cfg, host)
    except ValueError as exc:  # HostConfig checks its roles
        raise ConfigError(str(exc)) from None


def _host_config(cfg: Config, host: str) -> HostConfig:
    return HostConfig(
        host=host,
        node_ns=cfg.agent.node_namespace or node_ns(host),
        state_dir=Path(cfg.DEFAULT.state_dir).resolve() / "agent",  # absolute: haproxy gets socket paths
        ns_prefix=cfg.agent.namespace_prefix,
        local_ip=cfg.vxlan.local_ip,
        underlay_dev=cfg.vxlan.underlay_dev,
        physical_interfaces=parse_mappings(cfg.linux_bridge.physical_interface_mappings),
        l2_driver=cfg.agent.l2_driver,
        # checked here; kept as given ("" = the L2 driver's own), so a copy for another L2 driver stays valid
        firewall_driver=cfg.agent.firewall_driver and firewall_driver(cfg.agent.l2_driver, cfg.agent.firewall_driver),
        report_interval=cfg.agent.report_interval,
        resync_interval=cfg.agent.resync_interval,
        roles=tuple(cfg.agent.roles),
    )


def gateway_cidr(cfg: Config) -> str:
    net = ipaddress.ip_network(cfg.public.cidr)
    return f"{cfg.public.gateway_ip}/{net.prefixlen}"


def start_agents(cfg: Config, srv: Server) -> HostAgent:
    """Prepare this host and start its agents; the public physnet gets a host-only uplink."""
    hc = host_config(cfg)
    node.ensure_node(hc.node_ns)
    physnet = cfg.public.physical_network
    if physnet and physnet not in hc.physical_interfaces:
        hc.physical_interfaces[physnet] = node.ensure_host_only_uplink(hc.node_ns, physnet, gateway_cidr(cfg))
    agent = HostAgent(hc, srv.rpc, srv.bus)
    agent.start()
    return agent


def ensure_public_network(admin: Client, cfg: Config) -> tuple[dict[str, Any], dict[str, Any]]:
    """The external network and its subnet (no DHCP; the floating range as allocation pool)."""
    pub = cfg.public
    nets = admin.get("/v2.0/networks", name=pub.network_name, **{"router:external": "true"})["networks"]
    if nets:
        net = nets[0]
    else:
        net = admin.post("/v2.0/networks", {"network": {
            "name": pub.network_name, "router:external": True, "provider:network_type": "flat",
            "provider:physical_network": pub.physical_network, "description": "host-only external network"}})["network"]
    subs = admin.get("/v2.0/subnets", network_id=net["id"])["subnets"]
    if subs:
        return net, subs[0]
    sub = admin.post("/v2.0/subnets", {"subnet": {
        "name": f"{pub.network_name}-subnet", "network_id": net["id"], "ip_version": 4, "cidr": pub.cidr,
        "gateway_ip": pub.gateway_ip, "enable_dhcp": False,
        "allocation_pools": [{"start": pub.allocation_start, "end": pub.allocation_end}]}})["subnet"]
    return net, sub
