"""A lab's own RabbitMQ node and PostgreSQL cluster: broker and database outages on demand.

Why they exist: a lab proves that no change is lost when RabbitMQ, then the database,
restart during operation (issue 8 §3.4). The machine's own RabbitMQ (5672) and PostgreSQL
(5432) serve everyone else on the machine and are never stopped, so a lab made with
``own_services`` (``neutrino lab up --own-services``) runs services of its own on free loopback
ports (``Lab.own``). ``stop`` and ``start`` take one down and bring it back on the same port
with the same data; ``remove`` (at ``lab down``) stops them by PID and deletes their data.

RabbitMQ: the node ``<lab>@localhost``, run as root by Debian's script without its wrapper
(which would switch to the machine node's user and directories), keeps its Mnesia, Erlang
cookie and configuration in the lab's state directory (``services/rabbitmq``), so the machine
node's files in /etc/rabbitmq (listener 5672, node name) are never read. It registers with the
machine's epmd, as every Erlang node of a host does.

PostgreSQL refuses to run as root: the cluster runs as the ``postgres`` user, in a directory
that user owns and can reach (``/tmp/<lab>-postgresql-XXXX``: the lab's state directory may
lie below directories only root may enter, as pytest's do), trusting connections on 127.0.0.1
only, with its socket in that directory.

In an ``isolated`` lab both run inside host-1's namespace and listen on its underlay address
only (eth2 faces the lab's outside), at their usual ports; the broker lets ``guest`` in from
there (its default is loopback only) and the cluster trusts the underlay (172.30.0.0/24, the
lab's hosts). Its Erlang node and epmd use host-1's loopback. The lab reaches them itself
through PostgreSQL's unix socket and, for RabbitMQ, from a thread inside host-1.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from neutrino.files import write_atomic
from neutrino.lab import UNDERLAY_NET, Lab, LabError, Process, running

SERVICES = ("rabbitmq", "database")
RABBITMQ_SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")  # Debian's; /usr/sbin's wraps it in `su rabbitmq`
POSTGRES_USER = "postgres"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def postgresql_bin() -> Path | None:
    """The newest PostgreSQL server installed (Debian keeps each major version apart)."""
    found = [d for d in Path("/usr/lib/postgresql").glob("*/bin")
             if (d / "postgres").exists() and (d / "initdb").exists()]
    return max(found, key=lambda d: int(re.sub(r"\D", "", d.parent.name) or 0), default=None)


def why_not() -> str | None:
    """Why this machine cannot run a lab's own services (what to install), None when it can."""
    missing = []
    if not RABBITMQ_SCRIPT.exists():
        missing.append(f"RabbitMQ ({RABBITMQ_SCRIPT}, Debian package rabbitmq-server)")
    if postgresql_bin() is None:
        missing.append("PostgreSQL (/usr/lib/postgresql/*/bin/initdb and postgres, Debian package postgresql)")
    try:
        pwd.getpwnam(POSTGRES_USER)
    except KeyError:
        missing.append(f"the {POSTGRES_USER!r} user that PostgreSQL runs as (made by the postgresql package)")
    if missing:
        return "a lab with its own services needs " + " and ".join(missing) + "; scripts/setup.sh installs them"
    return None


def _own(lab: Lab) -> tuple[int, int, int, str]:
    if lab.own is None:
        raise LabError(f"lab {lab.name} uses the machine's RabbitMQ and database, not services of its own "
                       "(build it with `neutrino lab up --own-services` to stop and start them)")
    own = lab.own
    return own.rabbitmq_port, own.rabbitmq_dist_port, own.postgresql_port, own.postgresql_dir


# ---------------------------------------------------------------- RabbitMQ

def rabbitmq_dir(lab: Lab) -> Path:
    return lab.state_dir / "services" / "rabbitmq"


def _namespace(lab: Lab) -> str:
    """Where the services run: host-1's namespace when the lab is isolated, else the machine's."""
    return lab.hosts[0].namespace if lab.isolated else ""


