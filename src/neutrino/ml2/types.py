"""ML2 type drivers: local, flat, vlan, vxlan, gre, geneve — validation, allocation, MTU.

A segmentation id in use is a row in ``segment_allocations``; its primary key
(type, physnet, id) is what guarantees no id is handed out twice, even when two servers
allocate at once (the loser's transaction fails on the key and is retried whole). The free ids
of each (type, physnet) are kept as runs (:mod:`neutrino.services.free_ranges`), so the next
one of a 16M VXLAN range with thousands taken is found by reading one run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from neutrino.db.models.network import NetworkSegment, SegmentAllocation
from neutrino.errors import Conflict, HTTPBadRequest, InvalidInput, TransientDatabaseError
from neutrino.services import free_ranges

# Encapsulation overhead over IPv4, as Neutron computes it.
OVERHEAD = {"vxlan": 50, "gre": 42, "geneve": 58}
ID_LIMITS = {"vlan": (1, 4094), "vxlan": (1, 2**24 - 1), "gre": (1, 2**32 - 1), "geneve": (1, 2**24 - 1)}
TUNNEL_TYPES = ("vxlan", "gre", "geneve")


@dataclass(frozen=True)
class SegmentSpec:
    network_type: str
    physical_network: str | None
    segmentation_id: int | None


def parse_ranges(entries: list[str], with_physnet: bool) -> dict[str, list[tuple[int, int]]]:
    """``["physnet1:100:199", "physnet2"]`` or ``["1:1000"]`` -> {physnet or '': [(lo, hi)]}."""
    out: dict[str, list[tuple[int, int]]] = {}
    for entry in entries:
        parts = entry.split(":")
        key = parts.pop(0) if with_physnet else ""
        out.setdefault(key, [])
        if parts:
            lo, hi = int(parts[0]), int(parts[1])
            out[key].append((min(lo, hi), max(lo, hi)))
    return out


class InUse(Conflict):
    """Segment already taken; message and type name set per network type, as Neutron's."""

    def __init__(self, spec: SegmentSpec) -> None:
        if spec.network_type == "flat":
            super().__init__(f"Unable to create the flat network. Physical network {spec.physical_network} is in use.")
            self.type_name = "FlatNetworkInUse"
        elif spec.network_type == "vlan":
            super().__init__(
                f"Unable to create the network. The VLAN {spec.segmentation_id} on physical network "
                f"{spec.physical_network} is in use."
            )
            self.type_name = "VlanIdInUse"
        else:
            super().__init__(f"Unable to create the network. The tunnel ID {spec.segmentation_id} is in use.")
            self.type_name = "TunnelIdInUse"


