"""One host's agents (L2, DHCP, L3, metadata) as one reconcile loop.

Each pass fetches the host's desired state from the server (``AgentRpc.sync``) and hands it
to the building blocks, each of which compares with what the kernel has and applies only the
difference: the firewall (so a port is filtered before it is wired), L2, then DHCP (its port
attaches where the L2 driver says), then routers, then port status back to the server. What
differs between dataplanes (Linux bridge, Open vSwitch) is the L2 driver's (``agent.l2.driver``).
A pass is idempotent, so anything may wake it:
a change event from the bus, a link appearing in the node namespace (an instance plugging its
VIF), or the periodic resync that repairs whatever an event missed. A restarted agent keeps
no memory of its own: it reads the kernel and converges, so nothing is duplicated or leaked.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neutrino.agent import node
from neutrino.agent.dhcp.dnsmasq import DhcpNetwork
from neutrino.agent.host_state import Pending, merge
from neutrino.agent.l2.driver import L2Driver, L2Incomplete, Plug
from neutrino.agent.l2.linuxbridge import LinuxBridgeDriver
from neutrino.agent.l2.ovs import OvsDriver
from neutrino.agent.l3.router import RouterNamespace, RouterState
from neutrino.agent.metadata.proxy import PROXY_PORT, MetadataProxy
from neutrino.agent.metadata.server import MetadataServer
from neutrino.agent.metadata.server import socket_path as metadata_socket_path
from neutrino.agent.retry import Retries, fingerprint
from neutrino.bus import CHANGES, Bus, Event
from neutrino.config import FIREWALL_DRIVERS
from neutrino.files import write_atomic
from neutrino.kernel import KernelError, netns
from neutrino.kernel.names import qdhcp_ns
from neutrino.messages import DHCP_AGENT, L3_AGENT, METADATA_AGENT, Rpc

LOG = logging.getLogger(__name__)
DEBOUNCE_QUIET = 0.02  # a pass starts once no wake-up came for this long ...
DEBOUNCE_MAX = 0.08  # ... or this long after the first one
RTMGRP_LINK = 1
PASS_RETRY_MAX = 10.0  # a failed whole pass (e.g. the server away) is retried at least this often
L2_DRIVERS = ("linuxbridge", "openvswitch")
# What a host may run (``[agent] roles``): a network node all four, a compute node only L2, as in
# Neutron, where compute nodes run the L2 agent alone and metadata is served through the routers.
ROLES = ("l2", "dhcp", "l3", "metadata")

Dict = dict[str, Any]


@dataclass
class HostConfig:
    host: str
    node_ns: str
    state_dir: Path
    ns_prefix: str = ""
    local_ip: str = "127.0.0.1"
    underlay_dev: str = "lo"
    physical_interfaces: dict[str, str] = field(default_factory=dict)  # physnet -> interface in node_ns
    report_interval: float = 10.0
    resync_interval: float = 30.0
    l2_driver: str = "linuxbridge"
    firewall_driver: str = ""  # "" = the L2 driver's own (config.firewall_driver checks the choice)
    roles: tuple[str, ...] = ROLES

    def __post_init__(self) -> None:
        unknown = sorted(set(self.roles) - set(ROLES))
        if unknown or "l2" not in self.roles:
            raise ValueError(f"[agent] roles {list(self.roles)}: each of {', '.join(ROLES)}, and l2 always "
                             f"(every part plugs through it){'; unknown: ' + ', '.join(unknown) if unknown else ''}")


def make_driver(cfg: HostConfig) -> L2Driver:
    """The L2 driver ``cfg.l2_driver`` names (``[agent] l2_driver``), with its firewall."""
    takes = FIREWALL_DRIVERS.get(cfg.l2_driver, ())
    if cfg.firewall_driver and cfg.firewall_driver not in takes:
        raise ValueError(f"firewall driver {cfg.firewall_driver!r} does not work with the {cfg.l2_driver} driver "
                         f"(it takes: {', '.join(takes)})")
    if cfg.l2_driver == "linuxbridge":
        return LinuxBridgeDriver(cfg.node_ns, cfg.state_dir, cfg.local_ip, cfg.underlay_dev, cfg.physical_interfaces)
    if cfg.l2_driver == "openvswitch":  # nftables: hybrid plugging, the taps filtered on their own qbr
        return OvsDriver(cfg.node_ns, cfg.state_dir, cfg.local_ip, cfg.underlay_dev, cfg.physical_interfaces,
                         hybrid=cfg.firewall_driver == "nftables")
    raise ValueError(f"unknown L2 driver {cfg.l2_driver!r} (available: {', '.join(L2_DRIVERS)})")


@dataclass
class PassResult:
    """What one pass did, for logs, tests and the wiring benchmark."""

    l2_actions: int = 0
    dhcp: dict[str, str] = field(default_factory=dict)
    routers: dict[str, bool] = field(default_factory=dict)
    firewall_applied: bool = False
    statuses: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    fetched: str = "full"  # what the pass asked the server: full, partial (a change's scope) or none
    failed_parts: list[str] = field(default_factory=list)  # a whole part failed (errors also lists single objects)
    deferred: list[str] = field(default_factory=list)  # failed objects left alone this pass (back-off)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per part


class LinkMonitor:
    """Wakes the agent when a link appears or goes in the node namespace (a VIF plugged).

    Its netlink socket belongs to the namespace it was opened in, and keeps that namespace alive:
    when the name is removed and made again (someone deleted it, the agent rebuilt it), the
    monitor would hear nothing of the new one and hold the old one, with the links of its
    bridges, alive for ever. So it notices when the name points at another namespace (or none)
    and re-opens there, waking the agent.
    """

    def __init__(self, namespace: str, wake: Callable[[], None]) -> None:
        self.namespace = namespace
        self.wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"linkmon-{namespace}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _open(self) -> socket.socket:
        sock = netns.socket_in(self.namespace, socket.AF_NETLINK, socket.SOCK_RAW)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((0, RTMGRP_LINK))
        return sock

    def _identity(self) -> tuple[int, int] | None:
        """(device, inode) of the namespace the name points at now, or None when it is gone."""
        try:
            st = os.stat(Path(netns.NETNS_RUN_DIR) / self.namespace)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _run(self) -> None:
        warned = False
        while not self._stop.is_set():
            watching = self._identity()
            try:
                sock = self._open()
            except (OSError, KernelError):
                if not warned:
                    LOG.warning("link monitor for %s unavailable; retrying, relying on events and resyncs meanwhile",
                                self.namespace, exc_info=True)
                    warned = True
                self._stop.wait(1.0)
                continue
            warned = False
            with sock:
                self._listen(sock, watching)
            self.wake()  # the namespace changed under us: a pass (full, once it fails) rebuilds it

    def _listen(self, sock: socket.socket, watching: tuple[int, int] | None) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.2)
            if not ready:
                if self._identity() != watching:
                    return
                continue
            try:
                sock.recv(65536)
            except OSError:  # ENOBUFS after a burst: events were lost, so a pass is due anyway
                pass
            self.wake()


class HostAgent:
    """The reconcile loop of one host; ``start``/``stop`` leave the dataplane in place."""

    def __init__(self, cfg: HostConfig, rpc: Rpc, bus: Bus | None = None, driver: L2Driver | None = None) -> None:
        self.cfg = cfg
        self.driver = driver if driver is not None else make_driver(cfg)
        self.rpc = rpc
        self.bus = bus
        self.metadata_socket = metadata_socket_path(cfg.state_dir)  # haproxy reaches it after dropping root
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._monitor: LinkMonitor | None = None
        self._metadata: MetadataServer | None = None
        self._routers: dict[str, RouterNamespace] = {}
        self._reported: dict[str, str] = {}
        self._retries = Retries()
        self._pass_retries = Retries(cap=PASS_RETRY_MAX)
        self.firewall = self.driver.firewall(self._retries)
        self._reported_failures: dict[str, str] | None = None
        self._wired: set[str] = set()  # ports the L2 driver wired in its last pass
        self._owned = self._load_owned()
        self._pending = Pending()  # what change events named since the last fetch
        self._state: Dict | None = None  # the last desired state fetched (merged with partial fetches)
        self._verify = True
        self._last_pass = 0.0
        self._last_full = 0.0
        self._full_due = False  # a part or the whole pass failed: the next pass (on its back-off) is full
        self._dhcp_servers: dict[str, DhcpNetwork] = {}
        self._proxied: set[str] = set()
        self.passes = 0  # finished passes
        self.started = 0  # started passes (one at a time, so pass n is done when passes >= n)
        self.last_result: PassResult | None = None
        self.converged = threading.Condition()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        Path(self.cfg.state_dir).mkdir(parents=True, exist_ok=True)
        node.ensure_node(self.cfg.node_ns)
        self.driver.start()
        try:
            self._report(start_flag=True)
        except Exception:  # the server or the bus is not there yet: the loop keeps trying
            LOG.exception("agent %s: first report failed; retrying every %.0f s", self.cfg.host,
                          self.cfg.report_interval)
        if "metadata" in self.cfg.roles:
            self._metadata = MetadataServer(self.metadata_socket, self.rpc.metadata_lookup)
            self._metadata.start()
        if self.bus is not None:
            self._unsubscribe = self.bus.subscribe(CHANGES, self._on_event, host=self.cfg.host)
        self._monitor = LinkMonitor(self.cfg.node_ns, self.relook)
        self._monitor.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"agent-{self.cfg.host}", daemon=True)
        self._thread.start()
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name=f"heartbeat-{self.cfg.host}",
                                           daemon=True)
        self._heartbeat.start()
        self.wake()

    def stop(self) -> None:
        """Stop the loop, the monitor and the metadata server; the dataplane stays as it is."""
        self._stop.set()
        self._wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=10)
        if self._monitor is not None:
            self._monitor.stop()
        if self._metadata is not None:
            self._metadata.stop()

    def wake(self) -> None:
        """Run a pass soon that fetches everything (the operator, tests, a namespace rebuilt)."""
        self._pending.everything()
        self._wake.set()

    def relook(self) -> None:
        """Run a pass soon on the state fetched last: a link came or went, the server's view did not change."""
        self._wake.set()

    def _on_event(self, event: Event) -> None:
        self._pending.add(event)
        self._wake.set()

    def settle(self, timeout: float = 10.0) -> PassResult | None:
        """Wake the loop and wait for a pass that started after this call (tests, benchmarks)."""
        with self.converged:
            target = self.started + 1
        self.wake()
        with self.converged:
            if not self.converged.wait_for(lambda: self.passes >= target, timeout=timeout):
                return None
        return self.last_result

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = self.cfg.resync_interval - (time.monotonic() - self._last_full)
            retry_at = min((t for t in (self._retries.next_due(), self._pass_retries.next_due()) if t is not None),
                           default=None)
            if retry_at is not None:  # a failed object's back-off ends: try it again then
                wait = min(wait, retry_at - time.monotonic())
            woke = self._wake.wait(timeout=max(0.1, wait))
            if woke:
                self._wake.clear()  # cleared only when seen: a wake-up after a timeout is never lost
            if self._stop.is_set():
                break
            if woke:
                self._quiet()
                if self._stop.is_set():
                    break
            resync = time.monotonic() - self._last_full >= self.cfg.resync_interval
            retry = retry_at is not None and time.monotonic() >= retry_at
            if woke or resync or retry:
                # after a failed part or pass the next one verifies everything again
                self._safe(functools.partial(self.run_pass, full=resync or self._full_due))

    def _quiet(self) -> None:
        """Let a burst of wake-ups settle before a pass: a VM's port create, binding and VIF plug
        come within tens of milliseconds, and one pass over all three beats three in a row."""
        deadline = time.monotonic() + DEBOUNCE_MAX
        while time.monotonic() < deadline and self._wake.wait(DEBOUNCE_QUIET):
            self._wake.clear()

    def _heartbeat_loop(self) -> None:
        """Heartbeats from a thread of their own: a long pass never makes the agent look dead.

        While heartbeats fail (the broker or the database away), the change events of that
        time are lost; so the first heartbeat that gets through again starts a full pass, as
        Neutron's agents resync when they are revived, instead of waiting for the periodic one.
        """
        failing = False
        while not self._stop.wait(self.cfg.report_interval):
            try:
                self._report()
            except Exception as exc:
                LOG.warning("agent %s: heartbeat failed (%s); retrying", self.cfg.host, exc)
                failing = True
                continue
            if failing:
                LOG.warning("agent %s: the server answers again; resyncing what changed meanwhile", self.cfg.host)
                failing = False
                self._full_due = True
                self.wake()

    def _safe(self, fn: Callable[[], object]) -> None:
        """Run a pass; when the whole pass fails (the server unreachable), retry it with back-off
        (1 s doubling to PASS_RETRY_MAX) and a rate-limited log, not twice a second forever."""
        try:
            fn()
            self._pass_retries.succeeded(f"agent {self.cfg.host} pass")
        except Exception as exc:
            self._pass_retries.failed(f"agent {self.cfg.host} pass", str(exc), exc_info=True)

    def _report(self, start_flag: bool = False) -> None:
        """Heartbeat each agent type; ``failures`` lists the objects it cannot realise and why."""
        conf: dict[str, Any] = {**self.driver.configurations(), "devices": len(self._reported),
                                "failures": {**self._retries.failures("firewall"), **self._retries.failures("port:"),
                                             **self._retries.failures("rule:"), **self._part_failures("l2", "status")}}
        per_type = {self.driver.agent_type: conf,
                    DHCP_AGENT: {"dhcp_driver": "dnsmasq", "networks": len(self._dhcp_servers),
                                 "failures": {**self._retries.failures("dhcp:"), **self._part_failures("dhcp")}},
                    L3_AGENT: {"agent_mode": "legacy", "routers": len(self._routers),
                               "failures": {**self._retries.failures("router:"), **self._part_failures("l3")}},
                    METADATA_AGENT: {"metadata_proxy_socket": self.metadata_socket}}
        # Only the types this host runs: the server schedules DHCP and routers to live agents of a type.
        runs = {DHCP_AGENT: "dhcp", L3_AGENT: "l3", METADATA_AGENT: "metadata"}
        for agent_type, configuration in per_type.items():
            if runs.get(agent_type, "l2") not in self.cfg.roles:
                continue
            self.rpc.report_state(self.cfg.host, agent_type, configuration, start_flag=start_flag)

    def _part_failures(self, *parts: str) -> dict[str, str]:
        """Parts that failed as a whole (see ``_part``), by name: not only single objects are reported."""
        failed = self._retries.failures()
        return {part: failed[part] for part in parts if part in failed}

    # ------------------------------------------------------------ one pass

    def run_pass(self, full: bool = True) -> PassResult:
        """Fetch, reconcile every part, report port status.

        A ``full`` pass (the first one, and every ``resync_interval``) verifies everything in
        the kernel; an event-driven pass trusts what this agent applied itself and unchanged
        since (DHCP plugs, routers), so it costs a few milliseconds per part.
        """
        self._last_pass = time.monotonic()
        self._verify = full
        if full:
            node.ensure_node(self.cfg.node_ns)  # someone may have removed it: rebuild, do not fail forever
            self.driver.start()
        with self.converged:
            self.started += 1
        result = PassResult()
        try:
            started = time.monotonic()
            state = self._fetch(full, result)
            result.timings["sync"] = time.monotonic() - started
            # A part this host does not run serves nothing (what it served before its roles changed goes).
            state = {**state, **{key: [] for key, role in (("dhcp", "dhcp"), ("routers", "l3"))
                                 if role not in self.cfg.roles}}
            # The firewall first: a tap the L2 step is about to wire is already filtered then.
            self._part(result, "firewall", lambda: self._firewall(state, result))
            self._part(result, "l2", lambda: self._l2(state, result))
            self._part(result, "dhcp", lambda: self._dhcp(state, result))
            self._part(result, "l3", lambda: self._l3(state, result))
            self._part(result, "status", lambda: self._status(state, result))
            self._full_due = bool(result.failed_parts)
            self._report_failures()
        except Exception as exc:
            result.errors.append(f"sync: {exc}")
            self._full_due = True
            self._pending.everything()
            raise
        finally:
            if full:  # failures are retried on their own back-off, never by resyncing in a tight loop
                self._last_full = self._last_pass
            result.seconds = time.monotonic() - self._last_pass
            self.last_result = result
            with self.converged:
                self.passes += 1
                self.converged.notify_all()
        return result

    def _fetch(self, full: bool, result: PassResult) -> Dict:
        """The desired state: everything on a full pass, at start and without a bus (no events
        to say what changed); otherwise only what the change events since the last fetch named,
        merged into the last state, or nothing at all when no event came (a link event or a
        retry reuses the last state)."""
        scope = self._pending.take()
        if full or self.bus is None or self._state is None or scope is None:
            self._state = self.rpc.sync(self.cfg.host)
            result.fetched = "full"
        elif scope is not False:
            self._state = merge(self._state, self.rpc.sync(self.cfg.host, scope), scope)
            result.fetched = "partial"
        else:
            result.fetched = "none"
        return self._state

    def _firewall(self, state: Dict, result: PassResult) -> None:
        result.firewall_applied = self.firewall.apply(state, self._verify)

    def _l2(self, state: Dict, result: PassResult) -> None:
        try:
            wired = self.driver.reconcile(state)
        except L2Incomplete as exc:  # the rest is wired: its ports are ACTIVE, the failed links' not
            if exc.wired is not None:
                self._wired = exc.wired.ports
            raise
        result.l2_actions = wired.actions
        self._wired = wired.ports

    def _part(self, result: PassResult, name: str, fn: Callable[[], None]) -> None:
        """Run one part; a failure is logged (rate-limited) and retried without blocking the others."""
        started = time.monotonic()
        try:
            fn()
            self._retries.succeeded(name)
        except Exception as exc:
            self._retries.failed(name, str(exc), exc_info=True)
            result.errors.append(f"{name}: {exc}")
            result.failed_parts.append(name)
        finally:
            result.timings[name] = time.monotonic() - started

    def _report_failures(self) -> None:
        """Report at once when the set of failed objects changed (not only at the next heartbeat)."""
        now = self._retries.failures()
        if now != self._reported_failures:
            try:
                self._report()
                self._reported_failures = now
            except Exception as exc:  # the heartbeat carries it later
                LOG.warning("agent %s: reporting failures failed (%s)", self.cfg.host, exc)

    def _attempt(self, result: PassResult, key: str, fingerprint: object, fn: Callable[[], None]) -> None:
        """Realise one object unless it is backing off; its failure is its own (see agent.retry)."""
        if not self._retries.due(key, fingerprint):
            result.deferred.append(key)
            return
        try:
            fn()
        except Exception as exc:
            self._retries.failed(key, str(exc), fingerprint, exc_info=True)
            result.errors.append(f"{key}: {exc}")
        else:
            self._retries.succeeded(key)

    def _stale_namespaces(self, prefix: str, wanted: set[str]) -> list[str]:
        """This agent's namespaces of one kind that are no longer wanted.

        Only namespaces this agent made (recorded in its state dir, so a restart remembers
        them): another agent's, a real Neutron's or a user's namespace of the same shape on
        this machine is never torn down.
        """
        full = self.cfg.ns_prefix + prefix
        existing = set(netns.list_namespaces())
        return sorted(n for n in self._owned if n.startswith(full) and n[len(full):] not in wanted and n in existing)

    def _own(self, namespace: str, owned: bool = True) -> None:
        before = set(self._owned)
        (self._owned.add if owned else self._owned.discard)(namespace)
        if self._owned != before:
            write_atomic(self._owned_record, json.dumps(sorted(self._owned)), mode=0o600)

    @property
    def _owned_record(self) -> Path:
        return Path(self.cfg.state_dir) / "namespaces.json"

    def _load_owned(self) -> set[str]:
        try:
            return set(json.loads(self._owned_record.read_text()))
        except (FileNotFoundError, ValueError):
            return set()

    def _dhcp(self, state: Dict, result: PassResult) -> None:
        served = set()
        for entry in state["dhcp"]:
            net = entry["network"]
            served.add(net["id"])
            server = self._dhcp_server(net)
            self._own(server.namespace)

            def apply(server: DhcpNetwork = server, entry: Dict = entry, net: Dict = net) -> None:
                result.dhcp[net["id"]] = server.apply(net, entry["subnets"], entry["ports"], entry["dhcp_port"],
                                                      verify=self._verify)
            self._attempt(result, f"dhcp:{net['id']}", fingerprint(entry), apply)
        self._retries.keep_only((f"dhcp:{n}" for n in served), "dhcp:")
        for name in self._stale_namespaces("qdhcp-", served):
            network_id = name[len(self.cfg.ns_prefix + "qdhcp-"):]
            self._dhcp_server({"id": network_id}).teardown()
            self._dhcp_servers.pop(network_id, None)
            self._own(name, owned=False)

    def _dhcp_server(self, network: Mapping[str, Any]) -> DhcpNetwork:
        network_id = str(network["id"])
        if network_id not in self._dhcp_servers:
            self._dhcp_servers[network_id] = DhcpNetwork(
                network_id, self.driver.plug(network), namespace=self.cfg.ns_prefix + qdhcp_ns(network_id))
        return self._dhcp_servers[network_id]

    def _l3(self, state: Dict, result: PassResult) -> None:
        wanted = set()
        for entry in state["routers"]:
            router_id = entry["router"]["id"]
            wanted.add(router_id)
            router = self._routers.setdefault(router_id, RouterNamespace(router_id, prefix=self.cfg.ns_prefix))
            self._own(router.namespace)
            ports = list(entry["interfaces"]) + ([entry["gateway_port"]] if entry["gateway_port"] else [])
            plugs = {p["network_id"]: self.driver.plug(state["networks"].get(p["network_id"], {"id": p["network_id"]}))
                     for p in ports}

            def apply(router: RouterNamespace = router, entry: Dict = entry, router_id: str = router_id,
                      plugs: Mapping[str, Plug] = plugs) -> None:
                changed = router.apply(RouterState(
                    router=entry["router"], interfaces=entry["interfaces"], gateway_port=entry["gateway_port"],
                    floating_ips=entry["floating_ips"], plugs=plugs, metadata_port=PROXY_PORT), verify=self._verify)
                result.routers[router_id] = changed
                if changed or self._verify or router_id not in self._proxied:
                    self._metadata_proxy(router.namespace, router_id).apply()
                    self._proxied.add(router_id)
            self._attempt(result, f"router:{router_id}", fingerprint(entry), apply)
        self._retries.keep_only((f"router:{r}" for r in wanted), "router:")
        for name in self._stale_namespaces("qrouter-", wanted):
            router_id = name[len(self.cfg.ns_prefix + "qrouter-"):]
            self._metadata_proxy(name, router_id).teardown()
            self._proxied.discard(router_id)
            self._routers.pop(router_id, RouterNamespace(router_id, prefix=self.cfg.ns_prefix)).teardown()
            self._own(name, owned=False)

    def _metadata_proxy(self, namespace: str, router_id: str) -> MetadataProxy:
        return MetadataProxy(Path(self.cfg.state_dir) / "metadata", namespace, self.metadata_socket,
                             router_id=router_id)

    def _status(self, state: Dict, result: PassResult) -> None:
        """ACTIVE for ports whose tap the L2 step found and wired (a DHCP or router tap plugged
        later in this pass is reported by the next pass, which its link event triggers); ERROR
        for a port whose filter could not be put in place (its tap passes nothing meanwhile)."""
        if "firewall" in result.failed_parts:
            return  # not ACTIVE without the port's filter: report once the firewall applies
        unfiltered = {key[len("port:"):] for key in self._retries.failures("port:")}
        statuses = {}
        for port in state["ports"]:
            network = state["networks"].get(port["network_id"])
            wired = (port["id"] in self._wired and port["admin_state_up"] and network is not None
                     and self.driver.realises(network))
            statuses[port["id"]] = "ERROR" if port["id"] in unfiltered else "ACTIVE" if wired else "DOWN"
        changed = {pid: st for pid, st in statuses.items() if self._reported.get(pid) != st}
        if changed:
            self.rpc.update_port_status(changed, host=self.cfg.host)
        self._reported = statuses
        result.statuses = changed
