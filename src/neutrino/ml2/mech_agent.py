"""What agent-based mechanism drivers share (Neutron's ``SimpleAgentMechanismDriverBase``).

A driver binds a port only where an agent of its type is registered on the port's host,
enabled (``admin_state_up``) and alive (heartbeat within ``agent_down_time``), and only to a
segment that agent reports it can serve: a tunnel type listed in its ``tunnel_types``, a flat
or vlan physical network present in its mappings, or a local segment. Binding on the word of
a dead or absent agent would hand nova (or ``neutrino instance create``) a VIF that nobody
wires; refusing says why instead, and the port is bound again once the agent reports in.

Each refusal names the host, the agent and what is missing, because it is the only thing the
operator sees (``binding:vif_details`` ``reason``) when an instance fails to boot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from neutrino.db.models.network import NetworkSegment
from neutrino.ml2.manager import AgentView, Binding, Refusal
from neutrino.ml2.types import TUNNEL_TYPES

PHYSNET_TYPES = ("flat", "vlan")
# The parts of an agent's ``configurations`` that binding reads: a change to them (not to
# counters such as ``devices``) is a reason to retry the host's failed bindings.
BINDING_CONFIGURATIONS = ("tunnel_types", "bridge_mappings", "interface_mappings", "datapath_type",
                          "integration_bridge", "ovs_hybrid_plug")


def binding_view(conf: Mapping[str, Any]) -> dict[str, Any]:
    return {key: conf.get(key) for key in BINDING_CONFIGURATIONS}


def tunnel_types(conf: Mapping[str, Any]) -> list[str]:
    """The agent's ``tunnel_types``; anything but a list of strings counts as none."""
    found = conf.get("tunnel_types")
    return [t for t in found if isinstance(t, str)] if isinstance(found, list) else []


def mapping(conf: Mapping[str, Any], key: str) -> dict[str, str]:
    """One of the agent's physnet mappings (``bridge_mappings``, ``interface_mappings``)."""
    found = conf.get(key)
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


class AgentMechanism:
    """Binds to the first segment the host's live agent of ``agent_type`` can serve.

    Subclasses say what they can ever bind (``network_types``, ``supported_vnic_types``), which
    mappings of the agent hold its physical networks, and the VIF details of a binding.
    """

    name: str
    agent_type: str
    vif_type: str
    network_types: tuple[str, ...]
    supported_vnic_types: tuple[str, ...] = ("normal",)
    mapping_kind = "bridge"  # how the reason names the agent's physnet mappings

    def mappings(self, conf: Mapping[str, Any]) -> dict[str, str]:
        """Physical network -> what the agent plugs it into."""
        return mapping(conf, "bridge_mappings")

    def vif_details(self, agent: AgentView, segment: NetworkSegment) -> dict[str, Any]:
        raise NotImplementedError

    def unsupported(self, types: str) -> str:
        """The reason when no segment is of a type this driver can ever bind."""
        return f"network type {types} is not supported (supported: {', '.join(self.network_types)})"

    def bind_port(self, host: str, vnic_type: str, segments: Sequence[NetworkSegment],
                  agents: Sequence[AgentView]) -> Binding | Refusal:
        """Bind to the first segment a live agent on ``host`` can serve, or say why not."""
        if vnic_type not in self.supported_vnic_types:
            return Refusal(f"vnic_type {vnic_type!r} is not supported "
                           f"(supported: {', '.join(self.supported_vnic_types)})")
        candidates = [seg for seg in segments if seg.network_type in self.network_types]
        if not candidates:
            return Refusal(self.unsupported(", ".join(sorted({seg.network_type for seg in segments})) or "none"))
        here = [a for a in agents if a.agent_type == self.agent_type and a.host == host]
        live = [a for a in here if a.alive and a.admin_state_up]
        if not live:
            return Refusal(self._no_live_agent(host, here))
        reasons: list[str] = []
        for agent in live:
            for seg in candidates:
                why = self.check_segment(seg, agent)
                if why is None:
                    return Binding(self.vif_type, self.vif_details(agent, seg), segment_id=seg.id)
                reasons.append(why)
        return Refusal("; ".join(dict.fromkeys(reasons)))

    def check_segment(self, segment: NetworkSegment, agent: AgentView) -> str | None:
        """None when ``agent`` can serve ``segment``; otherwise what it lacks."""
        conf = agent.configurations
        net_type = segment.network_type
        if net_type in TUNNEL_TYPES:
            reported = tunnel_types(conf)
            if net_type not in reported:
                return (f"agent on {agent.host} has no {net_type} tunnels "
                        f"(its tunnel_types: {', '.join(reported) or 'none'})")
        elif net_type in PHYSNET_TYPES and segment.physical_network not in self.mappings(conf):
            return f"agent on {agent.host} has no {self.mapping_kind} mapping for {segment.physical_network}"
        return None

    def _no_live_agent(self, host: str, here: Sequence[AgentView]) -> str:
        reason = f"host {host} has no live {self.agent_type}"
        if any(not a.admin_state_up for a in here):
            return f"{reason} (the one there is disabled: admin_state_up is false)"
        if here:
            return f"{reason} (its last heartbeat, {here[0].heartbeat or 'never'}, is older than agent_down_time)"
        return reason
