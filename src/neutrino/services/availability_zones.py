"""Availability zones: "nova" for networks and routers, plus the zones agents report.

Neutron derives zones from agents (DHCP agents give network zones, L3 agents router zones;
a zone is available while one of its agents is up). Neutrino schedules everything itself, so
the default zone ``nova`` (the one networks and routers report) is always available; zones
named by agent rows are added the Neutron way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neutrino.context import Context
from neutrino.db.models.agent import Agent
from neutrino.errors import MethodNotAllowed, NotFound
from neutrino.services import agents
from neutrino.services.deps import Deps

DEFAULT_ZONE = "nova"
AGENT_RESOURCES = {"DHCP agent": "network", "L3 agent": "router"}


class AvailabilityZoneNotFound(NotFound):
    message = "AvailabilityZone {availability_zone} could not be found."
    type_name = "AvailabilityZoneNotFound"


class AvailabilityZoneService:
    special_filters: dict[str, Any] = {}
    unsupported = frozenset({"create", "update", "delete"})  # 405 before any policy question

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def zones(self, s: Session) -> list[dict[str, Any]]:
        state: dict[tuple[str, str], bool] = {(DEFAULT_ZONE, "network"): True, (DEFAULT_ZONE, "router"): True}
        stmt = select(Agent).where(Agent.availability_zone.is_not(None),
                                   Agent.agent_type.in_(list(AGENT_RESOURCES)))
        for agent in s.scalars(stmt):
            key = (agent.availability_zone or "", AGENT_RESOURCES[agent.agent_type])
            up = agent.admin_state_up and agents.is_alive(agent)
            state[key] = state.get(key, False) or up
        return [
            # "id" is internal (sorting/paging need one); it is not an attribute and not shown
            {"id": f"{name}:{resource}", "name": name, "resource": resource,
             "state": "available" if up else "unavailable"}
            for (name, resource), up in sorted(state.items())
        ]

    def get_all(self, s: Session, ctx: Context, filters: dict[str, list[Any]]) -> list[dict[str, Any]]:
        return self.zones(s)

    def get(self, s: Session, ctx: Context, id: str) -> dict[str, Any]:
        raise AvailabilityZoneNotFound(availability_zone=id)

    def row(self, s: Session, ctx: Context, id: str) -> Any:
        raise AvailabilityZoneNotFound(availability_zone=id)

    def create(self, s: Session, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        raise MethodNotAllowed()

    def update(self, s: Session, ctx: Context, id: str, body: dict[str, Any]) -> dict[str, Any]:
        raise AvailabilityZoneNotFound(availability_zone=id)

    def delete(self, s: Session, ctx: Context, id: str) -> None:
        raise AvailabilityZoneNotFound(availability_zone=id)
