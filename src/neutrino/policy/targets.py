"""What a rule sees of an object: its attributes plus those of the resources it hangs off.

Neutron's rules name the owner of the network under a port or subnet (``network:project_id``),
whether that network is shared or external (``rule:shared``, ``rule:external_network``) and
the owner of a rule's security group (``security_group:project_id``). Neutron fetches these one
object at a time; here one query per list fetches them for every item at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neutrino.db.models.network import Network
from neutrino.db.models.security import SecurityGroup

Item = dict[str, Any]


def build(s: Session, member: str, items: Iterable[Item]) -> list[Item]:
    """One target per item, in order: the item's attributes plus its parents' owner/visibility."""
    items = list(items)
    if member != "network":
        net_ids = {i["network_id"] for i in items if isinstance(i.get("network_id"), str)}
    else:
        net_ids = set()
    sg_ids = {i["security_group_id"] for i in items if isinstance(i.get("security_group_id"), str)}
    nets: dict[str, tuple[str, bool, bool]] = {}
    if net_ids:
        rows = s.execute(select(Network.id, Network.project_id, Network.shared, Network.external)
                         .where(Network.id.in_(net_ids)))
        nets = {r[0]: (r[1], bool(r[2]), bool(r[3])) for r in rows}
    sgs: dict[str, tuple[str, bool]] = {}
    if sg_ids:
        sgs = {r[0]: (r[1], bool(r[2])) for r in s.execute(
            select(SecurityGroup.id, SecurityGroup.project_id, SecurityGroup.shared)
            .where(SecurityGroup.id.in_(sg_ids)))}
    out = []
    for item in items:
        target = dict(item)
        if member != "network" and (net := nets.get(item.get("network_id"))):  # type: ignore[arg-type]
            target["network:project_id"] = target["network:tenant_id"] = net[0]
            target["network:shared"], target["network:router:external"] = net[1], net[2]
        if (sg := sgs.get(item.get("security_group_id"))) is not None:  # type: ignore[arg-type]
            target["security_group:project_id"] = target["security_group:tenant_id"] = sg[0]
            target["security_group:shared"] = sg[1]
        if "project_id" in target:
            target.setdefault("tenant_id", target["project_id"])
        out.append(target)
    return out


def one(s: Session, member: str, item: Item) -> Item:
    return build(s, member, [item])[0]



def parents(member: str, body: Item, target: Item) -> list[tuple[str, str, Item | None]]:
    """(resource, id, target or None when it does not exist) of the network and security group
    a create names; the controller answers 404 for one the caller may not see, as for any object
    it may not see, before asking whether it may create."""
    out: list[tuple[str, str, Item | None]] = []
    net_id = body.get("network_id")
    if member != "network" and isinstance(net_id, str):
        net = None
        if "network:project_id" in target:
            net = {"project_id": target["network:project_id"], "shared": target["network:shared"],
                   "router:external": target["network:router:external"]}
        out.append(("network", net_id, net))
    sg_id = body.get("security_group_id")
    if isinstance(sg_id, str):
        sg = None
        if "security_group:project_id" in target:
            sg = {"project_id": target["security_group:project_id"], "shared": target["security_group:shared"]}
        out.append(("security_group", sg_id, sg))
    return out
