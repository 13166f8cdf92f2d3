"""The Open vSwitch mechanism driver: per host, what the live OVS agent reports it can do."""

from __future__ import annotations

from typing import Any

import pytest

from neutrino.db.models.network import NetworkSegment
from neutrino.messages import LINUXBRIDGE_AGENT, OVS_AGENT
from neutrino.ml2.manager import AgentView, Binding, Refusal
from neutrino.ml2.mech_openvswitch import OpenvswitchMechanism

NET = "0123456789abcdef-0000-0000-000000000000"
OVS_CONF = {"tunnel_types": ["vxlan", "gre", "geneve"], "bridge_mappings": {"physnet1": "br-physnet1"},
            "datapath_type": "netdev", "integration_bridge": "br-int", "ovs_hybrid_plug": False}
DETAILS = {"port_filter": True, "connectivity": "l2", "ovs_hybrid_plug": False, "datapath_type": "netdev",
           "bridge_name": "br-int"}


def seg(net_type: str, seg_id: int | None = None, physnet: str | None = None, ident: str = "s1") -> NetworkSegment:
    return NetworkSegment(id=ident, network_id=NET, network_type=net_type, physical_network=physnet,
                          segmentation_id=seg_id, segment_index=0)


def ovs(host: str = "host1", alive: bool = True, up: bool = True, **conf: Any) -> AgentView:
    return AgentView(OVS_AGENT, host, alive, up, "2026-12-07 10:00:00", conf or OVS_CONF)


def bind(segments: list[NetworkSegment], agents: list[AgentView] | None = None, vnic: str = "normal",
         host: str = "host1") -> Binding | Refusal:
    return OpenvswitchMechanism().bind_port(host, vnic, segments, [ovs()] if agents is None else agents)


@pytest.mark.parametrize("segment", [seg("local"), seg("flat", None, "physnet1"), seg("vlan", 120, "physnet1"),
                                     seg("vxlan", 7), seg("gre", 8), seg("geneve", 9)])
def test_binds_every_type_the_agent_serves_with_neutrons_vif_details(segment: NetworkSegment) -> None:
    assert bind([segment]) == Binding("ovs", DETAILS, segment_id="s1")


def test_details_follow_the_agent_and_default_as_neutron() -> None:
    got = bind([seg("vxlan", 7)], [ovs(tunnel_types=["vxlan"])])
    assert isinstance(got, Binding)
    assert got.vif_details == {**DETAILS, "datapath_type": "system"}  # Neutron's default datapath
    got = bind([seg("local")], [ovs(datapath_type="netdev", integration_bridge="br-int2")])
    assert isinstance(got, Binding) and got.vif_details["bridge_name"] == "br-int2"


@pytest.mark.parametrize(("segment", "conf", "why"), [
    (seg("vlan", 120, "physnet2"), OVS_CONF, "agent on host1 has no bridge mapping for physnet2"),
    (seg("flat", None, "public"), OVS_CONF, "agent on host1 has no bridge mapping for public"),
    (seg("gre", 3), {"tunnel_types": ["vxlan"]}, "agent on host1 has no gre tunnels (its tunnel_types: vxlan)"),
    (seg("geneve", 3), {"bridge_mappings": {}}, "agent on host1 has no geneve tunnels (its tunnel_types: none)"),
])
def test_refuses_what_the_hosts_agent_cannot_serve(segment: NetworkSegment, conf: dict[str, Any], why: str) -> None:
    assert bind([segment], [ovs(**conf)]) == Refusal(why)


@pytest.mark.parametrize(("agents", "detail"), [
    ([], ""),
    ([ovs(alive=False)], " (its last heartbeat, 2026-12-07 10:00:00, is older than agent_down_time)"),
    ([ovs(up=False)], " (the one there is disabled: admin_state_up is false)"),
    ([ovs(host="host2"), AgentView(LINUXBRIDGE_AGENT, "host1", True, configurations=OVS_CONF)], ""),
])
def test_needs_a_live_enabled_ovs_agent_on_the_host(agents: list[AgentView], detail: str) -> None:
    assert bind([seg("vxlan", 7)], agents) == Refusal("host host1 has no live Open vSwitch agent" + detail)


def test_a_second_segment_the_agent_serves_is_taken() -> None:
    got = bind([seg("vlan", 5, "physnet9", "a"), seg("geneve", 9, None, "b")])
    assert isinstance(got, Binding) and got.segment_id == "b"
    got = bind([seg("vlan", 5, "physnet9", "a"), seg("flat", None, "physnet8", "b")])
    assert got == Refusal("agent on host1 has no bridge mapping for physnet9; "
                          "agent on host1 has no bridge mapping for physnet8")


def test_refuses_other_vnic_types() -> None:
    assert bind([seg("vxlan", 7)], vnic="direct") == Refusal("vnic_type 'direct' is not supported (supported: normal)")
