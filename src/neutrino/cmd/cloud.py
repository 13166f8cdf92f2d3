"""``neutrino up``, ``down``, ``status`` and ``allinone``: the all-in-one cloud on this machine.

``up`` starts ``allinone`` (the server plus this host's agents in one process) in the
background, waits for each stage with a progress line, creates the external network and
prints how to use the cloud. ``down`` stops that process by its PID and removes exactly what
that cloud made: the namespaces of its database's routers, networks and instances, and the
node namespace and gateway link its footprint names (see ``hostclaim``). One cloud runs per
host: a second ``up`` fails before touching anything, and ``down`` refuses while another
cloud owns the host.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from neutrino.cmd import hostclaim
from neutrino.cmd.hostclaim import Footprint
from neutrino.config import Config
from neutrino.messages import DHCP_AGENT, L3_AGENT, LINUXBRIDGE_AGENT, METADATA_AGENT, OVS_AGENT

L2_AGENT_OF = {"linuxbridge": LINUXBRIDGE_AGENT, "openvswitch": OVS_AGENT}  # [agent] l2_driver -> its agent type


def agent_types(cfg: Config) -> set[str]:
    """The agents an all-in-one host runs: its L2 driver's, DHCP, L3 and metadata."""
    return {L2_AGENT_OF.get(cfg.agent.l2_driver, LINUXBRIDGE_AGENT), DHCP_AGENT, L3_AGENT, METADATA_AGENT}
PIDFILE, LOGFILE, LOCKFILE = "neutrino.pid", "neutrino.log", "neutrino.lock"


def _need_root(verb: str) -> None:
    if os.geteuid() != 0:
        raise SystemExit(f"neutrino {verb}: needs root (it manages network namespaces and bridges); "
                         f"run `sudo neutrino {verb}`")


def _pid(state: Path) -> int | None:
    """The all-in-one process's PID if it runs (checked by its command line, not just the file)."""
    try:
        pid = int((state / PIDFILE).read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"allinone" in cmdline and str(state).encode() in cmdline else None


def _step(n: int, total: int, text: str) -> float:
    print(f"[{n}/{total}] {text} ...", end="", flush=True)
    return time.monotonic()


def _done(started: float, detail: str = "ok") -> None:
    print(f" {detail} ({time.monotonic() - started:.1f} s)", flush=True)


def _wait(what: str, check: Any, timeout: float, proc: subprocess.Popen[bytes] | None, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
            raise SystemExit("\nneutrino up: the server exited while " + what + ":\n  " + "\n  ".join(tail)
                             + f"\nfull log: {log}")
        try:
            got = check()
        except Exception:
            got = None
        if got:
            return got
        time.sleep(0.1)
    raise SystemExit(f"\nneutrino up: timed out after {timeout:.0f} s {what}; see {log}")


def _port_in_use(bind: str) -> bool:
    host, _, port = bind.rpartition(":")
    with socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host.strip("[]") or "127.0.0.1", int(port)))
        except OSError:
            return True
    return False


def _tool(name: str) -> str:
    """How to call one of our commands in a hint: the full path of the one next to this Python
    (``.venv/bin/...`` is rarely on PATH), with ``sudo`` when the user came through sudo."""
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


def _give_to_sudo_user(path: Path) -> None:
    """``sudo neutrino up``: the user behind sudo owns clouds.yaml (still mode 0600), so that the
    ``openstack`` commands run as that user, not as root."""
    uid, gid = os.environ.get("SUDO_UID", ""), os.environ.get("SUDO_GID", "")
    if uid.isdigit() and gid.isdigit() and os.geteuid() == 0:
        os.chown(path, int(uid), int(gid))


def _as_root(command: str) -> str:
    return f"sudo {command}" if os.environ.get("SUDO_USER") else command


