"""The ``neutrino`` command: ``server``, ``up``/``down``/``status``, ``instance``, ``lab``, ``db``, ``cleanup``."""

from __future__ import annotations

import argparse
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from neutrino import config as config_mod
from neutrino.cmd import instance, lab
from neutrino.config import Config, ConfigError


def _load_config(args: argparse.Namespace) -> Config:
    cfg = config_mod.load(args.config)
    if getattr(args, "state_dir", None):
        cfg.DEFAULT.state_dir = args.state_dir
    if getattr(args, "bind", None):
        cfg.DEFAULT.bind = args.bind
    if getattr(args, "db", None):
        cfg.database.connection = args.db
    if getattr(args, "noauth", False):
        cfg.DEFAULT.auth_strategy = "noauth"
    return cfg


def _known_passwords(clouds: Path) -> dict[str, str]:
    """Passwords from an earlier clouds.yaml, so a restart (even on a new port) keeps them."""
    if not clouds.exists():
        return {}
    data = yaml.safe_load(clouds.read_text()) or {}
    return {c["auth"]["username"]: c["auth"]["password"] for c in data.get("clouds", {}).values()}


def cmd_server(args: argparse.Namespace) -> int:
    import uvicorn

    from neutrino import server

    started = time.monotonic()
    cfg = _load_config(args)
    state = Path(cfg.DEFAULT.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    created = _prepare_in_child(cfg)
    srv = server.build(cfg)
    clouds = state / "clouds.yaml"
    passwords = {**_known_passwords(clouds), **created, **srv.new_passwords}
    if {cfg.identity.admin_user, cfg.identity.demo_user} <= passwords.keys():
        server.write_clouds_yaml(clouds, cfg, passwords)
    else:
        print(f"note: passwords of the bootstrap users are not known; {clouds} not written", file=sys.stderr)
    host, _, port = cfg.DEFAULT.bind.rpartition(":")
    print(f"neutrino: serving {cfg.public_url} (state {state}, db {srv.db.url.split('://')[0]}), "
          f"built in {time.monotonic() - started:.2f}s; clouds: {clouds}", flush=True)
    _limit_malloc_arenas()
    stop_rpc = server.serve_agent_calls(srv, cfg)
    try:
        uvicorn.run(srv.app, host=host or "127.0.0.1", port=int(port), log_level=args.log_level,
                    access_log=args.access_log, lifespan="on")
    finally:
        if stop_rpc is not None:
            stop_rpc()
    return 0


def _prepare_in_child(cfg: Config) -> dict[str, str]:
    """Migrate and bootstrap identity in a forked child; returns the passwords it generated.

    Alembic, the migration scripts and scrypt's 16 MB work area then never occupy the
    long-running server's memory (~25 MB on a first start); the server checks both again and
    finds nothing to do.
    """
    from neutrino.db import migrate
    from neutrino.db.engine import Database
    from neutrino.identity import Identity

    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)

    def run() -> None:
        try:
            db = Database(cfg.db_url)
            migrate.upgrade(db)
            sender.send(Identity(db, cfg).bootstrap())
            db.dispose()
        except Exception as exc:  # one clear line, not a traceback, for an unreachable database
            print(f"neutrino: {cfg.db_url.split('://')[0]}: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                  file=sys.stderr)
            sys.exit(1)

    child = ctx.Process(target=run, name="neutrino-prepare")
    child.start()
    sender.close()
    try:
        created: dict[str, str] = receiver.recv()
    except EOFError:  # the child died before sending: its traceback is above
        created = {}
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"neutrino: database migration or bootstrap failed (exit {child.exitcode}); "
                         "see the error above, or run `neutrino db upgrade` to retry")
    return created


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each DB thread its own malloc arena; their fragments add ~50 MB of RSS under
    load for no speed gain here. M_ARENA_MAX (-8) caps them, as MALLOC_ARENA_MAX would."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from neutrino.db import migrate
    from neutrino.db.engine import Database

    cfg = _cloud_config(args)  # without --state-dir or --db: the running cloud's database
    db = Database(cfg.db_url)
    ran = migrate.upgrade(db)
    print(f"database {cfg.db_url.split('://')[0]}: {'migrated to' if ran else 'already at'} "
          f"{migrate.head_revision()}")
    return 0


def _cloud_config(args: argparse.Namespace) -> Config:
    """The configuration pointed at this host's running cloud unless ``--state-dir`` names one."""
    from neutrino.cmd import hostclaim

    cfg = _load_config(args)
    hostclaim.locate(cfg, getattr(args, "state_dir", None))
    return cfg


