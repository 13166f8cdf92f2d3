"""A lab: several hosts on this machine, each a namespace on one underlay with its own agent process.

What ``neutrino lab up`` builds (the layout of dataplane-notes section 4), for a lab named NAME:

    NAME-fabric    plain Linux bridges without addresses, the lab's cables: ``ul`` the underlay
                   (172.30.0.0/24), ``phys`` the trunk of ``physnet1`` (flat and vlan provider
                   networks), ``ext`` the external network ``public``
    NAME-outside   the lab's internet: 203.0.113.1/24 on ``ext``, the gateway of ``public``;
                   SNAT is seen and floating IPs are pinged from here
    NAME-host-I    host-I: ``ul0`` (172.30.0.1I), ``eth1`` (physnet1), ``eth2`` (public), and the
                   bridges its agent makes; its qdhcp-/qrouter-/vm- namespaces are NAME-host-I-*

host-1 is the controller and network node (L2, DHCP, L3, metadata), the others compute nodes
(L2 only), as a Neutron deployment splits them. The servers (``neutrino server``, K of them on
127.0.0.1 ports) share one PostgreSQL or MariaDB database and answer the agents' calls from one
AMQP queue; each host's agent is its own ``neutrino agent`` process.

The agents run in the machine's namespace and manage their host namespace by name
(``[agent] node_namespace``), as ``neutrino up``'s agent manages its node namespace. RabbitMQ
and the servers listen on the machine's loopback, which a process inside a host namespace
cannot reach (each namespace has a loopback of its own) unless the machine got an address, a
route or a forwarding rule towards the lab; the lab never changes the machine's interfaces,
routes or firewall. The dataplane is where it would be on separate machines all the same:
tunnels leave from each host's underlay address inside its namespace and cross the fabric.

With ``own`` services (``neutrino lab up --own-services``, see ``neutrino.lab_services``) the
lab runs a RabbitMQ node and a PostgreSQL cluster of its own on free loopback ports instead of
the machine's, so that they can be stopped and started (broker and database outages) without
touching what other users of the machine rely on.

An ``isolated`` lab (``neutrino lab up --isolated``, which implies its own services) runs every
role on its host as on separate machines, and nothing in the machine's namespace:

    host-1         the lab's PostgreSQL (5432) and RabbitMQ (5672) on 172.30.0.11 only (eth2 faces
                   the lab's outside), server 1 on 172.30.0.11:9696, host-1's agent
    host-K         server K (``--servers``; at most one a host) on 172.30.0.1K:9696, host-K's agent

Each process is started with ``nsenter --net`` (its network namespace only: ``ip netns exec``
would also give it a mount namespace of its own, where the namespaces an agent adds under
/run/netns never reach the machine's). Every URL points at underlay addresses, so a client
must sit on the underlay too: the lab's own commands and tests open their connections from
inside host-1 (``kernel.netns.connect_in``), people run ``neutrino lab exec host-1 -- openstack
...`` with the clouds.yaml the lab writes. The machine's loopback carries nothing of the lab.

Nothing in the machine's own namespace is touched: its ``ip netns`` gains only the lab's
namespaces, its ``ip link`` nothing. Everything the lab made is in its record (``lab.json`` in
its state directory), so ``down`` removes exactly that, by PID and by name.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from neutrino.files import write_atomic
from neutrino.kernel.names import NODE_PREFIX, TEST_NAMESPACE_PREFIX

if TYPE_CHECKING:
    from neutrino.client import Connector

ROLES = {"controller": ("l2", "dhcp", "l3", "metadata"), "compute": ("l2",)}
UNDERLAY_NET, UNDERLAY_BASE = "172.30.0", 10  # host-I is 172.30.0.(10+I)/24
OUTSIDE_IP, OUTSIDE_CIDR = "203.0.113.1", "203.0.113.0/24"
PHYSNET, PUBLIC = "physnet1", "public"
# host device, fabric bridge, prefix of the fabric end (the host's index follows)
WIRES = (("ul0", "ul", "ul-"), ("eth1", "phys", "ph-"), ("eth2", "ext", "ex-"))
IPV6_OFF: dict[str, str | int] = {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1}
NAME = re.compile(rf"^({NODE_PREFIX}|{TEST_NAMESPACE_PREFIX})[a-z0-9]([a-z0-9-]{{0,22}}[a-z0-9])?$")
DEFAULT_DB_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_TRANSPORT = "amqp://guest:guest@127.0.0.1:5672//"
NEUTRINO = [sys.executable, "-m", "neutrino.cmd.main"]
# An isolated lab's services listen on their hosts' underlay addresses at their usual ports:
# each host is a machine of its own, so nothing else can hold them.
SERVER_PORT, RABBITMQ_PORT, RABBITMQ_DIST_PORT, POSTGRESQL_PORT = 9696, 5672, 25672, 5432


class LabError(SystemExit):
    """The lab cannot be built or found; the message says why and what to do."""


@dataclass
class Host:
    name: str  # host-I, the agent's [agent] host
    index: int
    namespace: str  # NAME-host-I: the host's network stack (the agent's node namespace)
    underlay_ip: str
    roles: list[str]

    @property
    def ns_prefix(self) -> str:
        """Its own qdhcp-/qrouter-/vm- namespaces carry this, so hosts never share a name."""
        return self.namespace + "-"


@dataclass
class OwnServices:
    """Where the lab's own RabbitMQ node and PostgreSQL cluster listen and keep their data.

    The ports are chosen once, at plan time, so a service that is stopped and started again
    comes back where every server and agent expects it.
    """

    rabbitmq_port: int
    rabbitmq_dist_port: int  # Erlang distribution (rabbitmqctl); its default (port + 20000) may not exist
    postgresql_port: int
    postgresql_dir: str = ""  # made at `up` (see lab_services.postgresql_dir), removed at `down`


@dataclass
class Lab:
    """The record of one lab: what it made and runs, written before it makes anything."""

    name: str
    state_dir: Path
    hosts: list[Host]
    driver: str
    server_ports: list[int]
    db_url: str
    db_server: str  # the server the lab created its database on ("": --db given, kept at down)
    transport_url: str
    control_exchange: str
    passwords: dict[str, str] = field(default_factory=dict)
    own: OwnServices | None = None  # the lab's own RabbitMQ and PostgreSQL, else the machine's
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # [section] option = value, for every process
    isolated: bool = False  # every process inside its host's namespace (own services on host-1, server K on host-K)

    @property
    def fabric_ns(self) -> str:
        return f"{self.name}-fabric"

    @property
    def outside_ns(self) -> str:
        return f"{self.name}-outside"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "neutrino.toml"

    @property
    def clouds(self) -> Path:
        return self.state_dir / "clouds.yaml"

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(f"lab {self.name} has no host {name!r} (hosts: {', '.join(h.name for h in self.hosts)})")

    def host_state(self, host: Host) -> Path:
        return self.state_dir / "hosts" / host.name

    @property
    def services_ip(self) -> str:
        """Where the lab's own PostgreSQL and RabbitMQ listen: host-1's underlay address when isolated."""
        return self.hosts[0].underlay_ip if self.isolated else "127.0.0.1"

    def server_host(self, k: int) -> Host | None:
        """The host server number ``k`` (0-based) runs on; None: the machine's namespace."""
        return self.hosts[k] if self.isolated else None

    def server_address(self, k: int = 0) -> str:
        host = self.server_host(k)
        return f"{host.underlay_ip if host else '127.0.0.1'}:{self.server_ports[k]}"

    def server_url(self, k: int = 0) -> str:
        return f"http://{self.server_address(k)}"

    @property
    def client_namespace(self) -> str | None:
        """Where a client of the API must be: host-1 when isolated (the API is on the underlay)."""
        return self.hosts[0].namespace if self.isolated else None

    def save(self) -> None:
        data = {**asdict(self), "state_dir": str(self.state_dir)}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.state_dir / "lab.json", json.dumps(data, indent=2), mode=0o600)

    @classmethod
    def load(cls, state_dir: Path) -> Lab | None:
        try:
            data = json.loads((state_dir / "lab.json").read_text())
        except FileNotFoundError:
            return None
        data["hosts"] = [Host(**h) for h in data["hosts"]]
        data["state_dir"] = Path(data["state_dir"])
        if data.get("own"):
            data["own"] = OwnServices(**data["own"])
        return cls(**data)


