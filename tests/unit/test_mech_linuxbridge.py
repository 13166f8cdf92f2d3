"""The Linux-bridge mechanism driver and the manager's binding loop and driver loading."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import neutrino
from neutrino import config
from neutrino.config import ConfigError
from neutrino.db.models.network import NetworkSegment
from neutrino.messages import LINUXBRIDGE_AGENT, OVS_AGENT
from neutrino.ml2.manager import AgentView, Binding, Ml2Manager, Refusal
from neutrino.ml2.mech_linuxbridge import LinuxBridgeMechanism

NET = "0123456789abcdef-0000-0000-000000000000"
LB_CONF = {"tunnel_types": ["vxlan"], "interface_mappings": {"physnet1": "eth1"}, "bridge_mappings": {}}


def seg(net_type: str, seg_id: int | None = None, physnet: str | None = None, ident: str = "s1") -> NetworkSegment:
    return NetworkSegment(id=ident, network_id=NET, network_type=net_type, physical_network=physnet,
                          segmentation_id=seg_id, segment_index=0)


def lb(host: str = "host1", alive: bool = True, up: bool = True, **conf: Any) -> AgentView:
    return AgentView(LINUXBRIDGE_AGENT, host, alive, up, "2026-12-07 10:00:00", conf or LB_CONF)


def bind(segments: list[NetworkSegment], vnic: str = "normal", host: str = "host1",
         agents: list[AgentView] | None = None) -> Binding | Refusal:
    return LinuxBridgeMechanism().bind_port(host, vnic, segments, [lb()] if agents is None else agents)


@pytest.mark.parametrize("segment", [seg("local"), seg("flat", physnet="physnet1"), seg("vxlan", 7)])
def test_binds_local_flat_vxlan(segment: NetworkSegment) -> None:
    assert bind([segment]) == Binding("bridge", {"port_filter": True, "connectivity": "l2",
                                                 "bridge_name": "brq0123456789a"}, segment_id="s1")


@pytest.mark.parametrize("net_type", ["vlan", "gre", "geneve"])
def test_refuses_what_this_kernel_cannot_bridge(net_type: str) -> None:
    got = bind([seg(net_type, 100, "physnet1" * (net_type == "vlan"))])
    assert isinstance(got, Refusal)
    assert f"network type {net_type} is not supported" in got.reason and "Open vSwitch" in got.reason


def test_first_supported_segment_wins() -> None:
    got = bind([seg("vlan", 5, "physnet1", "a"), seg("vxlan", 9, None, "b")])
    assert isinstance(got, Binding) and got.segment_id == "b"


@pytest.mark.parametrize("vnic", ["direct", "macvtap", "baremetal"])
def test_refuses_other_vnic_types(vnic: str) -> None:
    got = bind([seg("vxlan", 7)], vnic)
    assert isinstance(got, Refusal) and f"vnic_type {vnic!r} is not supported" in got.reason


@pytest.mark.parametrize(("agents", "why"), [
    ([], "host host1 has no live Linux bridge agent"),
    ([lb(alive=False)], "host host1 has no live Linux bridge agent (its last heartbeat, 2026-12-07 10:00:00, "
                        "is older than agent_down_time)"),
    ([lb(up=False)], "host host1 has no live Linux bridge agent (the one there is disabled: admin_state_up is false)"),
    ([lb(host="host2")], "host host1 has no live Linux bridge agent"),
    ([AgentView(OVS_AGENT, "host1", True, configurations=LB_CONF)], "host host1 has no live Linux bridge agent"),
])
def test_binds_only_where_a_live_enabled_agent_of_its_type_runs(agents: list[AgentView], why: str) -> None:
    assert bind([seg("vxlan", 7)], agents=agents) == Refusal(why)


@pytest.mark.parametrize(("segment", "conf", "why"), [
    (seg("vxlan", 7), {"tunnel_types": []}, "agent on host1 has no vxlan tunnels (its tunnel_types: none)"),
    (seg("vxlan", 7), {"tunnel_types": "vxlan"}, "agent on host1 has no vxlan tunnels (its tunnel_types: none)"),
    (seg("flat", None, "physnet2"), LB_CONF, "agent on host1 has no interface mapping for physnet2"),
    (seg("flat", None, "physnet2"), {"interface_mappings": ["physnet2"]},
     "agent on host1 has no interface mapping for physnet2"),
])
def test_binds_only_segments_the_agent_reports_it_can_serve(segment: NetworkSegment, conf: dict[str, Any],
                                                            why: str) -> None:
    assert bind([segment], agents=[lb(**conf)]) == Refusal(why)


def test_a_bridge_mapping_serves_a_flat_network_too() -> None:
    got = bind([seg("flat", None, "ext")], agents=[lb(bridge_mappings={"ext": "br-ext"})])
    assert isinstance(got, Binding) and got.vif_type == "bridge"


def test_manager_binding_failed_carries_reason_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    m = Ml2Manager(config.load(env={}))
    assert [d.name for d in m.mechanisms] == ["openvswitch", "linuxbridge"]
    with caplog.at_level(logging.WARNING, logger="neutrino.ml2.manager"):
        got = m.bind("host1", "normal", [seg("vlan", 100, "physnet1")], [lb()], port_id="p-1")
    assert got.vif_type == "binding_failed" and set(got.vif_details) == {"reason"}
    assert "linuxbridge: network type vlan is not supported" in got.vif_details["reason"]
    assert "port p-1" in caplog.text and "network type vlan" in caplog.text
    assert m.bind("host1", "normal", [seg("vxlan", 3)], [lb()]).vif_type == "bridge"
    assert m.bind("host1", "normal", [seg("vxlan", 3)], []).vif_details == {
        "reason": "openvswitch: host host1 has no live Open vSwitch agent; linuxbridge: host host1 has no live Linux "
                  "bridge agent"}


def test_manager_without_drivers_says_so() -> None:
    cfg = config.load(env={})
    cfg.ml2.mechanism_drivers = []
    got = Ml2Manager(cfg).bind("host1", "normal", [seg("vxlan", 3)], [lb()])
    assert got.vif_type == "binding_failed" and "mechanism_drivers is empty" in got.vif_details["reason"]


def test_manager_loads_both_drivers_by_name_and_rejects_unknown_ones() -> None:
    cfg = config.load(env={})
    cfg.ml2.mechanism_drivers = ["openvswitch", "linuxbridge"]
    assert [d.name for d in Ml2Manager(cfg).mechanisms] == ["openvswitch", "linuxbridge"]
    cfg.ml2.mechanism_drivers = ["linuxbridge", "bogus"]
    with pytest.raises(ConfigError, match="unknown driver 'bogus'") as exc:
        Ml2Manager(cfg)
    assert "available: linuxbridge, openvswitch" in str(exc.value)


def test_ml2_never_imports_the_kernel_layer() -> None:
    """The server's binding code runs where no kernel access is wanted (API replicas)."""
    code = ("import sys; from neutrino import config; from neutrino.ml2.manager import Ml2Manager; "
            "cfg = config.load(env={}); cfg.ml2.mechanism_drivers = ['openvswitch', 'linuxbridge']; "
            "Ml2Manager(cfg); import neutrino.ml2.mech_agent, neutrino.ml2.types; "
            "print(sorted(m for m in sys.modules if m.startswith('neutrino.kernel')))")
    src = str(Path(neutrino.__file__).resolve().parents[1])  # this checkout's code, not an installed one
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": src})
    assert out.stdout.strip() == "[]"
