"""The Identity object: bootstrap, token issue/validation with its cache, and the write path.

Everything that changes identity data goes through :meth:`Identity.write`, which clears the
token cache after the commit, so a revoked token, role or user stops working at once.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from neutrino.config import Config
from neutrino.context import Context
from neutrino.db.engine import Database
from neutrino.db.guards import guard
from neutrino.db.models.identity import Project, Token, User
from neutrino.errors import NotAuthenticated
from neutrino.identity import store, tokens
from neutrino.identity.auth import AuthRequest
from neutrino.identity.bootstrap import bootstrap
from neutrino.identity.errors import NotFound, Unauthorized
from neutrino.identity.passwords import verify_password
from neutrino.identity.tokens import TokenCache, TokenInfo
from neutrino.identity.views import Views

T = TypeVar("T")


class Identity:
    """Keystone v3 subset for one process; ``clock`` (epoch seconds) is injectable for tests."""

    def __init__(self, db: Database, cfg: Config, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.cfg = cfg
        self.clock = clock
        self.views = Views(cfg)
        self.cache = TokenCache(clock)

    # --- lifecycle ---------------------------------------------------------------------------

    def bootstrap(self) -> dict[str, str]:
        return self.write(lambda s: bootstrap(s, self.cfg))

    def routes(self) -> list[BaseRoute]:
        from neutrino.identity.routes import Endpoints

        return Endpoints(self).routes()

    # --- database ----------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC).replace(tzinfo=None)

    def write(self, fn: Callable[[Session], T]) -> T:
        """One write transaction, then drop every cached token (roles or users may have changed)."""
        try:
            return self.db.transaction(fn)
        finally:
            self.cache.clear()

    def read(self, fn: Callable[[Session], T]) -> T:
        return self.db.read(fn)

    # --- tokens ------------------------------------------------------------------------------

    def authenticate(self, token: str) -> Context:
        """The network API's check: a valid project-scoped token, else NotAuthenticated."""
        info = self.cache.get(token)
        if info is None:
            info = self.validate(token)
            if info is None:
                raise NotAuthenticated()
        if info.context is None:
            raise NotAuthenticated("The token is not scoped to a project.")
        return info.context

    def cached(self, token: str) -> Context | None:
        """The context of a cached scoped token, without touching the database (event-loop safe)."""
        info = self.cache.get(token)
        return info.context if info is not None else None

    def validate(self, token: str) -> TokenInfo | None:
        """Any valid token (scoped or not), through the cache."""
        info = self.cache.get(token)
        if info is not None:
            return info
        if not token:
            return None
        generation = self.cache.generation
        now = self.now()
        info = self.db.read(lambda s: tokens.load(s, tokens.hash_token(token), now))
        if info is not None:
            self.cache.put(token, info, generation)
        return info

    def revoke(self, token: str) -> bool:
        """Mark the token revoked; False when it was not valid to begin with."""
        if self.validate(token) is None:
            return False

        def run(s: Session) -> None:
            row = s.get(Token, tokens.hash_token(token))
            if row is not None:
                row.revoked = True

        self.write(run)
        return True

    def issue(self, req: AuthRequest) -> tuple[str, TokenInfo]:
        """Check every method names the same enabled user, resolve the scope, store a token."""
        user_ids: set[str] = set()
        methods = list(req.methods)
        now = self.now()
        expires_at = now + dt.timedelta(seconds=self.cfg.identity.token_expiration)
        if req.token is not None:
            parent = self.validate(req.token)
            if parent is None:
                raise Unauthorized("Could not find token: the token is invalid, expired or revoked.")
            user_ids.add(parent.user_id)
            expires_at = min(expires_at, parent.expires_at)  # a rescoped token never outlives its parent
            methods += [m for m in parent.methods if m not in methods]
        verified: str | None = None  # the password hash the password was checked against
        if req.password is not None:
            checked_user, verified = self._check_password(req)
            user_ids.add(checked_user)
        if len(user_ids) != 1:
            raise Unauthorized("The authentication methods name different users.")
        user_id = user_ids.pop()

        def run(s: Session) -> tuple[str, TokenInfo]:
            guard(s, store.user_guard(user_id))  # meets a password change or disabling meanwhile
            user = s.get(User, user_id)
            if user is None or verified is not None and user.password_hash != verified:
                raise Unauthorized()  # the password changed since it was checked
            if not user.enabled:
                raise Unauthorized(f"The account is disabled for user: {user_id}.")
            project_id = self._scope(s, req, user)
            raw = tokens.issue(s, user.id, project_id, methods, now, expires_at)
            info = tokens.load(s, tokens.hash_token(raw), now)
            assert info is not None
            return raw, info

        return self.db.transaction(run)

    def _check_password(self, req: AuthRequest) -> tuple[str, str]:
        """(user id, the password hash it matched), checked outside the token's transaction (the
        hash takes ~0.1 s): ``issue`` checks in its own that the hash is still the user's."""
        assert req.password is not None
        pw = req.password

        def find(s: Session) -> tuple[str, str, bool] | None:
            user = s.get(User, pw.user_id) if pw.user_id else store.find_user(s, pw.user_name or "")
            return (user.id, user.password_hash, user.enabled) if user else None

        found = self.db.read(find)
        ok = verify_password(pw.password, found[1] if found else None)
        if found is None or not ok:
            raise Unauthorized()
        if not found[2]:
            raise Unauthorized(f"The account is disabled for user: {found[0]}.")
        return found[0], found[1]

    def _scope(self, s: Session, req: AuthRequest, user: User) -> str | None:
        """The project to scope to (None: unscoped); 401 when the user may not use it."""
        if req.scope is None:
            if req.explicit_unscoped or not user.default_project_id:
                return None
            # Keystone falls back to an unscoped token when the default project is unusable.
            default = s.get(Project, user.default_project_id)
            if default is None or not default.enabled or not tokens.effective_roles(s, user.id, default.id):
                return None
            return default.id
        try:
            if req.scope.id is not None:
                project = store.get_project(s, req.scope.id)
            else:
                found = store.find_project(s, req.scope.name or "")
                if found is None:
                    raise NotFound.entity("project", req.scope.name or "")
                project = found
        except NotFound as exc:
            raise Unauthorized(exc.message) from None
        if not project.enabled:
            raise Unauthorized(f"Project {project.id} is disabled.")
        if not tokens.effective_roles(s, user.id, project.id):
            raise Unauthorized(f"User {user.id} has no access to project {project.id}.")
        return project.id