def default_state_dir(name: str) -> Path:
    return Path("/var/lib/neutrino/labs") / name


def plan(name: str, state_dir: Path, hosts: int, roles: dict[str, list[str]] | None = None,
         driver: str = "linuxbridge", servers: int = 1, db: str = "", db_server: str = DEFAULT_DB_SERVER,
         transport_url: str = DEFAULT_TRANSPORT, own_services: bool = False,
         settings: dict[str, dict[str, Any]] | None = None, isolated: bool = False) -> Lab:
    """A new lab's record: host-1 the controller, the others compute nodes unless ``roles`` says.

    ``own_services`` gives the lab its own RabbitMQ and PostgreSQL on free ports (then ``db``,
    ``db_server`` and ``transport_url`` cannot be given); ``settings`` are extra options written
    into the configuration every server and agent of the lab reads (short intervals in tests).
    ``isolated`` (implies ``own_services``) puts every process in its host's namespace: the
    services on host-1, server K on host-K, all on the underlay at their usual ports.
    """
    if not NAME.match(name) or "-host-" in name:
        raise LabError(f"lab name {name!r}: lowercase letters, digits and '-', starting with {NODE_PREFIX!r} "
                       f"(or {TEST_NAMESPACE_PREFIX!r} for tests) so that its namespaces are known as neutrino's, "
                       "at most 32 characters, without '-host-'")
    if not 1 <= hosts <= 40 or not 1 <= servers <= 8:
        raise LabError("a lab has 1 to 40 hosts and 1 to 8 servers")
    if isolated and servers > hosts:
        raise LabError(f"an isolated lab runs one server a host: --servers {servers} needs as many --hosts")
    own_services = own_services or isolated
    members = [
        Host(f"host-{i}", i, f"{name}-host-{i}", f"{UNDERLAY_NET}.{UNDERLAY_BASE + i}",
             list((roles or {}).get(f"host-{i}") or ROLES["controller" if i == 1 else "compute"]))
        for i in range(1, hosts + 1)]
    own = None
    if own_services:
        if db or db_server != DEFAULT_DB_SERVER or transport_url != DEFAULT_TRANSPORT:
            raise LabError("a lab with its own services makes its own database and broker: "
                           "give --own-services or --db/--db-server/--transport-url, not both")
        rabbit, dist, pg = (RABBITMQ_PORT, RABBITMQ_DIST_PORT, POSTGRESQL_PORT) if isolated else free_ports(3)
        own = OwnServices(rabbit, dist, pg)
        where = members[0].underlay_ip if isolated else "127.0.0.1"
        db_server = f"postgresql+psycopg://postgres@{where}:{own.postgresql_port}/postgres"
        transport_url = f"amqp://guest:guest@{where}:{own.rabbitmq_port}//"
    if db:
        db_server = ""
    else:
        short = name.removeprefix(NODE_PREFIX).replace("-", "_")
        db = f"{db_server.rsplit('/', 1)[0]}/neutrino_lab_{short}"
    return Lab(name=name, state_dir=state_dir.resolve(), hosts=members, driver=driver,
               server_ports=[SERVER_PORT if isolated else free_port() for _ in range(servers)], db_url=db,
               db_server=db_server, transport_url=transport_url, control_exchange=f"{name}-{secrets.token_hex(3)}",
               passwords={"admin": secrets.token_urlsafe(12), "demo": secrets.token_urlsafe(12)},
               own=own, settings=dict(settings or {}), isolated=isolated)


