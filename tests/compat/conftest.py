"""A real ``neutrino server`` process (keystone mode) for the client compatibility tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server_process import RunningServer, start_server, stop_server


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    state = tmp_path_factory.mktemp("state")
    srv = start_server(state)
    try:
        yield srv
    finally:
        stop_server(srv.proc)
