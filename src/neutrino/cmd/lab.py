"""``neutrino lab up|down|status|instance|service``: several hosts on this machine (see ``neutrino.lab``).

``up`` builds the fabric and host namespaces, the lab's database, K servers and one agent
process per host, with a progress line per step; run again, it repairs what is missing and
starts what is not running. ``down`` stops every process the lab started, by PID, removes all
its namespaces (and what runs in them) and drops its database. ``instance`` makes instances
exactly as ``neutrino instance`` does, on the lab host ``--host`` names. ``service`` stops and
starts a lab's own RabbitMQ or database (``up --own-services``), for outages during operation.
``exec`` runs a command inside a lab host (where an isolated lab's API can be reached).
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neutrino import lab as labmod
from neutrino import lab_services
from neutrino.cmd import instance
from neutrino.cmd.cloud import _done, _step  # the progress lines of `neutrino up`
from neutrino.lab import Lab, LabError, Process

if TYPE_CHECKING:
    from neutrino.client import Client
    from neutrino.compute.manager import Compute

DEFAULT_NAME = "neutrino-lab"
KEPT = ("logs",)  # what `down` leaves in the state directory


@contextmanager
def _locked(state: Path) -> Iterator[None]:
    """One ``up`` or ``down`` of a lab at a time."""
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lab.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LabError(f"neutrino lab: another `neutrino lab` command works on {state}") from None
        yield


def _wait(what: str, check: Callable[[], Any], timeout: float, procs: list[Process]) -> Any:
    """Poll ``check`` until it returns something true; fail with the log of a process that died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.pid() is None:
                raise LabError(f"\nneutrino lab: {proc.name} exited while {what}:\n  {proc.tail()}\nlog: {proc.log}")
        try:
            got = check()
        except Exception:  # not answering yet
            got = None
        if got:
            return got
        time.sleep(0.2)
    raise LabError(f"\nneutrino lab: timed out after {timeout:.0f} s {what}; logs in {procs[0].log.parent}")


def _start(procs: list[Process]) -> list[str]:
    """Start those not running; returns what each is now (for the progress line)."""
    said = []
    for proc in procs:
        pid = proc.pid()
        said.append(f"{proc.name} pid {pid} (running)" if pid else f"{proc.name} pid {proc.start().pid}")
    return said


def _answers(lab: Lab, k: int) -> bool:
    from neutrino.client import Client

    Client(lab.server_url(k), timeout=5, via=labmod.api_connector(lab)).get("/")
    return True


def admin_client(lab: Lab, cloud: str = "admin") -> Client:
    from neutrino.client import Client

    return Client.from_clouds(lab.clouds, cloud, via=labmod.api_connector(lab))


def _services(lab: Lab, step: int, total: int) -> None:
    """Fail at once when a service is missing; start the lab's own where it has them."""
    if lab.own is None:
        t = _step(step, total, "checking the database server and RabbitMQ")
        labmod.check_services(lab)
        lab.save()  # before anything is made: `down` finds all of it even after a crash
        _done(t)
        return
    where = f" in {lab.hosts[0].namespace}" if lab.isolated else ""
    t = _step(step, total, f"the lab's own RabbitMQ ({lab.services_ip}:{lab.own.rabbitmq_port}) and "
                           f"PostgreSQL ({lab.services_ip}:{lab.own.postgresql_port}){where}")
    labmod.check_services(lab)
    lab.save()
    _done(t, ", ".join(lab_services.up(lab)))


def _fabric(lab: Lab, step: int, total: int) -> None:
    t = _step(step, total, f"fabric {lab.fabric_ns}, {lab.outside_ns} ({labmod.OUTSIDE_IP}) and "
                           f"{len(lab.hosts)} host namespaces on underlay {labmod.UNDERLAY_NET}.0/24")
    labmod.build_fabric(lab)
    _done(t)