def parse_roles(items: list[str]) -> dict[str, list[str]]:
    """``--roles host-2=l2,dhcp``: the roles of single hosts (others keep the default)."""
    out = {}
    for item in items:
        host, sep, roles = item.partition("=")
        if not sep or not host.startswith("host-"):
            raise LabError(f"--roles {item!r}: give HOST=ROLE,ROLE (e.g. host-2=l2,dhcp)")
        out[host] = [r for r in roles.split(",") if r]
    return out


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held together while chosen, so never the same twice)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


# ---------------------------------------------------------------- services

def _answers(url: str, default_port: int) -> tuple[bool, str]:
    parts = urlsplit(url)
    where = (parts.hostname or "127.0.0.1", parts.port or default_port)
    try:
        with socket.create_connection(where, timeout=2):
            return True, f"{where[0]}:{where[1]}"
    except OSError:
        return False, f"{where[0]}:{where[1]}"


def check_services(lab: Lab) -> None:
    """Fail at once, saying which service is missing and how to start it."""
    if lab.own is not None:
        from neutrino import lab_services

        reason = lab_services.why_not()
        if reason:
            raise LabError(f"neutrino lab: {reason}")
        return
    db = lab.db_server or lab.db_url
    kind = "MariaDB" if db.startswith("mysql") else "PostgreSQL"
    hint = "start it with `sudo scripts/services.sh` (it starts PostgreSQL, MariaDB and RabbitMQ where installed)"
    for what, url, port in ((kind, db, 3306 if kind == "MariaDB" else 5432), ("RabbitMQ", lab.transport_url, 5672)):
        ok, where = _answers(url, port)
        if not ok:
            raise LabError(f"neutrino lab: {what} does not answer on {where}; {hint}, or point the lab at "
                           f"another with {'--transport-url' if what == 'RabbitMQ' else '--db-server or --db'}")