def cmd_up(cfg: Config, config_file: str | None) -> int:
    from neutrino.allinone import ensure_public_network, host_config
    from neutrino.client import Client

    _need_root("up")
    state = Path(cfg.DEFAULT.state_dir).resolve()
    # Nothing on the host (not even the state dir) is touched before this says the host is ours.
    owner = hostclaim.check_free(Footprint.of(cfg), "up", state)
    dead = hostclaim.left_behind(Footprint.of(cfg).node_ns)
    if owner is None and dead is not None and dead.state_dir != state:
        raise SystemExit(f"neutrino up: the cloud of {dead.state_dir} stopped without `neutrino down` and left "
                         f"its namespaces and daemons on this host; remove them with `{_as_root(_tool('neutrino'))} "
                         f"down` (it finds that cloud), or start that cloud again with `neutrino up --state-dir "
                         f"{dead.state_dir}`")
    if owner is None and _pid(state) is None and _port_in_use(cfg.DEFAULT.bind):
        raise SystemExit(f"neutrino up: {cfg.DEFAULT.bind} is already in use by another program; "
                         "choose another address with --bind HOST:PORT")
    state.mkdir(parents=True, exist_ok=True)
    log, clouds = state / LOGFILE, state / "clouds.yaml"
    host = host_config(cfg).host
    proc = None
    t = _step(1, 4, f"starting the server and this host's agents on {cfg.DEFAULT.bind} (log {log})")
    pid = _pid(state)
    if pid is None:
        argv = [sys.executable, "-m", "neutrino.cmd.main", *(["--config", config_file] if config_file else []),
                "allinone", "--state-dir", str(state), "--bind", cfg.DEFAULT.bind]
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        pid = proc.pid
    else:
        print(" already running,", end="")
    root = cfg.public_url

    def answering() -> bool:
        Client(root).get("/")
        return clouds.exists() and _pid(state) is not None

    _wait("starting", answering, 60, proc, log)
    _done(t, f"pid {pid}")
    _give_to_sudo_user(clouds)
    t = _step(2, 4, "signing in as admin")
    admin = _wait("signing in", lambda: Client.from_clouds(clouds, "admin"), 30, proc, log)
    _done(t)
    t = _step(3, 4, f"external network {cfg.public.network_name!r} ({cfg.public.cidr}, this machine is "
                    f"{cfg.public.gateway_ip})")
    net, sub = ensure_public_network(admin, cfg)
    _done(t)
    t = _step(4, 4, "waiting for the L2, DHCP, L3 and metadata agents to report")

    def agents_alive() -> bool:
        rows = admin.get("/v2.0/agents", host=host)["agents"]
        return {a["agent_type"] for a in rows if a["alive"]} >= agent_types(cfg)

    _wait("waiting for the agents", agents_alive, 60, proc, log)
    _done(t)
    neutrino, openstack = _as_root(_tool("neutrino")), _tool("openstack")
    print(f"""
neutrino is up: {root}  (state {state})
Every neutrino command finds this cloud by itself (no --state-dir needed).

  export OS_CLIENT_CONFIG_FILE={clouds}
  {openstack} --os-cloud demo network create net1
  {openstack} --os-cloud demo subnet create --network net1 --subnet-range 10.0.0.0/24 sub1
  {openstack} --os-cloud demo router create r1
  {openstack} --os-cloud demo router set --external-gateway {net['name']} r1
  {openstack} --os-cloud demo router add subnet r1 sub1
  {neutrino} instance create --network net1 vm1
  {neutrino} instance exec vm1 -- ping -c1 {cfg.public.gateway_ip}
  {openstack} --os-cloud demo security group rule create --protocol icmp default
  {openstack} --os-cloud demo floating ip create --port <vm1's port id> {net['name']}
  ping -c1 <the floating IP>    # from this machine, via the host-only network {sub['cidr']}

  {_tool("neutrino")} status    # agents and their health
  {neutrino} down    # stop everything and remove what it made
  log: {log}""")
    return 0


