"""While the database cannot be reached, requests get 503 with Retry-After (a NeutronError, or
Keystone's error under /identity), never a 500; the first request after it returns succeeds.

"Unreachable" is modelled as it happens: the server reaches PostgreSQL or MariaDB through a
TCP proxy this test owns; stopping the proxy cuts every open connection and refuses new ones,
starting it again on the same port brings the database back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import Api, Config, free_port, throwaway_database
from tests.security.conftest import serving


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the database; ``stop`` makes the database unreachable."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.listener: socket.socket | None = None
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def stop(self) -> None:
        assert self.listener is not None
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
        self.listener.close()
        with self.lock:
            for conn in self.conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self.conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@pytest.fixture(params=["postgresql", "mysql"])
def proxied(request: pytest.FixtureRequest, cfg: Config) -> Iterator[tuple[Api, TcpProxy]]:
    with contextlib.contextmanager(throwaway_database)(request.param) as url:
        parts = urlsplit(url)
        proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or (5432 if "postgresql" in url else 3306)))
        proxy.start()
        userinfo = parts.netloc.rsplit("@", 1)[0]
        cfg.database.connection = urlunsplit(parts._replace(netloc=f"{userinfo}@127.0.0.1:{proxy.port}"))
        try:
            with serving(cfg) as (api, _):
                yield api, proxy
        finally:
            with contextlib.suppress(AssertionError, OSError):
                proxy.stop()


def unavailable(r: Any) -> dict[str, Any]:
    assert r.status_code == 503, (r.status_code, r.text)
    assert int(r.headers["Retry-After"]) > 0
    return r.json()  # type: ignore[no-any-return]


def test_unreachable_database_is_503_with_retry_after_then_recovers(proxied: tuple[Api, TcpProxy]) -> None:
    api, proxy = proxied
    net = api.create("network", name="before")
    proxy.stop()
    for _ in range(2):  # pooled connections are dead, and new ones are refused
        for method, path, body in (("GET", "/v2.0/networks", None),
                                   ("GET", f"/v2.0/networks/{net['id']}", None),
                                   ("POST", "/v2.0/networks", {"network": {"name": "during"}}),
                                   ("PUT", f"/v2.0/networks/{net['id']}", {"network": {"name": "x"}}),
                                   ("DELETE", f"/v2.0/networks/{net['id']}", None)):
            err = unavailable(api.request(method, path, json=body))["NeutronError"]
            assert err["type"] == "HTTPServiceUnavailable" and set(err) == {"type", "message", "detail"}
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "admin-secret"}}}}}
    assert unavailable(api.client.post("/identity/v3/auth/tokens", json=auth))["error"]["code"] == 503
    proxy.start()
    r = api.get("/v2.0/networks")  # the very first request after the database is back
    assert r.status_code == 200, r.text
    assert [n["name"] for n in r.json()["networks"]] == ["before"]
    assert api.post("/v2.0/networks", json={"network": {"name": "after"}}).status_code == 201
    assert api.client.post("/identity/v3/auth/tokens", json=auth).status_code == 201
