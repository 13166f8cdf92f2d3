"""What agents ask the server (Neutron's agent RPC): desired state, status reports, heartbeats.

Agents are reconcilers: ``sync(host)`` gives one host everything it should realise in one
plain, JSON-able snapshot (the ports bound there, their networks and subnets, the networks
whose DHCP and the routers this host serves, security groups and their members, and the
tunnel endpoints of the other hosts); ``sync(host, scope)`` gives the same for only the
networks, routers and security groups a change event named (``services.reach``), which the
agent merges into its last snapshot. Both read what concerns the host, never the whole cloud.

Scheduling is stateless and deterministic: a network's DHCP and a router stay with the live
agent whose host their ports are bound to; unclaimed (or orphaned by a dead agent) they go to
the live agent a hash of the id picks, so every host computes the same answer and a router is
never realised twice. Claiming a network or router also binds its ports to the chosen host
(creating the DHCP port the first time), which is what makes that host's L2 agent wire them.

Status reports do not go through the HTTP layer, so they publish no change events: an agent's
own report never wakes the agents again.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from neutrino.bus import Event
from neutrino.context import Context
from neutrino.db.guards import guard
from neutrino.db.models.agent import Agent
from neutrino.db.models.base import utcnow
from neutrino.db.models.l3 import FloatingIP, Router, RouterPort
from neutrino.db.models.network import Network, Port, PortSecurityGroup, Subnet
from neutrino.db.models.security import SecurityGroup, SecurityGroupRule
from neutrino.errors import NeutrinoError
from neutrino.messages import BINARIES, DHCP_AGENT, L2_AGENT_TYPES, L3_AGENT, PORT_STATUSES, TOPICS
from neutrino.ml2.mech_agent import binding_view
from neutrino.services import agents as agents_svc
from neutrino.services import common
from neutrino.services.deps import Deps
from neutrino.services.floatingips import FloatingIPService
from neutrino.services.networks import NetworkService
from neutrino.services.ports import PortService
from neutrino.services.reach import Reach, Reacher, event, live_hosts, pick_host
from neutrino.services.routers import ROUTER_GW, RouterService
from neutrino.services.security_groups import SecurityGroupService, _rules_of, default_group_ids
from neutrino.services.subnets import to_dict as subnet_dict

LOG = logging.getLogger(__name__)
ADMIN = Context.admin()
DHCP_OWNER = "network:dhcp"


Dict = dict[str, Any]


__all__ = ["AgentRpc", "Scope", "pick_host", "port_addresses"]


class Scope:
    """The parts of a host's state a partial sync describes (``messages.SyncScope`` on the wire)."""

    def __init__(self, networks: Iterable[str] = (), routers: Iterable[str] = (), groups: Iterable[str] = ()) -> None:
        self.networks = frozenset(networks)
        self.routers = frozenset(routers)
        self.groups = frozenset(groups)

    @classmethod
    def parse(cls, wire: Mapping[str, Any] | None) -> Scope | None:
        """None (everything) for no scope; ValueError for one that is not lists of ids."""
        if wire is None:
            return None
        parts = {}
        for key in ("networks", "routers", "groups"):
            ids = wire.get(key, [])
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ValueError(f"scope.{key} is a list of ids")
            parts[key] = ids
        return cls(**parts)


def _dhcp_ports(ports: Iterable[Mapping[str, Any]]) -> dict[str, Dict]:
    """network id -> its DHCP port: the oldest, as scheduling and claims pick it too."""
    found: dict[str, Dict] = {}
    for port in sorted((p for p in ports if p["device_owner"] == DHCP_OWNER),
                       key=lambda p: (str(p.get("created_at") or ""), str(p["id"]))):
        found.setdefault(str(port["network_id"]), dict(port))
    return found


def _by_id(items: Iterable[Dict]) -> list[Dict]:
    return sorted(items, key=lambda item: str(item["id"]))


