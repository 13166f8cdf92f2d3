"""The ML2 manager: picks type drivers for segments and mechanism drivers for port binding.

Type drivers come from ``[ml2] type_drivers``; tenant networks try ``tenant_network_types``
in order and get 503 NoNetworkAvailable when every range is exhausted. Mechanism drivers
come from ``[ml2] mechanism_drivers`` (tests may add more with :meth:`Ml2Manager.register_mechanism`)
and are asked in that order; the first that binds wins. As Neutron's agent-based drivers,
each binds only where an alive, enabled agent of its type runs on the port's host and can
serve one of the network's segments (see :mod:`neutrino.ml2.mech_agent`); the caller passes
that host's agents in, so this package reads no agent rows and imports no kernel code. When
none binds, the port shows ``binding:vif_type`` ``binding_failed`` and, since Neutron has no
field for the cause, ``binding:vif_details`` ``{"reason": ...}`` (only then) with every
driver's reason, also logged at WARNING. A failed binding is tried again when the host's agent
reports in and on every update of the port (see ``services.ports``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from neutrino.config import Config, ConfigError
from neutrino.db.models.base import new_id
from neutrino.db.models.network import Network, NetworkSegment
from neutrino.errors import NoNetworkAvailable
from neutrino.ml2.types import OVERHEAD, TUNNEL_TYPES, SegmentSpec, TypeDriver, parse_ranges, unsupported

LOG = logging.getLogger(__name__)

VIF_TYPE_BINDING_FAILED = "binding_failed"


@dataclass(frozen=True)
class Binding:
    vif_type: str
    vif_details: dict[str, Any]
    segment_id: str


@dataclass(frozen=True)
class Refusal:
    """A driver's reason for not binding, shown to the operator when no driver binds."""

    reason: str


@dataclass(frozen=True)
class AgentView:
    """An agent registered on the port's host, as binding needs it (Neutron's ``host_agents``).

    ``alive`` is the heartbeat within ``agent_down_time``, computed by whoever read the row;
    ``heartbeat`` is its time as the API shows it, for the reason of a refusal.
    """

    agent_type: str
    host: str
    alive: bool
    admin_state_up: bool = True
    heartbeat: str | None = None
    configurations: Mapping[str, Any] = field(default_factory=dict)


class MechanismDriver(Protocol):
    """Binds a port on a host to one of its network's segments, or says why it cannot."""

    name: str

    def bind_port(self, host: str, vnic_type: str, segments: Sequence[NetworkSegment],
                  agents: Sequence[AgentView]) -> Binding | Refusal: ...


def _builtin_mechanisms() -> dict[str, Callable[[], MechanismDriver]]:
    # Imported here: the drivers import Binding/Refusal from this module.
    from neutrino.ml2.mech_linuxbridge import LinuxBridgeMechanism
    from neutrino.ml2.mech_openvswitch import OpenvswitchMechanism

    return {"linuxbridge": LinuxBridgeMechanism, "openvswitch": OpenvswitchMechanism}


def load_mechanisms(names: list[str]) -> list[MechanismDriver]:
    """The drivers ``[ml2] mechanism_drivers`` names, in order; ConfigError for unknown ones."""
    builtin = _builtin_mechanisms()
    for name in names:
        if name not in builtin:
            raise ConfigError(f"[ml2] mechanism_drivers: unknown driver {name!r} "
                              f"(available: {', '.join(sorted(builtin))})")
    return [builtin[name]() for name in names]