def _database_name(lab: Lab) -> str:
    return lab.db_url.rsplit("/", 1)[1].split("?")[0]


def create_database(lab: Lab) -> bool:
    """The lab's own database on ``db_server`` unless it exists; True if created."""
    return _database(lab, create=True)


def drop_database(lab: Lab) -> bool:
    """Drop the database the lab created (never one given with --db); True if it existed."""
    return _database(lab, create=False)


def _database(lab: Lab, create: bool) -> bool:
    if not lab.db_server:
        return False
    from sqlalchemy import create_engine, text

    name = _database_name(lab)  # [a-z0-9_] only (plan makes it), so quoting it is enough
    engine = create_engine(_db_server_here(lab), isolation_level="AUTOCOMMIT")
    postgres = engine.dialect.name == "postgresql"
    exists = text("SELECT 1 FROM pg_database WHERE datname = :n" if postgres else
                  "SELECT 1 FROM information_schema.schemata WHERE schema_name = :n")
    quoted = f'"{name}"' if postgres else f"`{name}`"
    try:
        with engine.connect() as conn:
            existed = conn.execute(exists, {"n": name}).first() is not None
            if create and not existed:
                conn.execute(text(f"CREATE DATABASE {quoted}"))
            elif not create and existed:
                conn.execute(text(f"DROP DATABASE {quoted}{' WITH (FORCE)' if postgres else ''}"))
        return existed != create
    finally:
        engine.dispose()


def _db_server_here(lab: Lab) -> str:
    """The database server as this process reaches it: an isolated lab's PostgreSQL listens on
    host-1's underlay only, so through its unix socket (a path: no namespace needed)."""
    if not lab.isolated or lab.own is None or not lab.own.postgresql_dir:
        return lab.db_server
    return f"postgresql+psycopg://postgres@/postgres?host={lab.own.postgresql_dir}&port={lab.own.postgresql_port}"


def write_config(lab: Lab) -> Path:
    """The configuration every process of the lab shares (mode 0600: it holds the passwords).

    On separate machines each would have this file; what differs per host comes from the
    environment here (``host_env``), from each machine's own file there.
    """
    mechanisms = ["openvswitch", "linuxbridge"] if lab.driver == "openvswitch" else ["linuxbridge"]
    sections: dict[str, dict[str, Any]] = {
        "DEFAULT": {"transport_url": lab.transport_url, "control_exchange": lab.control_exchange},
        "database": {"connection": lab.db_url},
        "identity": {"admin_password": lab.passwords["admin"], "demo_password": lab.passwords["demo"]},
        "ml2": {"mechanism_drivers": mechanisms},
        "agent": {"l2_driver": lab.driver},
        "linux_bridge": {"physical_interface_mappings": [f"{PHYSNET}:eth1", f"{PUBLIC}:eth2"]},
        "vxlan": {"underlay_dev": "ul0"},
        "public": {"physical_network": PUBLIC, "cidr": OUTSIDE_CIDR, "gateway_ip": OUTSIDE_IP}}
    for section, options in lab.settings.items():
        sections[section] = {**sections.get(section, {}), **options}
    lines = ["# written by `neutrino lab up`: the settings every server and agent of this lab shares"]
    for section, options in sections.items():  # JSON scalars and lists of strings are TOML too
        lines += [f"[{section}]", *(f"{key} = {json.dumps(value)}" for key, value in options.items())]
    text = "\n".join([*lines, ""])
    write_atomic(lab.config_file, text, mode=0o600)
    return lab.config_file


# ---------------------------------------------------------------- the fabric

