"""Quota limits and enforcement: per-project overrides over configured defaults, -1 unlimited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neutrino.config import Config
from neutrino.db.guards import guard
from neutrino.db.models.quota import Quota
from neutrino.errors import OverQuota

# Neutron's quota resource names, in the order `openstack quota show` prints them.
RESOURCES = ("network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule")


def quota_guard(project_id: str, resource: str) -> str:
    """The write guard of a finite quota: the creates that count against it and a lowering of
    the limit that checks the usage take it (``neutrino.db.guards``)."""
    return f"quota:{project_id}:{resource}"


class QuotaEngine:
    def __init__(self, cfg: Config) -> None:
        self.defaults = {r: int(getattr(cfg.quotas, f"quota_{r}")) for r in RESOURCES}

    def limits(self, s: Session, project_id: str) -> dict[str, int]:
        limits = dict(self.defaults)
        for row in s.scalars(select(Quota).where(Quota.project_id == project_id)):
            limits[row.resource] = row.limit
        return limits

    def limit(self, s: Session, project_id: str, resource: str) -> int:
        row = s.get(Quota, (project_id, resource))
        return row.limit if row is not None else self.defaults[resource]

    def check(self, s: Session, project_id: str, resource: str, model: Any, extra: int = 1) -> None:
        """409 OverQuota when creating ``extra`` more would exceed the project's limit."""
        limit = self.limit(s, project_id, resource)
        if limit < 0:
            return
        guard(s, quota_guard(project_id, resource))  # two creates must not both count one below the limit
        used = s.scalar(select(func.count()).select_from(model).where(model.project_id == project_id)) or 0
        if used + extra > limit:
            raise OverQuota(overs=[resource])
