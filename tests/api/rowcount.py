"""Counting the rows the server reads from SQLite, for tests that cost must follow the page.

The server's engines open their connections through a ``sqlite3.Connection`` subclass whose
cursors count every row they hand to SQLAlchemy (``fetchone``/``fetchmany``/``fetchall``/
iteration): what a request read is the difference of :attr:`RowCounter.rows` around it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event


class RowCounter:
    def __init__(self) -> None:
        self.rows = 0

    def attach(self, db: Any) -> RowCounter:
        """Count the rows of every connection ``db`` (a :class:`neutrino.db.engine.Database`
        on SQLite) opens from now on; the pools are emptied so that all of them do."""
        counter = self

        class Cursor(sqlite3.Cursor):
            def fetchone(self) -> Any:
                row = super().fetchone()
                counter.rows += row is not None
                return row

            def fetchmany(self, size: int | None = None) -> list[Any]:
                rows = super().fetchmany(size) if size is not None else super().fetchmany()
                counter.rows += len(rows)
                return rows

            def fetchall(self) -> list[Any]:
                rows = super().fetchall()
                counter.rows += len(rows)
                return rows

            def __next__(self) -> Any:
                row = super().__next__()
                counter.rows += 1
                return row

        class Connection(sqlite3.Connection):
            def cursor(self, factory: Any = Cursor) -> Any:  # type: ignore[override]
                return super().cursor(factory)

        for engine in {db.engine, db.read_engine}:
            event.listen(engine, "do_connect", lambda _d, _r, _a, params: params.update(factory=Connection))
            engine.dispose()
        return self

    def during(self, fn: Any) -> tuple[Any, int]:
        """``fn()`` and the rows it read."""
        before = self.rows
        result = fn()
        return result, self.rows - before
