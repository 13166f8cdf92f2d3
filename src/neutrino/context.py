"""The request context: who is asking, for which project, with which roles."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Context:
    user_id: str
    project_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    user_name: str = ""
    project_name: str = ""
    request_id: str = ""
    # set by the API when the policy lets this caller see other projects' objects (admin,
    # service, or an operator's rule): services then do not narrow their queries to the project
    all_projects: bool = False
    # the policy's ``context_is_admin`` for this caller (set per request); None: the admin role
    policy_admin: bool | None = None
    # the policy's ``context_can_set_project_id`` for this caller (set per request)
    policy_can_set_project: bool = False

    @property
    def is_admin(self) -> bool:
        """Neutron's ``context.is_admin``: what the ``context_is_admin`` rule says of the caller."""
        return self.policy_admin if self.policy_admin is not None else "admin" in self.roles

    @property
    def sees_all(self) -> bool:
        """Queries need not be narrowed to the caller's project (the policy still decides)."""
        return self.all_projects or self.is_admin

    @property
    def can_set_project_id(self) -> bool:
        """Neutron's ``context.can_set_project_id``: may name another project in a request body
        (an admin, or whom the ``context_can_set_project_id`` rule names)."""
        return self.is_admin or self.policy_can_set_project

    @classmethod
    def admin(cls) -> Context:
        """An internal admin context for bootstrap and background work."""
        return cls(user_id="", project_id="", roles=frozenset({"admin", "member", "reader"}))