def up(lab: Lab) -> Lab:
    """Build or repair the lab and start what is not running; idempotent."""
    from neutrino import config, server
    from neutrino.allinone import ensure_public_network

    total = 7
    if lab.isolated:  # its services run inside host-1: the fabric first
        labmod.check_services(lab)
        lab.save()
        _fabric(lab, 1, total)
        _services(lab, 2, total)
    else:
        _services(lab, 1, total)
        _fabric(lab, 2, total)
    config_file = labmod.write_config(lab)
    t = _step(3, total, f"database {lab.db_url.rsplit('/', 1)[1]} and its migrations")
    created = labmod.create_database(lab)
    done = labmod.db_upgrade(lab)
    if done.returncode != 0:
        raise LabError(f"\nneutrino lab: `neutrino db upgrade` failed:\n{done.stdout}{done.stderr}")
    _done(t, "created" if created else "exists")
    servers = labmod.servers(lab)
    t = _step(4, total, f"{len(servers)} server(s) on {', '.join(lab.server_address(k) for k in range(len(servers)))}")
    said = _start(servers[:1])  # the first one bootstraps identity; the others then find it done
    _wait("starting", functools.partial(_answers, lab, 0), 120, servers[:1])
    said += _start(servers[1:])
    for k in range(1, len(servers)):
        _wait("starting", functools.partial(_answers, lab, k), 120, servers[k:k + 1])
    _done(t, ", ".join(said))
    t = _step(5, total, f"clouds.yaml and the external network {labmod.PUBLIC!r} ({labmod.OUTSIDE_CIDR})")
    cfg = config.load(config_file, env={})
    cfg.DEFAULT.bind = lab.server_address(0)
    server.write_clouds_yaml(lab.clouds, cfg, {cfg.identity.admin_user: lab.passwords["admin"],
                                               cfg.identity.demo_user: lab.passwords["demo"]})
    admin = _wait("signing in", lambda: admin_client(lab), 30, servers)
    ensure_public_network(admin, cfg)
    _done(t)
    agents = labmod.agents(lab)
    t = _step(6, total, f"{len(agents)} agent processes ({lab.driver})")
    _done(t, ", ".join(_start(agents)))
    t = _step(7, total, "waiting for every host's agents to report")

    def reported() -> bool:
        alive = {(a["host"], a["agent_type"]) for a in admin.get("/v2.0/agents")["agents"] if a["alive"]}
        return all((h.name, kind) in alive for h in lab.hosts for kind in labmod.expected_agents(lab, h))

    _wait("waiting for the agents", reported, 90, [*servers, *agents])
    _done(t)
    return lab


def down(lab: Lab) -> None:
    """Stop every process of the lab by PID, drop its database (or stop its own services), remove
    its namespaces."""
    t = _step(1, 4, "stopping the agents and servers")
    stopped = [p for p in (*labmod.agents(lab), *labmod.servers(lab)) if p.stop() is not None]
    _done(t, f"{len(stopped)} stopped")
    if lab.own is not None:  # by PID, before the namespaces go (an isolated lab's run in host-1)
        t = _step(2, 4, "stopping the lab's own RabbitMQ and PostgreSQL, removing their data")
        _done(t, ", ".join(lab_services.remove(lab)) or "not running")
    else:
        t = _step(2, 4, "dropping the database")
        if not lab.db_server:
            _done(t, "kept (it was given with --db)")
        else:
            _done(t, "dropped" if labmod.drop_database(lab) else "was not there")
    t = _step(3, 4, "removing the namespaces (and what runs in them)")
    removed = labmod.remove_namespaces(lab)
    _done(t, f"{len(removed)} namespaces")
    t = _step(4, 4, f"removing the lab's files (keeping {lab.state_dir / 'logs'})")
    for entry in lab.state_dir.iterdir():
        if entry.name not in KEPT and entry.name != "lab.lock":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    _done(t)


