"""Which hosts a write concerns, and which parts of their desired state it touched.

A change event goes only to these hosts, and they fetch again only these parts
(``AgentRpc.sync(host, scope)``), so the cost of a write grows with what it touched, not with
the number of hosts in the cloud. A host is concerned by a network when it has a port bound
on it (its VMs, its DHCP server, its router's interfaces: l2population's reach), by a
security group when it has a port in the group or in a group whose rules name it as their
remote group (by a port joining or leaving the group only in the latter case), and by a
router when the router's ports are bound there or the scheduler would put it there. The
networks and routers that are not yet claimed by a host are reached through the host the
scheduler picks for them, so that host claims them at once.

The reach of a write is read twice where the write can move things (before and after an
update, before a delete), so the host a port leaves is told as well as the one it joins.
Resources whose reach is not known here reach every host and make them fetch everything:
a new kind of resource is never silently missed by the agents.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from neutrino.bus import Event
from neutrino.db.engine import Database
from neutrino.db.models.agent import Agent
from neutrino.db.models.base import utcnow
from neutrino.db.models.l3 import FloatingIP, RouterPort
from neutrino.db.models.network import Port, PortSecurityGroup, Subnet
from neutrino.db.models.security import SecurityGroupRule
from neutrino.messages import DHCP_AGENT, L3_AGENT
from neutrino.services import agents as agents_svc

LOG = logging.getLogger(__name__)

# Writes no agent realises anything of: they wake nobody.
UNSEEN = frozenset({"quotas", "extensions", "availability_zones"})


def pick_host(resource_id: str, hosts: list[str]) -> str | None:
    """The host that serves ``resource_id``: stable for the same set of live agents."""
    if not hosts:
        return None
    digest = int(hashlib.sha256(resource_id.encode()).hexdigest()[:8], 16)
    return sorted(hosts)[digest % len(hosts)]


def live_hosts(s: Session, down_time: int, types: Iterable[str] = (DHCP_AGENT, L3_AGENT)) -> dict[str, list[str]]:
    """Agent type -> the hosts where an agent of that type is alive and administratively up
    (of the scheduling types: there are a few such agents, and one L2 agent on every host)."""
    now = utcnow()
    out: dict[str, list[str]] = defaultdict(list)
    for agent in s.scalars(select(Agent).where(Agent.agent_type.in_(list(types)))):
        if agent.admin_state_up and agents_svc.is_alive(agent, now, down_time):
            out[agent.agent_type].append(agent.host)
    return out


@dataclass
class Reach:
    """The hosts to wake (None: every host) and the parts they fetch again (none: everything)."""

    hosts: set[str] | None = field(default_factory=set)
    networks: set[str] = field(default_factory=set)
    routers: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    first: set[str] = field(default_factory=set)  # the hosts the changed ports are bound to: told first

    @classmethod
    def everyone(cls) -> Reach:
        return cls(hosts=None)

    def __or__(self, other: Reach) -> Reach:
        hosts = None if self.hosts is None or other.hosts is None else self.hosts | other.hosts
        return Reach(hosts, self.networks | other.networks, self.routers | other.routers,
                     self.groups | other.groups, self.first | other.first)


class Reacher:
    """Computes reaches from the database (one read per call, inside the caller's session)."""

    def __init__(self, down_time: int) -> None:
        self.down_time = down_time

    def of(self, s: Session, resource: str, ids: Iterable[str]) -> Reach:
        wanted = sorted({i for i in ids if i})
        if resource in UNSEEN:
            return Reach()
        if not wanted:  # a collection write whose ids are unknown
            return Reach.everyone()
        by_kind = {"ports": self._ports, "networks": self._networks, "subnets": self._subnets,
                   "routers": self._routers, "floatingips": self._floatingips,
                   "security-groups": self._groups, "security-group-rules": self._rules}
        compute = by_kind.get(resource)
        return compute(s, wanted) if compute is not None else Reach.everyone()

    # ------------------------------------------------------------ by resource

    def _ports(self, s: Session, ids: list[str]) -> Reach:
        rows = s.execute(select(Port.network_id, Port.binding_host_id).where(Port.id.in_(ids))).all()
        groups = set(s.scalars(select(PortSecurityGroup.security_group_id)
                               .where(PortSecurityGroup.port_id.in_(ids))))
        routers = set(s.scalars(select(RouterPort.router_id).where(RouterPort.port_id.in_(ids))))
        routers |= set(s.scalars(select(FloatingIP.router_id).where(FloatingIP.fixed_port_id.in_(ids),
                                                                    FloatingIP.router_id.is_not(None))))
        networks = {r.network_id for r in rows}
        reach = self.networks(s, networks) | self.members(s, groups) | self.routers(s, routers, with_networks=False)
        assert reach.hosts is not None
        reach.first = {r.binding_host_id for r in rows if r.binding_host_id}
        reach.hosts |= reach.first
        return reach

    def _networks(self, s: Session, ids: list[str]) -> Reach:
        routers = set(s.scalars(select(RouterPort.router_id).join(Port, RouterPort.port_id == Port.id)
                                .where(Port.network_id.in_(ids))))
        return self.networks(s, set(ids)) | self.routers(s, routers, with_networks=False)

    def _subnets(self, s: Session, ids: list[str]) -> Reach:
        networks = list(s.scalars(select(Subnet.network_id).where(Subnet.id.in_(ids))))
        return self._networks(s, sorted(set(networks))) if networks else Reach()

    def _routers(self, s: Session, ids: list[str]) -> Reach:
        return self.routers(s, set(ids), with_networks=True)

    def _floatingips(self, s: Session, ids: list[str]) -> Reach:
        routers = {r for r in s.scalars(select(FloatingIP.router_id).where(FloatingIP.id.in_(ids))) if r}
        return self.routers(s, routers, with_networks=False)

    def _groups(self, s: Session, ids: list[str]) -> Reach:
        return self.groups(s, set(ids))

    def _rules(self, s: Session, ids: list[str]) -> Reach:
        groups: set[str] = set()
        for group, remote in s.execute(select(SecurityGroupRule.security_group_id, SecurityGroupRule.remote_group_id)
                                       .where(SecurityGroupRule.id.in_(ids))):
            groups |= {group} | ({remote} if remote else set())
        return self.groups(s, groups)

    # ------------------------------------------------------------ building blocks

    def networks(self, s: Session, networks: set[str]) -> Reach:
        """The hosts with a port on these networks, and the host the scheduler picks for their DHCP."""
        if not networks:
            return Reach()
        hosts = set(s.scalars(select(Port.binding_host_id).distinct().where(
            Port.network_id.in_(sorted(networks)), Port.binding_host_id != "")))
        with_dhcp = set(s.scalars(select(Subnet.network_id).distinct().where(
            Subnet.network_id.in_(sorted(networks)), Subnet.enable_dhcp.is_(True), Subnet.ip_version == 4)))
        if with_dhcp:
            dhcp_hosts = live_hosts(s, self.down_time).get(DHCP_AGENT, [])
            hosts |= {h for h in (pick_host(n, dhcp_hosts) for n in with_dhcp) if h}
        return Reach(hosts, networks=set(networks))

    def groups(self, s: Session, groups: set[str]) -> Reach:
        """The hosts with a port in these groups or in a group whose rules name them as remote."""
        if not groups:
            return Reach()
        referring = set(s.scalars(select(SecurityGroupRule.security_group_id).distinct().where(
            SecurityGroupRule.remote_group_id.in_(sorted(groups)))))
        hosts = set(s.scalars(select(Port.binding_host_id).distinct()
                              .join(PortSecurityGroup, PortSecurityGroup.port_id == Port.id)
                              .where(PortSecurityGroup.security_group_id.in_(sorted(groups | referring)),
                                     Port.binding_host_id != "")))
        return Reach(hosts, groups=groups | referring)

    def members(self, s: Session, groups: set[str]) -> Reach:
        """A port joined, left or changed its addresses in these groups: the hosts whose groups
        name them as remote group learn the new members (the groups' own rules are unchanged)."""
        if not groups:
            return Reach()
        referring = select(SecurityGroupRule.security_group_id).where(
            SecurityGroupRule.remote_group_id.in_(sorted(groups)))
        hosts = set(s.scalars(select(Port.binding_host_id).distinct()
                              .join(PortSecurityGroup, PortSecurityGroup.port_id == Port.id)
                              .where(PortSecurityGroup.security_group_id.in_(referring),
                                     Port.binding_host_id != "")))
        return Reach(hosts, groups=set(groups))

    def routers(self, s: Session, routers: set[str], with_networks: bool) -> Reach:
        """The hosts the routers' ports are bound to (or the scheduler's pick for a router not
        yet claimed); ``with_networks`` adds their networks' hosts, which learn the router
        ports' addresses (an interface added or removed)."""
        if not routers:
            return Reach()
        rows = s.execute(select(RouterPort.router_id, Port.network_id, Port.binding_host_id)
                         .join(Port, RouterPort.port_id == Port.id)
                         .where(RouterPort.router_id.in_(sorted(routers)))).all()
        hosts = {r.binding_host_id for r in rows if r.binding_host_id}
        l3_hosts = live_hosts(s, self.down_time).get(L3_AGENT, [])
        hosts |= {h for h in (pick_host(r, l3_hosts) for r in routers) if h}
        reach = Reach(hosts, routers=set(routers))
        if with_networks:
            reach |= self.networks(s, {r.network_id for r in rows})
        return reach


class Notifier:
    """Turns committed API writes into change events for the hosts they reach (``api.app.Changes``).

    Reading a reach must never fail the write it follows: if the database cannot answer,
    the event goes to every host, which fetch everything.
    """

    def __init__(self, db: Database, reacher: Reacher, publish: Callable[[Event], None],
                 listened: Callable[[], bool] = lambda: True) -> None:
        self.db = db
        self.reacher = reacher
        self.publish = publish
        self.listened = listened

    def reach(self, resource: str, ids: list[str]) -> Reach:
        try:
            return self.db.read(lambda s: self.reacher.of(s, resource, ids))
        except Exception as exc:
            LOG.warning("cannot tell which hosts a change of %s %s reaches (%s): telling every host",
                        resource, ids, exc)
            return Reach.everyone()

    def before(self, resource: str, id: str) -> object:
        return self.reach(resource, [id]) if self.listened() else None

    def after(self, resource: str, id: str, action: str, before: object, created: list[str]) -> None:
        if not self.listened():
            return
        reach = self.reach(resource, [id] if id else created)
        if isinstance(before, Reach):
            reach |= before
        self.publish(event(resource, id, action, reach))


def event(resource: str, id: str, action: str, reach: Reach) -> Event:
    return Event(resource, id, action, hosts=None if reach.hosts is None else frozenset(reach.hosts),
                 networks=frozenset(reach.networks), routers=frozenset(reach.routers), groups=frozenset(reach.groups),
                 first=frozenset(reach.first))