def build_fabric(lab: Lab) -> None:
    """The lab's namespaces and cables; idempotent (an ``up`` again repairs what is missing)."""
    from neutrino.kernel import links, netns  # pyroute2: 0.8 s, only for the verbs that touch the kernel

    fabric = lab.fabric_ns
    for ns in (fabric, lab.outside_ns, *(h.namespace for h in lab.hosts)):
        netns.ensure_namespace(ns)
        netns.set_sysctls(ns, IPV6_OFF)  # before any link: no router solicitations, DAD or MLD noise
    for _, bridge, _ in WIRES:
        links.ensure_bridge(fabric, bridge)
        links.set_up(fabric, bridge)
    _cable(lab.outside_ns, "eth0", fabric, "ex-out", "ext")
    links.add_address(lab.outside_ns, "eth0", f"{OUTSIDE_IP}/{OUTSIDE_CIDR.split('/')[1]}")
    for host in lab.hosts:
        for dev, bridge, prefix in WIRES:
            _cable(host.namespace, dev, fabric, f"{prefix}{host.index}", bridge)
        links.add_address(host.namespace, "ul0", f"{host.underlay_ip}/24")
        if lab.isolated:  # its control traffic may meet an OVS host before its own agent says so
            links.disable_tx_checksum(host.namespace, "ul0")


def _cable(ns: str, dev: str, fabric: str, peer: str, bridge: str) -> None:
    from neutrino.kernel import links

    links.ensure_veth(ns, dev, fabric, peer)
    links.set_master(fabric, peer, bridge)
    links.set_up(fabric, peer)
    links.set_up(ns, dev)


def namespaces(lab: Lab) -> list[str]:
    """Every namespace of the lab that exists: its own, and those its agents and instances made."""
    from neutrino.kernel import netns

    hosts = {h.namespace for h in lab.hosts}
    return sorted(n for n in netns.list_namespaces()
                  if n in hosts or n in (lab.fabric_ns, lab.outside_ns) or n.startswith(tuple(f"{h}-" for h in hosts)))


def remove_namespaces(lab: Lab) -> list[str]:
    """The lab's namespaces, each after what runs in it (dnsmasq, haproxy, DHCP clients)."""
    from neutrino.kernel import janitor

    return janitor.remove_namespaces(namespaces(lab))


# ---------------------------------------------------------------- processes

