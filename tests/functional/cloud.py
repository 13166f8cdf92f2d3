"""A whole all-in-one cloud inside a test's namespaces: server, agents, instances, external host.

The server runs over real HTTP on loopback, the host agent is the one ``neutrino up`` runs
(``allinone.start_agents``), instances are made by ``compute.manager.Compute`` exactly as
``neutrino instance create`` makes them. Every namespace carries the test's prefix; the
external network's uplink goes to an "external host" namespace instead of the machine, so
tests never touch the machine's own namespace.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from neutrino import server
from neutrino.agent.host import HostAgent
from neutrino.allinone import ensure_public_network, start_agents
from neutrino.client import Client
from neutrino.compute.manager import Compute, Instance
from neutrino.db.models.network import Port
from neutrino.kernel import links, netns
from tests.conftest import LiveServer, free_port, make_config

EXT_CIDR, EXT_HOST_IP = "203.0.113.0/24", "203.0.113.1"
PROJECT, OTHER_PROJECT = "11111111111111111111111111111111", "22222222222222222222222222222222"

# Serve one line-echo TCP port until killed; prints "ready" once listening.
LISTENER = """import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16); print("ready", flush=True)
def serve(c):
    with c:
        while (data := c.recv(100)):
            c.sendall(data)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
CLIENT = """import socket, sys
s = socket.socket(); s.settimeout(1.5)
s.connect((sys.argv[1], int(sys.argv[2]))); s.sendall(b"hi\\n"); assert s.recv(3) == b"hi\\n"
"""


@dataclass
class Cloud:
    url: str
    admin: Client
    agent: HostAgent
    ns_prefix: str
    node_ns: str
    ext_ns: str
    tmp: Path
    public: dict[str, Any]
    cfg: Any = None
    srv: Any = None
    others: list[HostAgent] = field(default_factory=list)

    def client(self, project: str = PROJECT) -> Client:
        return Client(self.url, {"X-Project-Id": project, "X-Roles": "member,reader"}, project_id=project)

    def compute(self, project: str = PROJECT, agent: HostAgent | None = None) -> Compute:
        on = agent or self.agent
        return Compute(self.client(project), self.admin, on.cfg.host, on.cfg.node_ns, self.tmp / "compute",
                       ns_prefix=on.cfg.ns_prefix)

    def add_host(self, name: str, underlay_ip: str, l2_driver: str | None = None) -> HostAgent:
        """Another host on the underlay: its own node namespace and agent, the same server."""
        # Namespace names are machine-wide: each simulated host gets its own prefix for them.
        hc = replace(self.agent.cfg, host=name, node_ns=f"{self.ns_prefix}{name}", ns_prefix=f"{self.ns_prefix}{name}-",
                     state_dir=self.tmp / name, local_ip=underlay_ip, underlay_dev="ul0", physical_interfaces={},
                     l2_driver=l2_driver or self.agent.cfg.l2_driver)
        _plug_underlay(self.ns_prefix, hc.node_ns, underlay_ip)
        agent = HostAgent(hc, self.srv.rpc, self.srv.bus)
        agent.start()
        self.others.append(agent)
        return agent

    def network(self, name: str, cidr: str, project: str = PROJECT) -> tuple[dict[str, Any], dict[str, Any]]:
        c = self.client(project)
        net = c.post("/v2.0/networks", {"network": {"name": name}})["network"]
        sub = c.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4,
                                                  "name": f"{name}-subnet"}})["subnet"]
        return net, sub

    def set_port_mac(self, port_id: str, mac: str) -> None:
        """Write a MAC into the database behind the API's back: a value that got past validation
        (the hostile-value tests check that it hurts only its own port)."""
        def write(s: Session) -> None:
            row = s.get(Port, port_id)
            assert row is not None
            row.mac_address = mac
        self.srv.db.transaction(write)

    def settle(self, timeout: float = 20.0) -> None:
        """Wait until the agent has run a pass that started after now (changes are applied)."""
        result = self.agent.settle(timeout)
        assert result is not None, f"no agent pass finished within {timeout} s; last: {self.agent.last_result}"
        assert not result.errors, result.errors


