"""Taking the lowest free value of a pool without reading what is in use.

A pool (a subnet's allocation pools, a network type's tenant ranges on one physnet) keeps its
free values as runs (:class:`~neutrino.db.models.free_ranges.FreeRange`). Taking a value reads
one run and shortens it; giving one back extends or adds one; a request for a given value
splits the run holding it. A /8 with a million addresses taken, or a VXLAN range of 16M ids,
costs a couple of indexed rows per allocation.

The runs are bookkeeping; the allocation tables stay the truth and their primary keys refuse a
duplicate whatever the runs say. So every value taken from a run is checked (one indexed
lookup) before it is handed out, and the runs are (re)built from the truth only when they do
not exist yet (a pool created before this bookkeeping, or whose ranges changed: a subnet's
pools or gateway, ``[ml2_type_*]`` ranges) or are empty (the pool may be full, or a value was
freed where nothing gave it back: a database-level cascade). Concurrent takers update the same
run, so their transactions conflict and one is retried, on every database.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update

from neutrino.db.models.free_ranges import FreePool, FreeRange

Runner = Any  # a Session or a Connection: anything with execute()


def hex_key(value: int) -> str:
    """A value as it is stored: 32 hex digits, so text order is number order."""
    return f"{value:032x}"


@dataclass
class Pool:
    """What a pool hands out and how to ask the truth.

    ``ranges``: the values that may be handed out, (first, last) in the order they are used;
    ``used``: every value in use (read only to build the runs); ``taken``: whether one value is
    in use (one indexed lookup)."""

    name: str
    ranges: list[tuple[int, int]]
    used: Callable[[], Iterable[int]]
    taken: Callable[[int], bool]

    @property
    def digest(self) -> str:
        return hashlib.sha256(repr(self.ranges).encode()).hexdigest()

    def position(self, value: int) -> int | None:
        for i, (lo, hi) in enumerate(self.ranges):
            if lo <= value <= hi:
                return i
        return None


def take(s: Runner, pool: Pool) -> int | None:
    """The lowest free value (in the order of the ranges), now no longer free; None when the
    pool is full."""
    built = _ensure(s, pool)
    while True:
        row = s.execute(select(FreeRange.first, FreeRange.last).where(FreeRange.pool == pool.name)
                        .order_by(FreeRange.position, FreeRange.first).limit(1)).first()
        if row is None:
            if built:
                return None
            _build(s, pool)  # empty runs: full, or values were freed behind the bookkeeping's back
            built = True
            continue
        value = int(row.first, 16)
        if row.first == row.last:
            s.execute(delete(FreeRange).where(FreeRange.pool == pool.name, FreeRange.first == row.first))
        else:
            s.execute(update(FreeRange).where(FreeRange.pool == pool.name, FreeRange.first == row.first)
                      .values(first=hex_key(value + 1)))
        if pool.position(value) is not None and not pool.taken(value):
            return value


def remove(s: Runner, pool: Pool, value: int) -> None:
    """``value`` was taken on request (a given fixed IP, a provider segmentation id): split it
    out of its run."""
    if not _current(s, pool):
        return  # built from the truth when first used, with this value in it
    key = hex_key(value)
    row = s.execute(select(FreeRange.first, FreeRange.last, FreeRange.position)
                    .where(FreeRange.pool == pool.name, FreeRange.first <= key)
                    .order_by(FreeRange.first.desc()).limit(1)).first()
    if row is None or row.last < key:
        return
    s.execute(delete(FreeRange).where(FreeRange.pool == pool.name, FreeRange.first == row.first))
    runs = [(int(row.first, 16), value - 1), (value + 1, int(row.last, 16))]
    _insert(s, pool.name, [(a, b, row.position) for a, b in runs if a <= b])


def give_back(s: Runner, pool: Pool, value: int) -> None:
    """``value`` is free again: join it to the runs beside it (lowest-first stays lowest-first)."""
    position = pool.position(value)
    if position is None or not _current(s, pool):
        return
    key = hex_key(value)
    holder = s.execute(select(FreeRange.last).where(FreeRange.pool == pool.name, FreeRange.first <= key)
                       .order_by(FreeRange.first.desc()).limit(1)).first()
    if holder is not None and holder.last >= key:
        return  # already free
    before = s.execute(select(FreeRange.first).where(
        FreeRange.pool == pool.name, FreeRange.last == hex_key(value - 1), FreeRange.position == position)).first()
    after = s.execute(select(FreeRange.last).where(
        FreeRange.pool == pool.name, FreeRange.first == hex_key(value + 1), FreeRange.position == position)).first()
    first, last = key, key
    if after is not None:
        s.execute(delete(FreeRange).where(FreeRange.pool == pool.name, FreeRange.first == hex_key(value + 1)))
        last = after.last
    if before is not None:
        s.execute(update(FreeRange).where(FreeRange.pool == pool.name, FreeRange.first == before.first)
                  .values(last=last))
        return
    s.execute(insert(FreeRange).values(pool=pool.name, first=first, last=last, position=position))


def drop(s: Runner, names: list[str]) -> None:
    """Forget the runs of pools that no longer exist (deleted subnets)."""
    if names:
        s.execute(delete(FreeRange).where(FreeRange.pool.in_(names)))
        s.execute(delete(FreePool).where(FreePool.pool.in_(names)))


def _current(s: Runner, pool: Pool) -> bool:
    digest = s.execute(select(FreePool.digest).where(FreePool.pool == pool.name)).scalar()
    return bool(digest == pool.digest)


def _ensure(s: Runner, pool: Pool) -> bool:
    """Build the runs unless they exist for the pool's current ranges; True when built now."""
    if _current(s, pool):
        return False
    _build(s, pool)
    return True


def _build(s: Runner, pool: Pool) -> None:
    """The runs from the truth: the ranges minus every value in use (reads them all, once)."""
    used = sorted(set(pool.used()))
    runs: list[tuple[int, int, int]] = []
    for position, (lo, hi) in enumerate(pool.ranges):
        at = lo
        for value in used[bisect.bisect_left(used, lo):bisect.bisect_right(used, hi)]:
            if value > at:
                runs.append((at, value - 1, position))
            at = value + 1
        if at <= hi:
            runs.append((at, hi, position))
    s.execute(delete(FreeRange).where(FreeRange.pool == pool.name))
    _insert(s, pool.name, runs)
    if s.execute(select(FreePool.pool).where(FreePool.pool == pool.name)).first() is None:
        s.execute(insert(FreePool).values(pool=pool.name, digest=pool.digest))
    else:
        s.execute(update(FreePool).where(FreePool.pool == pool.name).values(digest=pool.digest))


def _insert(s: Runner, name: str, runs: list[tuple[int, int, int]]) -> None:
    if runs:
        s.execute(insert(FreeRange), [{"pool": name, "first": hex_key(a), "last": hex_key(b), "position": p}
                                      for a, b, p in runs])
