"""Tables of routers and floating IPs; router interfaces are ports owned by the router."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from neutrino.db.models.base import Base, StandardAttrs


class Router(StandardAttrs):
    __tablename__ = "routers"

    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_port_id: Mapped[str | None] = mapped_column(ForeignKey("ports.id"), nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    routes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    distributed: Mapped[bool] = mapped_column(Boolean, default=False)
    ha: Mapped[bool] = mapped_column(Boolean, default=False)
    availability_zone_hints: Mapped[list[Any]] = mapped_column(JSON, default=list)


class RouterPort(Base):
    """Which ports belong to which router. Written only by the router code: a port's own
    device_owner/device_id are client-writable, so they cannot be what makes it a router's."""

    __tablename__ = "router_ports"

    router_id: Mapped[str] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True,
                                         unique=True)
    port_type: Mapped[str] = mapped_column(String(255))


class FloatingIP(StandardAttrs):
    __tablename__ = "floatingips"
    __table_args__ = (
        UniqueConstraint("floating_network_id", "floating_ip_address", name="uq_fip_network_address"),
    )

    floating_network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    floating_port_id: Mapped[str] = mapped_column(ForeignKey("ports.id"))
    fixed_port_id: Mapped[str | None] = mapped_column(ForeignKey("ports.id"), nullable=True, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(ForeignKey("routers.id"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    dns_name: Mapped[str] = mapped_column(String(255), default="")
    dns_domain: Mapped[str] = mapped_column(String(255), default="")