@dataclass
class Process:
    """One process of the lab, found again by its pidfile and checked by its command line."""

    name: str  # server-1, agent-host-2
    argv: list[str]
    env: dict[str, str]
    pidfile: Path
    log: Path
    mark: str = ""  # what its command line holds that no other process's does (default: its --state-dir)
    stop_signal: int = signal.SIGTERM  # PostgreSQL's "fast" shutdown is SIGINT (SIGTERM waits for clients)
    user: str | None = None  # run as this user (PostgreSQL refuses root)
    cwd: str | None = None
    namespace: str = ""  # run inside this network namespace of the lab ("": the machine's)
    manages_kernel: bool = False  # an agent: told which namespace is the machine's (see start)

    @property
    def marker(self) -> str:
        return self.mark or self.argv[self.argv.index("--state-dir") + 1]

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            return None
        return pid if self.marker.encode() in cmdline and running(pid) else None

    def _launch(self) -> tuple[list[str], str | None, dict[str, str], tuple[int, ...]]:
        """argv, user, environment and descriptors to hand on: in a namespace, nsenter enters it
        and switches to the user itself (entering a namespace needs root)."""
        if not self.namespace:
            return self.argv, self.user, self.env, ()
        argv = in_namespace(self.namespace, self.argv, self.user)
        if not self.manages_kernel:
            return argv, None, self.env, ()
        from neutrino.kernel import netns

        fd = netns.machine_namespace_fd()  # its guards still know the machine's namespace (is_root_namespace)
        return argv, None, {**self.env, netns.MACHINE_NETNS_FD: str(fd)}, (fd,)

    def start(self) -> subprocess.Popen[bytes]:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        argv, user, env, fds = self._launch()
        as_user: dict[str, Any] = {"user": user, "group": user, "extra_groups": []} if user else {}
        try:
            with open(self.log, "ab") as out:
                proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, pass_fds=fds,
                                        stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.cwd, **as_user)
        finally:
            for fd in fds:
                os.close(fd)
        write_atomic(self.pidfile, f"{proc.pid}\n")
        # Until the child has exec'd, its command line is ours: wait, so that pid() knows it.
        deadline = time.monotonic() + 10
        while not self._execed(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return proc

    def _execed(self, pid: int) -> bool:
        """True once ``pid`` runs the program itself: nsenter's command line holds the marker too,
        and while it execs the program the command line reads empty for a moment."""
        if self.pid() is None:
            return False
        try:
            program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            return False
        return not self.namespace or os.path.basename(program) != b"nsenter"

    def stop(self, timeout: float = 15.0) -> int | None:
        """``stop_signal`` (SIGTERM), then SIGKILL after ``timeout``; returns the PID it stopped."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, self.stop_signal)
            deadline = time.monotonic() + timeout
            while running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)
        return pid

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace").splitlines()[-lines:] if self.log.exists() else []
        return "\n  ".join(text)


def in_namespace(ns: str, argv: list[str], user: str | None = None) -> list[str]:
    """``argv`` run in network namespace ``ns`` (as ``user``), the rest of the machine's view kept.

    ``nsenter --net`` rather than ``ip netns exec``: the latter also unshares the mount
    namespace, and a namespace an agent then adds (``ip netns add qdhcp-...``) is mounted in its
    private view only; the machine sees an empty file under /run/netns.
    """
    ids: list[str] = []
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        ids = ["--setuid", str(entry.pw_uid), "--setgid", str(entry.pw_gid)]
    return ["nsenter", f"--net=/run/netns/{ns}", *ids, "--", *argv]


def running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has stopped: it only waits for its parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _env(**overrides: str) -> dict[str, str]:
    """The caller's environment without its own NEUTRINO_ settings: the lab's record decides."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("NEUTRINO_") and "__" in k)}
    return {**env, **overrides}


def servers(lab: Lab) -> list[Process]:
    out = []
    for k in range(1, len(lab.server_ports) + 1):
        state = lab.state_dir / "servers" / f"server-{k}"
        host = lab.server_host(k - 1)
        out.append(Process(f"server-{k}", [*NEUTRINO, "--config", str(lab.config_file), "server",
                                           "--bind", lab.server_address(k - 1), "--state-dir", str(state)],
                           _env(), lab.state_dir / "run" / f"server-{k}.pid",
                           lab.state_dir / "logs" / f"server-{k}.log", namespace=host.namespace if host else ""))
    return out


def host_env(host: Host) -> dict[str, str]:
    """What differs per host: who it is, where its stack is, its tunnel endpoint, what it runs."""
    return {"NEUTRINO_AGENT__HOST": host.name, "NEUTRINO_AGENT__NODE_NAMESPACE": host.namespace,
            "NEUTRINO_AGENT__NAMESPACE_PREFIX": host.ns_prefix, "NEUTRINO_AGENT__ROLES": ",".join(host.roles),
            "NEUTRINO_VXLAN__LOCAL_IP": host.underlay_ip}


def agents(lab: Lab) -> list[Process]:
    return [Process(f"agent-{h.name}", [*NEUTRINO, "--config", str(lab.config_file), "agent",
                                        "--state-dir", str(lab.host_state(h))],
                    _env(**host_env(h)), lab.state_dir / "run" / f"agent-{h.name}.pid",
                    lab.state_dir / "logs" / f"agent-{h.name}.log", namespace=h.namespace if lab.isolated else "",
                    manages_kernel=True)
            for h in lab.hosts]


def db_upgrade(lab: Lab) -> subprocess.CompletedProcess[str]:
    argv = [*NEUTRINO, "--config", str(lab.config_file), "db", "upgrade", "--state-dir", str(lab.state_dir)]
    if lab.client_namespace:
        argv = in_namespace(lab.client_namespace, argv)
    return subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=300)


def api_connector(lab: Lab) -> Connector | None:
    """How this process reaches the lab's API: from inside host-1 when the lab is isolated."""
    ns = lab.client_namespace
    if ns is None:
        return None
    from neutrino.kernel import netns

    def connect(host: str, port: int, timeout: float | None) -> socket.socket:
        return netns.connect_in(ns, host, port, timeout)

    return connect


def expected_agents(lab: Lab, host: Host) -> set[str]:
    """The agent types ``host`` reports once it runs (what its roles make it)."""
    from neutrino.messages import DHCP_AGENT, L3_AGENT, LINUXBRIDGE_AGENT, METADATA_AGENT, OVS_AGENT

    types = {"l2": OVS_AGENT if lab.driver == "openvswitch" else LINUXBRIDGE_AGENT, "dhcp": DHCP_AGENT,
             "l3": L3_AGENT, "metadata": METADATA_AGENT}
    return {types[r] for r in host.roles if r in types}