def rabbitmq(lab: Lab) -> Process:
    port, dist_port, _, _ = _own(lab)
    home = rabbitmq_dir(lab)
    env = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": str(home),  # HOME: the node's own Erlang cookie
           "RABBITMQ_NODENAME": f"{lab.name}@localhost", "RABBITMQ_NODE_IP_ADDRESS": lab.services_ip,
           "RABBITMQ_NODE_PORT": str(port), "RABBITMQ_DIST_PORT": str(dist_port),
           "RABBITMQ_MNESIA_BASE": str(home / "mnesia"), "RABBITMQ_LOG_BASE": str(home / "log"),
           "RABBITMQ_LOGS": "-", "RABBITMQ_PID_FILE": str(home / "beam.pid"),
           "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
           "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
           "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),  # none: no management port to collide
           "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
           "ERL_EPMD_ADDRESS": "127.0.0.1",
           "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}"}
    # The script passes arguments on to the Erlang VM, which ignores this one: it marks the process as ours.
    return Process("rabbitmq", [str(RABBITMQ_SCRIPT), "-neutrino_lab", str(home)], env,
                   lab.state_dir / "run" / "rabbitmq.pid", lab.state_dir / "logs" / "rabbitmq.log",
                   mark=str(home), cwd=str(home), namespace=_namespace(lab))


def _prepare_rabbitmq(lab: Lab) -> None:
    port = _own(lab)[0]
    home = rabbitmq_dir(lab)
    (home / "mnesia").mkdir(parents=True, exist_ok=True)
    (home / "log").mkdir(exist_ok=True)
    remote = "loopback_users = none\n" if lab.isolated else ""  # guest from the other hosts
    write_atomic(home / "rabbitmq.conf", f"listeners.tcp.local = {lab.services_ip}:{port}\n{remote}")
    write_atomic(home / "advanced.config", "[].\n")
    write_atomic(home / "enabled_plugins", "[].\n")
    write_atomic(home / "rabbitmq-env.conf", "# the lab's node: everything is in the environment\n")


def _rabbitmq_answers(lab: Lab) -> bool:
    from kombu import Connection

    def answers() -> bool:
        with Connection(lab.transport_url, connect_timeout=2) as conn:
            conn.connect()
            return bool(conn.connected)

    if not lab.isolated:
        return answers()
    from neutrino.kernel import netns

    return netns.call_in(_namespace(lab), answers)


# ---------------------------------------------------------------- PostgreSQL

def postgresql(lab: Lab) -> Process:
    _, _, port, where = _own(lab)
    binaries = postgresql_bin()
    if binaries is None or not where:
        raise LabError(f"neutrino lab: {why_not() or 'the lab has no PostgreSQL cluster yet (`neutrino lab up`)'}")
    data = Path(where) / "data"
    return Process("postgresql", [str(binaries / "postgres"), "-D", str(data),
                                  "-c", f"listen_addresses={lab.services_ip}", "-c", f"port={port}",
                                  "-c", f"unix_socket_directories={where}"],
                   {"PATH": PATH, "LANG": "C.UTF-8"}, lab.state_dir / "run" / "postgresql.pid",
                   lab.state_dir / "logs" / "postgresql.log", mark=str(data),
                   stop_signal=signal.SIGINT,  # "fast": SIGTERM would wait for the servers' pooled connections
                   user=POSTGRES_USER, cwd=where, namespace=_namespace(lab))


