"""The client's connector: where the API is reachable only from elsewhere (an isolated lab's
underlay), every connection, the sign-in's too, is opened by the connector it was given."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from neutrino.client import Client


class Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self._answer(200, {"path": self.path}, {})

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(201, {"token": {"project": {"id": "p1"}}}, {"X-Subject-Token": "t1"})

    def _answer(self, status: int, body: dict[str, object], headers: dict[str, str]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_every_connection_goes_through_the_connector(api: int, tmp_path: Path) -> None:
    asked: list[tuple[str, int]] = []

    def via(host: str, port: int, timeout: float | None) -> socket.socket:
        asked.append((host, port))
        return socket.create_connection(("127.0.0.1", api), timeout=timeout)  # "from inside the lab"

    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"demo": {"auth": {
        "auth_url": "http://172.30.0.11:9696/identity/v3", "username": "demo", "password": "x",
        "project_name": "demo"}}}}))
    client = Client.from_clouds(clouds, "demo", via=via)
    assert client.get("/v2.0/networks", name="n") == {"path": "/v2.0/networks?name=n"}
    assert client.project_id == "p1" and client.headers == {"X-Auth-Token": "t1"}
    assert asked == [("172.30.0.11", 9696), ("172.30.0.11", 9696)]  # the sign-in, then the call
