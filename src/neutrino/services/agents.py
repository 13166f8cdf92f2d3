"""Agents: the rows agents report (type, host, heartbeat); admins read, enable/disable, delete.

Neutron's policy makes agents admin-only: for anyone else a listing is empty and a single
agent does not exist (404), so nothing about the deployment leaks. ``alive`` is computed: a
heartbeat within ``agent_down_time`` (Neutron's default 75 s).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neutrino.context import Context
from neutrino.db.models.agent import Agent
from neutrino.db.models.base import utcnow
from neutrino.errors import MethodNotAllowed, NotFound
from neutrino.ml2.manager import AgentView
from neutrino.services.common import prefilter
from neutrino.services.deps import Deps

AGENT_DOWN_TIME = 75  # seconds, Neutron's [DEFAULT] agent_down_time


class AgentNotFound(NotFound):
    message = "Agent {id} could not be found."
    type_name = "AgentNotFound"


def timestamp(value: dt.datetime | None) -> str | None:
    """Agents are not standard-attribute resources: Neutron shows ``2026-11-21 09:00:00``."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else None


def is_alive(agent: Agent, now: dt.datetime | None = None, down_time: int = AGENT_DOWN_TIME) -> bool:
    now = now or utcnow()
    return agent.heartbeat_timestamp is not None and (now - agent.heartbeat_timestamp).total_seconds() <= down_time


def host_agents(s: Session, host: str, down_time: int = AGENT_DOWN_TIME) -> list[AgentView]:
    """The agents registered on ``host`` as port binding sees them (Neutron's ``host_agents``)."""
    now = utcnow()
    return [AgentView(agent_type=a.agent_type, host=a.host, alive=is_alive(a, now, down_time),
                      admin_state_up=bool(a.admin_state_up), heartbeat=timestamp(a.heartbeat_timestamp),
                      configurations=dict(a.configurations or {}))
            for a in s.scalars(select(Agent).where(Agent.host == host).order_by(Agent.agent_type))]


def to_dict(agent: Agent, now: dt.datetime | None = None, down_time: int = AGENT_DOWN_TIME) -> dict[str, Any]:
    return {
        "id": agent.id,
        "agent_type": agent.agent_type,
        "binary": agent.binary,
        "topic": agent.topic,
        "host": agent.host,
        "admin_state_up": agent.admin_state_up,
        "alive": is_alive(agent, now, down_time),
        "availability_zone": agent.availability_zone,
        "created_at": timestamp(agent.created_at),
        "started_at": timestamp(agent.started_at),
        "heartbeat_timestamp": timestamp(agent.heartbeat_timestamp),
        "description": agent.description,
        "configurations": dict(agent.configurations or {}),
        "resources_synced": agent.resources_synced,
    }


class AgentService:
    special_filters: dict[str, Any] = {}
    unsupported = frozenset({"create"})  # 405 before any policy question

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.down_time = int(getattr(deps.cfg.DEFAULT, "agent_down_time", AGENT_DOWN_TIME))

    def _get(self, s: Session, ctx: Context, id: str) -> Agent:
        agent = s.get(Agent, id)
        if agent is None:
            raise AgentNotFound(id=id)
        return agent

    def row(self, s: Session, ctx: Context, id: str) -> Agent:
        return self._get(s, ctx, id)

    def get_all(self, s: Session, ctx: Context, filters: dict[str, list[Any]]) -> list[dict[str, Any]]:
        now = utcnow()
        stmt = prefilter(select(Agent).order_by(Agent.host, Agent.agent_type), Agent.__table__, filters)
        return [to_dict(a, now, self.down_time) for a in s.scalars(stmt)]

    def get(self, s: Session, ctx: Context, id: str) -> dict[str, Any]:
        return to_dict(self._get(s, ctx, id), None, self.down_time)

    def create(self, s: Session, ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        raise MethodNotAllowed()

    def update(self, s: Session, ctx: Context, id: str, body: dict[str, Any]) -> dict[str, Any]:
        agent = self._get(s, ctx, id)
        if "admin_state_up" in body:
            agent.admin_state_up = body["admin_state_up"]
        if "description" in body:
            agent.description = body["description"] or ""
        s.flush()
        return to_dict(agent, None, self.down_time)

    def delete(self, s: Session, ctx: Context, id: str) -> None:
        s.delete(self._get(s, ctx, id))
