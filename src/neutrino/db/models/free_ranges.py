"""Free runs of allocatable values (a subnet's addresses, a network type's segmentation ids).

Allocation takes the first value of the first run instead of reading every value in use, so
it costs the same on a /8 with millions of addresses taken as on an empty /24. The runs are
bookkeeping, not the truth: the truth stays in ``ipallocations`` / ``segment_allocations``,
whose primary keys refuse a duplicate whatever the runs say (see
:mod:`neutrino.services.free_ranges`).
"""

from __future__ import annotations

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from neutrino.db.models.base import Base, exact_string


class FreeRange(Base):
    """Values ``first``..``last`` of ``pool`` are free (as far as the bookkeeping knows).

    Values are zero-padded lower-case hex (32 digits: an IPv6 address fits), so that they
    order as the numbers they are on every database."""

    __tablename__ = "free_ranges"
    __table_args__ = (Index("ix_free_ranges_pool_position_first", "pool", "position", "first"),
                      Index("ix_free_ranges_pool_last", "pool", "last"))

    pool: Mapped[str] = mapped_column(exact_string(128), primary_key=True)  # "subnet:<id>", "vxlan:"
    first: Mapped[str] = mapped_column(exact_string(32), primary_key=True)
    last: Mapped[str] = mapped_column(exact_string(32))
    position: Mapped[int] = mapped_column(Integer)  # which allocation pool / configured range


class FreePool(Base):
    """A pool whose runs exist, and what they were computed from (a digest of its ranges):
    a changed subnet's pools or gateway, or changed ``[ml2_type_*]`` ranges, rebuild them."""

    __tablename__ = "free_pools"

    pool: Mapped[str] = mapped_column(exact_string(128), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
