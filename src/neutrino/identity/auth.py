"""The body of ``POST /v3/auth/tokens`` parsed into what to check and what to scope to.

Parsing is separate from checking so malformed requests get Keystone's 400s before any
password is hashed; what is well-formed but unacceptable (other domains, system or domain
scope, unknown methods) is a 401 as in Keystone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neutrino.identity.errors import Unauthorized, ValidationError
from neutrino.identity.store import domain_matches

METHODS = ("password", "token")


@dataclass(frozen=True)
class PasswordAuth:
    user_id: str | None
    user_name: str | None
    password: str


@dataclass(frozen=True)
class ProjectScope:
    id: str | None
    name: str | None


@dataclass(frozen=True)
class AuthRequest:
    methods: tuple[str, ...]
    password: PasswordAuth | None
    token: str | None
    scope: ProjectScope | None  # None: unscoped, or the user's default project when it has one
    explicit_unscoped: bool = False


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(f"Invalid input for field '{where}': {value!r} is not of type 'object'")
    return value


def _str(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"Invalid input for field '{where}.{key}': {value!r} is not of type 'string'")
    return value


def _domain_ok(parent: dict[str, Any], where: str) -> None:
    if "domain" not in parent:
        raise ValidationError(f"Expecting to find domain in {where}. The server could not comply "
                              "with the request since it is either malformed or otherwise incorrect. "
                              "The client is assumed to be in error.")
    domain = _obj(parent["domain"], f"{where}.domain")
    if "id" not in domain and "name" not in domain:
        raise ValidationError(f"Expecting to find id or name in {where}.domain.")
    if not domain_matches(domain):
        raise Unauthorized("Could not find domain: "
                           f"{domain.get('id', domain.get('name'))}.")


def _password(body: Any) -> PasswordAuth:
    user = _obj(_obj(body, "password").get("user"), "password.user")
    user_id = _str(user, "id", "user")
    name = _str(user, "name", "user")
    password = _str(user, "password", "user")
    if user_id is None and name is None:
        raise ValidationError("Expecting to find id or name in user.")
    if user_id is None:
        _domain_ok(user, "user")
    if password is None:
        raise Unauthorized()
    return PasswordAuth(user_id=user_id, user_name=name, password=password)


def _token(body: Any) -> str:
    token = _str(_obj(body, "token"), "id", "token")
    if not token:
        raise ValidationError("Invalid input for field 'token.id': 'id' is a required property")
    return token


def _scope(scope: Any) -> tuple[ProjectScope | None, bool]:
    if scope is None:
        return None, False
    if scope == "unscoped":
        return None, True
    scope = _obj(scope, "scope")
    if "project" in scope:
        project = _obj(scope["project"], "scope.project")
        pid = _str(project, "id", "project")
        name = _str(project, "name", "project")
        if pid is None and name is None:
            raise ValidationError("Expecting to find id or name in project.")
        if pid is None:
            _domain_ok(project, "project")
        return ProjectScope(id=pid, name=name), False
    if "domain" in scope:
        raise Unauthorized("Domain-scoped tokens are not supported; scope to a project.")
    if "system" in scope:
        raise Unauthorized("System-scoped tokens are not supported; scope to a project.")
    if "OS-TRUST:trust" in scope:
        raise Unauthorized("Trusts are not supported.")
    raise ValidationError("Invalid input for field 'scope': expected project, domain or system.")


def parse(body: Any) -> AuthRequest:
    auth = _obj(body.get("auth") if isinstance(body, dict) else None, "auth")
    identity = _obj(auth.get("identity"), "identity")
    methods = identity.get("methods")
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        raise ValidationError("Invalid input for field 'identity.methods': a non-empty list of strings")
    for method in methods:
        if method not in METHODS:
            raise Unauthorized("Attempted to authenticate with an unsupported method.")
        if method not in identity:
            raise ValidationError(f"Expecting to find {method} in identity.")
    scope, unscoped = _scope(auth.get("scope"))
    return AuthRequest(
        methods=tuple(dict.fromkeys(methods)),
        password=_password(identity["password"]) if "password" in methods else None,
        token=_token(identity["token"]) if "token" in methods else None,
        scope=scope,
        explicit_unscoped=unscoped,
    )
