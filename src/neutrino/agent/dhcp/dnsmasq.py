"""One network's DHCP server made real: qdhcp namespace, DHCP port veth, rendered files, dnsmasq.

``apply`` is idempotent: it ensures the namespace and the port's veth (``ns-`` inside, ``tap``
on the host side, attached where the L2 driver's ``Plug`` says), writes the files atomically, starts dnsmasq
if it is not running (restarts it if its command line must change, e.g. a new subnet),
sends SIGHUP when only the files changed (dnsmasq re-reads them and keeps its leases) and
does nothing when nothing changed. ``teardown`` removes all of it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neutrino import tokens
from neutrino.agent.dhcp import render
from neutrino.agent.l2.driver import Plug
from neutrino.files import write_atomic
from neutrino.kernel import links, netns, procs
from neutrino.kernel.names import ns_name, qdhcp_ns, tap_name

Dict = render.Dict


@dataclass
class DhcpNetwork:
    """The DHCP server of ``network_id``; its port attaches to the network where ``plug`` (the L2 driver) says.

    dnsmasq starts as root, binds its sockets and becomes ``user``/``group`` (nobody/nogroup, as
    Neutron's dnsmasq runs); it re-reads its files on SIGHUP as that user, so they live in
    ``/run/neutrino/dhcp/<namespace>`` (searchable by anyone), not in the agent's state dir,
    which may sit below a directory only root can enter (``/root/state``, a tmp dir).
    """

    network_id: str
    plug: Plug
    namespace: str = ""  # default qdhcp-<network_id>; tests pass a prefixed name
    user: str | None = procs.DAEMON_USER
    group: str | None = field(default_factory=procs.daemon_group)

    def __post_init__(self) -> None:
        self._plugged: tuple[Any, ...] | None = None
        self.namespace = self.namespace or qdhcp_ns(self.network_id)
        self.directory = procs.run_path("dhcp", self.namespace)
        self.paths = render.Paths(pidfile=str(self.directory / "pid"), hosts=str(self.directory / "host"),
                                  addn_hosts=str(self.directory / "addn_hosts"), opts=str(self.directory / "opts"))

    def pid(self) -> int | None:
        """dnsmasq's PID if it runs for this network (checked by its command line)."""
        return procs.owned_pid(self.paths.pidfile, self.paths.pidfile)

    def apply(self, network: Dict, subnets: Sequence[Dict], ports: Sequence[Dict], dhcp_port: Dict,
              verify: bool = True) -> str:
        """Make it so; returns what happened to dnsmasq: started, restarted, reloaded or unchanged.

        With ``verify`` false the namespace and veth are trusted to be as this object last
        made them (when it did so for the same port, addresses and plug): an event-driven
        pass then costs file compares, not a dozen netlink round trips. Full resyncs verify.
        """
        device = ns_name(dhcp_port["id"])
        plug = (dhcp_port["id"], dhcp_port["mac_address"], network.get("mtu"), self.plug,
                tuple(_port_cidrs(dhcp_port, subnets)))
        if verify or plug != self._plugged:
            self._plugged = None
            self._plug(network, subnets, dhcp_port, device)
            self._plugged = plug
        procs.daemon_dir("dhcp", self.namespace)
        files = render.render_files(network, subnets, ports, dhcp_port)
        before = _host_pairs(_read(Path(self.paths.hosts)))
        changed = False
        for path, text in ((self.paths.hosts, files.hosts), (self.paths.addn_hosts, files.addn_hosts),
                           (self.paths.opts, files.opts)):
            changed = write_atomic(Path(path), text) | changed
        argv = render.render_args(self.paths, device, subnets, user=self.user, group=self.group)
        outcome = self._ensure_daemon(argv, changed)
        if outcome == "reloaded":
            self._release(device, before - _host_pairs(files.hosts))
        return outcome

    def _release(self, device: str, gone: set[tuple[str, str]]) -> None:
        """Release the leases of addresses whose port left or changed (Neutron does the same):
        dnsmasq keeps leases in memory across SIGHUP and would refuse the address to its next
        owner until the old lease expired."""
        for mac, ip in sorted(gone):
            subprocess.run(["ip", "netns", "exec", self.namespace, "dhcp_release", device, ip, mac],
                           capture_output=True, timeout=10)

    def _plug(self, network: Dict, subnets: Sequence[Dict], dhcp_port: Dict, device: str) -> None:
        tap = tap_name(dhcp_port["id"])
        netns.ensure_namespace(self.namespace)
        links.ensure_veth(self.plug.namespace, tap, self.namespace, device, mac_b=dhcp_port["mac_address"],
                          mtu=network.get("mtu"))
        self.plug.attach(tap, dhcp_port, peer=(self.namespace, device))
        for cidr in _port_cidrs(dhcp_port, subnets):
            links.add_address(self.namespace, device, cidr)
        links.set_up(self.namespace, device)

    def _ensure_daemon(self, argv: list[str], files_changed: bool) -> str:
        pid = self.pid()
        if pid is not None and procs.cmdline(pid) != argv:
            procs.stop(self.paths.pidfile, self.paths.pidfile)
            procs.start(self.namespace, argv, self.paths.pidfile, self.paths.pidfile)
            return "restarted"
        if pid is None:
            procs.start(self.namespace, argv, self.paths.pidfile, self.paths.pidfile)
            return "started"
        if files_changed:
            procs.signal(self.paths.pidfile, self.paths.pidfile)
            return "reloaded"
        return "unchanged"

    def teardown(self) -> None:
        """Stop dnsmasq, remove the ns- veth (the tap goes along), the namespace and the files."""
        procs.stop(self.paths.pidfile, self.paths.pidfile)
        if netns.namespace_exists(self.namespace):
            # deleted with the namespace too, but only when the kernel gets round to it: do it now
            for link in links.list_links(self.namespace):
                if link.kind == "veth" and link.name.startswith("ns-"):
                    links.remove_link(self.namespace, link.name)
        netns.remove_namespace(self.namespace)
        shutil.rmtree(self.directory, ignore_errors=True)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _host_pairs(hosts: str) -> set[tuple[str, str]]:
    """(MAC, IP) of each line of a hosts file as render_hosts writes it (``mac,[set:tag,]fqdn,ip``)."""
    pairs = set()
    for line in hosts.splitlines():
        fields = line.strip().split(",")
        if len(fields) >= 3:
            pairs.add((fields[0], fields[-1]))
    return pairs


def _port_cidrs(port: Dict, subnets: Sequence[Dict]) -> list[str]:
    """The port's addresses on served subnets with their subnet's prefix length."""
    by_id = {s["id"]: tokens.ipv4_network(s["cidr"]) for s in render.dhcp_subnets(subnets)}
    return [f"{address}/{net.prefixlen}" for f in port.get("fixed_ips") or ()
            if (net := by_id.get(f.get("subnet_id"))) is not None and (address := tokens.ipv4(f.get("ip_address")))]