def status(lab: Lab) -> int:
    healthy = True
    print(f"lab {lab.name}: {len(lab.hosts)} hosts, driver {lab.driver}, state {lab.state_dir}")
    print(f"  database {lab.db_url.split('@')[-1]}, bus {lab.transport_url.split('@')[-1]} "
          f"(exchange {lab.control_exchange})")
    if lab.own is not None:
        for service, port in (("rabbitmq", lab.own.rabbitmq_port), ("database", lab.own.postgresql_port)):
            pid = lab_services.process(lab, service).pid()
            healthy &= pid is not None
            where = f"{lab.services_ip}:{port}"
            print(f"  {service:<10} {where:<17} {'pid ' + str(pid) if pid else 'NOT RUNNING'} (the lab's own)")
    for k, proc in enumerate(labmod.servers(lab)):
        pid = proc.pid()
        healthy &= pid is not None
        print(f"  {proc.name:<10} {lab.server_address(k):<17} {'pid ' + str(pid) if pid else 'NOT RUNNING'}")
    try:
        rows = admin_client(lab).get("/v2.0/agents")["agents"]
    except Exception as exc:  # the API is down: the processes above say why
        print(f"  API: not answering ({exc})")
        rows, healthy = [], False
    alive = {(a["host"], a["agent_type"]): a["alive"] for a in rows}
    print(f"  {'host':<8} {'namespace':<28} {'underlay':<13} {'roles':<20} {'agent':<12} agents alive")
    for host, proc in zip(lab.hosts, labmod.agents(lab), strict=True):
        pid = proc.pid()
        kinds = sorted(labmod.expected_agents(lab, host))
        says = ", ".join(f"{k}{'' if alive.get((host.name, k)) else ' (DEAD)'}" for k in kinds)
        healthy &= pid is not None and all(alive.get((host.name, k)) for k in kinds)
        print(f"  {host.name:<8} {host.namespace:<28} {host.underlay_ip:<13} {','.join(host.roles):<20} "
              f"{'pid ' + str(pid) if pid else 'NOT RUNNING':<12} {says}")
    return 0 if healthy else 1


# ---------------------------------------------------------------- instances on lab hosts

def compute(lab: Lab, host_name: str, cloud: str = "demo") -> Compute:
    """What ``neutrino instance`` uses, for one lab host: its agent's host name and namespaces."""
    from neutrino.client import Client
    from neutrino.compute.manager import Compute

    host = lab.host(host_name)
    return Compute(Client.from_clouds(lab.clouds, cloud, via=labmod.api_connector(lab)), admin_client(lab),
                   host.name, host.namespace,
                   lab.host_state(host), ns_prefix=host.ns_prefix)


def _host_of(lab: Lab, name: str) -> str:
    for host in lab.hosts:
        if (lab.host_state(host) / "instances" / f"{name}.json").exists():
            return host.name
    raise LabError(f"neutrino lab instance: no instance named {name!r} on any host of lab {lab.name}")


def _instance(lab: Lab, args: argparse.Namespace) -> int:
    verb = args.instance_command
    if verb == "create":
        for host in lab.hosts:
            if (lab.host_state(host) / "instances" / f"{args.name}.json").exists():
                raise LabError(f"neutrino lab instance create: {args.name!r} already runs on {host.name}")
        return instance.run(functools.partial(compute, lab, args.host, args.os_cloud), args)
    if verb == "list":
        code = 0
        for host in lab.hosts:
            print(f"--- {host.name} ({host.namespace})")
            code |= instance.run(functools.partial(compute, lab, host.name, args.os_cloud), args)
        return code
    names = args.names if verb == "delete" else [args.name]
    code = 0
    for name in names:
        one = argparse.Namespace(**{**vars(args), "names": [name], "name": name})
        code |= instance.run(functools.partial(compute, lab, _host_of(lab, name), args.os_cloud), one)
    return code


# ---------------------------------------------------------------- the command line

def _state(args: argparse.Namespace) -> Path:
    return Path(args.state_dir).resolve() if args.state_dir else labmod.default_state_dir(args.lab_name)