def run_in(ns: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout)


def tcp_ok(ns: str, dst: str, port: int) -> bool:
    return run_in(ns, sys.executable, "-S", "-c", CLIENT, dst, str(port)).returncode == 0


@contextmanager
def listener(ns: str, port: int) -> Iterator[None]:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-S", "-c", LISTENER, str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.kill()
        proc.wait(timeout=5)


def ip_of(inst: Instance) -> str:
    return str(inst.lease["ip"])


def _plug_underlay(ns_prefix: str, node_ns: str, ip: str) -> None:
    """``ul0`` in the host's node namespace, on the fabric bridge every host shares."""
    fabric = f"{ns_prefix}fabric"
    netns.ensure_namespace(fabric)
    links.ensure_bridge(fabric, "underlay")
    links.set_up(fabric, "underlay")
    netns.ensure_namespace(node_ns)
    peer = "ul-" + ip.rsplit(".", 1)[1]
    links.ensure_veth(node_ns, "ul0", fabric, peer)
    links.set_master(fabric, peer, "underlay")
    links.set_up(fabric, peer)
    links.add_address(node_ns, "ul0", f"{ip}/24")
    links.set_up(node_ns, "ul0")


@contextmanager
def cloud(tmp: Path, ns_prefix: str, host: str = "host-a", underlay_ip: str | None = None,
          l2_driver: str = "linuxbridge", report_interval: float = 2.0, firewall_driver: str = "",
          **defaults: Any) -> Iterator[Cloud]:
    """The cloud; with ``underlay_ip`` host A's tunnels use a fabric, so more hosts can join;
    ``firewall_driver`` is ``[agent] firewall_driver`` ("" = the L2 driver's own).
    ``defaults`` go to the ``[DEFAULT]`` section (``agent_down_time``, failover options)."""
    node_ns, ext_ns = f"{ns_prefix}node", f"{ns_prefix}ext"
    vxlan = {"local_ip": underlay_ip, "underlay_dev": "ul0"} if underlay_ip else {}
    cfg = make_config(tmp, DEFAULT={"auth_strategy": "noauth", **defaults},
                      agent={"host": host, "node_namespace": node_ns, "namespace_prefix": ns_prefix,
                             "report_interval": report_interval, "l2_driver": l2_driver,
                             "firewall_driver": firewall_driver},
                      public={"physical_network": ""}, vxlan=vxlan,
                      linux_bridge={"physical_interface_mappings": ["public:phy-public"]})
    if underlay_ip:
        _plug_underlay(ns_prefix, node_ns, underlay_ip)
    port = free_port()
    cfg.DEFAULT.bind = f"127.0.0.1:{port}"
    srv = server.build(cfg)
    # The external network's wire ends in an "external host" namespace holding the gateway IP.
    netns.ensure_namespace(node_ns)
    netns.ensure_namespace(ext_ns)
    links.ensure_veth(node_ns, "phy-public", ext_ns, "eth0")
    links.set_up(node_ns, "phy-public")
    links.add_address(ext_ns, "eth0", f"{EXT_HOST_IP}/24")
    links.set_up(ext_ns, "eth0")
    built: Cloud | None = None
    agent: HostAgent | None = None
    try:
        with LiveServer(srv.app, port) as live:
            agent = start_agents(cfg, srv)
            admin = Client(live.url, {"X-Project-Id": "admin", "X-Roles": "admin,member,reader"})
            cfg.public.cidr, cfg.public.gateway_ip = EXT_CIDR, EXT_HOST_IP
            cfg.public.allocation_start, cfg.public.allocation_end = "203.0.113.10", "203.0.113.200"
            cfg.public.physical_network = "public"
            public, _ = ensure_public_network(admin, cfg)
            built = Cloud(live.url, admin, agent, ns_prefix, node_ns, ext_ns, tmp, public, cfg, srv)
            yield built
    finally:
        running = [built.agent, *built.others] if built is not None else [agent]
        for each in running:
            if each is not None:
                each.stop()  # a test may have replaced the agent (restart)
        srv.db.dispose()


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
