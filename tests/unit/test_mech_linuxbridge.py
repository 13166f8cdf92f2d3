"""The Linux-bridge mechanism driver and the manager's binding loop and driver loading."""

from __future__ import annotations

import logging

import pytest

from neutrino import config
from neutrino.config import ConfigError
from neutrino.db.models.network import NetworkSegment
from neutrino.ml2.manager import Binding, Ml2Manager, Refusal
from neutrino.ml2.mech_linuxbridge import LinuxBridgeMechanism

NET = "0123456789abcdef-0000-0000-000000000000"


def seg(net_type: str, seg_id: int | None = None, physnet: str | None = None, ident: str = "s1") -> NetworkSegment:
    return NetworkSegment(id=ident, network_id=NET, network_type=net_type, physical_network=physnet,
                          segmentation_id=seg_id, segment_index=0)


@pytest.mark.parametrize("segment", [seg("local"), seg("flat", physnet="physnet1"), seg("vxlan", 7)])
def test_binds_local_flat_vxlan(segment: NetworkSegment) -> None:
    got = LinuxBridgeMechanism().bind_port("host1", "normal", [segment])
    assert got == Binding("bridge", {"port_filter": True, "connectivity": "l2", "bridge_name": "brq0123456789a"},
                          segment_id="s1")


@pytest.mark.parametrize("net_type", ["vlan", "gre", "geneve"])
def test_refuses_what_this_kernel_cannot_bridge(net_type: str) -> None:
    got = LinuxBridgeMechanism().bind_port("host1", "normal", [seg(net_type, 100, "physnet1" * (net_type == "vlan"))])
    assert isinstance(got, Refusal)
    assert f"network type {net_type} is not supported" in got.reason and "Open vSwitch" in got.reason


def test_first_supported_segment_wins() -> None:
    got = LinuxBridgeMechanism().bind_port("h", "normal", [seg("vlan", 5, "physnet1", "a"), seg("vxlan", 9, None, "b")])
    assert isinstance(got, Binding) and got.segment_id == "b"


@pytest.mark.parametrize("vnic", ["direct", "macvtap", "baremetal"])
def test_refuses_other_vnic_types(vnic: str) -> None:
    got = LinuxBridgeMechanism().bind_port("host1", vnic, [seg("vxlan", 7)])
    assert isinstance(got, Refusal) and f"vnic_type {vnic!r} is not supported" in got.reason


def test_manager_binding_failed_carries_reason_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    m = Ml2Manager(config.load(env={}))
    assert [d.name for d in m.mechanisms] == ["linuxbridge"]
    with caplog.at_level(logging.WARNING, logger="neutrino.ml2.manager"):
        got = m.bind("host1", "normal", [seg("vlan", 100, "physnet1")], port_id="p-1")
    assert got.vif_type == "binding_failed" and set(got.vif_details) == {"reason"}
    assert got.vif_details["reason"].startswith("linuxbridge: network type vlan is not supported")
    assert "port p-1" in caplog.text and "network type vlan" in caplog.text
    assert m.bind("host1", "normal", [seg("vxlan", 3)]).vif_type == "bridge"


def test_manager_without_drivers_says_so() -> None:
    cfg = config.load(env={})
    cfg.ml2.mechanism_drivers = []
    got = Ml2Manager(cfg).bind("host1", "normal", [seg("vxlan", 3)])
    assert got.vif_type == "binding_failed" and "mechanism_drivers is empty" in got.vif_details["reason"]


@pytest.mark.parametrize(("name", "message"), [("openvswitch", "'openvswitch' is not available yet"),
                                               ("bogus", "unknown driver 'bogus'")])
def test_manager_rejects_unavailable_drivers(name: str, message: str) -> None:
    cfg = config.load(env={})
    cfg.ml2.mechanism_drivers = ["linuxbridge", name]
    with pytest.raises(ConfigError, match=message) as exc:
        Ml2Manager(cfg)
    assert "available: linuxbridge" in str(exc.value)