@dataclass
class TypeDriver:
    """One network type; ``ranges`` are the tenant pools ({physnet or '': [(lo, hi)]})."""

    name: str
    ranges: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    flat_networks: list[str] = field(default_factory=list)

    @property
    def needs_physnet(self) -> bool:
        return self.name in ("flat", "vlan")

    def validate(self, spec: SegmentSpec) -> SegmentSpec:
        """Check a provider request; returns it normalised. 400 with Neutron's wording."""
        net_type, physnet, seg_id = spec.network_type, spec.physical_network, spec.segmentation_id
        if net_type in ("local", *TUNNEL_TYPES) and physnet:
            raise InvalidInput(error_message=f"provider:physical_network specified for {net_type} network")
        if net_type in ("local", "flat") and seg_id is not None:
            raise InvalidInput(error_message=f"segmentation_id specified for {net_type} network")
        if self.needs_physnet and not physnet:
            raise InvalidInput(error_message=f"physical_network required for {net_type} provider network")
        if net_type == "flat" and "*" not in self.flat_networks and physnet not in self.flat_networks:
            raise InvalidInput(error_message=f"physical_network '{physnet}' unknown for flat provider network")
        if net_type == "vlan" and physnet not in self.ranges:
            raise InvalidInput(error_message=f"physical_network '{physnet}' unknown for VLAN provider network")
        if seg_id is not None and net_type in ID_LIMITS:
            lo, hi = ID_LIMITS[net_type]
            if not lo <= seg_id <= hi:
                what = "VLAN" if net_type == "vlan" else f"{net_type.upper()} ID"
                raise InvalidInput(error_message=f"{what} {seg_id} is not in the valid range {lo} to {hi}")
        return spec

    def _key(self, spec: SegmentSpec) -> tuple[str, int] | None:
        """The allocation key of a segment, or None when the type allocates nothing."""
        if self.name == "local":
            return None
        if self.name == "flat":
            return (spec.physical_network or "", 0)
        return (spec.physical_network or "", spec.segmentation_id or 0)

    def reserve(self, s: Session, spec: SegmentSpec, segment_id: str) -> None:
        """Take a provider segment; 409 when somebody has it."""
        key = self._key(spec)
        if key is None:
            return
        taken = s.get(SegmentAllocation, (self.name, key[0], key[1]))
        if taken is not None:
            raise InUse(spec)
        s.add(SegmentAllocation(network_type=self.name, physical_network=key[0],
                                segmentation_id=key[1], segment_id=segment_id))
        if key[0] in self.ranges:  # an id of the tenant ranges, taken by a provider network
            free_ranges.remove(s, self._pool(s, key[0]), key[1])

    def _pool(self, s: Session, physnet: str) -> free_ranges.Pool:
        """The tenant ids of one physnet (of the tunnel type: physnet '') as a pool of runs."""
        def used() -> list[int]:
            return list(s.scalars(select(SegmentAllocation.segmentation_id).where(
                SegmentAllocation.network_type == self.name, SegmentAllocation.physical_network == physnet)))

        def taken(value: int) -> bool:
            return s.execute(select(SegmentAllocation.segment_id).where(
                SegmentAllocation.network_type == self.name, SegmentAllocation.physical_network == physnet,
                SegmentAllocation.segmentation_id == value)).first() is not None

        return free_ranges.Pool(f"segments:{self.name}:{physnet}", disjoint(self.ranges.get(physnet, [])),
                                used, taken)

    def allocate(self, s: Session, segment_id: str) -> SegmentSpec | None:
        """Take the lowest free id from the tenant ranges; None when they are exhausted."""
        if self.name == "local":
            return SegmentSpec("local", None, None)
        if self.name == "flat":
            return None  # flat networks are provider-only
        for physnet in self.ranges:
            seg_id = free_ranges.take(s, self._pool(s, physnet))
            if seg_id is None:
                continue
            if s.get(SegmentAllocation, (self.name, physnet, seg_id)) is not None:
                # taken since we looked: lost a race, run the request again
                raise TransientDatabaseError(f"{self.name} {seg_id} taken concurrently")
            s.add(SegmentAllocation(network_type=self.name, physical_network=physnet,
                                    segmentation_id=seg_id, segment_id=segment_id))
            return SegmentSpec(self.name, physnet or None, seg_id)
        return None

    def release(self, s: Session, segment: NetworkSegment) -> None:
        spec = SegmentSpec(segment.network_type, segment.physical_network, segment.segmentation_id)
        key = self._key(spec)
        if key is not None:
            row = s.get(SegmentAllocation, (self.name, key[0], key[1]))
            if row is not None:
                s.delete(row)
                if key[0] in self.ranges:
                    free_ranges.give_back(s, self._pool(s, key[0]), key[1])


def disjoint(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Configured ranges in their order, each without what earlier ones already cover
    (``1:100,50:150`` hands out 1..100 then 101..150, each id once)."""
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        pieces = [(lo, hi)]
        for a, b in out:
            pieces = [p for x, y in pieces for p in ((x, min(y, a - 1)), (max(x, b + 1), y)) if p[0] <= p[1]]
        out.extend(sorted(pieces))
    return out


def unsupported(net_type: str) -> HTTPBadRequest:
    return HTTPBadRequest(msg=f"Invalid input for operation: network_type value '{net_type}' not supported.")