def cmd_down(cfg: Config) -> int:
    _need_root("down")
    state = Path(cfg.DEFAULT.state_dir).resolve()
    made = Footprint.load(state)
    # Refuse before stopping anything when another cloud (another state dir) owns this host.
    hostclaim.check_free(made or Footprint.of(cfg), "down", state)
    pid = _pid(state)
    if pid is not None:
        t = _step(1, 2, f"stopping the server and agents (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _pid(state) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid(state) is not None:
            os.kill(pid, signal.SIGKILL)
        _done(t)
    else:
        print("[1/2] the server and agents were not running")
    (state / PIDFILE).unlink(missing_ok=True)
    t = _step(2, 2, "removing namespaces, bridges, links and rules")
    removed = remove_cloud(cfg, state, made, "down")
    _done(t, f"{len(removed.namespaces)} namespaces, {len(removed.links)} links")
    print("neutrino is down; the database and clouds.yaml stay in", state)
    return 0


def remove_cloud(cfg: Config, state: Path, made: Footprint | None, verb: str, dry_run: bool = False) -> Any:
    """Remove exactly what the cloud of ``state`` made: the namespaces of its database's routers,
    networks and instances, and the node namespace and gateway link of its recorded footprint.

    Never everything that merely looks like Neutron's: a real Neutron, another cloud or a user's
    own ``vm-`` namespace on this machine stays untouched. The footprint's names are claimed
    while they go, so no ``up`` can start half-way.
    """
    from neutrino.kernel import janitor, links, netns

    prefix = made.ns_prefix if made else cfg.agent.namespace_prefix
    names = _made_namespaces(cfg, prefix, state) + ([made.node_ns] if made else [])
    outer = [made.gateway_link] if made and made.gateway_link else []
    if dry_run:
        return janitor.Removed(namespaces=sorted(n for n in set(names) if netns.namespace_exists(n)),
                               links=[n for n in outer if links.link_exists(None, n)])
    held = hostclaim.claim(made, verb) if made else None
    try:
        removed = janitor.Removed(namespaces=janitor.remove_namespaces(names))
        removed.links += [n for n in outer if links.remove_link(None, n)]
        for sub in ("instances", "agent"):
            shutil.rmtree(state / sub, ignore_errors=True)
        (state / hostclaim.FOOTPRINT).unlink(missing_ok=True)
    finally:
        if held is not None:
            held.release()
    return removed


def cmd_cleanup(cfg: Config, dry_run: bool) -> int:
    """Remove what the cloud of this state dir left behind (it must not be running)."""
    state = Path(cfg.DEFAULT.state_dir).resolve()
    made = Footprint.load(state)
    owner = hostclaim.check_free(made or Footprint.of(cfg), "cleanup", state)
    if owner is not None or _pid(state) is not None:
        raise SystemExit(f"neutrino cleanup: the cloud of {state} is running; `neutrino down` stops it and "
                         "removes what it made")
    if not dry_run:
        _need_root("cleanup")
    removed = remove_cloud(cfg, state, made, "cleanup", dry_run=dry_run)
    names = [f"namespace {n}" for n in removed.namespaces] + [f"link {n}" for n in removed.links]
    if dry_run:
        print(f"would remove (the cloud of {state}):", *names or ["nothing"], sep="\n  ")
    else:
        for name in names:
            print(f"removed {name}")
        if not names:
            print(f"nothing of the cloud of {state} left on this host")
    return 0


def _made_namespaces(cfg: Config, prefix: str, state: Path) -> list[str]:
    """The namespaces of this cloud's routers, DHCP servers and instances, from its database."""
    from sqlalchemy import select

    from neutrino.db.engine import Database
    from neutrino.db.models.l3 import Router
    from neutrino.db.models.network import Network, Port
    from neutrino.kernel.names import instance_ns, qdhcp_ns, qrouter_ns

    names = []
    for record in (state / "instances").glob("*.json"):
        try:
            names.append(str(json.loads(record.read_text())["namespace"]))
        except (OSError, ValueError, KeyError):
            continue
    if cfg.db_url.startswith("sqlite:///") and not Path(cfg.db_url[len("sqlite:///"):]).exists():
        return names
    db = Database(cfg.db_url)
    try:
        def read(s: Any) -> list[str]:
            return ([prefix + qrouter_ns(r) for r in s.scalars(select(Router.id))]
                    + [prefix + qdhcp_ns(n) for n in s.scalars(select(Network.id))]
                    + [prefix + instance_ns(p) for p in s.scalars(select(Port.id).where(
                        Port.device_owner.startswith("compute:")))])
        return names + db.read(read)
    finally:
        db.dispose()


def cmd_status(cfg: Config) -> int:
    from neutrino.client import ApiError, Client

    state = Path(cfg.DEFAULT.state_dir).resolve()
    pid = _pid(state)
    print(f"server+agents: {'running, pid ' + str(pid) if pid else 'not running'}  (state {state})")
    if pid is None:
        print(f"start it with `{_as_root(_tool('neutrino'))} up`")
        return 1
    try:
        admin = Client.from_clouds(state / "clouds.yaml", "admin", timeout=5)
        rows = admin.get("/v2.0/agents")["agents"]
    except (ApiError, OSError) as exc:
        print(f"API: not answering ({exc}); see {state / LOGFILE}")
        return 1
    print(f"API: {cfg.public_url} answering")
    print(f"{'agent type':<20} {'host':<24} {'alive':<6} {'state':<6} heartbeat")
    healthy = bool(rows)
    for a in rows:
        alive = ":-)" if a["alive"] else "XXX"
        healthy &= bool(a["alive"])
        print(f"{a['agent_type']:<20} {a['host']:<24} {alive:<6} {'UP' if a['admin_state_up'] else 'DOWN':<6} "
              f"{a['heartbeat_timestamp']}")
    return 0 if healthy else 1


def cmd_allinone(cfg: Config, args: argparse.Namespace) -> int:
    """The foreground process ``up`` starts: server and agents, until SIGTERM."""
    state = Path(cfg.DEFAULT.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    lock = open(state / LOCKFILE, "w")  # held for the process's life: one cloud per state dir
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"neutrino allinone: another one already runs for {state}; "
                         "`neutrino status` shows it, `neutrino down` stops it") from None
    # One cloud per host: claim its machine-wide names before anything touches the host, and
    # say where it runs (the claim and the record go when this process does).
    made = Footprint.of(cfg)
    claim = hostclaim.claim(made, "allinone")
    try:
        if _port_in_use(cfg.DEFAULT.bind):
            raise SystemExit(f"neutrino allinone: {cfg.DEFAULT.bind} is already in use; choose another with --bind")
        made.save(state)
        claim.record(state, cfg.DEFAULT.bind, cfg.public_url, args.config)
        _serve_allinone(cfg, args, state)
    finally:
        claim.release()
    return 0


def _serve_allinone(cfg: Config, args: argparse.Namespace, state: Path) -> None:
    import uvicorn

    from neutrino import server
    from neutrino.allinone import start_agents
    from neutrino.cmd.main import _known_passwords, _prepare_in_child

    # uvicorn re-raises SIGTERM once it has shut down; an exception, not the default action,
    # lets the agents stop cleanly in the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    created = _prepare_in_child(cfg)
    srv = server.build(cfg)
    clouds = state / "clouds.yaml"
    passwords = {**_known_passwords(clouds), **created, **srv.new_passwords}
    server.write_clouds_yaml(clouds, cfg, passwords)
    (state / PIDFILE).write_text(f"{os.getpid()}\n")
    agent = start_agents(cfg, srv)
    stop_rpc = server.serve_agent_calls(srv, cfg)  # agents of other hosts, with an AMQP transport
    host, _, port = cfg.DEFAULT.bind.rpartition(":")
    print(f"neutrino allinone: serving {cfg.public_url}, agents of host {agent.cfg.host} in {agent.cfg.node_ns}",
          flush=True)
    try:
        uvicorn.run(srv.app, host=host or "127.0.0.1", port=int(port), log_level=args.log_level,
                    access_log=False, lifespan="on")
    finally:
        agent.stop()
        if stop_rpc is not None:
            stop_rpc()
        (state / PIDFILE).unlink(missing_ok=True)


def cmd_agent(cfg: Config) -> int:
    """This host's agents in the foreground, for a server elsewhere (AMQP), until SIGTERM."""
    import threading

    from neutrino.agent import node
    from neutrino.agent.host import HostAgent
    from neutrino.allinone import host_config
    from neutrino.amqp import AmqpBus, RpcClient

    _need_root("agent")
    url = cfg.DEFAULT.transport_url
    if not url.startswith("amqp://"):
        raise SystemExit("neutrino agent: set [DEFAULT] transport_url = \"amqp://user:pass@host:5672/\" (the "
                         "server's too); with the in-process bus the agents run inside `neutrino up`")
    hc = host_config(cfg)
    if hc.local_ip.startswith("127."):
        print(f"neutrino agent: warning: [vxlan] local_ip is {hc.local_ip}; other hosts cannot reach this "
              "one's VXLAN tunnels: set it to this host's underlay address", file=sys.stderr)
    claim = hostclaim.claim(Footprint(host=hc.host, node_ns=hc.node_ns, ns_prefix=hc.ns_prefix), "agent")
    node.ensure_node(hc.node_ns)
    prefix = cfg.DEFAULT.control_exchange
    agent = HostAgent(hc, RpcClient(url, prefix), AmqpBus(url, prefix))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent.start()
    print(f"neutrino agent: host {hc.host}, node namespace {hc.node_ns}, bus {url.split('@')[-1]}", flush=True)
    stop.wait()
    agent.stop()
    claim.release()
    return 0
