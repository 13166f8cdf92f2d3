"""Quota management (Neutron's quotasv2): limits per project over the configured defaults.

The routes (api/routes/quotas.py) do the HTTP side; this module reads and writes the limits
through :class:`~neutrino.services.quota_engine.QuotaEngine` and counts usage per resource.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from neutrino.db.guards import guard
from neutrino.db.models.l3 import FloatingIP, Router
from neutrino.db.models.network import Network, Port, Subnet
from neutrino.db.models.quota import Quota
from neutrino.db.models.security import SecurityGroup, SecurityGroupRule
from neutrino.errors import BadRequest, NotFound
from neutrino.services.deps import Deps
from neutrino.services.quota_engine import RESOURCES, quota_guard

MODELS: dict[str, Any] = {
    "network": Network,
    "subnet": Subnet,
    "port": Port,
    "router": Router,
    "floatingip": FloatingIP,
    "security_group": SecurityGroup,
    "security_group_rule": SecurityGroupRule,
}
MAX_LIMIT = 2**31 - 1  # neutron_lib.db.constants.DB_INTEGER_MAX_VALUE


class ProjectQuotaNotFound(NotFound):
    message = "Quota for project {project_id} could not be found."
    type_name = "ProjectQuotaNotFound"


class QuotaLimitBelowUsage(BadRequest):
    """check_limit: a new limit may not be below what the project already uses."""

    message = ("Bad quota request: Quota limit {limit} for {resource} must be greater than or equal to "
               "already used and reserved {used}.")
    type_name = "BadRequest"


class QuotaService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.engine = deps.quotas

    @property
    def resources(self) -> tuple[str, ...]:
        return tuple(r for r in RESOURCES if r in self.engine.defaults)

    def defaults(self) -> dict[str, int]:
        return {r: self.engine.defaults[r] for r in self.resources}

    def limits(self, s: Session, project_id: str) -> dict[str, int]:
        limits = self.engine.limits(s, project_id)
        return {r: limits[r] for r in self.resources}

    def usage(self, s: Session, project_id: str) -> dict[str, int]:
        out = {}
        for resource in self.resources:
            model = MODELS.get(resource)
            if model is None:
                out[resource] = 0
                continue
            out[resource] = s.scalar(select(func.count()).select_from(model)
                                     .where(model.project_id == project_id)) or 0
        return out

    def details(self, s: Session, project_id: str) -> dict[str, dict[str, int]]:
        limits, used = self.limits(s, project_id), self.usage(s, project_id)
        return {r: {"limit": limits[r], "used": used[r], "reserved": 0} for r in self.resources}

    def all_projects(self, s: Session, only_project: str | None = None) -> list[dict[str, Any]]:
        """Every project with a non-default limit, with all its limits (Neutron's get_all_quotas)."""
        stmt = select(Quota.project_id).distinct().order_by(Quota.project_id)
        if only_project is not None:
            stmt = stmt.where(Quota.project_id == only_project)
        out = []
        for project in s.scalars(stmt):
            out.append({**self.limits(s, project), "project_id": project, "tenant_id": project})
        return out

    def update(self, s: Session, project_id: str, values: dict[str, int], check_limit: bool) -> dict[str, int]:
        if check_limit:
            guard(s, *(quota_guard(project_id, resource) for resource in sorted(values)))  # the creates counting
            used = self.usage(s, project_id)
            for resource, limit in values.items():
                if limit >= 0 and used[resource] > limit:
                    raise QuotaLimitBelowUsage(limit=limit, resource=resource, used=used[resource])
        for resource, limit in values.items():
            row = s.get(Quota, (project_id, resource))
            if row is None:
                s.add(Quota(project_id=project_id, resource=resource, limit=limit))
            else:
                row.limit = limit
        s.flush()
        return self.limits(s, project_id)

    def reset(self, s: Session, project_id: str) -> None:
        result = s.execute(delete(Quota).where(Quota.project_id == project_id))
        if not getattr(result, "rowcount", 0):
            raise ProjectQuotaNotFound(project_id=project_id)
