"""SQL that means the same on SQLite, PostgreSQL and MariaDB/MySQL.

Lists are filtered, sorted and paged in SQL; their answer must not depend on the database:

- :func:`exact`: a string compared and ordered by code point, case and trailing spaces
  included (Python's ``<`` on ``str``). SQLite's BINARY collation does so already; PostgreSQL
  is given ``COLLATE "C"`` (its default collation follows the locale) and MariaDB a cast to
  bytes (its ``utf8mb4_general_ci`` ignores case, and even ``utf8mb4_bin`` pads with spaces).
- :func:`json_has`: a JSON array column (tags) holds a given string, compared exactly.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FunctionElement


class _Exact(FunctionElement[Any]):
    inherit_cache = True
    name = "exact"


@compiles(_Exact)
def _exact_default(element: _Exact, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(list(element.clauses)[0], **kw))


@compiles(_Exact, "postgresql")
def _exact_pg(element: _Exact, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(list(element.clauses)[0], **kw)}) COLLATE "C"'


@compiles(_Exact, "mysql")
@compiles(_Exact, "mariadb")
def _exact_mysql(element: _Exact, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(list(element.clauses)[0], **kw)} AS BINARY)"


def exact(expr: Any) -> Any:
    """``expr`` (a string expression or a Python str) for exact comparison and ordering; any
    other type as it is."""
    if isinstance(expr, str):
        expr = literal(expr, String())
    if isinstance(getattr(expr, "type", None), String):
        return _Exact(expr)
    return expr


class _JsonHas(FunctionElement[bool]):
    inherit_cache = True
    name = "json_has"
    type = Boolean()


@compiles(_JsonHas)
def _json_has_sqlite(element: _JsonHas, compiler: Any, **kw: Any) -> str:
    col, value = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXISTS (SELECT 1 FROM json_each({col}) AS je WHERE je.type = 'text' AND je.value = {value})"


@compiles(_JsonHas, "postgresql")
def _json_has_pg(element: _JsonHas, compiler: Any, **kw: Any) -> str:
    col, value = (compiler.process(c, **kw) for c in element.clauses)
    return f"COALESCE(CAST({col} AS JSONB) ? {value}, false)"


@compiles(_JsonHas, "mysql")
@compiles(_JsonHas, "mariadb")
def _json_has_mysql(element: _JsonHas, compiler: Any, **kw: Any) -> str:
    # Each element compared as bytes: JSON_CONTAINS follows the column's collation, which is
    # case-insensitive here, so a tag "Y" would count as "y" (Neutron's tags are exact).
    col, value = (compiler.process(c, **kw) for c in element.clauses)
    return (f"EXISTS (SELECT 1 FROM JSON_TABLE({col}, '$[*]' COLUMNS (je VARCHAR(255) PATH '$')) AS jt "
            f"WHERE CAST(jt.je AS BINARY) = CAST({value} AS BINARY))")


def json_has(column: Any, value: str) -> ColumnElement[bool]:
    """True where the JSON array in ``column`` has the string ``value`` as an element."""
    return _JsonHas(column, literal(value, String()))  # type: ignore[return-value]
