"""One Open vSwitch instance per simulated host: its daemons, its OVSDB rows, its OpenFlow tables.

Every host namespace gets its own ovsdb-server and ovs-vswitchd (userspace ``netdev``
datapath), with everything they write under one run directory the caller owns::

    <run_dir>/conf.db  db.sock  ovsdb-server.{pid,ctl,log}  ovs-vswitchd.{pid,ctl,log}  <bridge>.mgmt

A system-wide OVS (if a package started one) is never used or touched: every command here
names this instance's own sockets, and the daemons are stopped by their own pidfiles' PIDs
(checked against their command lines, see ``procs``).

OVSDB goes through ovsdbapp on the instance's unix socket; several changes are one
transaction, which (like ``ovs-vsctl``) returns once ovs-vswitchd has applied it, so ofports
are assigned by then. OpenFlow goes through ``ovs-ofctl --bundle replace-flows``: a bridge's
whole table set changes atomically and only the flows that differ are touched.

IPv6 is disabled in the namespace before any port exists (dataplane-notes: ovs-vswitchd's
main thread can hang otherwise). The other trap, checksum offload on veths into a netdev
bridge, is ``kernel.links.disable_tx_checksum``, for whoever plugs a veth.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neutrino.kernel import KernelError, NamespaceNotFound, NotOurs, TimedOut, openflow, procs
from neutrino.kernel.names import MAX_IFNAME_LEN, is_our_namespace
from neutrino.kernel.netns import namespace_exists, set_sysctls

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
TIMEOUT = 10.0
FLOWS_PER_SECOND = 2000.0  # extra ovs-ofctl time for big flow tables (a loaded 2-CPU machine: ~5 000/s)
OPENFLOW = "OpenFlow13"
PORT_TYPES = ("", "system", "internal", "patch", "vxlan", "gre", "geneve")
TUNNEL_TYPES = ("vxlan", "gre", "geneve")
DATAPATH_TYPES = ("netdev", "system")
FAIL_MODES = ("secure", "standalone")

# OVSDB names and values we write: plain tokens only, so nothing a tenant sets can reach a row
# in an unexpected shape (ids and MACs fit; quotes, spaces, control characters never do).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_VALUE = re.compile(r"^[A-Za-z0-9_.:/-]*$")
_instances = itertools.count()


def _check_name(what: str, name: str) -> str:
    if not _NAME.match(name) or len(name) > MAX_IFNAME_LEN:
        raise ValueError(f"bad {what} name {name!r}")
    return name


def _check_map(what: str, values: Mapping[str, str]) -> dict[str, str]:
    for key, value in values.items():
        if not _NAME.match(key) or not _VALUE.match(value):
            raise ValueError(f"bad {what} entry {key!r}={value!r}")
    return dict(values)


@dataclass(frozen=True)
class PortSpec:
    """A port of one interface with the same name, as we want it in OVSDB.

    ``type`` "" is a netdev the kernel already has (a veth end); tunnel ports carry
    remote_ip/local_ip/key options, patch ports their peer.
    """

    name: str
    type: str = ""
    tag: int | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    external_ids: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("port", self.name)
        if self.type not in PORT_TYPES:
            raise ValueError(f"unknown port type {self.type!r}")
        if self.tag is not None and not 0 <= self.tag <= 4095:
            raise ValueError(f"VLAN tag {self.tag} out of range")
        _check_map("option", self.options)
        _check_map("external_ids", self.external_ids)


def internal_port(name: str, tag: int | None = None) -> PortSpec:
    """An OVS internal port: a netdev OVS creates itself (br-phy's underlay address lives on one)."""
    return PortSpec(name, "internal", tag)


def patch_port(name: str, peer: str) -> PortSpec:
    return PortSpec(name, "patch", options={"peer": _check_name("peer", peer)})


def tunnel_port(name: str, tunnel_type: str, remote_ip: str, local_ip: str) -> PortSpec:
    """A tunnel port whose key comes from the flows (``set_tunnel``/``tun_id``), as Neutron's br-tun."""
    if tunnel_type not in TUNNEL_TYPES:
        raise ValueError(f"unknown tunnel type {tunnel_type!r}")
    return PortSpec(name, tunnel_type, options={"remote_ip": remote_ip, "local_ip": local_ip, "key": "flow"})


def instance_port(name: str, tag: int | None, port_id: str, mac: str) -> PortSpec:
    """A veth end of an instance (or a DHCP/router port) in br-int, with Neutron's external_ids."""
    return PortSpec(name, "", tag, external_ids={"iface-id": port_id, "attached-mac": mac.lower(),
                                                 "iface-status": "active"})


@dataclass(frozen=True)
class PortInfo:
    """A port as OVSDB has it; ``ofport`` None while ovs-vswitchd has not (or could not) set it up."""

    name: str
    bridge: str
    type: str
    ofport: int | None
    tag: int | None
    options: dict[str, str]
    external_ids: dict[str, str]


@dataclass(frozen=True)
class BridgeInfo:
    name: str
    datapath_type: str
    fail_mode: str | None
    other_config: dict[str, str]
    protocols: tuple[str, ...]


def _run(op: str, target: str, argv: Sequence[str], timeout: float = TIMEOUT,
         ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise TimedOut(op, target, detail=str(exc)) from exc
    except OSError as exc:
        raise KernelError(op, target, detail=str(exc)) from exc
    if done.returncode == -signal.SIGALRM:  # an OVS tool's --timeout: "terminating with signal 14"
        raise TimedOut(op, target, detail=done.stderr.strip() or f"{argv[0]} timed out")
    if done.returncode not in ok:
        raise KernelError(op, target, detail=done.stderr.strip() or f"{argv[0]} exited {done.returncode}")
    return done


def _guard_ns(op: str, ns: str) -> None:
    if not is_our_namespace(ns):
        raise NotOurs(op, ns, detail="not a neutrino namespace")
    if not namespace_exists(ns):
        raise NamespaceNotFound(op, ns, detail="no such namespace")


def _exiting(pid: int) -> bool:
    """True while ``pid`` exists and is not yet a zombie (it may be the one we just signalled)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _cookie(flow: str) -> int:
    """The cookie of a flow as ovs-ofctl prints it (0 if it shows none)."""
    found = re.search(r"\bcookie=(0x[0-9a-fA-F]+)\b", flow)
    return int(found.group(1), 16) if found else 0


def _flow_key(flow: str) -> str:
    """What identifies a flow in its table (table, priority, match), for a strict delete: the
    line without its cookie and actions."""
    head = flow.split(",actions=", 1)[0]
    return ",".join(part for part in head.split(",") if not part.startswith("cookie="))


def _optional(value: Any) -> Any:
    """An optional OVSDB column as the IDL gives it ([] or [x]) -> None or x."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


class OvsInstance:
    """The OVS of one host namespace: start/stop its daemons, edit its OVSDB, program its flows."""

    def __init__(self, ns: str, run_dir: str | os.PathLike[str], system_id: str | None = None,
                 timeout: float = TIMEOUT) -> None:
        if not is_our_namespace(ns):
            raise NotOurs("open ovs", ns, detail="not a neutrino namespace")
        self.ns = ns
        self.run_dir = Path(run_dir).absolute()
        self.system_id = system_id or ns
        if not _NAME.match(self.system_id):
            raise ValueError(f"bad system-id {self.system_id!r}")
        self.timeout = timeout
        self._api: Any = None
        self._lock = threading.Lock()
        # bridge -> (the ovs-vswitchd that took them, the flows this object last made its whole table)
        self._replaced: dict[str, tuple[int | None, str]] = {}
        self._writes = 0  # OVSDB transactions committed through this object
        self._snapshot = threading.local()  # per thread: (writes, rows) while in snapshot()

    # -- paths -------------------------------------------------------------------------------

    def path(self, name: str) -> str:
        return str(self.run_dir / name)

    @property
    def db_file(self) -> str:
        return self.path("conf.db")

    @property
    def db_socket(self) -> str:
        return self.path("db.sock")

    @property
    def db_url(self) -> str:
        return f"unix:{self.db_socket}"

    def mgmt(self, bridge: str) -> str:
        """The bridge's OpenFlow management socket (ovs-vswitchd makes it in its OVS_RUNDIR)."""
        return f"unix:{self.path(_check_name('bridge', bridge) + '.mgmt')}"

    def _pidfile(self, daemon: str) -> str:
        return self.path(f"{daemon}.pid")

    # -- daemons -----------------------------------------------------------------------------

    def _server_argv(self) -> list[str]:
        return ["ovsdb-server", self.db_file, f"--remote=punix:{self.db_socket}",
                f"--pidfile={self._pidfile('ovsdb-server')}", f"--unixctl={self.path('ovsdb-server.ctl')}",
                f"--log-file={self.path('ovsdb-server.log')}", "--detach", "--no-chdir"]

    def _vswitchd_argv(self) -> list[str]:
        # env: ovs-vswitchd puts each bridge's <bridge>.mgmt socket in OVS_RUNDIR
        rundir = str(self.run_dir)
        return ["env", f"OVS_RUNDIR={rundir}", f"OVS_LOGDIR={rundir}", f"OVS_DBDIR={rundir}",
                "ovs-vswitchd", self.db_url, f"--pidfile={self._pidfile('ovs-vswitchd')}",
                f"--unixctl={self.path('ovs-vswitchd.ctl')}", f"--log-file={self.path('ovs-vswitchd.log')}",
                "--detach", "--no-chdir"]

    def pid(self, daemon: str) -> int | None:
        """The PID of our ``ovsdb-server`` or ``ovs-vswitchd`` if it runs (by pidfile and command line)."""
        pidfile = self._pidfile(daemon)
        return procs.owned_pid(pidfile, pidfile)

    def is_running(self) -> bool:
        return self.pid("ovsdb-server") is not None and self.pid("ovs-vswitchd") is not None

    def start(self) -> bool:
        """Start this host's ovsdb-server and ovs-vswitchd; True if either was started.

        Idempotent: a daemon already running behind its pidfile is reused, an existing
        database kept. IPv6 is disabled in the namespace first (see the module docstring).
        """
        _guard_ns("start ovs", self.ns)
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        set_sysctls(self.ns, {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1})
        started = False
        if not os.path.exists(self.db_file):
            _run("create ovsdb", self.db_file, ["ovsdb-tool", "create", self.db_file, SCHEMA])
        if self.pid("ovsdb-server") is None:
            procs.start(self.ns, self._server_argv(), self._pidfile("ovsdb-server"), self._pidfile("ovsdb-server"),
                        timeout=self.timeout)
            started = True
        # The root row ovs-vswitchd and ovsdbapp expect; `init` leaves an existing one alone.
        _run("init ovsdb", self.db_url, ["ovs-vsctl", f"--db={self.db_url}", f"--timeout={int(self.timeout)}",
                                         "--no-wait", "--", "init", "--", "set", "Open_vSwitch", ".",
                                         f"external_ids:system-id={self.system_id}"])
        if self.pid("ovs-vswitchd") is None:
            self._start_vswitchd()
            started = True
        return started

    def _start_vswitchd(self) -> None:
        procs.start(self.ns, self._vswitchd_argv(), self._pidfile("ovs-vswitchd"), self._pidfile("ovs-vswitchd"),
                    timeout=self.timeout)
        self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until ovs-vswitchd has applied the database: every bridge has its mgmt socket."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            bridges = self.list_bridges()
            if all(os.path.exists(self.mgmt(b)[len("unix:"):]) for b in bridges):
                return
            if time.monotonic() > deadline:
                raise KernelError("wait for ovs-vswitchd", self.ns, detail=f"bridges {bridges} not up")
            time.sleep(0.02)

    def restart_vswitchd(self) -> None:
        """Stop and start ovs-vswitchd alone; its bridges come back from OVSDB with NO flows.

        What a crash or package upgrade does to a host: the agent must notice and re-apply
        every bridge's flows (dataplane-notes gotcha 5). ovsdb-server and its rows stay.
        """
        _guard_ns("restart ovs-vswitchd", self.ns)
        self._stop_daemon("ovs-vswitchd")
        self._start_vswitchd()

    def stop(self) -> bool:
        """Stop both daemons (SIGTERM, then SIGKILL) by their own pidfiles; True if any ran.

        Files stay in the run directory: a later ``start`` finds the same bridges and ports.
        """
        self.close()
        stopped = False
        for daemon in ("ovs-vswitchd", "ovsdb-server"):
            stopped = self._stop_daemon(daemon) or stopped
        return stopped

    def _stop_daemon(self, daemon: str) -> bool:
        """procs.stop, then wait until the process has really exited: procs sees it gone once
        its command line is (an exiting process loses it first), but until the exit ends it
        still holds its pidfile's lock, which a new instance of the daemon would trip over."""
        pidfile = self._pidfile(daemon)
        pid = procs.owned_pid(pidfile, pidfile)
        stopped = procs.stop(pidfile, pidfile, timeout=self.timeout / 2)
        deadline = time.monotonic() + self.timeout
        while pid is not None and _exiting(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        return stopped

    # -- OVSDB (ovsdbapp) --------------------------------------------------------------------

    @property
    def api(self) -> Any:
        """The ovsdbapp Open_vSwitch API bound to this instance's socket (connected on first use)."""
        with self._lock:
            if self._api is None:
                from ovsdbapp.backend.ovs_idl import connection
                from ovsdbapp.schema.open_vswitch import impl_idl

                # ovsdbapp keeps the connection in a CLASS attribute, first one wins: two
                # instances in one process would share the first socket. One subclass each.
                cls = type(f"OvsdbIdl{next(_instances)}", (impl_idl.OvsdbIdl,), {"_ovsdb_connection": None})
                try:
                    idl = connection.OvsdbIdl.from_server(self.db_url, "Open_vSwitch")
                    self._api = cls(connection.Connection(idl=idl, timeout=int(self.timeout)))
                except Exception as exc:  # ovsdbapp raises plain Exceptions on connect failures
                    raise KernelError("connect ovsdb", self.db_url, detail=str(exc)) from exc
            return self._api

    def close(self) -> None:
        """Stop the OVSDB client thread (the daemons keep running)."""
        with self._lock:
            api, self._api = self._api, None
        if api is not None:
            api.ovsdb_connection.stop(timeout=self.timeout)

    def _read(self, command: Any) -> Any:
        try:
            return command.execute(check_error=True)
        except Exception as exc:
            raise KernelError("read ovsdb", self.db_url, detail=str(exc)) from exc

    def _commit(self, op: str, commands: Iterable[Any]) -> bool:
        todo = list(commands)
        if not todo:
            return False
        self._writes += 1  # before, so that a failed transaction also forgets what was read
        try:
            with self.api.transaction(check_error=True, timeout=int(self.timeout)) as txn:
                for command in todo:
                    txn.add(command)
        except KernelError:
            raise
        except Exception as exc:
            raise KernelError(op, self.db_url, detail=str(exc) or type(exc).__name__) from exc
        return True

    def list_bridges(self) -> list[str]:
        return sorted(self._read(self.api.list_br()))

    def bridge(self, name: str) -> BridgeInfo | None:
        rows = self._read(self.api.db_list("Bridge", [name], if_exists=True,
                                           columns=["name", "datapath_type", "fail_mode", "other_config",
                                                    "protocols"]))
        if not rows:
            return None
        row = rows[0]
        protocols = row["protocols"]
        return BridgeInfo(row["name"], row["datapath_type"], _optional(row["fail_mode"]) or None,
                          dict(row["other_config"]),
                          tuple(protocols if isinstance(protocols, list) else [protocols]))

    def ensure_bridge(self, name: str, datapath_type: str = "netdev", fail_mode: str | None = "secure",
                      other_config: Mapping[str, str] | None = None,
                      protocols: Sequence[str] = ("OpenFlow10", "OpenFlow13", "OpenFlow14")) -> bool:
        """The bridge exists with these settings (other_config: these keys at least); True if changed.

        ``fail_mode`` secure: with no flows the bridge drops everything (never a learning
        switch that leaks between networks while the agent is not there yet).
        """
        _check_name("bridge", name)
        if datapath_type not in DATAPATH_TYPES or (fail_mode is not None and fail_mode not in FAIL_MODES):
            raise ValueError(f"bad bridge settings {datapath_type!r} {fail_mode!r}")
        extra = _check_map("other_config", other_config or {})
        current = self.bridge(name)
        api = self.api
        commands: list[Any] = []
        if current is None:
            commands.append(api.add_br(name, may_exist=True, datapath_type=datapath_type))
        settings: list[tuple[str, Any]] = []
        if current is None or current.datapath_type != datapath_type:
            settings.append(("datapath_type", datapath_type))
        if current is None or current.fail_mode != fail_mode:
            settings.append(("fail_mode", fail_mode if fail_mode is not None else []))
        if current is None or tuple(sorted(current.protocols)) != tuple(sorted(protocols)):
            settings.append(("protocols", list(protocols)))
        if extra and (current is None or any(current.other_config.get(k) != v for k, v in extra.items())):
            settings.append(("other_config", extra))
        if settings:
            commands.append(api.db_set("Bridge", name, *settings))
        changed = self._commit("ensure bridge", commands)
        if current is None and fail_mode == "secure":
            # a new secure bridge has no flows at all: its first flows need no diff of what it has
            self._replaced[name] = (self.pid("ovs-vswitchd"), "")
        return changed

    def delete_bridge(self, name: str) -> bool:
        """Remove the bridge with all its ports; False if it was not there."""
        if self.bridge(_check_name("bridge", name)) is None:
            return False
        return self._commit("delete bridge", [self.api.del_br(name, if_exists=True)])

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Within the block, this thread reads the bridges, ports and interfaces once and reuses
        them until a write through this object. An agent pass reads them a dozen times (each a
        round trip through ovsdbapp's thread, ~150 ms at 1000 ports); what ovs-vswitchd
        changes on its own meanwhile (an ofport) the next pass reads."""
        local = self._snapshot
        local.active, local.rows = True, None
        try:
            yield
        finally:
            local.active, local.rows = False, None

    def _port_rows(self) -> tuple[list[Any], dict[Any, Any], dict[str, Any]]:
        local = self._snapshot
        active = getattr(local, "active", False)
        if active and local.rows is not None and local.rows[0] == self._writes:
            return local.rows[1]  # type: ignore[no-any-return]
        writes = self._writes
        bridges = self._read(self.api.db_list("Bridge", columns=["name", "ports"]))
        port_rows = {r["_uuid"]: r for r in self._read(self.api.db_list("Port", columns=["_uuid", "name", "tag"]))}
        ifaces = {r["name"]: r for r in self._read(self.api.db_list(
            "Interface", columns=["name", "type", "ofport", "options", "external_ids"]))}
        if active:
            local.rows = (writes, (bridges, port_rows, ifaces))
        return bridges, port_rows, ifaces

    def ports(self, bridge: str | None = None) -> list[PortInfo]:
        """The ports of ``bridge`` (of every bridge if None), sorted by name."""
        bridges, port_rows, ifaces = self._port_rows()
        found = []
        for br in bridges:
            if bridge is not None and br["name"] != bridge:
                continue
            uuids = br["ports"] if isinstance(br["ports"], list) else [br["ports"]]
            for uuid in uuids:
                port = port_rows.get(uuid)
                if port is None:
                    continue
                iface = ifaces.get(port["name"], {})
                ofport = _optional(iface.get("ofport"))
                found.append(PortInfo(port["name"], br["name"], iface.get("type", ""),
                                      ofport if isinstance(ofport, int) and ofport > 0 else None,
                                      _optional(port["tag"]), dict(iface.get("options", {})),
                                      dict(iface.get("external_ids", {}))))
        return sorted(found, key=lambda p: (p.bridge, p.name))

    def ofports(self, bridge: str) -> dict[str, int]:
        """Port name -> ofport for the ports of ``bridge`` that have one."""
        return {p.name: p.ofport for p in self.ports(bridge) if p.ofport is not None}

    def ensure_ports(self, bridge: str, specs: Iterable[PortSpec]) -> bool:
        """Each port exists on ``bridge`` exactly as specified, all changes in ONE transaction.

        A port found on another bridge is moved; type, options, external_ids and tag are set
        to exactly the spec (an absent tag clears one). Ports not named are left alone.
        Returns True if anything changed; when it returns, ovs-vswitchd has applied it. A
        port whose netdev vswitchd cannot open (no such veth) stays in OVSDB with ofport None
        in ``ports()``: check that rather than the return value.
        """
        _check_name("bridge", bridge)
        wanted = list(specs)
        if not wanted:
            return False
        current = {p.name: p for p in self.ports()}
        api = self.api
        commands: list[Any] = []
        for spec in wanted:
            have = current.get(spec.name)
            if have is not None and have.bridge != bridge:
                commands.append(api.del_port(spec.name, bridge=have.bridge, if_exists=True))
                have = None
            if have is None:
                commands.append(api.add_port(bridge, spec.name, may_exist=False, type=spec.type,
                                             options=dict(spec.options), external_ids=dict(spec.external_ids)))
                if spec.tag is not None:
                    commands.append(api.db_set("Port", spec.name, ("tag", spec.tag)))
                continue
            if have.type != spec.type:
                commands.append(api.db_set("Interface", spec.name, ("type", spec.type)))
            for column, want in (("options", spec.options), ("external_ids", spec.external_ids)):
                if getattr(have, column) != dict(want):
                    # db_set merges maps: clear first so keys we no longer want go
                    commands.append(api.db_clear("Interface", spec.name, column))
                    if want:
                        commands.append(api.db_set("Interface", spec.name, (column, dict(want))))
            if have.tag != spec.tag:
                commands.append(api.db_set("Port", spec.name, ("tag", spec.tag)) if spec.tag is not None
                                else api.db_clear("Port", spec.name, "tag"))
        return self._commit("ensure ports", commands)

    def delete_ports(self, bridge: str, names: Iterable[str]) -> bool:
        """Remove these ports from ``bridge`` in one transaction; True if any was there."""
        _check_name("bridge", bridge)
        wanted = set(names)
        if not wanted:
            return False  # no read: after a write, one costs ~0.5 s at 1,000 ports
        gone = sorted(wanted & {p.name for p in self.ports(bridge)})
        return self._commit("delete ports", [self.api.del_port(n, bridge=bridge, if_exists=True) for n in gone])

    # -- OpenFlow (ovs-ofctl) ----------------------------------------------------------------

    def _ofctl(self, op: str, bridge: str, *args: str, ok: tuple[int, ...] = (0,), flows: int = 0) -> str:
        """``ovs-ofctl`` on one bridge; with ``flows`` lines to parse, diff or apply, it gets
        more time than a plain call (a host of a thousand guarded ports has ~50 000 flows)."""
        timeout = self.timeout + flows / FLOWS_PER_SECOND
        argv = ["ovs-ofctl", "-O", OPENFLOW, f"--timeout={int(timeout)}", *args]
        return _run(op, f"{self.ns}/{bridge}", argv, timeout=timeout + 5, ok=ok).stdout

    def _flows_file(self, bridge: str, flows: str) -> str:
        """Write ``flows`` to ``<run_dir>/<bridge>.flows`` (ofctl's diff/replace read files, not
        stdin); it stays as the last flows applied, for a person looking at the host."""
        path = self.path(_check_name("bridge", bridge) + ".flows")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(flows if flows.endswith("\n") or not flows else flows + "\n")
        os.replace(tmp, path)
        return path

    def diff_flows(self, bridge: str, flows: str) -> list[str]:
        """``ovs-ofctl diff-flows``: "+flow" lines would be added, "-flow" lines removed, to reach ``flows``."""
        # exit 2: "they differ", which is an answer, not a failure
        out = self._ofctl("diff flows", bridge, "diff-flows", self.mgmt(bridge), self._flows_file(bridge, flows),
                          ok=(0, 2), flows=flows.count("\n"))
        return [line for line in out.splitlines() if line.startswith(("+", "-"))]

    def replace_flows(self, bridge: str, flows: str, keep_cookies: Iterable[int] = ()) -> bool:
        """Make ``flows`` (ovs-ofctl text, one flow a line) the bridge's whole flow table.

        One OpenFlow bundle: the bridge switches from the old flows to the new ones at once,
        and only flows that differ are added, modified or deleted (counters of the others
        keep running). Returns False, touching nothing, when the bridge already has exactly
        these flows, ignoring extra flows whose cookie is in ``keep_cookies`` (flows the
        switch learned itself); a real change replaces those too.

        What the switch has is asked (``diff-flows``, then ``replace-flows``: each reads the
        whole table) only on the first call for a bridge, after ``forget_flows`` (the agent's
        full passes) and when ovs-vswitchd is not the process that took the last flows (it
        restarted and forgot them). Otherwise the flows this object put there last are what
        the table holds, and only the lines that changed are sent (``update``): a port's pass
        costs what the port changed, not what the host has. Lines of ``keep_cookies`` it put
        there stay until a call without them.
        """
        keep = set(keep_cookies)
        vswitchd = self.pid("ovs-vswitchd")
        last = self._replaced.pop(bridge, None)
        if last is not None and last[0] == vswitchd and vswitchd is not None:
            wanted = set(flows.splitlines())
            kept = "".join(f"{line}\n" for line in last[1].splitlines()
                           if line not in wanted and keep and _cookie(line) in keep)
            changed = self._update_flows(bridge, last[1], flows + kept)
            self._replaced[bridge] = (vswitchd, flows + kept)
            return changed
        diff = self.diff_flows(bridge, flows)
        if all(line.startswith("-") and _cookie(line) in keep for line in diff):
            self._replaced[bridge] = (vswitchd, flows)
            return False
        self._ofctl("replace flows", bridge, "--bundle", "replace-flows", self.mgmt(bridge),
                    self._flows_file(bridge, flows), flows=flows.count("\n"))
        self._replaced[bridge] = (vswitchd, flows)
        return True

    def _update_flows(self, bridge: str, old: str, new: str) -> bool:
        """Send only the difference between two whole tables this object made, as one bundle:
        ``add`` for new or changed lines (an add replaces a flow of the same match and
        priority), ``delete_strict`` for the matches that went."""
        before, after = set(old.splitlines()), set(new.splitlines())
        added = sorted(after - before)
        kept = {_flow_key(line) for line in after}
        gone = sorted({_flow_key(line) for line in before - after} - kept)
        if not added and not gone:
            return False
        text = "".join(f"add {line}\n" for line in added) + "".join(f"delete_strict {key}\n" for key in gone)
        if not old:
            text = "delete\n" + text  # a new bridge: nothing but these, whatever it had
        self._ofctl("update flows", bridge, "--bundle", "add-flows", self.mgmt(bridge),
                    self._flows_file(bridge, text), flows=len(added) + len(gone))
        return True

    def forget_flows(self) -> None:
        """Ask the switch what it has at the next ``replace_flows`` of each bridge (a full pass:
        someone may have changed the tables behind this object's back). A bridge this object
        made and has not given flows yet is spared: its first flows go as a delete-all and the
        adds in one bundle, right whatever the table holds (an agent's first pass is a full
        one, just after it made its bridges: 1,000 ports' flows need no diff of an empty table)."""
        self._replaced = {bridge: last for bridge, last in self._replaced.items() if last[1] == ""}

    def check_flows(self, flows: str) -> None:
        """Raise KernelError unless ovs-ofctl parses every line of ``flows`` (nothing is applied)."""
        path = self.path("check.flows")
        with open(path, "w") as f:
            f.write(flows)
        _run("parse flows", self.ns, ["ovs-ofctl", "-O", OPENFLOW, "parse-flows", path])

    def no_flood(self, bridge: str) -> set[int]:
        """The ofports of ``bridge`` whose OpenFlow config has NO_FLOOD (NORMAL does not flood to them).

        Read with OpenFlow 1.0 (``kernel.openflow``, one session): 1.3 has no such port flag and
        shows none, though it still holds.
        """
        path = self.mgmt(bridge)[len("unix:"):]
        try:
            return {p for p, cfg in openflow.ports(path, self.timeout).items() if cfg.no_flood}
        except OSError as exc:
            raise KernelError("show ports", f"{self.ns}/{bridge}", detail=str(exc)) from exc

    def set_flood(self, bridge: str, ofport: int, flood: bool) -> None:
        """NORMAL floods to this port, or not (``no-flood``). An OpenFlow port setting, not in OVSDB:
        a restarted ovs-vswitchd forgets it, as it forgets flows, and the agent sets it again."""
        self.set_floods(bridge, {ofport: flood})

    def set_floods(self, bridge: str, changes: Mapping[int, bool]) -> None:
        """``set_flood`` for many ports in one OpenFlow session (a PORT_MOD each, then a barrier):
        a full resync or a restarted ovs-vswitchd sets it on every guarded port of the host."""
        for ofport in changes:
            if isinstance(ofport, bool) or not isinstance(ofport, int) or not 1 <= ofport < openflow.MAX_PORT:
                raise ValueError(f"not an ofport: {ofport!r}")
        path = self.mgmt(bridge)[len("unix:"):]
        try:
            openflow.set_no_flood(path, {p: bool(f) for p, f in changes.items()}, self.timeout)
        except OSError as exc:
            raise KernelError("mod port", f"{self.ns}/{bridge}", detail=str(exc)) from exc

    def dump_flows(self, bridge: str, match: str = "") -> list[str]:
        """The bridge's flows (``dump-flows --no-stats --no-names``), optionally filtered by ``match``
        such as ``table=22`` or ``cookie=0x1/-1``."""
        args = ["dump-flows", "--no-stats", "--no-names", self.mgmt(bridge)]
        if match:
            args.append(match)
        out = self._ofctl("dump flows", bridge, *args)
        return [line.strip() for line in out.splitlines() if line.strip() and "reply" not in line]

    def appctl(self, *args: str, daemon: str = "ovs-vswitchd") -> str:
        """``ovs-appctl`` to one of our daemons by its control socket (e.g. ``version``)."""
        argv = ["ovs-appctl", f"--timeout={int(self.timeout)}", "-t", self.path(f"{daemon}.ctl"), *args]
        return _run("ovs-appctl", f"{self.ns}/{daemon}", argv).stdout
