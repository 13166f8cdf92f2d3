"""One request's work in one database transaction: the only way the API reaches the database.

The HTTP layers build the work as a closure (the policy check, then the services' calls) and
hand it here; they never hold the :class:`~neutrino.db.engine.Database`, so the layering
contract can forbid them ``neutrino.db`` outright. A write behaves as if it ran alone and is
rerun whole on a lost race, each attempt on a fresh read-only copy of its inputs; a read sees
one snapshot (both :mod:`neutrino.db.engine`). What the client is told when the database
fails is decided by :mod:`neutrino.services.db_failures`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from neutrino.db.engine import Database

T = TypeVar("T")


class UnitOfWork:
    """Runs a request's closure in a read or a write transaction (the database stays private)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def write(self, fn: Callable[..., T], *inputs: Any) -> T:
        """``fn(session, *inputs)`` in one write transaction, rerun on serialization failures and
        deadlocks: pass the request's data as ``inputs`` so a retry never sees what an earlier
        attempt did to it."""
        return self._db.transaction(fn, *inputs)

    def read(self, fn: Callable[[Session], T]) -> T:
        """``fn(session)`` in one read transaction: all its statements see the same snapshot."""
        return self._db.read(fn)
