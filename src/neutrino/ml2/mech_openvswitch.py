"""The Open vSwitch mechanism driver: binds normal ports on every network type, per host as
far as that host's live Open vSwitch agent reports it can (Neutron's ``mech_openvswitch``).

``binding:vif_type`` ``ovs``; ``vif_details`` as Neutron's driver gives them with the native
(OpenFlow) firewall: the agent filters the port (``port_filter``), no hybrid plug through a
Linux bridge, the agent's datapath type (``netdev`` here: the userspace datapath, see
DESIGN.md) and its integration bridge. An overlay segment needs its type in the agent's
``tunnel_types``; a flat or vlan one needs the physnet in its ``bridge_mappings``.
"""

from __future__ import annotations

from typing import Any

from neutrino.db.models.network import NetworkSegment
from neutrino.messages import OVS_AGENT
from neutrino.ml2.manager import AgentView
from neutrino.ml2.mech_agent import AgentMechanism

VIF_TYPE_OVS = "ovs"
SUPPORTED_NETWORK_TYPES = ("local", "flat", "vlan", "vxlan", "gre", "geneve")
DEFAULT_DATAPATH = "system"  # Neutron's default when the agent does not say
DEFAULT_INTEGRATION_BRIDGE = "br-int"


class OpenvswitchMechanism(AgentMechanism):
    name = "openvswitch"
    agent_type = OVS_AGENT
    vif_type = VIF_TYPE_OVS
    network_types = SUPPORTED_NETWORK_TYPES
    mapping_kind = "bridge"

    def vif_details(self, agent: AgentView, segment: NetworkSegment) -> dict[str, Any]:
        conf = agent.configurations
        datapath = conf.get("datapath_type")
        bridge = conf.get("integration_bridge")
        return {"port_filter": True, "connectivity": "l2", "ovs_hybrid_plug": conf.get("ovs_hybrid_plug") is True,
                "datapath_type": datapath if isinstance(datapath, str) and datapath else DEFAULT_DATAPATH,
                "bridge_name": bridge if isinstance(bridge, str) and bridge else DEFAULT_INTEGRATION_BRIDGE}

    def unsupported(self, types: str) -> str:
        return (f"network type {types} is not supported by Open vSwitch "
                f"(supported: {', '.join(SUPPORTED_NETWORK_TYPES)})")
