"""Write guards: rows that writers bump to meet each other where PostgreSQL would not make them.

PostgreSQL writers run REPEATABLE READ (:mod:`neutrino.db.engine`): two transactions that
update the same row conflict, and the later one is retried on a fresh snapshot; two that each
read what the other writes (a count, an overlap, an "in use") do not. Where an invariant rests
on such a read, both sides bump the guard row of the thing they read and write
(:func:`neutrino.db.guards.guard`), and the row conflict serializes them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy.orm import Mapped, mapped_column

from neutrino.db.models.base import Base, exact_string


class WriteGuard(Base):
    """One guarded scope (``network-subnets:<id>``, ``quota:<project>:port``...), bumped by its writers."""

    __tablename__ = "write_guards"

    key: Mapped[str] = mapped_column(exact_string(200), primary_key=True)
    bumps: Mapped[int] = mapped_column(BigInteger, default=0)