class Ml2Manager:
    def __init__(self, cfg: Config) -> None:
        ml2 = cfg.ml2
        self.global_mtu = cfg.DEFAULT.global_physnet_mtu
        self.path_mtu = ml2.path_mtu
        self.physnet_mtus = {k: int(v) for k, v in (e.split(":") for e in ml2.physical_network_mtus)}
        ranges = {
            "vlan": parse_ranges(ml2.network_vlan_ranges, with_physnet=True),
            "vxlan": parse_ranges(ml2.vxlan_vni_ranges, with_physnet=False),
            "gre": parse_ranges(ml2.gre_tunnel_id_ranges, with_physnet=False),
            "geneve": parse_ranges(ml2.geneve_vni_ranges, with_physnet=False),
        }
        self.drivers = {
            name: TypeDriver(name, ranges.get(name, {}), list(ml2.flat_networks)) for name in ml2.type_drivers
        }
        self.tenant_types = [t for t in ml2.tenant_network_types if t in self.drivers]
        self.mechanisms: list[MechanismDriver] = load_mechanisms(list(ml2.mechanism_drivers))

    def register_mechanism(self, driver: MechanismDriver) -> None:
        self.mechanisms.append(driver)

    def driver(self, net_type: str) -> TypeDriver:
        if net_type not in self.drivers:
            raise unsupported(net_type)
        return self.drivers[net_type]

    def create_segment(self, s: Session, network: Network, provider: SegmentSpec | None) -> NetworkSegment:
        """Reserve the provider segment, or allocate a tenant one; attach it to the network."""
        seg = NetworkSegment(id=new_id(), network_id=network.id, network_type="", segment_index=0)
        network.segments.append(seg)
        s.flush()  # allocation rows reference the segment: it must exist first
        if provider is not None:
            spec = self.driver(provider.network_type).validate(provider)
            if spec.segmentation_id is None and spec.network_type not in ("local", "flat"):
                got = self._allocate_in(s, spec, seg.id)
                if got is None:
                    raise NoNetworkAvailable()
                spec = got
            else:
                self.drivers[spec.network_type].reserve(s, spec, seg.id)
        else:
            spec = self._allocate_tenant(s, seg.id)
        seg.network_type, seg.physical_network, seg.segmentation_id = (
            spec.network_type, spec.physical_network, spec.segmentation_id)
        return seg

    def _allocate_in(self, s: Session, spec: SegmentSpec, segment_id: str) -> SegmentSpec | None:
        """A provider request without an id: the lowest free id in the configured range."""
        driver = self.drivers[spec.network_type]
        if spec.network_type == "vlan":
            sub = TypeDriver("vlan", {spec.physical_network or "": driver.ranges.get(spec.physical_network or "", [])})
            return sub.allocate(s, segment_id)
        return driver.allocate(s, segment_id)

    def _allocate_tenant(self, s: Session, segment_id: str) -> SegmentSpec:
        for net_type in self.tenant_types:
            spec = self.drivers[net_type].allocate(s, segment_id)
            if spec is not None:
                return spec
        raise NoNetworkAvailable()

    def release_segments(self, s: Session, network: Network) -> None:
        for seg in network.segments:
            driver = self.drivers.get(seg.network_type)
            if driver is not None:
                driver.release(s, seg)

    def mtu(self, spec: NetworkSegment | SegmentSpec) -> int:
        """Physical MTU (per physnet, path_mtu for tunnels) minus encapsulation overhead."""
        phys = self.global_mtu
        if spec.physical_network and spec.physical_network in self.physnet_mtus:
            phys = min(phys, self.physnet_mtus[spec.physical_network])
        if spec.network_type in TUNNEL_TYPES:
            if self.path_mtu:
                phys = min(phys, self.path_mtu)
            return phys - OVERHEAD[spec.network_type]
        return phys

    def bind(self, host: str, vnic_type: str, segments: Sequence[NetworkSegment], agents: Sequence[AgentView],
             port_id: str = "") -> Binding:
        """The first driver's binding; otherwise ``binding_failed`` with every driver's reason.

        ``agents`` are the agents registered on ``host`` (any type, alive or not).
        """
        reasons: list[str] = []
        for mech in self.mechanisms:
            result = mech.bind_port(host, vnic_type, segments, agents)
            if isinstance(result, Binding):
                return result
            reasons.append(f"{mech.name}: {result.reason}")
        reason = "; ".join(reasons) or "no mechanism drivers configured ([ml2] mechanism_drivers is empty)"
        LOG.warning("port %s: binding on host %s failed: %s", port_id, host, reason)
        return Binding(VIF_TYPE_BINDING_FAILED, {"reason": reason}, segment_id="")
