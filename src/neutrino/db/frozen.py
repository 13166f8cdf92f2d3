"""Read-only deep copies of a transaction's input, so a retried transaction sees it untouched.

:meth:`neutrino.db.engine.Database.transaction` may run its unit of work several times (a
serialization failure, a deadlock, a lost unique-key race). Each attempt must start from the
request exactly as it arrived: a service that popped or rewrote a key of the body during a
failed attempt would otherwise make the next attempt silently drop that field. Every attempt
therefore gets a fresh :func:`freeze` of its input, and any mutation raises at once, so a
service that tries it fails loudly in tests instead of losing data under contention.

The frozen types subclass ``dict`` and ``list`` (not ``MappingProxyType``/``tuple``) so that
``isinstance`` checks, ``==`` with plain values, JSON columns and orjson keep working.
"""

from __future__ import annotations

from typing import Any, NoReturn


class ReadOnlyInputError(TypeError):
    """Raised on any attempt to change a transaction's input."""


def _refuse(self: Any, *_args: Any, **_kw: Any) -> NoReturn:
    raise ReadOnlyInputError(f"a transaction's input is read-only ({type(self).__name__}); copy it first")


class FrozenDict(dict[str, Any]):
    """A dict that cannot be changed; ``dict(x)`` or ``copy.deepcopy(x)`` give a mutable copy."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse
    pop = popitem = clear = update = setdefault = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {k: thaw(v) for k, v in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class FrozenList(list[Any]):
    """A list that cannot be changed; ``list(x)`` or ``copy.deepcopy(x)`` give a mutable copy."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [thaw(v) for v in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


def freeze(value: Any) -> Any:
    """A new read-only deep copy of ``value`` (dicts and lists; tuples and scalars keep their type)."""
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return FrozenList(freeze(v) for v in value)
    if isinstance(value, tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A mutable deep copy of a frozen (or plain) value."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [thaw(v) for v in value]
    if isinstance(value, tuple):
        return tuple(thaw(v) for v in value)
    return value