def _existing(args: argparse.Namespace, verb: str) -> Lab:
    state = _state(args)
    lab = Lab.load(state)
    if lab is None:
        raise LabError(f"neutrino lab {verb}: no lab in {state}; build one with "
                       f"`neutrino lab up --name {args.lab_name}`")
    return lab


def _up(args: argparse.Namespace) -> int:
    state = _state(args)
    with _locked(state):
        lab = Lab.load(state)
        if lab is None:
            lab = labmod.plan(args.lab_name, state, args.hosts or 3, labmod.parse_roles(args.roles or []),
                              args.driver or "linuxbridge", args.servers or 1, args.db or "",
                              args.db_server or labmod.DEFAULT_DB_SERVER,
                              args.transport_url or labmod.DEFAULT_TRANSPORT, own_services=args.own_services,
                              isolated=args.isolated)
        else:
            asked = {"--hosts": (args.hosts, len(lab.hosts)), "--servers": (args.servers, len(lab.server_ports)),
                     "--driver": (args.driver, lab.driver)}
            differ = [f"{flag} {want} (it has {have})" for flag, (want, have) in asked.items()
                      if want is not None and want != have]
            if args.own_services and lab.own is None:  # `up` again without the flag repairs either kind
                differ.append("--own-services (it uses the machine's RabbitMQ and database)")
            if args.isolated and not lab.isolated:
                differ.append("--isolated (its processes run in the machine's namespace)")
            if differ or args.roles or args.db or args.db_server or args.transport_url:
                raise LabError(f"neutrino lab up: lab {lab.name} exists ({state}); `neutrino lab down` first to "
                               f"build it differently{': ' + ', '.join(differ) if differ else ''}")
        up(lab)
    openstack = f"export OS_CLIENT_CONFIG_FILE={lab.clouds}\n  openstack --os-cloud admin network agent list"
    if lab.isolated:  # the API is on the underlay: the client must be on a lab host (exec gives it clouds.yaml)
        openstack = (f"neutrino lab exec{'' if lab.name == DEFAULT_NAME else ' --name ' + lab.name} host-1 -- "
                     "openstack --os-cloud admin network agent list   # the API is on the underlay")
    print(f"""
lab {lab.name} is up: {len(lab.hosts)} hosts ({', '.join(f"{h.name} {'+'.join(h.roles)}" for h in lab.hosts)}),
API {', '.join(lab.server_url(k) for k in range(len(lab.server_ports)))}

  {openstack}
  neutrino lab instance create --host host-2 --network NET vm1
  ip netns exec {lab.outside_ns} ping <a floating IP>      # the lab's internet
  neutrino lab status
  neutrino lab down""")
    return 0


def _service(lab: Lab, args: argparse.Namespace) -> int:
    """``neutrino lab service stop|start|restart rabbitmq|database``: an outage of the lab's own service."""
    if args.action in ("stop", "restart"):
        pid = lab_services.stop(lab, args.service)
        print(f"{args.service}: {'stopped pid ' + str(pid) if pid else 'was not running'}")
    if args.action in ("start", "restart"):
        print(f"{args.service}: {lab_services.start(lab, args.service)}, serving")
    return 0


def _exec(lab: Lab, args: argparse.Namespace) -> int:
    """``neutrino lab exec HOST -- CMD``: CMD inside the host's namespace, with the lab's clouds.yaml.

    ``ip netns exec`` (its own mount namespace, with /sys and /etc/netns/<ns> of that host) is
    right for a command a person runs; the lab's long-lived processes use ``nsenter`` instead
    (see ``neutrino.lab.in_namespace``).
    """
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        raise LabError("neutrino lab exec: give a command, e.g. `neutrino lab exec host-1 -- openstack network list`")
    host = lab.host(args.host)
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(lab.clouds)}
    os.execvpe("ip", ["ip", "netns", "exec", host.namespace, *command], env)