def cmd_cleanup(args: argparse.Namespace) -> int:
    if not args.all:
        if args.links:
            raise SystemExit("neutrino cleanup: --links goes with --all (a cloud's own link is always removed)")
        from neutrino.cmd import cloud

        return cloud.cmd_cleanup(_cloud_config(args), args.dry_run)
    from neutrino.cmd import hostclaim
    from neutrino.kernel import janitor, links, netns

    live = hostclaim.claimed_hosts()
    if live and not args.dry_run:  # removing a live cloud's namespaces leaves its agents failing
        raise SystemExit(f"neutrino cleanup --all: a cloud or agent still runs on this host (node namespaces "
                         f"{', '.join(live)}); stop it first with `neutrino down`")
    if args.dry_run:
        names = janitor.select_namespaces(netns.list_namespaces())
        devs = janitor.select_links(link.name for link in links.list_links(None)) if args.links else []
        print("would remove:", *(names + devs) or ["nothing"], sep="\n  ")
        return 0
    removed = janitor.cleanup(root_links=args.links)
    for kind, names in (("namespace", removed.namespaces), ("link", removed.links)):
        for name in names:
            print(f"removed {kind} {name}")
    if not removed.namespaces and not removed.links:
        print("nothing of neutrino's left on this host")
    return 0


def _cloud_verb(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from neutrino.cmd import cloud

        if name == "up":
            return cloud.cmd_up(_cloud_config(args), args.config)
        if name == "down":
            return cloud.cmd_down(_cloud_config(args))
        if name == "status":
            return cloud.cmd_status(_cloud_config(args))
        if name == "agent":
            return cloud.cmd_agent(_load_config(args))
        return cloud.cmd_allinone(_load_config(args), args)
    return run


def _instance(args: argparse.Namespace) -> int:
    from neutrino.cmd.instance import cmd_instance

    return cmd_instance(_cloud_config(args), args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neutrino", description="Neutron-compatible networking service")
    p.add_argument("--config", help="TOML config file (default /etc/neutrino/neutrino.toml if present)")
    sub = p.add_subparsers(dest="command", required=True)
    srv = sub.add_parser("server", help="serve the Neutron v2.0 and Keystone v3 APIs")
    srv.add_argument("--bind", help="HOST:PORT (default 127.0.0.1:9696)")
    srv.add_argument("--state-dir", help="holds the SQLite database and clouds.yaml")
    srv.add_argument("--db", help="database URL (sqlite:///..., postgresql+psycopg://..., mysql+pymysql://...)")
    srv.add_argument("--noauth", action="store_true", help="no Keystone: every request is admin (labs)")
    srv.add_argument("--log-level", default="warning")
    srv.add_argument("--access-log", action="store_true")
    srv.set_defaults(func=cmd_server)
    up = sub.add_parser("up", help="start the all-in-one cloud (server + this host's agents) in the background")
    up.add_argument("--state-dir", help="database, clouds.yaml, logs (default /var/lib/neutrino); the other "
                                        "commands then find the running cloud without it")
    up.add_argument("--bind", help="HOST:PORT of the API (default 127.0.0.1:9696)")
    up.set_defaults(func=_cloud_verb("up"))
    down = sub.add_parser("down", help="stop the all-in-one cloud and remove everything it made on this host")
    down.add_argument("--state-dir", help="default: the cloud running on this host")
    down.set_defaults(func=_cloud_verb("down"))
    status = sub.add_parser("status", help="the all-in-one cloud's process, API and agents")
    status.add_argument("--state-dir", help="default: the cloud running on this host")
    status.set_defaults(func=_cloud_verb("status"))
    agent = sub.add_parser("agent", help="this host's agents alone, talking to the server over AMQP "
                                         "([DEFAULT] transport_url = amqp://...)")
    agent.add_argument("--state-dir", help="where the agents keep DHCP and metadata files")
    agent.set_defaults(func=_cloud_verb("agent"))
    aio = sub.add_parser("allinone", help="server and this host's agents in the foreground (what `up` runs)")
    aio.add_argument("--state-dir")
    aio.add_argument("--bind")
    aio.add_argument("--log-level", default="warning")
    aio.set_defaults(func=_cloud_verb("allinone"))
    instance.add_parser(sub, _instance)
    lab.add_parser(sub)
    clean = sub.add_parser("cleanup", help="remove what a stopped cloud left on this host (its database's "
                                          "namespaces, its node namespace and gateway link); with --all, every "
                                          "namespace carrying neutrino's name prefixes, whoever made it")
    clean.add_argument("--state-dir", help="the cloud whose leftovers go (default: this host's cloud)")
    clean.add_argument("--all", action="store_true", help="every namespace with neutrino's prefixes, of any cloud")
    clean.add_argument("--links", action="store_true", help="with --all: also our links in the root namespace")
    clean.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    clean.set_defaults(func=cmd_cleanup)
    db = sub.add_parser("db", help="database maintenance")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    upgrade = dbsub.add_parser("upgrade", help="run the schema migrations")
    upgrade.add_argument("--state-dir")
    upgrade.add_argument("--db")
    upgrade.set_defaults(func=cmd_db_upgrade)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args = parser().parse_args(argv)
        code = int(args.func(args))
        sys.stdout.flush()  # inside the try: a reader that went away shows here, not at exit
        return code
    except ConfigError as exc:
        print(f"neutrino: configuration error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        return 128 + signal.SIGPIPE  # as a command killed by SIGPIPE, without a traceback


def _stdout_closed() -> bool:
    """Whether our stdout's reader went away (``neutrino status | head``): the kernel flags a pipe
    whose read end is closed with POLLERR. If so, stdout now points at /dev/null so that the
    interpreter's final flush does not fail a second time."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        closed = any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False
    if closed:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return closed


if __name__ == "__main__":
    sys.exit(main())
