"""``guard(session, key)``: make the writers of one scope meet, on PostgreSQL.

PostgreSQL writers run REPEATABLE READ (snapshot isolation, :mod:`neutrino.db.engine`): it
catches two transactions updating one row (the later is retried on a fresh snapshot), not two
that each read what the other writes. An invariant that rests on such a read (no two subnets of
a network overlap; a quota's count; a network stays unshared while other projects' ports are
on it) takes a guard on both sides: each bumps the row ``write_guards.key``, so the second of
two concurrent writers waits for the first and, once it committed, fails with a serialization
error, and ``Database.transaction`` runs it again on a snapshot that sees the first's rows.

SQLite has one writer at a time and MySQL/MariaDB writers stay SERIALIZABLE (their locking
reads already meet), so there a guard costs nothing.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session

_BUMP = text("INSERT INTO write_guards (key, bumps) VALUES (:key, 1) "
             "ON CONFLICT (key) DO UPDATE SET bumps = write_guards.bumps + 1")
MAX_KEY = 200


def guard(session: Session, *keys: str) -> None:
    """Serialize this transaction with every other one that guards one of ``keys`` (PostgreSQL)."""
    if not keys or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(_BUMP, [{"key": _fit(key)} for key in keys])


def _fit(key: str) -> str:
    """The key itself, or where it is too long for the column (a project id an admin made 255
    characters long, say) its start and a digest of the whole."""
    return key if len(key) <= MAX_KEY else f"{key[:MAX_KEY - 65]}#{hashlib.sha256(key.encode()).hexdigest()}"
