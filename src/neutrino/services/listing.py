"""List pages read in SQL: filters, visibility, sort order and the page window are the query's.

A list request costs what its page costs, not what the table holds: ``GET /v2.0/ports?limit=10``
reads about ten port rows however many there are. How, per request:

1. The query selects ids (and the sort columns) of the rows that pass the filters and the
   caller's visibility, in the requested order with ``id`` as the tie-breaker (as Neutron does,
   and in the direction of the last sort key), strictly after the marker row (keyset paging:
   no OFFSET), ``limit`` rows at a time. Visibility is the ``get_<resource>`` rule turned
   into SQL (:mod:`neutrino.policy.sql`); filters are the query-string filters turned into SQL.
2. The service loads those items (``Source.load``), and the items pass the same checks in
   Python as before: the filters (:func:`neutrino.api.query.matches`) and the policy engine.
   Where SQL said the same (it normally does), nothing is dropped; where it could only narrow
   (an operator's rule it cannot translate, MariaDB's case-insensitive ``=``, a filter on a
   computed attribute), the next rows are read until the page is full. SQL never decides
   alone, so a page is never different from what the Python pass over every row would give.

Strings sort by code point on every database (:func:`neutrino.db.portable.exact`) and NULL
sorts first, as the Python pass sorted them (None before any value).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, and_, case, false, func, literal, not_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from neutrino.api.attributes import TAG_FILTERS
from neutrino.db.portable import exact, json_has
from neutrino.errors import MarkerNotFound
from neutrino.policy.sql import ABSENT

Item = dict[str, Any]
Filters = dict[str, list[Any]]
MAX_BATCH = 1000  # rows per read when earlier rows were dropped in Python
MAX_LIMIT = 2**31 - 1  # the largest LIMIT every database takes
INT64 = (-(2**63), 2**63 - 1)


@dataclass
class Source:
    """How one resource's list reads the database.

    ``model``: the ORM class of the rows (its ``id`` pages). ``joins``: (table, on) pairs that
    bring in the parents a policy rule names (a port's network); each matches one row.
    ``columns``: item attribute -> SQL expression, for filters, sorting and policy targets, or
    ABSENT for an attribute the items never carry (a port's ``shared``); other attributes that
    are plain columns of the model are found by name. ``filters``: filter key -> function of
    the wanted values giving a condition, for keys that are not plain values (``fixed_ips``).
    ``load``: the items of these ids, in that order. ``order``: the order of an unsorted,
    unpaged list (the order the service always listed in).
    """

    model: Any
    load: Callable[[Session, list[str]], list[Item]]
    columns: dict[str, Any] = field(default_factory=dict)
    joins: Sequence[tuple[Any, Any]] = ()
    filters: dict[str, Callable[[list[Any]], Any]] = field(default_factory=dict)
    order: Sequence[Any] = ()

    def resolve(self, name: str) -> Any:
        """The SQL of an item attribute, ABSENT, or None when SQL cannot say."""
        if name in self.columns:
            return self.columns[name]
        if name == "tenant_id":
            return self.resolve("project_id")
        col = self.model.__table__.c.get(name)
        if col is not None and not isinstance(col.type, (JSON, DateTime)):
            return getattr(self.model, name)
        if ":" in name and name.split(":", 1)[0] in ("network", "security_group", "ext_parent"):
            return ABSENT  # a parent's attribute the targets of this resource never get
        return None


# ---------------------------------------------------------------- filters as SQL


def _nullable(expr: Any) -> bool:
    return bool(getattr(expr, "nullable", True))


def _value_clause(expr: Any, wanted: list[Any]) -> Any:
    """query._value_match in SQL: any wanted value equals the attribute (or its str() does);
    a None attribute matches None, "" and "None". None: SQL cannot say."""
    null_ok = any(w is None or (isinstance(w, str) and w in ("", "None")) for w in wanted)
    if expr is ABSENT:
        return literal(null_ok)
    if expr is None:
        return None
    kind = expr.type
    values: set[Any] = set()
    if isinstance(kind, Boolean):
        for w in wanted:
            if isinstance(w, bool):
                values.add(w)
            elif isinstance(w, int) and w in (0, 1):
                values.add(bool(w))
            elif isinstance(w, str) and w in ("True", "False"):
                values.add(w == "True")
            elif w is not None and not isinstance(w, str):
                return None
    elif isinstance(kind, Integer):
        for w in wanted:
            if isinstance(w, bool | int):
                n = int(w)
            elif isinstance(w, str) and w.lstrip("-").isdigit() and str(int(w)) == w:
                n = int(w)
            elif w is None or isinstance(w, str):
                continue
            else:
                return None
            if INT64[0] <= n <= INT64[1]:
                values.add(n)
    elif isinstance(kind, String):
        values = {str(w) for w in wanted if w is not None}
    else:
        return None
    cond = expr.in_(sorted(values, key=str)) if values else false()
    if null_ok and _nullable(expr):
        cond = or_(cond, expr.is_(None))
    return cond


def _tags_clause(column: Any, key: str, wanted: list[Any]) -> Any:
    """query._tags_match in SQL: each value is a comma list; tags: all of all, tags-any: any
    of any, not-tags / not-tags-any: their negations."""
    names = sorted({t for w in wanted for t in str(w).split(",")})
    has = [json_has(column, t) for t in names]
    if key == "tags":
        return and_(*has)
    if key == "tags-any":
        return or_(*has)
    if key == "not-tags":
        return not_(and_(*has))
    return not_(or_(*has))


def filter_clauses(src: Source, filters: Filters) -> list[Any]:
    """The filters SQL can apply (all of them, for the attributes it knows)."""
    out = []
    for key, wanted in filters.items():
        if key in src.filters:
            clause = src.filters[key](wanted)
        elif key in TAG_FILTERS:
            clause = _tags_clause(src.model.tags, key, wanted)
        else:
            clause = _value_clause(src.resolve(key), wanted)
        if clause is not None:
            out.append(clause)
    return out


# ---------------------------------------------------------------- order and keyset


def _zero(expr: Any) -> Any:
    kind = expr.type
    if isinstance(kind, Boolean):
        return false()
    if isinstance(kind, Integer):
        return literal(0)
    return literal("", String())


def order_parts(src: Source, sorts: list[tuple[str, bool]]) -> list[tuple[Any, Any, bool]] | None:
    """(expression, its comparable form, ascending) in order, NULL first when ascending, ``id``
    last; None when a sort key is not a column SQL knows (the caller then sorts in Python).

    Ids are uuids the server made (lower-case hex and dashes at fixed places): every collation
    orders them as Python does, so they are compared as they are and their index serves."""
    keys = list(sorts)
    if not any(k == "id" for k, _ in keys):
        keys.append(("id", keys[-1][1] if keys else True))
    parts: list[tuple[Any, Any, bool]] = []
    for key, asc in keys:
        if key == "id":
            parts.append((src.model.id, src.model.id, asc))
            continue
        expr = src.resolve(key)
        if key in ("created_at", "updated_at"):
            expr = getattr(src.model, key)  # ISO text in the item: orders as the datetime
        if expr is None or expr is ABSENT or isinstance(expr.type, JSON):
            return None
        if _nullable(expr):
            flag = case((expr.is_(None), 0), else_=1)
            parts.append((flag, flag, asc))
            expr = func.coalesce(expr, _zero(expr))
        parts.append((expr, exact(expr), asc))
    return parts


def _after(parts: list[tuple[Any, Any, bool]], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``parts``."""
    ors = []
    for i, (_, cmp, asc) in enumerate(parts):
        ands = [parts[j][1] == _bound(parts[j], values[j]) for j in range(i)]
        right = _bound(parts[i], values[i])
        ands.append(cmp > right if asc else cmp < right)
        ors.append(and_(*ands))
    return or_(*ors)


def _bound(part: tuple[Any, Any, bool], value: Any) -> Any:
    """``value`` as a parameter of the part's type (one exact side makes the comparison exact)."""
    return literal(value, part[0].type)


# ---------------------------------------------------------------- reading a page


@dataclass
class Page:
    """A list request in SQL terms."""

    where: list[Any]
    sorts: list[tuple[str, bool]]
    limit: int = 0
    marker: str | None = None
    page_reverse: bool = False


def read(s: Session, src: Source, page: Page, accept: Callable[[list[Item]], list[bool]]) -> list[Item] | None:
    """The page's items; None when it cannot be ordered in SQL (a sort key SQL does not know).

    ``accept`` is the Python pass (filters and policy) each loaded item must also pass."""
    paged = bool(page.sorts or page.limit or page.marker)
    parts = order_parts(src, page.sorts) if paged else []
    if parts is None:
        return None
    if page.page_reverse:
        parts = [(raw, cmp, not asc) for raw, cmp, asc in parts]
    base = select(src.model.id, *[raw for raw, _, _ in parts]).select_from(src.model)
    for table, on in src.joins:
        base = base.join(table, on)
    base = base.where(*page.where)
    if parts:
        base = base.order_by(*[cmp.asc() if asc else cmp.desc() for _, cmp, asc in parts])
    elif src.order:
        base = base.order_by(*src.order)
    after: Sequence[Any] | None = None
    if page.marker:
        after = _marker_values(s, src, base, page.marker, accept)
    out: list[Item] = []
    batch = min(page.limit, MAX_LIMIT) if page.limit else 0  # ?limit=10**20: SQL takes no such number
    while True:
        stmt = base.where(_after(parts, after)) if after is not None else base
        if batch:
            stmt = stmt.limit(batch)
        rows = s.execute(stmt).all()
        items = src.load(s, [r[0] for r in rows])
        for item, ok in zip(items, accept(items), strict=True):
            if ok:
                out.append(item)
                if page.limit and len(out) == page.limit:
                    break
        if not batch or len(rows) < batch or len(out) == page.limit:
            break
        after = tuple(rows[-1][1:])
        batch = min(max(batch * 2, page.limit - len(out)), MAX_BATCH)
    if page.page_reverse:
        out.reverse()
    return out


def _marker_values(s: Session, src: Source, base: Any, marker: str,
                   accept: Callable[[list[Item]], list[bool]]) -> tuple[Any, ...]:
    """The sort values of the marker row, which must be one the list itself would show."""
    row = s.execute(base.where(src.model.id == marker).order_by(None).limit(1)).first()
    if row is None:
        raise MarkerNotFound(marker=marker)
    items = src.load(s, [marker])
    if not items or not accept(items)[0]:
        raise MarkerNotFound(marker=marker)
    return tuple(row[1:])


def in_order(ids: list[str], items: list[Item]) -> list[Item]:
    """``items`` in the order of ``ids`` (a load reads them with ``IN``, in no order)."""
    by_id = {i["id"]: i for i in items}
    return [by_id[i] for i in ids if i in by_id]
