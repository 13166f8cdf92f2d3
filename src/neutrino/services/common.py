"""Helpers every resource service uses: visibility, ownership, standard attributes."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, Select, or_, select
from sqlalchemy.orm import Session

from neutrino.context import Context
from neutrino.db.models.base import StandardAttrs, utcnow
from neutrino.errors import ResourceNotFound

M = TypeVar("M", bound=StandardAttrs)


def visible(model: type[M], ctx: Context, *also: Any) -> Select[M]:
    """Rows the context may see: everything for admins, else own project (or ``also`` rules).

    This only narrows the query for efficiency; whether the caller may see a row is the policy
    engine's decision (``get_<resource>``), made on what this returns."""
    stmt = select(model)
    if not ctx.sees_all:
        stmt = stmt.where(or_(model.project_id == ctx.project_id, *also))
    return stmt


def get_or_404(s: Session, model: type[M], ctx: Context, id: str, resource: str, *also: Any) -> M:
    row = s.scalars(visible(model, ctx, *also).where(model.id == id)).first()
    if row is None:
        raise ResourceNotFound(resource, id)
    return row


def prefilter(stmt: Any, table: Any, filters: dict[str, list[Any]]) -> Any:
    """Push equality filters on plain non-null columns into SQL; the controller's pass still
    decides the result, this only keeps a `?name=x` from loading every row first."""
    for key, wanted in filters.items():
        col = table.c.get(key)
        if col is not None and not col.nullable and not isinstance(col.type, (JSON, DateTime)):
            if any(isinstance(w, int) and not -2**63 <= w < 2**63 for w in wanted):
                continue  # beyond any SQL integer: leave the (empty) answer to the Python pass
            stmt = stmt.where(col.in_(wanted))
    return stmt


def touch(row: Any) -> None:
    row.revision_number = (row.revision_number or 0) + 1
    row.updated_at = utcnow()


def touch_once(s: Session, row: Any) -> None:
    """A revision caused by a change to another row (Neutron's ``revises_on_change``: a subnet
    created or deleted revises its network): one per transaction, however many such changes
    it makes, as Neutron's revision plugin bumps a related row once until commit."""
    bumped: set[tuple[str, str]] = s.info.setdefault("related_revisions", set())
    key = (type(row).__name__, row.id)
    if key not in bumped:
        bumped.add(key)
        touch(row)


def set_tags(row: Any, tags: list[str]) -> list[str]:
    """Replace a resource's tags; a change is a revision like any other."""
    if tags != list(row.tags or []):
        row.tags = tags
        touch(row)
    return tags


def apply(row: Any, body: dict[str, Any], columns: dict[str, str] | None = None) -> bool:
    """Set changed attributes (API name -> column via ``columns``); True when anything changed."""
    changed = False
    for key, value in body.items():
        col = (columns or {}).get(key, key)
        if getattr(row, col) != value:
            setattr(row, col, value)
            changed = True
    return changed


def timestamp(value: Any) -> str | None:
    """Neutron's timestamp format: ``2026-11-21T09:00:00Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def standard(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "name": row.name,
        "description": row.description,
        "tags": list(row.tags or []),
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.updated_at),
        "revision_number": row.revision_number,
    }
