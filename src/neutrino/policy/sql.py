"""A policy rule as an SQL condition, so that a list reads only the rows its caller may see.

A list with ``limit=10`` must come back with ten visible rows without reading the table: the
rows ``get_<resource>`` refuses have to be left out by the query itself. The policy engine
stays the judge (every listed row is still checked with :meth:`Policy.allowed`); this module
only derives from the rule, for one caller, a condition that holds for *at least* every row
the rule allows (an upper bound), and exactly those rows for the checks it understands:

- ``role:x``, ``is_admin:True`` and other checks that do not look at the object: decided once,
  from the caller's values, to TRUE or FALSE;
- ``project_id:%(field)s`` (Neutron's owner check): ``<field's column> = <caller's project>``;
- ``field:networks:shared=True`` and the like: ``<column> = <value>``;
- ``and``/``or``/``not`` and ``rule:`` references, recursively (``not`` turns the bound of its
  operand around, which is why both bounds are computed).

Anything else an operator's ``policy.yaml`` may use (``http:``, a regular expression, a
``%(...)s`` in a generic check, an attribute the resource has no column for) is "unknown":
TRUE in an upper bound, FALSE in a lower one. Such a rule costs more rows read, never a wrong
answer, because the engine re-checks every row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oslo_policy import _checks
from sqlalchemy import Boolean, String, and_, false, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from neutrino.policy.checks import FieldCheck, OwnerCheck

# What a resource's target attribute is in SQL: an expression, ABSENT (the target never has
# this attribute, so a rule reading it reads None), or None (not known in SQL).
ABSENT = object()
Resolve = Callable[[str], Any]
Bound = bool | ColumnElement[bool]
MAX_DEPTH = 32  # rule references deeper than this (a cycle) are "unknown"


def condition(check: Any, creds: dict[str, Any], enforcer: Any, resolve: Resolve) -> Bound:
    """The upper bound of ``check`` for this caller: True, False or a condition on the columns."""
    return _bound(check, True, _Env(creds, enforcer, resolve), 0)


class _Env:
    def __init__(self, creds: dict[str, Any], enforcer: Any, resolve: Resolve) -> None:
        self.creds, self.enforcer, self.resolve = creds, enforcer, resolve


def _unknown(upper: bool) -> Bound:
    return upper


def _and(parts: list[Bound]) -> Bound:
    if any(p is False for p in parts):
        return False
    exprs = [p for p in parts if p is not True]
    if not exprs:
        return True
    return exprs[0] if len(exprs) == 1 else and_(*exprs)  # type: ignore[arg-type]


def _or(parts: list[Bound]) -> Bound:
    if any(p is True for p in parts):
        return True
    exprs = [p for p in parts if p is not False]
    if not exprs:
        return False
    return exprs[0] if len(exprs) == 1 else or_(*exprs)  # type: ignore[arg-type]


def _not(part: Bound) -> Bound:
    if isinstance(part, bool):
        return not part
    return not_(part)


def _bound(check: Any, upper: bool, env: _Env, depth: int) -> Bound:
    if depth > MAX_DEPTH:
        return _unknown(upper)
    kind = type(check)
    if kind is _checks.TrueCheck:
        return True
    if kind is _checks.FalseCheck:
        return False
    if kind is _checks.NotCheck:
        return _not(_bound(check.rule, not upper, env, depth + 1))
    if kind is _checks.AndCheck:
        return _and([_bound(r, upper, env, depth + 1) for r in check.rules])
    if kind is _checks.OrCheck:
        return _or([_bound(r, upper, env, depth + 1) for r in check.rules])
    if kind is _checks.RuleCheck:
        try:
            rule = env.enforcer.rules[check.match]
        except KeyError:
            return False  # oslo.policy fails closed on an unknown rule
        return _bound(rule, upper, env, depth + 1)
    if kind is OwnerCheck:
        return _owner(check, upper, env)
    if kind is FieldCheck:
        return _field(check, upper, env)
    if kind in (_checks.RoleCheck, _checks.GenericCheck) and "%(" not in str(check.match):
        # does not read the object: the caller's values decide it once
        return bool(check({}, env.creds, env.enforcer))
    return _unknown(upper)


def _not_null_eq(expr: Any, value: Any) -> ColumnElement[bool]:
    """``expr = value`` that is FALSE, not NULL, for a NULL ``expr`` (so that NOT keeps its
    meaning in SQL's three-valued logic)."""
    return and_(expr.is_not(None), expr == value)


def _owner(check: OwnerCheck, upper: bool, env: _Env) -> Bound:
    mine = env.creds.get("project_id")
    if not mine:
        return False
    if check.field is None:
        return bool(mine == check.literal)
    names = [check.field]
    if check.field.endswith(":tenant_id"):
        names.append(check.field[: -len("tenant_id")] + "project_id")
    elif check.field == "tenant_id":
        names.append("project_id")
    for name in names:  # the first the target has, as OwnerCheck reads them
        expr = env.resolve(name)
        if expr is ABSENT:
            continue
        if expr is None:
            return _unknown(upper)
        if not isinstance(expr.type, String):
            return _unknown(upper)  # str(owner) of a non-string: leave it to the engine
        return _not_null_eq(expr, mine)
    return False


def _field(check: FieldCheck, upper: bool, env: _Env) -> Bound:
    if check.regex is not None:
        return _unknown(upper)
    names = [check.field]
    if check.resource in ("networks", "subnets"):
        names.append(f"network:{check.field}")  # a port's or subnet's network
    exprs = []
    for name in names:
        expr = env.resolve(name)
        if expr is None:
            return _unknown(upper)
        if expr is not ABSENT:
            exprs.append(expr)
    if not exprs:
        return False
    value = check.value
    for expr in exprs:
        if isinstance(value, bool) != isinstance(expr.type, Boolean) or \
                (isinstance(value, str) and not isinstance(expr.type, String)):
            return _unknown(upper)
    # FieldCheck reads the first attribute that is not None
    if len(exprs) == 1:
        return _not_null_eq(exprs[0], value)
    first, second = exprs
    return or_(_not_null_eq(first, value), and_(first.is_(None), _not_null_eq(second, value)))


def where(bound: Bound) -> ColumnElement[bool]:
    """A bound as a WHERE clause."""
    if bound is True:
        return true()
    if bound is False:
        return false()
    return bound  # type: ignore[return-value]
