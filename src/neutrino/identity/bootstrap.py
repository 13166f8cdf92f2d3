"""First-start identity data: roles admin/member/reader, the admin and demo users and projects.

Runs on every start and only fills in what is missing, so an operator's later changes (a
new password, a deleted demo user's role) are left alone except for missing rows.
"""

from __future__ import annotations

import secrets

from sqlalchemy.orm import Session

from neutrino.config import Config
from neutrino.db.models.identity import Project, Role, RoleAssignment, User
from neutrino.identity import store
from neutrino.identity.passwords import hash_password

ROLES = ("admin", "member", "reader")


def _role(s: Session, name: str) -> Role:
    row = store.find_role(s, name)
    if row is None:
        row = Role(name=name)
        s.add(row)
        s.flush()
    return row


def _project(s: Session, name: str) -> Project:
    row = store.find_project(s, name)
    if row is None:
        row = Project(name=name, description=f"Bootstrap project {name}")
        s.add(row)
        s.flush()
    return row


def _user(s: Session, name: str, password: str, project: Project, created: dict[str, str]) -> User:
    row = store.find_user(s, name)
    if row is None:
        password = password or secrets.token_urlsafe(16)
        row = User(name=name, password_hash=hash_password(password), default_project_id=project.id)
        s.add(row)
        s.flush()
        created[name] = password
    return row


def _grant(s: Session, user: User, project: Project, role: Role, new_user: bool) -> None:
    """Grants go only to users made just now: a role an operator revoked stays revoked."""
    if new_user and s.get(RoleAssignment, (user.id, project.id, role.id)) is None:
        s.add(RoleAssignment(user_id=user.id, project_id=project.id, role_id=role.id))


def bootstrap(s: Session, cfg: Config) -> dict[str, str]:
    """Create what is missing; returns {user name: password} for users created by this call."""
    ident = cfg.identity
    created: dict[str, str] = {}
    roles = {name: _role(s, name) for name in ROLES}
    plan = [
        (ident.admin_user, ident.admin_password, ident.admin_project, ROLES),
        (ident.demo_user, ident.demo_password, ident.demo_project, ("member", "reader")),
    ]
    for user_name, password, project_name, role_names in plan:
        project = _project(s, project_name)
        user = _user(s, user_name, password, project, created)
        for name in role_names:
            _grant(s, user, project, roles[name], user_name in created)
    s.flush()
    return created
