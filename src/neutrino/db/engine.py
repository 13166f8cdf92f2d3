"""The database seam: one URL picks SQLite, PostgreSQL or MySQL; transactions retry on races.

Every write transaction behaves as if it ran alone, so the services' check-then-write logic
(quota counts, overlap checks, If-Match, read-modify-write of routes and tags) holds. Within a
process, writers queue on one lock. Across processes (API workers, replicas on one database):
SQLite writers take the write lock up front (``BEGIN IMMEDIATE``); MySQL writers run
SERIALIZABLE; PostgreSQL writers run REPEATABLE READ, where two writers of one row conflict
and an invariant that rests on reading other rows (a count, an overlap) takes a write guard
on both sides (:mod:`neutrino.db.guards`). PostgreSQL's SERIALIZABLE would need no guards, but
its predicate locks cover whole index pages: two servers creating ports on one network aborted
each other about once in three (330 rollbacks in a round of ``bench/api.py --servers 1,2``,
1.31x one server; with REPEATABLE READ and the guards 23 to 35, 1.66x to 1.79x). A
serialization failure, deadlock or lost unique-key race makes :meth:`Database.transaction`
run the whole unit again, each time on a fresh read-only copy of its input
(:mod:`neutrino.db.frozen`), so a retry never sees a body that an earlier attempt changed.

Every read (a list, a show, an agent's sync) is one transaction that sees one snapshot:
REPEATABLE READ (read-only on PostgreSQL) on PostgreSQL/MySQL, a deferred read transaction on
SQLite (WAL). A response built from several statements (ports, then their addresses, then
their security groups) never mixes rows from before and after a concurrent commit.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from neutrino.db.frozen import freeze
from neutrino.errors import TransientDatabaseError

T = TypeVar("T")
RETRIES = 30
# JSON columns (pools, routes, DHCP options...) are decoded on every list: orjson is ~5x faster.
JSON_CODEC: dict[str, Any] = {"json_serializer": lambda v: orjson.dumps(v).decode(),
                              "json_deserializer": orjson.loads}
# One snapshot per read transaction: PostgreSQL's default (READ COMMITTED) gives each statement
# its own, and a MySQL server's default may have been set so by its operator. Every connection
# is made REPEATABLE READ when it opens (no extra round trip per request); writers raise it to
# SERIALIZABLE per transaction; readers on PostgreSQL also declare themselves read-only.
READ_ISOLATION = "REPEATABLE READ"
READ_ONLY: dict[str, dict[str, Any]] = {"postgresql": {"postgresql_readonly": True}}


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **JSON_CODEC)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _rec: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _is_transient(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    if isinstance(exc, IntegrityError):  # a lost race on a unique key, not a broken reference
        # PostgreSQL (REPEATABLE READ): a parent deleted after "not in use" was checked on a
        # snapshot that missed a child committed meanwhile; the rerun's check answers 409
        return any(key in text for key in ("unique", "duplicate", "primary key")) or \
            getattr(exc.orig, "sqlstate", None) == "23503" and "update or delete on table" in text
    return any(
        key in text
        for key in ("deadlock", "serializ", "database is locked", "lock wait timeout", "could not obtain lock")
    )


# How the drivers say the server is not there (refused, gone, restarting); MySQL client codes
# 2002/2003 (cannot connect), 2006 (gone away), 2013 (lost connection).
_UNREACHABLE = ("connection refused", "could not connect", "can't connect", "connection to server",
                "server closed the connection", "terminating connection", "connection is closed",
                "connection not open", "connection timed out", "timeout expired", "gone away",
                "lost connection", "the database system is", "(2002,", "(2003,", "(2006,", "(2013,")


def unreachable(exc: BaseException) -> bool:
    """True when ``exc`` means the database server cannot be reached (rather than a bad query):
    the API answers 503 with Retry-After, and the pool's pre-ping replaces the dead connections
    once it is back."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    return isinstance(exc, (OperationalError, InterfaceError)) and any(key in text for key in _UNREACHABLE)


class Database:
    """Owns the engines and hands out sessions; the only place that commits."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
        else:
            self.engine = create_engine(url, isolation_level=READ_ISOLATION, pool_size=10, max_overflow=20,
                                        pool_pre_ping=True, **JSON_CODEC)
            self.read_engine = self.engine.execution_options(**READ_ONLY.get(self.engine.dialect.name, {}))
        # One writer at a time per process. On SQLite that is the database's rule anyway, and the
        # lock replaces its busy-wait (sleeps of up to 100 ms) with an immediate hand-over. On
        # PostgreSQL/MySQL, transactions that all count ports and read allocations would often
        # abort each other; queued here they do not, and only writers of other processes (API
        # workers, replicas) ever conflict, which the retry loop absorbs.
        self._write_lock = threading.Lock()
        writer = self.engine if self.is_sqlite or self.engine.dialect.name == "postgresql" \
            else self.engine.execution_options(isolation_level="SERIALIZABLE")  # PostgreSQL: READ_ISOLATION
        self._write = sessionmaker(writer, expire_on_commit=False)
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)

    def transaction(self, fn: Callable[..., T], *inputs: Any, retries: int = RETRIES) -> T:
        """Run ``fn(session, *inputs)`` in one write transaction; rerun it whole on a race.

        Each attempt gets its own read-only deep copy of ``inputs`` (request bodies and the
        like): pass the request's data here rather than capturing it in ``fn``, so that what
        one attempt did to it cannot change what the next one does. ``fn`` must raise
        :class:`TransientDatabaseError` (or let an IntegrityError escape) for a lost race; any
        other error rolls back and propagates unchanged.
        """
        for attempt in range(retries):
            try:
                with self._write_lock, self._write.begin() as session:
                    return fn(session, *(freeze(value) for value in inputs))
            except TransientDatabaseError:
                pass
            except DBAPIError as exc:
                if not _is_transient(exc) or attempt == retries - 1:
                    raise
            time.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))  # exponential, with jitter
        raise TransientDatabaseError("gave up after repeated conflicts")

    def read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one read transaction: all its statements see the same snapshot."""
        with self._read.begin() as session:
            return fn(session)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.is_sqlite:  # elsewhere the read engine shares the write engine's pool
            self.read_engine.dispose()

