"""Projects, users, roles and role assignments in the database; every function takes a session.

Fields arrive already type-checked by :mod:`neutrino.identity.schema`; here are the rules that
need the database (uniqueness, existence) and those about the single ``default`` domain.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from neutrino.db.guards import guard
from neutrino.db.models.identity import Project, Role, RoleAssignment, Token, User
from neutrino.identity.errors import Conflict, NotFound, ValidationError
from neutrino.identity.views import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME


def check_domain(domain_id: str | None) -> str:
    """Only the ``default`` domain exists; naming another is a 404 as in Keystone."""
    if domain_id in (None, DEFAULT_DOMAIN_ID):
        return DEFAULT_DOMAIN_ID
    raise NotFound.entity("domain", str(domain_id))


def domain_matches(ref: Any) -> bool:
    """Whether a ``{"id": ..}`` / ``{"name": ..}`` domain reference names the default domain."""
    if not isinstance(ref, dict):
        return False
    if "id" in ref:
        return ref["id"] == DEFAULT_DOMAIN_ID
    return ref.get("name") == DEFAULT_DOMAIN_NAME


def _unchanged(data: dict[str, Any], key: str, current: Any, message: str) -> None:
    if key in data and data[key] != current:
        raise ValidationError(message)


# --- projects -------------------------------------------------------------------------------

def list_projects(s: Session, name: str | None = None, enabled: bool | None = None) -> list[Project]:
    q = select(Project).order_by(Project.name)
    if name is not None:
        q = q.where(Project.name == name)
    if enabled is not None:
        q = q.where(Project.enabled == enabled)
    return list(s.scalars(q))


def get_project(s: Session, id: str) -> Project:
    row = s.get(Project, id)
    if row is None:
        raise NotFound.entity("project", id)
    return row


def find_project(s: Session, name: str) -> Project | None:
    return s.scalars(
        select(Project).where(Project.domain_id == DEFAULT_DOMAIN_ID, Project.name == name)
    ).first()


def _project_name_free(s: Session, name: str, except_id: str | None = None) -> None:
    other = find_project(s, name)
    if other is not None and other.id != except_id:
        raise Conflict.duplicate("project", "name", f"{name} at domain ID {DEFAULT_DOMAIN_ID}")


def create_project(s: Session, data: dict[str, Any]) -> Project:
    domain = check_domain(data.get("domain_id"))
    if data.get("is_domain"):
        raise ValidationError("Creating projects that act as domains is not supported.")
    if data.get("parent_id") not in (None, domain):
        raise ValidationError("Hierarchical projects are not supported: parent_id must be the domain.")
    _project_name_free(s, data["name"])
    row = Project(name=data["name"], domain_id=domain, description=data.get("description") or "",
                  enabled=data.get("enabled", True), tags=data.get("tags", []))
    s.add(row)
    s.flush()
    return row


def update_project(s: Session, id: str, data: dict[str, Any]) -> Project:
    row = get_project(s, id)
    _unchanged(data, "domain_id", row.domain_id, "Cannot change Domain ID.")
    _unchanged(data, "is_domain", False, "Update of `is_domain` is not allowed.")
    _unchanged(data, "parent_id", row.domain_id, "Update of `parent_id` is not allowed.")
    if "name" in data:
        _project_name_free(s, data["name"], except_id=id)
        row.name = data["name"]
    if "description" in data:
        row.description = data["description"] or ""
    if "enabled" in data:
        row.enabled = data["enabled"]
    if "tags" in data:
        row.tags = data["tags"]
    s.flush()
    return row


def delete_project(s: Session, id: str) -> None:
    row = get_project(s, id)
    s.execute(delete(RoleAssignment).where(RoleAssignment.project_id == id))
    s.execute(update(Token).where(Token.project_id == id).values(revoked=True))
    s.delete(row)


# --- users ----------------------------------------------------------------------------------

def list_users(s: Session, name: str | None = None, enabled: bool | None = None) -> list[User]:
    q = select(User).order_by(User.name)
    if name is not None:
        q = q.where(User.name == name)
    if enabled is not None:
        q = q.where(User.enabled == enabled)
    return list(s.scalars(q))


def get_user(s: Session, id: str) -> User:
    row = s.get(User, id)
    if row is None:
        raise NotFound.entity("user", id)
    return row


def find_user(s: Session, name: str) -> User | None:
    return s.scalars(
        select(User).where(User.domain_id == DEFAULT_DOMAIN_ID, User.name == name)
    ).first()


def password_hash_of(s: Session, id: str) -> str | None:
    row = s.get(User, id)
    return row.password_hash if row is not None else None


def _user_name_free(s: Session, name: str, except_id: str | None = None) -> None:
    other = find_user(s, name)
    if other is not None and other.id != except_id:
        raise Conflict.duplicate("user", "name", f"{name} at domain ID {DEFAULT_DOMAIN_ID}")


def create_user(s: Session, data: dict[str, Any], password_hash: str) -> User:
    domain = check_domain(data.get("domain_id"))
    _user_name_free(s, data["name"])
    row = User(name=data["name"], domain_id=domain, password_hash=password_hash,
               enabled=data.get("enabled", True), default_project_id=data.get("default_project_id"),
               email=data.get("email"), description=data.get("description"))
    s.add(row)
    s.flush()
    return row


def revoke_user_tokens(s: Session, user_id: str) -> None:
    s.execute(update(Token).where(Token.user_id == user_id).values(revoked=True))


def update_user(s: Session, id: str, data: dict[str, Any], password_hash: str | None) -> User:
    """Apply a PATCH; a new password or disabling the user revokes their tokens, as Keystone."""
    row = get_user(s, id)
    _unchanged(data, "domain_id", row.domain_id, "Cannot change Domain ID.")
    if "name" in data:
        _user_name_free(s, data["name"], except_id=id)
        row.name = data["name"]
    for key in ("default_project_id", "email", "description"):
        if key in data:
            setattr(row, key, data[key])
    if "enabled" in data:
        if row.enabled and not data["enabled"]:
            guard(s, user_guard(id))
            revoke_user_tokens(s, id)
        row.enabled = data["enabled"]
    if password_hash is not None:
        guard(s, user_guard(id))
        row.password_hash = password_hash
        revoke_user_tokens(s, id)
    s.flush()
    return row


def user_guard(user_id: str) -> str:
    """The write guard of "revoking a user's tokens leaves none": a token issued for the user
    and a password change, disabling or deletion take it (``neutrino.db.guards``)."""
    return f"user:{user_id}"


def delete_user(s: Session, id: str) -> None:
    row = get_user(s, id)
    guard(s, user_guard(id))
    s.execute(delete(RoleAssignment).where(RoleAssignment.user_id == id))
    s.execute(delete(Token).where(Token.user_id == id))
    s.delete(row)


def projects_of_user(s: Session, user_id: str) -> list[Project]:
    """Enabled projects the user holds any role on (what /auth/projects offers to scope to)."""
    ids = select(RoleAssignment.project_id).where(RoleAssignment.user_id == user_id)
    return list(s.scalars(
        select(Project).where(Project.id.in_(ids), Project.enabled.is_(True)).order_by(Project.name)
    ))


# --- roles ----------------------------------------------------------------------------------

def list_roles(s: Session, name: str | None = None) -> list[Role]:
    q = select(Role).order_by(Role.name)
    if name is not None:
        q = q.where(Role.name == name)
    return list(s.scalars(q))


def get_role(s: Session, id: str) -> Role:
    row = s.get(Role, id)
    if row is None:
        raise NotFound.entity("role", id)
    return row


def find_role(s: Session, name: str) -> Role | None:
    return s.scalars(select(Role).where(Role.name == name)).first()


def _role_name_free(s: Session, name: str, except_id: str | None = None) -> None:
    other = find_role(s, name)
    if other is not None and other.id != except_id:
        raise Conflict.duplicate("role", "name", name)


def create_role(s: Session, data: dict[str, Any]) -> Role:
    if data.get("domain_id") is not None:
        raise ValidationError("Domain-specific roles are not supported.")
    _role_name_free(s, data["name"])
    row = Role(name=data["name"], description=data.get("description"))
    s.add(row)
    s.flush()
    return row


def update_role(s: Session, id: str, data: dict[str, Any]) -> Role:
    row = get_role(s, id)
    _unchanged(data, "domain_id", None, "Update of `domain_id` is not allowed.")
    if "name" in data:
        _role_name_free(s, data["name"], except_id=id)
        row.name = data["name"]
    if "description" in data:
        row.description = data["description"]
    s.flush()
    return row


def delete_role(s: Session, id: str) -> None:
    row = get_role(s, id)
    s.execute(delete(RoleAssignment).where(RoleAssignment.role_id == id))
    s.delete(row)


# --- role assignments -----------------------------------------------------------------------

def _assignment_parts(s: Session, project_id: str, user_id: str, role_id: str) -> None:
    get_project(s, project_id)
    get_user(s, user_id)
    get_role(s, role_id)


def grant(s: Session, project_id: str, user_id: str, role_id: str) -> None:
    _assignment_parts(s, project_id, user_id, role_id)
    if s.get(RoleAssignment, (user_id, project_id, role_id)) is None:
        s.add(RoleAssignment(user_id=user_id, project_id=project_id, role_id=role_id))
        s.flush()


def has_grant(s: Session, project_id: str, user_id: str, role_id: str) -> bool:
    _assignment_parts(s, project_id, user_id, role_id)
    return s.get(RoleAssignment, (user_id, project_id, role_id)) is not None


def revoke(s: Session, project_id: str, user_id: str, role_id: str) -> None:
    _assignment_parts(s, project_id, user_id, role_id)
    row = s.get(RoleAssignment, (user_id, project_id, role_id))
    if row is None:
        raise NotFound(f"Could not find role assignment with role: {role_id}, user or group: "
                       f"{user_id}, project, domain, or system: {project_id}.")
    s.delete(row)


def roles_of(s: Session, project_id: str, user_id: str) -> list[Role]:
    get_project(s, project_id)
    get_user(s, user_id)
    return list(s.scalars(
        select(Role).join(RoleAssignment, RoleAssignment.role_id == Role.id)
        .where(RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id)
        .order_by(Role.name)
    ))


def assignments(
    s: Session, user_id: str | None = None, project_id: str | None = None, role_id: str | None = None
) -> list[tuple[User, Project, Role]]:
    q = (
        select(User, Project, Role)
        .select_from(RoleAssignment)
        .join(User, User.id == RoleAssignment.user_id)
        .join(Project, Project.id == RoleAssignment.project_id)
        .join(Role, Role.id == RoleAssignment.role_id)
        .order_by(User.name, Project.name, Role.name)
    )
    if user_id is not None:
        q = q.where(RoleAssignment.user_id == user_id)
    if project_id is not None:
        q = q.where(RoleAssignment.project_id == project_id)
    if role_id is not None:
        q = q.where(RoleAssignment.role_id == role_id)
    return [(u, p, r) for u, p, r in s.execute(q).all()]
