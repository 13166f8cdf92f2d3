"""The long-lived collaborators services share, built once by server.build."""

from __future__ import annotations

from dataclasses import dataclass, field

from neutrino.config import Config
from neutrino.db.engine import Database
from neutrino.ml2.manager import Ml2Manager
from neutrino.policy import Policy
from neutrino.services.quota_engine import QuotaEngine
from neutrino.services.unit_of_work import UnitOfWork


@dataclass
class Deps:
    cfg: Config
    db: Database
    ml2: Ml2Manager = field(init=False)
    quotas: QuotaEngine = field(init=False)
    policy: Policy = field(init=False)
    work: UnitOfWork = field(init=False)  # what the API runs its requests in

    def __post_init__(self) -> None:
        self.policy = Policy(self.cfg.oslo_policy.policy_file)
        self.ml2 = Ml2Manager(self.cfg)
        self.quotas = QuotaEngine(self.cfg)
        self.work = UnitOfWork(self.db)
