"""A real ``neutrino server`` process, started as the README says, for tests that need the
server outside the test process (client compatibility, several server processes on one
database)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

BIN = Path(sys.executable).parent


@dataclass
class RunningServer:
    url: str
    state_dir: Path
    clouds: Path
    proc: subprocess.Popen[bytes]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds)
        env.update(extra)
        return env


def start_server(state_dir: Path, *extra: str) -> RunningServer:
    """Start `neutrino server --bind --state-dir` exactly as the README says; wait until it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(state_dir / "server.log", "wb")
    proc = subprocess.Popen([str(BIN / "neutrino"), "server", "--bind", f"127.0.0.1:{port}",
                             "--state-dir", str(state_dir), *extra], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {(state_dir / 'server.log').read_text()}")
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return RunningServer(url, state_dir, state_dir / "clouds.yaml", proc)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    stop_server(proc)
    raise RuntimeError("server did not answer within 30 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """End the process we started, by its PID: TERM, then KILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def here_and_there(cfg: Any, db_url: str, state_dir: Path) -> Iterator[tuple[Any, Any, RunningServer]]:
    """Two server processes on one database: (server, its LiveServer) in this process, where a
    test can reach into its engine and agent RPC, and a ``neutrino server`` process beside it.
    The one here migrates the database first, so the other starts on the finished schema."""
    from tests.conftest import live_servers

    cfg.database.connection = db_url
    with live_servers(cfg, 1) as started:
        ((srv, live),) = started
        state_dir.mkdir(exist_ok=True)
        other = start_server(state_dir, "--db", db_url, "--noauth")
        try:
            yield srv, live, other
        finally:
            stop_server(other.proc)
