"""Hostile-input fixtures: the server on each of the three databases."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import Api, Config, throwaway_database


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def any_db_server(request: pytest.FixtureRequest, cfg: Config) -> Iterator[tuple[Api, Any]]:
    """The whole server in process (noauth) on SQLite, PostgreSQL or MariaDB, and the server
    object (its agent RPC); server errors are answered (500), not raised, so a test sees what a
    client would."""
    database = contextlib.nullcontext("") if request.param == "sqlite" else \
        contextlib.contextmanager(throwaway_database)(request.param)
    with database as url:
        cfg.database.connection = url
        with serving(cfg) as served:
            yield served


@contextlib.contextmanager
def serving(cfg: Config) -> Iterator[tuple[Api, Any]]:
    """The whole server in process on ``cfg``'s database, answering its own errors (a 500 is a
    response a test can assert on, not an exception raised into it); yields (client, server)."""
    from neutrino import server

    srv = server.build(cfg)
    try:
        with TestClient(srv.app, base_url="http://127.0.0.1:9696", raise_server_exceptions=False) as client:
            yield Api(client), srv
    finally:
        srv.db.dispose()


@pytest.fixture
def any_db_api(any_db_server: tuple[Api, Any]) -> Api:
    """``any_db_server``'s API client alone."""
    return any_db_server[0]
