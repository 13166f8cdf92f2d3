"""The long-lived collaborators services share, built once by server.build."""

from __future__ import annotations

from dataclasses import dataclass, field

from neutrino.config import Config
from neutrino.db.engine import Database
from neutrino.ml2.manager import Ml2Manager
from neutrino.policy import Policy
from neutrino.services.quota_engine import QuotaEngine


@dataclass
class Deps:
    cfg: Config
    db: Database
    ml2: Ml2Manager = field(init=False)
    quotas: QuotaEngine = field(init=False)
    policy: Policy = field(init=False)

    def __post_init__(self) -> None:
        self.policy = Policy(self.cfg.oslo_policy.policy_file)
        self.ml2 = Ml2Manager(self.cfg)
        self.quotas = QuotaEngine(self.cfg)