def _down(args: argparse.Namespace) -> int:
    state = _state(args)
    with _locked(state):
        lab = Lab.load(state)
        if lab is None:
            print(f"no lab in {state}: nothing to do")
            return 0
        down(lab)
    print(f"lab {lab.name} is down")
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:  # namespaces, and the lab's record holds its passwords (mode 0600)
        raise SystemExit(f"neutrino lab {args.lab_command}: needs root (it manages network namespaces)")
    if args.lab_command == "up":
        return _up(args)
    if args.lab_command == "down":
        return _down(args)
    lab = _existing(args, args.lab_command)
    if args.lab_command == "status":
        return status(lab)
    if args.lab_command == "service":
        return _service(lab, args)
    if args.lab_command == "exec":
        return _exec(lab, args)
    return _instance(lab, args)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    lab = sub.add_parser("lab", help="several hosts on this machine: namespaces on an underlay, an agent "
                                     "process per host, servers on PostgreSQL/MariaDB and RabbitMQ")
    lsub = lab.add_subparsers(dest="lab_command", required=True)
    verbs = {
        "up": lsub.add_parser("up", help="build the lab (again: repair it) and start its processes"),
        "down": lsub.add_parser("down", help="stop its processes, remove its namespaces, drop its database"),
        "status": lsub.add_parser("status", help="hosts, roles, processes and agents"),
        "instance": instance.add_parser(lsub, cmd_lab, lab=True),
        "service": lsub.add_parser("service", help="stop, start or restart the lab's own RabbitMQ or database "
                                                   "(a lab made with --own-services)"),
        "exec": lsub.add_parser("exec", help="run a command inside a lab host's namespace, with the lab's "
                                             "clouds.yaml (how to reach an --isolated lab's API)"),
    }
    verbs["exec"].add_argument("host", help="host-1 ... host-N")
    verbs["exec"].add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    verbs["service"].add_argument("action", choices=("stop", "start", "restart"))
    verbs["service"].add_argument("service", choices=lab_services.SERVICES)
    for verb in verbs.values():
        verb.add_argument("--name", dest="lab_name", default=DEFAULT_NAME,
                          help=f"the lab (default {DEFAULT_NAME}); its namespaces are NAME-fabric, NAME-outside, "
                               "NAME-host-I")
        if "--state-dir" not in verb._option_string_actions:
            verb.add_argument("--state-dir", help="default /var/lib/neutrino/labs/NAME")
        verb.set_defaults(func=cmd_lab)
    up = verbs["up"]
    up.add_argument("--hosts", type=int, help="how many hosts (default 3): host-1 controller and network node, "
                                              "the others compute nodes")
    up.add_argument("--roles", action="append", help="HOST=ROLE,... overrides one host's roles "
                                                     "(l2, dhcp, l3, metadata), e.g. host-2=l2,dhcp (repeatable)")
    up.add_argument("--driver", choices=("linuxbridge", "openvswitch"), help="the L2 driver (default linuxbridge)")
    up.add_argument("--servers", type=int, help="API server processes on one database (default 1)")
    up.add_argument("--db", help="use this existing database (kept at down) instead of a new one")
    up.add_argument("--db-server", help=f"make the lab's database here (default {labmod.DEFAULT_DB_SERVER}; "
                                        "mysql+pymysql://root@127.0.0.1:3306/mysql for MariaDB)")
    up.add_argument("--transport-url", help=f"RabbitMQ (default {labmod.DEFAULT_TRANSPORT})")
    up.add_argument("--isolated", action="store_true",
                    help="every process on its host as on separate machines: the lab's own PostgreSQL and RabbitMQ "
                         "in host-1, server K in host-K, all on the underlay (implies --own-services); nothing in "
                         "the machine's namespace, so reach the API with `neutrino lab exec host-1 -- ...`")
    up.add_argument("--own-services", action="store_true",
                    help="run the lab's own RabbitMQ node and PostgreSQL cluster on free loopback ports instead of "
                         "the machine's, so that `neutrino lab service` can stop and start them")

