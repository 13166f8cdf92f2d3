"""Three Open vSwitch hosts of a lab (each its own agent process and its own OVS), one network of
every type Neutron has, by real traffic: instances on the two compute nodes meet across hosts
(a local network's two instances share one host), DHCP comes from the network node, and the
router on the network node serves them. Skipped with the reason without PostgreSQL, RabbitMQ or
Open vSwitch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from neutrino.messages import OVS_AGENT
from tests.functional.cloud import ip_of
from tests.functional.lab import LabHandle, built, require

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    require(openvswitch=True)
    with built(tmp_path_factory.mktemp("lab"), hosts=3, driver="openvswitch") as handle:
        yield handle


def _network(lab: LabHandle, name: str, cidr: str, **provider: Any) -> dict[str, Any]:
    net = lab.admin.post("/v2.0/networks", {"network": {"name": name, "shared": True, **provider}})["network"]
    lab.admin.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4}})
    return net  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind,provider", [
    ("vxlan", {}), ("gre", {}), ("geneve", {}),
    ("flat", {"provider:physical_network": "physnet1"}),
    ("vlan", {"provider:physical_network": "physnet1", "provider:segmentation_id": 101}),
])
def test_instances_on_two_compute_nodes_meet_on_every_network_type(
        lab: LabHandle, kind: str, provider: dict[str, Any]) -> None:
    agents = {(a["host"], a["agent_type"]) for a in lab.admin.get("/v2.0/agents")["agents"] if a["alive"]}
    assert {("host-1", OVS_AGENT), ("host-2", OVS_AGENT), ("host-3", OVS_AGENT)} <= agents
    octet = {"vxlan": 41, "gre": 42, "geneve": 43, "flat": 44, "vlan": 45}[kind]
    net = _network(lab, f"net-{kind}", f"10.{octet}.0.0/24", **{"provider:network_type": kind, **provider})
    a, b = lab.instance("host-2", net["name"], f"vm-{kind}-2"), lab.instance("host-3", net["name"], f"vm-{kind}-3")
    try:
        assert lab.ping(a, ip_of(b)) and lab.ping(b, ip_of(a))
        dhcp = lab.admin.get("/v2.0/ports", network_id=net["id"], device_owner="network:dhcp")["ports"]
        assert [p["binding:host_id"] for p in dhcp] == ["host-1"]
    finally:
        lab.delete("host-2", f"vm-{kind}-2")
        lab.delete("host-3", f"vm-{kind}-3")


def test_a_local_network_works_on_its_host(lab: LabHandle) -> None:
    """On the network node, where its DHCP server is too (a local network never leaves a host)."""
    net = _network(lab, "net-local", "10.46.0.0/24", **{"provider:network_type": "local"})
    a, b = lab.instance("host-1", net["name"], "vm-l1"), lab.instance("host-1", net["name"], "vm-l2")
    try:
        assert lab.ping(a, ip_of(b))
    finally:
        lab.delete("host-1", "vm-l1")
        lab.delete("host-1", "vm-l2")
