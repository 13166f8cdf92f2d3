"""All tables; importing this module registers every model on ``Base.metadata``."""

from neutrino.db.models import agent, free_ranges, guards, identity, l3, network, quota, security  # noqa: F401
from neutrino.db.models.base import Base

__all__ = ["Base"]
