"""Port binding over HTTP: the Linux-bridge driver binds vxlan ports and explains vlan failures.

Each test first has the host's Linux bridge agent report in: binding needs it (see
test_port_binding_agents.py for what happens without one).
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, lb_agent_conf


def bind(api: Api, port_id: str, host: str) -> dict[str, Any]:
    r = api.put(f"/v2.0/ports/{port_id}", json={"port": {"binding:host_id": host}})
    assert r.status_code == 200, r.text
    return r.json()["port"]  # type: ignore[no-any-return]


def test_vxlan_port_binds_to_bridge(api: Api) -> None:
    api.agent("compute1")
    net = api.create("network")
    assert net["provider:network_type"] == "vxlan"
    port = api.create("port", network_id=net["id"])
    bound = bind(api, port["id"], "compute1")
    assert bound["binding:host_id"] == "compute1" and bound["binding:vif_type"] == "bridge"
    assert bound["binding:vif_details"] == {"port_filter": True, "connectivity": "l2",
                                            "bridge_name": "brq" + net["id"][:11]}
    shown = api.get(f"/v2.0/ports/{port['id']}").json()["port"]
    assert shown["binding:vif_type"] == "bridge" and shown["binding:vif_details"] == bound["binding:vif_details"]
    unbound = bind(api, port["id"], "")
    assert unbound["binding:vif_type"] == "unbound" and unbound["binding:vif_details"] == {}


def test_bound_at_create(api: Api) -> None:
    api.agent("net1", **lb_agent_conf(interface_mappings={"public": "phy-public"}))
    net = api.create("network", **{"provider:network_type": "flat", "provider:physical_network": "public"})
    port = api.create("port", network_id=net["id"], **{"binding:host_id": "net1"})
    assert port["binding:vif_type"] == "bridge" and port["binding:vif_details"]["bridge_name"].startswith("brq")


def test_vlan_port_fails_with_reason(api: Api) -> None:
    api.agent("compute1", **lb_agent_conf(interface_mappings={"physnet1": "eth1"}))
    net = api.create("network", **{"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                                   "provider:segmentation_id": 120})
    port = api.create("port", network_id=net["id"])
    failed = bind(api, port["id"], "compute1")
    assert failed["binding:vif_type"] == "binding_failed"
    reason = failed["binding:vif_details"]["reason"]
    assert "network type vlan is not supported" in reason and "Open vSwitch" in reason
    assert bind(api, port["id"], "")["binding:vif_type"] == "unbound"


def test_direct_vnic_fails_with_reason(api: Api) -> None:
    api.agent("c1")
    net = api.create("network")
    port = api.create("port", network_id=net["id"], **{"binding:vnic_type": "direct", "binding:host_id": "c1"})
    assert port["binding:vif_type"] == "binding_failed"
    assert "vnic_type 'direct' is not supported" in port["binding:vif_details"]["reason"]
