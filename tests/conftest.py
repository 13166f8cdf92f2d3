"""Shared fixtures: a real server on a temporary SQLite state dir, driven over HTTP."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from neutrino import config
from neutrino.config import Config


def make_config(state_dir: Path, **sections: dict[str, Any]) -> Config:
    cfg = config.load(env={})
    cfg.DEFAULT.state_dir = str(state_dir)
    cfg.identity.admin_password = "admin-secret"
    cfg.identity.demo_password = "demo-secret"
    for name, values in sections.items():
        for key, value in values.items():
            setattr(getattr(cfg, name), key, value)
    return cfg


def lb_agent_conf(tunneling_ip: str = "172.30.0.11", **more: Any) -> dict[str, Any]:
    """What a Linux bridge agent reports (agent/host.py): binding reads its tunnel types and
    mappings, so a test that binds ports on a host reports this first (``Api.agent``)."""
    return {"bridge_mappings": {}, "interface_mappings": {}, "tunneling_ip": tunneling_ip,
            "tunnel_types": ["vxlan"], **more}


class Api:
    """A TestClient with noauth identities: ``as_(project, roles)`` picks who is asking."""

    def __init__(self, client: TestClient, srv: Any = None) -> None:
        self.client = client
        self.srv = srv
        self.headers: dict[str, str] = {"X-Project-Id": "admin", "X-Roles": "admin,member,reader"}

    def as_(self, project: str, roles: str = "member,reader") -> Api:
        other = Api(self.client, self.srv)
        other.headers = {"X-Project-Id": project, "X-Roles": roles}
        return other

    def agent(self, host: str, agent_type: str = "", **configurations: Any) -> None:
        """An alive L2 agent on ``host`` (a Linux bridge one with ``lb_agent_conf`` by default)
        reports in, as its heartbeat would: ports bind there from now on."""
        from neutrino.messages import LINUXBRIDGE_AGENT

        assert self.srv is not None, "this Api was made without its server"
        self.srv.rpc.report_state(host, agent_type or LINUXBRIDGE_AGENT, configurations or lb_agent_conf(),
                                  start_flag=True)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def create(self, member: str, **attrs: Any) -> dict[str, Any]:
        """POST and assert 201; returns the created resource."""
        path = member.replace("_", "-")
        r = self.post(f"/v2.0/{path}s" if not path.endswith("y") else f"/v2.0/{path[:-1]}ies",
                      json={member: attrs})
        assert r.status_code == 201, r.text
        return r.json()[member]  # type: ignore[no-any-return]


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return make_config(tmp_path, DEFAULT={"auth_strategy": "noauth"})


@pytest.fixture
def api(cfg: Config) -> Iterator[Api]:
    """The whole server in process, noauth mode: headers say who is asking."""
    from neutrino import server

    srv = server.build(cfg)
    with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
        yield Api(client, srv)
    srv.db.dispose()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn serving the app on a free loopback port, in a thread of this process."""

    def __init__(self, app: Any, port: int) -> None:
        import threading

        import uvicorn

        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live(cfg: Config) -> Iterator[LiveServer]:
    """The server over real HTTP on loopback (noauth unless the test's cfg says otherwise)."""
    from neutrino import server

    port = free_port()
    cfg.DEFAULT.bind = f"127.0.0.1:{port}"
    srv = server.build(cfg)
    with LiveServer(srv.app, port) as live_server:
        yield live_server
    srv.db.dispose()


@contextlib.contextmanager
def live_servers(cfg: Config, count: int) -> Iterator[list[tuple[Any, LiveServer]]]:
    """``count`` servers on the configured database, each with its own engine, locks and
    uvicorn: as API workers or replicas of one deployment are. Yields (server, live) pairs."""
    from neutrino import server

    started: list[tuple[Any, LiveServer]] = []
    try:
        for _ in range(count):
            port = free_port()
            cfg.DEFAULT.bind = f"127.0.0.1:{port}"
            srv = server.build(cfg)
            started.append((srv, LiveServer(srv.app, port)))
            started[-1][1].__enter__()
        yield started
    finally:
        for srv, live_server in started:
            live_server.__exit__(None, None, None)
            srv.db.dispose()


# ---------------------------------------------------------------- throwaway PostgreSQL / MariaDB databases

ADMIN_URLS = {
    "postgresql": os.environ.get("NEUTRINO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "mysql": os.environ.get("NEUTRINO_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"),
}


@pytest.fixture(params=["postgresql", "mysql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A new empty database on the PostgreSQL or MariaDB server at loopback, dropped afterwards;
    the test is skipped (saying how to provide one) where no server answers."""
    yield from throwaway_database(request.param)


def throwaway_database(kind: str) -> Iterator[str]:
    """The generator behind ``db_url``, for fixtures that choose the database kind themselves."""
    from sqlalchemy import create_engine, text

    admin_url = ADMIN_URLS[kind]
    name = f"neutrino_t_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means skip
        pytest.skip(f"{kind} not reachable at {admin_url.split('@')[-1]} ({type(exc).__name__}); start it "
                    f"or set NEUTRINO_TEST_{'PG' if kind == 'postgresql' else 'MYSQL'}_URL")
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if kind == "postgresql" else ""
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
        admin.dispose()


# ---------------------------------------------------------------- nothing left behind (issue test 6)

_BEFORE: dict[str, set[str]] = {}


def _host_view() -> dict[str, set[str]]:
    from neutrino.kernel import links, netns
    from neutrino.kernel.names import is_our_link, is_our_namespace

    if os.geteuid() != 0:
        return {}
    return {"namespaces": {n for n in netns.list_namespaces() if is_our_namespace(n) and not n.startswith("nt-bench")},
            "links": {link.name for link in links.list_links(None) if is_our_link(link.name)},
            "processes": _test_daemons()}


def _test_daemons() -> set[str]:
    """dnsmasq/haproxy/udhcpc started by tests (their command lines name pytest's tmp dirs)."""
    from neutrino.kernel import procs

    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            argv = procs.cmdline(int(entry)) or []
            if argv and os.path.basename(argv[0]) in ("dnsmasq", "haproxy", "udhcpc", "busybox") \
                    and "/pytest-of-" in " ".join(argv):
                found.add(f"{entry} {os.path.basename(argv[0])}")
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist)
        _BEFORE.update(_host_view())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After the whole run, the machine shows the same neutrino namespaces and links as before."""
    if hasattr(session.config, "workerinput") or not _BEFORE:
        return
    after = _host_view()
    left = {kind: sorted(after.get(kind, set()) - _BEFORE.get(kind, set()))
            for kind in ("namespaces", "links", "processes")}
    if any(left.values()):
        print(f"\nLEFT BEHIND by the test run: {left}", flush=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