def _prepare_postgresql(lab: Lab) -> None:
    assert lab.own is not None
    where = Path(lab.own.postgresql_dir) if lab.own.postgresql_dir else None
    if where is None or not where.is_dir():
        where = Path(tempfile.mkdtemp(prefix=f"{lab.name}-postgresql-", dir="/tmp"))  # /tmp: every user may enter
        user = pwd.getpwnam(POSTGRES_USER)
        os.chown(where, user.pw_uid, user.pw_gid)
        lab.own.postgresql_dir = str(where)
        lab.save()  # before initdb: `down` removes it even if what follows fails
    if (where / "data" / "PG_VERSION").exists():
        return
    binaries = postgresql_bin()
    assert binaries is not None  # why_not() said so before
    done = subprocess.run([str(binaries / "initdb"), "-D", str(where / "data"), "-U", "postgres", "--auth=trust",
                           "-E", "UTF8", "--locale=C", "--no-sync"],
                          env={"PATH": PATH, "LANG": "C.UTF-8"}, cwd=where, capture_output=True, text=True,
                          user=POSTGRES_USER, group=POSTGRES_USER, extra_groups=[], timeout=120)
    if done.returncode != 0:
        raise LabError(f"neutrino lab: initdb failed:\n{done.stdout}{done.stderr}")
    if lab.isolated:  # the servers and agents on the other hosts
        with open(where / "data" / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {UNDERLAY_NET}.0/24 trust\n")


def _postgresql_answers(lab: Lab) -> bool:
    import psycopg

    host = lab.own.postgresql_dir if lab.isolated and lab.own else "127.0.0.1"  # isolated: its unix socket
    with psycopg.connect(host=host, port=_own(lab)[2], user="postgres", dbname="postgres",
                         connect_timeout=2) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


# ---------------------------------------------------------------- both

def process(lab: Lab, service: str) -> Process:
    if service not in SERVICES:
        raise LabError(f"neutrino lab: no service {service!r} (services: {', '.join(SERVICES)})")
    return rabbitmq(lab) if service == "rabbitmq" else postgresql(lab)


def up(lab: Lab) -> list[str]:
    """Make what is missing (data directories, the cluster) and start what is not running."""
    _prepare_rabbitmq(lab)
    _prepare_postgresql(lab)
    return [start(lab, service) for service in SERVICES]


def start(lab: Lab, service: str, timeout: float = 90.0) -> str:
    """Start ``service`` unless it runs and wait until it serves; says what it did."""
    proc = process(lab, service)
    pid = proc.pid()
    said = f"{proc.name} pid {pid} (running)" if pid else f"{proc.name} pid {proc.start().pid}"
    answers = _rabbitmq_answers if service == "rabbitmq" else _postgresql_answers
    deadline = time.monotonic() + timeout
    while True:
        if proc.pid() is None:
            raise LabError(f"neutrino lab: {proc.name} exited while starting:\n  {proc.tail()}\nlog: {proc.log}")
        try:
            if answers(lab):
                return said
        except Exception:  # not serving yet
            pass
        if time.monotonic() > deadline:
            raise LabError(f"neutrino lab: {proc.name} does not serve after {timeout:.0f} s; log: {proc.log}")
        time.sleep(0.2)


def stop(lab: Lab, service: str) -> int | None:
    """Stop ``service`` by its PID (and, for RabbitMQ, its Erlang VM); returns the PID it stopped."""
    proc = process(lab, service)
    pid = proc.stop(timeout=30)
    if service == "rabbitmq":  # the script stops its VM on SIGTERM; after a SIGKILL the VM would stay
        beam = rabbitmq_dir(lab) / "beam.pid"
        try:
            vm = int(beam.read_text().split()[0])
            if proc.mark.encode() in Path(f"/proc/{vm}/cmdline").read_bytes() and running(vm):
                os.kill(vm, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
    return pid


def remove(lab: Lab) -> list[str]:
    """Stop both services and delete their data (``lab down``); says what it stopped."""
    if lab.own is None:
        return []
    stopped = []
    for service in SERVICES:
        if service == "database" and not lab.own.postgresql_dir:
            continue
        pid = stop(lab, service)
        if pid is not None:
            stopped.append(f"{service} pid {pid}")
    if lab.own.postgresql_dir:
        shutil.rmtree(lab.own.postgresql_dir, ignore_errors=True)
    return stopped
