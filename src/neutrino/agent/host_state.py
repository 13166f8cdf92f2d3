"""The agent's copy of its host's desired state, kept current by partial fetches.

A change event names the networks, routers and security groups it touched; the agent asks
the server for just those parts (``sync(host, scope)``) and merges them into the last
snapshot, instead of fetching everything the host realises after every write anywhere. The
merge gives exactly what a full ``sync`` would (tests/api/test_partial_sync.py checks it
after every kind of write); what an event could not name (a lost event, an agent's death
noticed by time) is repaired by the periodic full resync.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Literal

from neutrino.bus import Event
from neutrino.messages import SyncScope

Dict = dict[str, Any]


class Pending:
    """What the events since the last fetch touched: parts, or everything."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._everything = True  # nothing fetched yet
        self._parts: dict[str, set[str]] = {"networks": set(), "routers": set(), "groups": set()}

    def add(self, event: Event) -> None:
        with self._lock:
            if event.partial:
                self._parts["networks"] |= event.networks
                self._parts["routers"] |= event.routers
                self._parts["groups"] |= event.groups
            else:
                self._everything = True

    def everything(self) -> None:
        """The next fetch is a full one (start, resync, a fetch that failed)."""
        with self._lock:
            self._everything = True

    def take(self) -> SyncScope | None | Literal[False]:
        """What to fetch now: None for everything, a scope for parts, False for nothing."""
        with self._lock:
            everything, parts = self._everything, self._parts
            self._everything = False
            self._parts = {"networks": set(), "routers": set(), "groups": set()}
        if everything:
            return None
        if not any(parts.values()):
            return False
        return {"networks": sorted(parts["networks"]), "routers": sorted(parts["routers"]),
                "groups": sorted(parts["groups"])}


def _by_id(items: Iterable[Dict]) -> list[Dict]:
    return sorted(items, key=lambda item: str(item["id"]))


def _router_networks(entry: Dict) -> set[str]:
    ports = list(entry["interfaces"]) + ([entry["gateway_port"]] if entry["gateway_port"] else [])
    return {str(p["network_id"]) for p in ports}


def merge(cached: Dict, part: Dict, scope: SyncScope) -> Dict:
    """``cached`` with the scope's parts replaced by ``part`` (a ``sync(host, scope)`` answer).

    The server's partial answer holds, for the scope's networks, this host's ports, their
    networks, subnets and remote hosts and the DHCP it serves there; every router this host
    serves that the scope names or that has a port on those networks; and the security
    groups the scope names or the scope's ports use, with their members. So the cached
    entries of exactly those are replaced, and what no port uses any more goes.
    """
    nets = set(scope.get("networks", ()))
    named_routers = set(scope.get("routers", ()))
    ports = _by_id([p for p in cached["ports"] if str(p["network_id"]) not in nets] + part["ports"])
    routers = [r for r in cached["routers"]
               if str(r["router"]["id"]) not in named_routers and not _router_networks(r) & nets]
    dhcp = [d for d in cached["dhcp"] if str(d["network"]["id"]) not in nets]
    used = {g for p in ports for g in p["security_groups"]}
    groups = {g: v for g, v in ({str(g["id"]): g for g in cached["security_groups"]}
                                | {str(g["id"]): g for g in part["security_groups"]}).items() if g in used}
    remote = {str(r["remote_group_id"]) for g in groups.values() for r in g["security_group_rules"]
              if r.get("remote_group_id")}
    members = cached["members"] | part["members"]

    def by_network(name: str) -> dict[str, Any]:
        return dict(sorted(({k: v for k, v in cached[name].items() if k not in nets} | part[name]).items()))
    return {
        "host": cached["host"],
        "ports": ports,
        "networks": by_network("networks"),
        "subnets": by_network("subnets"),
        "dhcp": sorted(dhcp + part["dhcp"], key=lambda d: str(d["network"]["id"])),
        "routers": sorted(routers + part["routers"], key=lambda r: str(r["router"]["id"])),
        "security_groups": [groups[g] for g in sorted(groups)],
        "members": {g: members[g] for g in sorted(remote) if g in members},
        "remote_vteps": by_network("remote_vteps"),
        "remote_macs": by_network("remote_macs"),
    }