def port_addresses(port: Mapping[str, Any]) -> list[str]:
    """Every address the port may use: fixed IPs and allowed address pairs (for remote groups)."""
    found = [str(f["ip_address"]) for f in port.get("fixed_ips") or ()]
    return found + [str(p["ip_address"]) for p in port.get("allowed_address_pairs") or ()]


class AgentRpc:
    """The server side of the agents' calls; in-process callers use it directly."""

    def __init__(self, deps: Deps, notify: Callable[[Event], None] | None = None) -> None:
        self.deps = deps
        self.db = deps.db
        self.notify = notify
        self.down_time = int(getattr(deps.cfg.DEFAULT, "agent_down_time", agents_svc.AGENT_DOWN_TIME))
        self.reacher = Reacher(self.down_time)
        self._deaths_checked = 0.0
        self._dead: set[tuple[str, str]] = set()  # (type, host) of the DHCP and L3 agents dead at the last look
        self.dhcp_failover = bool(getattr(deps.cfg.DEFAULT, "allow_automatic_dhcp_failover", True))
        self.l3_failover = bool(getattr(deps.cfg.DEFAULT, "allow_automatic_l3agent_failover", False))
        self.ports = PortService(deps)
        self.networks = NetworkService(deps)
        self.routers = RouterService(deps)
        self.fips = FloatingIPService(deps)
        self.groups = SecurityGroupService(deps)

    # ------------------------------------------------------------ heartbeats

    def report_state(self, host: str, agent_type: str, configurations: Mapping[str, Any],
                     start_flag: bool = False) -> None:
        """Insert or refresh this agent's row; ``start_flag`` marks a (re)start.

        When an L2 agent is new, (re)started, back from the dead or reports other mappings or
        tunnel types, the ports whose binding failed on its host are bound again (Neutron
        does so when an agent revives): so agents and instances may start in any order.
        """
        def write(s: Session) -> bool:
            now = utcnow()
            agent = s.scalars(select(Agent).where(Agent.agent_type == agent_type, Agent.host == host)).first()
            if agent is None:
                agent = Agent(agent_type=agent_type, host=host, binary=BINARIES.get(agent_type, "neutrino-agent"),
                              topic=TOPICS.get(agent_type, "N/A"), created_at=now, started_at=now,
                              admin_state_up=True)
                s.add(agent)
                news = True
            else:
                news = (start_flag or not agents_svc.is_alive(agent, now, self.down_time)
                        or binding_view(agent.configurations or {}) != binding_view(configurations))
            if start_flag:
                agent.started_at = now
            agent.heartbeat_timestamp = now
            agent.configurations = dict(configurations)
            agent.resources_synced = True
            return news and bool(agent.admin_state_up)
        if self.db.transaction(write) and agent_type in L2_AGENT_TYPES:
            self._rebind_failed(host)
        self._watch_deaths()

    def _watch_deaths(self) -> None:
        """Tell the live DHCP and L3 hosts when such an agent dies, so what it served moves
        now (as the operator's failover options allow), not at their next periodic resync.

        Neutron's server runs a periodic task for this; here the heartbeats drive it (every
        live agent reports each ``report_interval``), at most once a second per server
        process. Several servers may each tell: a second wake-up costs one fetch.
        """
        now = time.monotonic()
        if now - self._deaths_checked < 1.0:
            return
        self._deaths_checked = now

        def read(s: Session) -> tuple[set[tuple[str, str]], set[str]]:
            stamp = utcnow()
            agents = list(s.scalars(select(Agent).where(Agent.agent_type.in_([DHCP_AGENT, L3_AGENT]))))
            alive = {(a.agent_type, a.host) for a in agents
                     if a.admin_state_up and agents_svc.is_alive(a, stamp, self.down_time)}
            return {(a.agent_type, a.host) for a in agents} - alive, {host for _, host in alive}
        dead, alive = self.db.read(read)
        newly = dead - self._dead
        self._dead = dead
        if newly and alive and self.notify is not None:
            hosts = sorted({host for _, host in newly})
            LOG.info("agents on %s are dead: telling %s to take over what they served", hosts, sorted(alive))
            self.notify(Event("agents", ",".join(hosts), "dead", hosts=frozenset(alive)))

    def _rebind_failed(self, host: str) -> None:
        """Retry the host's failed bindings; wake the agents when any port got bound."""
        changed = self.db.transaction(lambda s: self.ports.rebind_failed(s, host))
        if changed:
            LOG.info("host %s: bound again %d port(s) whose binding had failed", host, len(changed))
            self._tell("rebind", host, self.db.read(lambda s: self.reacher.of(s, "ports", changed)))

    def _tell(self, action: str, host: str, reach: Reach) -> None:
        """Wake the hosts a change of the agents' own making reaches (and ``host`` itself)."""
        if self.notify is not None:
            self.notify(event("agents", host, action, reach | Reach({host})))

    def _live_hosts(self, s: Session) -> dict[str, list[str]]:
        return live_hosts(s, self.down_time)

    def _tunnel_ips(self, s: Session, hosts: Collection[str]) -> dict[str, str]:
        """The tunnel endpoints of these hosts' live L2 agents."""
        if not hosts:
            return {}
        now = utcnow()
        return {a.host: str(a.configurations["tunneling_ip"]) for a in s.scalars(select(Agent).where(
            Agent.agent_type.in_(L2_AGENT_TYPES), Agent.host.in_(sorted(hosts))))
            if agents_svc.is_alive(a, now, self.down_time) and (a.configurations or {}).get("tunneling_ip")}

    # ------------------------------------------------------------ port status

    def update_port_status(self, statuses: Mapping[str, str], host: str | None = None) -> list[str]:
        """Set each port's status (ACTIVE/DOWN/...); returns the ids that changed.

        With ``host``, only ports bound to that host change (ML2's port_bound_to_host): a late
        report from a port's previous host never overrides its new one.
        """
        wanted = {pid: st for pid, st in statuses.items() if st in PORT_STATUSES}
        if not wanted:
            return []

        def write(s: Session) -> list[str]:
            changed = []
            for port in s.scalars(select(Port).where(Port.id.in_(list(wanted)))):
                if host is not None and port.binding_host_id != host:
                    continue
                if port.status != wanted[port.id]:
                    port.status = wanted[port.id]
                    common.touch(port)
                    changed.append(port.id)
            return changed
        return self.db.transaction(write)

    # ------------------------------------------------------------ desired state

    def sync(self, host: str, scope: Mapping[str, Any] | None = None) -> Dict:
        """Claim what this host serves, then describe everything it should realise (or, with
        ``scope``, only those networks, routers and groups: see ``agent.host_state.merge``).

        One read transaction in the usual case; a write only when something must be claimed
        (a new DHCP port, a router's or DHCP port's binding), then the read again.
        """
        parts = Scope.parse(scope)
        snapshot = self.db.read(lambda s: self._snapshot(s, host, scope=parts))
        if snapshot is None:
            self._claim_all(host)
            snapshot = self.db.read(lambda s: self._snapshot(s, host, claims_done=True, scope=parts))
        assert snapshot is not None
        return snapshot

    def _claim_all(self, host: str) -> None:
        """Each network's and router's claim in its own transaction: one that cannot be made
        (a subnet with no free address for the DHCP port) is logged and skipped, and the
        host serves everything else, as Neutron's DHCP agent fails just that network."""
        def served_ids(s: Session) -> list[tuple[str, str]]:
            nets, routers = self._served(s, host)
            return [("network", n.id) for n in nets] + [("router", r.id) for r in routers]

        claimed: dict[str, set[str]] = {"network": set(), "router": set()}
        for kind, item in self.db.read(served_ids):
            try:
                if self.db.transaction(functools.partial(self._claim, host=host, kind=kind, item=item)):
                    claimed[kind].add(item)
            except NeutrinoError as exc:
                LOG.warning("host %s cannot serve %s %s yet: %s", host, kind, item, exc)
        if claimed["network"] or claimed["router"]:  # the other hosts learn the new ports' VTEPs and MACs now
            self._tell("claim", host, self.db.read(lambda s: self.reacher.networks(s, claimed["network"])
                                                   | self.reacher.routers(s, claimed["router"], with_networks=True)))

    def _served(self, s: Session, host: str) -> tuple[list[Network], list[Router]]:
        """The networks whose DHCP and the routers this host serves.

        Sticky, as Neutron's agent bindings are: where the DHCP port or a router port is
        already bound to a live agent's host, it stays there (a new agent joining never moves
        a working DHCP server or router); otherwise the hash of the id picks a live agent.
        A network or router bound to a host whose agent is dead moves only as the operator
        allows (``allow_automatic_dhcp_failover``, on by default, and
        ``allow_automatic_l3agent_failover``, off by default, as in Neutron).

        Only candidates are read: what is bound to this host already, and (where this host
        runs the agent) what no live agent holds; never every network and router of the cloud.
        """
        live = self._live_hosts(s)
        dhcp_hosts, l3_hosts = live.get(DHCP_AGENT, []), live.get(L3_AGENT, [])
        dhcp_ports = select(Port.network_id).where(Port.device_owner == DHCP_OWNER)
        candidates: ColumnElement[bool] = Subnet.network_id.in_(dhcp_ports.where(Port.binding_host_id == host))
        if host in dhcp_hosts:
            candidates = or_(candidates, Subnet.network_id.not_in(dhcp_ports.where(
                Port.binding_host_id.in_(dhcp_hosts))))
        with_dhcp = set(s.scalars(select(Subnet.network_id).distinct().where(
            Subnet.enable_dhcp.is_(True), Subnet.ip_version == 4, candidates)))
        dhcp_bound: dict[str, str] = {}
        for net_id, bound in s.execute(select(Port.network_id, Port.binding_host_id)
                                       .where(Port.device_owner == DHCP_OWNER, Port.network_id.in_(with_dhcp))
                                       .order_by(Port.created_at, Port.id)) if with_dhcp else ():
            dhcp_bound.setdefault(net_id, bound)
        nets = []
        for net in s.scalars(select(Network).where(Network.id.in_(with_dhcp)).order_by(Network.id)) \
                if with_dhcp else ():
            current = dhcp_bound.get(net.id) or ""
            stays = current in dhcp_hosts or (current and not self.dhcp_failover)
            if (current if stays else pick_host(net.id, dhcp_hosts)) == host:
                nets.append(net)
        router_ports = select(RouterPort.router_id).join(Port, RouterPort.port_id == Port.id)
        mine: ColumnElement[bool] = Router.id.in_(router_ports.where(Port.binding_host_id == host))
        if host in l3_hosts:
            mine = or_(mine, Router.id.not_in(router_ports.where(Port.binding_host_id.in_(l3_hosts))))
        candidates_r = list(s.scalars(select(Router).where(mine).order_by(Router.id)))
        router_bound: dict[str, set[str]] = defaultdict(set)
        for router_id, bound in s.execute(select(RouterPort.router_id, Port.binding_host_id)
                                          .join(Port, RouterPort.port_id == Port.id)
                                          .where(RouterPort.router_id.in_([r.id for r in candidates_r]))):
            router_bound[router_id].add(bound)
        routers = []
        for router in candidates_r:
            holders = sorted(h for h in router_bound[router.id] if h)
            holders_live = [h for h in holders if h in l3_hosts]
            if holders_live:
                chosen: str | None = holders_live[0]
            elif holders and not self.l3_failover:
                chosen = holders[0]  # stays with its dead agent until that one comes back
            else:
                chosen = pick_host(router.id, l3_hosts)
            if chosen == host:
                routers.append(router)
        return nets, routers

    @staticmethod
    def _dhcp_subnets(s: Session, network_id: str) -> list[Subnet]:
        return list(s.scalars(select(Subnet).where(Subnet.network_id == network_id, Subnet.enable_dhcp.is_(True),
                                                   Subnet.ip_version == 4).order_by(Subnet.created_at, Subnet.id)))

    def _dhcp_port(self, s: Session, network_id: str) -> Port | None:
        return s.scalars(select(Port).where(Port.network_id == network_id, Port.device_owner == DHCP_OWNER)
                         .order_by(Port.created_at, Port.id)).first()

    def _router_ports(self, s: Session, router_id: str) -> list[Port]:
        return list(s.scalars(select(Port).join(RouterPort, RouterPort.port_id == Port.id)
                              .where(RouterPort.router_id == router_id)))

    def _missing_dhcp_subnets(self, s: Session, port: Port) -> list[str]:
        have = {a.subnet_id for a in port.fixed_ips}
        return [sub.id for sub in self._dhcp_subnets(s, port.network_id) if sub.id not in have]

    def _claim(self, s: Session, host: str, kind: str, item: str) -> bool:
        """Bind one served network's DHCP port (creating it, or adding an address on a new DHCP
        subnet) or one router's ports to ``host``; True if anything changed."""
        changed = False
        if kind == "router":
            for router_port in self._router_ports(s, item):
                if router_port.binding_host_id != host:
                    self.ports._bind(s, router_port, host)
                    common.touch(router_port)
                    changed = True
            return changed
        net = s.get(Network, item)
        if net is None:
            return False
        port = self._dhcp_port(s, net.id)
        if port is None:
            guard(s, f"dhcp:{net.id}")  # one DHCP port a network, whichever servers two agents asked
            self.ports.create_internal(s, ADMIN, net, {
                "project_id": net.project_id, "device_owner": DHCP_OWNER, "device_id": f"dhcp-{net.id}",
                "admin_state_up": True, "binding:host_id": host,
                "fixed_ips": [{"subnet_id": sub.id} for sub in self._dhcp_subnets(s, net.id)]})
            return True
        missing = self._missing_dhcp_subnets(s, port)
        if missing:
            current = [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips]
            self.ports.update(s, ADMIN, port.id, {"fixed_ips": current + [{"subnet_id": m} for m in missing]})
            changed = True
        if port.binding_host_id != host:
            self.ports._bind(s, port, host)
            common.touch(port)
            changed = True
        s.flush()
        return changed

    def _snapshot(self, s: Session, host: str, claims_done: bool = False, scope: Scope | None = None) -> Dict | None:
        """The host's desired state (only the parts ``scope`` names, if given), or None if it
        must first claim something (see sync). Lists are sorted by id: a partial answer merged
        into the last full one gives what a full one would (``agent.host_state.merge``)."""
        nets_served, routers_served = self._served(s, host)
        if not claims_done and self._claims_needed(s, host, nets_served, routers_served):
            return None
        mine = Port.binding_host_id == host
        if scope is None:
            ports = _by_id(self.ports.views_where(s, mine))
            all_groups = sorted({g for p in ports for g in p["security_groups"]})
            group_ids = all_groups
            router_ports = ports
        else:  # only the scope's ports, the served routers' ports and the host's group ids are read
            ports = _by_id(self.ports.views_where(s, mine, Port.network_id.in_(sorted(scope.networks))))
            nets_served = [n for n in nets_served if n.id in scope.networks]
            touching = {p["device_id"] for p in ports}
            routers_served = [r for r in routers_served if r.id in scope.routers or r.id in touching]
            all_groups = sorted(s.scalars(select(PortSecurityGroup.security_group_id).distinct()
                                          .join(Port, Port.id == PortSecurityGroup.port_id).where(mine)))
            scoped_groups = scope.groups | {g for p in ports for g in p["security_groups"]}
            group_ids = [g for g in all_groups if g in scoped_groups]
            served_ids = sorted(r.id for r in routers_served)
            router_ports = _by_id(self.ports.views_where(s, mine, Port.device_id.in_(served_ids))) if served_ids else []
        wanted_nets = {p["network_id"] for p in ports}
        router_nets = {p["network_id"] for p in router_ports if p["device_id"] in {r.id for r in routers_served}}
        fetched = wanted_nets | {n.id for n in nets_served} | router_nets
        networks = {n["id"]: n for n in self.networks.load(s, sorted(fetched))} if fetched else {}
        subnets: dict[str, list[Dict]] = defaultdict(list)
        for sub in s.scalars(select(Subnet).where(Subnet.network_id.in_(sorted(fetched)))
                             .order_by(Subnet.created_at, Subnet.id)):
            subnets[sub.network_id].append(subnet_dict(sub, networks[sub.network_id]["router:external"]))
        by_network: dict[str, list[Dict]] = defaultdict(list)
        listed = wanted_nets | {n.id for n in nets_served}
        if listed:
            for port in _by_id(self.ports.views_where(s, Port.network_id.in_(sorted(listed)))):
                by_network[port["network_id"]].append(port)
        dhcp = [self._dhcp_view(networks[n.id], subnets[n.id], by_network[n.id]) for n in nets_served]
        routers = [self._router_view(s, r, router_ports, subnets) for r in routers_served]
        groups = self._groups(s, group_ids)
        remote = {str(r["remote_group_id"]) for g in groups for r in g["security_group_rules"]
                  if r.get("remote_group_id")}
        if scope is not None and scope.groups and all_groups:
            remote |= set(s.scalars(select(SecurityGroupRule.remote_group_id).distinct().where(
                SecurityGroupRule.security_group_id.in_(all_groups),
                SecurityGroupRule.remote_group_id.in_(sorted(scope.groups)))))
        return {
            "host": host,
            "ports": ports,
            "networks": {nid: networks[nid] for nid in sorted(wanted_nets) if nid in networks},
            "subnets": {nid: subnets[nid] for nid in sorted(wanted_nets)},
            "dhcp": [d for d in dhcp if d["dhcp_port"] is not None],
            "routers": routers,
            "security_groups": groups,
            "members": self._members(s, remote),
            **self._remote_hosts(s, host, wanted_nets, [p for n in sorted(wanted_nets) for p in by_network[n]]),
        }

    def _claims_needed(self, s: Session, host: str, nets: list[Network], routers: list[Router]) -> bool:
        """Whether a served network's DHCP port or a served router's port is not yet this host's."""
        if nets:
            dhcp_subnets: dict[str, set[str]] = defaultdict(set)
            for net_id, sub_id in s.execute(select(Subnet.network_id, Subnet.id).where(
                    Subnet.network_id.in_([n.id for n in nets]), Subnet.enable_dhcp.is_(True), Subnet.ip_version == 4)):
                dhcp_subnets[net_id].add(sub_id)
            dhcp_ports = _dhcp_ports(self.ports.views_where(s, Port.network_id.in_([n.id for n in nets]),
                                                            Port.device_owner == DHCP_OWNER))
            for net in nets:
                port = dhcp_ports.get(net.id)
                if port is None or port["binding:host_id"] != host:
                    return True
                if dhcp_subnets[net.id] - {f["subnet_id"] for f in port["fixed_ips"]}:
                    return True
        if not routers:
            return False
        return s.scalar(select(exists().where(RouterPort.router_id.in_([r.id for r in routers]),
                                              RouterPort.port_id == Port.id, Port.binding_host_id != host))) or False

    @staticmethod
    def _dhcp_view(network: Dict, subnets: list[Dict], ports: list[Dict]) -> Dict:
        return {"network": network, "subnets": subnets, "ports": ports,
                "dhcp_port": _dhcp_ports(ports).get(network["id"])}

    def _router_view(self, s: Session, router: Router, ports: list[Dict],
                     subnets: Mapping[str, list[Dict]]) -> Dict:
        """The router with its ports bound to this host (``ports``): one added since the claim
        is realised on the next pass, once it is bound here and its network's bridge exists."""
        mine = {rp.port_id for rp in s.scalars(select(RouterPort).where(RouterPort.router_id == router.id))}
        by_subnet = {sub["id"]: sub for subs in subnets.values() for sub in subs}
        gateway = None
        interfaces = []
        for port in ports:
            if port["id"] not in mine:
                continue
            enriched = dict(port, fixed_ips=[dict(f, cidr=by_subnet[f["subnet_id"]]["cidr"],
                                                  gateway_ip=by_subnet[f["subnet_id"]]["gateway_ip"])
                                             for f in port["fixed_ips"] if f["subnet_id"] in by_subnet])
            if port["device_owner"] == ROUTER_GW:
                gateway = enriched
            else:
                interfaces.append(enriched)
        view = self.routers._view(s, router)
        fips = [self.fips._view(s, f) for f in s.scalars(select(FloatingIP).where(FloatingIP.router_id == router.id)
                                                              .order_by(FloatingIP.id))]
        return {"router": view, "interfaces": sorted(interfaces, key=lambda p: p["id"]), "gateway_port": gateway,
                "floating_ips": fips}

    def _groups(self, s: Session, ids: list[str]) -> list[Dict]:
        if not ids:
            return []
        groups = list(s.scalars(select(SecurityGroup).where(SecurityGroup.id.in_(ids)).order_by(SecurityGroup.id)))
        rules = _rules_of(s, ids)
        defaults = default_group_ids(s, ids)
        return [self.groups.to_dict(g, rules[g.id], defaults) for g in groups]

    def _members(self, s: Session, remote: Collection[str]) -> dict[str, list[str]]:
        """Addresses of every port in each group the host's rules name as a remote group."""
        members: dict[str, set[str]] = {g: set() for g in sorted(remote)}
        if members:
            in_groups = select(PortSecurityGroup.port_id).where(PortSecurityGroup.security_group_id.in_(sorted(remote)))
            for port in self.ports.views_where(s, Port.id.in_(in_groups)):
                for group in port["security_groups"]:
                    if group in members:
                        members[group] |= set(port_addresses(port))
        return {g: sorted(a) for g, a in members.items()}

    def _remote_hosts(self, s: Session, host: str, network_ids: Iterable[str], ports: list[Dict]) -> Dict:
        """The other hosts on this host's networks, as l2population tells agents: ``remote_vteps``
        (network -> their tunnel endpoints, for flooding) and ``remote_macs`` (network -> endpoint
        -> the MACs of the ports bound there, so unicast goes straight to its host)."""
        tunnel = self._tunnel_ips(s, {str(p["binding:host_id"]) for p in ports} - {host, ""})
        wanted = set(network_ids)
        macs: dict[str, dict[str, set[str]]] = {n: {} for n in wanted}
        for port in ports:
            where = port["binding:host_id"]
            if port["network_id"] in wanted and where and where != host and where in tunnel:
                macs[port["network_id"]].setdefault(tunnel[where], set()).add(str(port["mac_address"]))
        return {"remote_vteps": {n: sorted(by_ip) for n, by_ip in sorted(macs.items())},
                "remote_macs": {n: {ip: sorted(m) for ip, m in sorted(by_ip.items())}
                                for n, by_ip in sorted(macs.items())}}

    # ------------------------------------------------------------ metadata

    def metadata_lookup(self, router_id: str | None, network_id: str | None, ip: str) -> Dict | None:
        """The instance behind ``ip`` on the router's (or this) network: what the metadata service tells it."""
        try:
            address = str(ipaddress.ip_address(ip))
        except ValueError:
            return None

        def read(s: Session) -> Dict | None:
            if network_id:
                nets = [network_id]
            elif router_id:
                nets = [p.network_id for p in self._router_ports(s, router_id) if p.device_owner != ROUTER_GW]
            else:
                return None
            for port in self.ports.get_all(s, ADMIN, {"network_id": nets}):
                if port["device_owner"].startswith("compute:") and address in port_addresses(port)[:len(
                        port["fixed_ips"])]:
                    hostname = port["dns_name"] or port["name"] or "host-" + address.replace(".", "-")
                    return {"instance_id": port["device_id"], "name": port["name"] or hostname,
                            "hostname": hostname, "local_ipv4": address, "project_id": port["project_id"]}
            return None
        return self.db.read(read)
