"""Tokens: issuing rows, turning a bearer string back into who it names, and the hot-path cache.

A token is valid only while its row is unrevoked and unexpired *and* its user is enabled and
still holds a role on its project; roles are read at validation time, so a revoked assignment
ends the token's power (after the cache is cleared, which every identity write does).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from neutrino.context import Context
from neutrino.db.models.identity import Project, Role, RoleAssignment, Token, User

# Keystone's default role inference after bootstrap: admin implies member implies reader.
IMPLIES: dict[str, tuple[str, ...]] = {"admin": ("member",), "member": ("reader",)}


def hash_token(raw: str) -> str:
    """Rows are keyed by this, so a copy of the database holds no usable bearer tokens."""
    return hashlib.sha256(raw.encode()).hexdigest()


def audit_id(token_hash: str) -> str:
    digest = hashlib.sha256(b"audit:" + token_hash.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


@dataclass(frozen=True)
class TokenInfo:
    """A validated token: what the token body and the request context are built from."""

    token_hash: str
    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    roles: tuple[tuple[str, str], ...]  # (id, name)
    methods: tuple[str, ...]
    issued_at: dt.datetime  # naive UTC
    expires_at: dt.datetime  # naive UTC
    context: Context | None  # None when unscoped: such tokens cannot call the network API

    @property
    def audit_id(self) -> str:
        return audit_id(self.token_hash)

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(name for _, name in self.roles)

    @property
    def is_admin(self) -> bool:
        return self.project_id is not None and "admin" in self.role_names

    @property
    def expires_ts(self) -> float:
        return self.expires_at.replace(tzinfo=dt.UTC).timestamp()


def effective_roles(s: Session, user_id: str, project_id: str) -> tuple[tuple[str, str], ...]:
    """Assigned roles plus the ones they imply, sorted by name; empty means no access."""
    rows = s.execute(
        select(Role.id, Role.name)
        .join(RoleAssignment, RoleAssignment.role_id == Role.id)
        .where(RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id)
    ).all()
    found = {name: rid for rid, name in rows}
    wanted = _implied(found)
    if wanted:
        for rid, name in s.execute(select(Role.id, Role.name).where(Role.name.in_(wanted))).all():
            found[name] = rid
    return tuple(sorted(((rid, name) for name, rid in found.items()), key=lambda r: r[1]))


def _implied(names: Iterable[str]) -> set[str]:
    have = set(names)
    todo = list(have)
    extra: set[str] = set()
    while todo:
        for implied in IMPLIES.get(todo.pop(), ()):
            if implied not in have and implied not in extra:
                extra.add(implied)
                todo.append(implied)
    return extra


def issue(
    s: Session,
    user_id: str,
    project_id: str | None,
    methods: Iterable[str],
    now: dt.datetime,
    expires_at: dt.datetime,
) -> str:
    """Store a new token and return its bearer string; expired rows are swept on the way."""
    raw = secrets.token_urlsafe(32)
    s.execute(delete(Token).where(Token.expires_at <= now))
    s.add(Token(id=hash_token(raw), user_id=user_id, project_id=project_id,
                methods=list(dict.fromkeys(methods)), issued_at=now, expires_at=expires_at))
    s.flush()
    return raw


def load(s: Session, token_hash: str, now: dt.datetime) -> TokenInfo | None:
    """The token's current meaning, or None when it no longer authorises anything."""
    row = s.get(Token, token_hash)
    if row is None or row.revoked or row.expires_at <= now:
        return None
    user = s.get(User, row.user_id)
    if user is None or not user.enabled:
        return None
    project = None
    roles: tuple[tuple[str, str], ...] = ()
    if row.project_id is not None:
        project = s.get(Project, row.project_id)
        if project is None or not project.enabled:
            return None
        roles = effective_roles(s, user.id, project.id)
        if not roles:
            return None
    context = None
    if project is not None:
        context = Context(user_id=user.id, project_id=project.id,
                          roles=frozenset(name for _, name in roles),
                          user_name=user.name, project_name=project.name)
    return TokenInfo(
        token_hash=row.id, user_id=user.id, user_name=user.name,
        project_id=project.id if project else None, project_name=project.name if project else None,
        roles=roles, methods=tuple(row.methods or ()), issued_at=row.issued_at,
        expires_at=row.expires_at, context=context,
    )


class TokenCache:
    """bearer string -> validated token, for a sub-millisecond ``authenticate``.

    Entries live until the token expires or ``ttl`` passes (the bound on staleness when
    another process changed identity data); :meth:`clear` drops everything and bumps a
    generation so a validation that read the database before a write cannot re-insert its
    now-stale answer after it.
    """

    def __init__(self, clock: Callable[[], float], ttl: float = 30.0, max_entries: int = 10000) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[TokenInfo, float]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        return self._generation

    def get(self, raw: str) -> TokenInfo | None:
        entry = self._entries.get(raw)
        if entry is None:
            return None
        if self._clock() >= entry[1]:
            self._entries.pop(raw, None)
            return None
        return entry[0]

    def put(self, raw: str, info: TokenInfo, generation: int) -> None:
        until = min(info.expires_ts, self._clock() + self._ttl)
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[raw] = (info, until)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
