"""The Linux-bridge mechanism driver: binds normal ports on local, flat and vxlan segments.

As Neutron's: ``binding:vif_type`` ``bridge`` and ``vif_details`` saying the agent filters the
port (security groups) at layer 2, plus the host bridge the VIF plugs into (``brq<net[:11]>``),
and only where a live Linux bridge agent runs on the port's host and reports what the segment
needs (``vxlan`` in its ``tunnel_types``, the flat network's physnet in its
``interface_mappings`` or ``bridge_mappings``; see :mod:`neutrino.ml2.mech_agent`).
Unlike Neutron's it does not bind vlan segments: this kernel has no 8021q VLAN devices (nor
gretap/geneve), so vlan, gre and geneve networks need Open vSwitch (see DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neutrino.db.models.network import NetworkSegment
from neutrino.messages import LINUXBRIDGE_AGENT
from neutrino.ml2.manager import AgentView
from neutrino.ml2.mech_agent import AgentMechanism, mapping
from neutrino.naming import bridge_name

VIF_TYPE_BRIDGE = "bridge"
SUPPORTED_NETWORK_TYPES = ("local", "flat", "vxlan")


class LinuxBridgeMechanism(AgentMechanism):
    name = "linuxbridge"
    agent_type = LINUXBRIDGE_AGENT
    vif_type = VIF_TYPE_BRIDGE
    network_types = SUPPORTED_NETWORK_TYPES
    mapping_kind = "interface"

    def mappings(self, conf: Mapping[str, Any]) -> dict[str, str]:
        """Neutron's: a physnet the agent has an interface or a bridge for."""
        return {**mapping(conf, "interface_mappings"), **mapping(conf, "bridge_mappings")}

    def vif_details(self, agent: AgentView, segment: NetworkSegment) -> dict[str, Any]:
        return {"port_filter": True, "connectivity": "l2", "bridge_name": bridge_name(segment.network_id)}

    def unsupported(self, types: str) -> str:
        return (f"network type {types} is not supported with Linux bridge on this kernel "
                f"(supported: {', '.join(SUPPORTED_NETWORK_TYPES)}; vlan, gre and geneve need Open vSwitch)")
