"""Port binding needs the host's live agent (Neutron's agent-based mechanism drivers).

A deployment with both drivers (``[ml2] mechanism_drivers = openvswitch,linuxbridge``): a
port binds to the driver whose agent runs alive on its ``binding:host_id`` and can serve the
network's segment; otherwise ``binding_failed`` with every driver's reason. A failed binding
is bound again when the host's agent reports in and on any update of the port.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update

from neutrino.bus import CHANGES, Event
from neutrino.config import Config
from neutrino.db.models.agent import Agent
from neutrino.db.models.base import utcnow
from neutrino.messages import LINUXBRIDGE_AGENT, OVS_AGENT
from tests.conftest import Api, lb_agent_conf

OVS_CONF = {"bridge_mappings": {"physnet1": "br-physnet1"}, "tunnel_types": ["vxlan", "gre", "geneve"],
            "tunneling_ip": "172.30.0.21", "datapath_type": "netdev", "integration_bridge": "br-int",
            "ovs_hybrid_plug": False}
OVS_DETAILS = {"port_filter": True, "connectivity": "l2", "ovs_hybrid_plug": False, "datapath_type": "netdev",
               "bridge_name": "br-int"}


@pytest.fixture
def cfg(cfg: Config) -> Config:
    cfg.ml2.mechanism_drivers = ["openvswitch", "linuxbridge"]
    return cfg


def _port(api: Api, net: dict[str, Any], host: str, **attrs: Any) -> dict[str, Any]:
    return api.create("port", network_id=net["id"], device_owner="compute:nova", **{"binding:host_id": host},
                      **attrs)


def _get(api: Api, port: dict[str, Any]) -> dict[str, Any]:
    return api.get(f"/v2.0/ports/{port['id']}").json()["port"]  # type: ignore[no-any-return]


def _put(api: Api, port: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    r = api.put(f"/v2.0/ports/{port['id']}", json={"port": attrs})
    assert r.status_code == 200, r.text
    return r.json()["port"]  # type: ignore[no-any-return]


def _reason(port: dict[str, Any]) -> str:
    assert port["binding:vif_type"] == "binding_failed", port
    return str(port["binding:vif_details"]["reason"])


def _age_heartbeats(api: Api, host: str, seconds: int) -> None:
    """The agents on ``host`` last reported ``seconds`` ago (as if they had stopped then)."""
    stamp = utcnow() - dt.timedelta(seconds=seconds)
    api.srv.db.transaction(lambda s: s.execute(update(Agent).where(Agent.host == host)
                                               .values(heartbeat_timestamp=stamp)))


def test_no_agent_on_the_host_fails_with_every_drivers_reason(api: Api) -> None:
    net = api.create("network")
    port = _port(api, net, "compute-x")
    assert _reason(port) == ("openvswitch: host compute-x has no live Open vSwitch agent; "
                             "linuxbridge: host compute-x has no live Linux bridge agent")
    api.agent("compute-y")  # an agent elsewhere does not help
    assert _reason(_put(api, port, name="again")) == _reason(port)


def test_a_dead_agent_does_not_bind(api: Api, cfg: Config) -> None:
    api.agent("compute1")
    _age_heartbeats(api, "compute1", cfg.DEFAULT.agent_down_time + 5)
    listed = api.get("/v2.0/agents", params={"host": "compute1"}).json()["agents"]
    assert [a["alive"] for a in listed] == [False]
    net = api.create("network")
    reason = _reason(_port(api, net, "compute1"))
    assert "linuxbridge: host compute1 has no live Linux bridge agent (its last heartbeat" in reason
    assert "is older than agent_down_time" in reason
    _age_heartbeats(api, "compute1", cfg.DEFAULT.agent_down_time - 5)  # still within agent_down_time
    assert _port(api, net, "compute1")["binding:vif_type"] == "bridge"


def test_an_alive_agent_without_the_mapping_or_tunnel_type_fails_naming_it(api: Api) -> None:
    api.agent("lb-host", interface_mappings={"public": "phy-public"}, tunnel_types=[])
    api.agent("ovs-host", OVS_AGENT, **{**OVS_CONF, "tunnel_types": ["vxlan"]})
    flat = api.create("network", **{"provider:network_type": "flat", "provider:physical_network": "physnet2"})
    vxlan = api.create("network")
    gre = api.create("network", **{"provider:network_type": "gre"})
    assert "openvswitch: agent on ovs-host has no bridge mapping for physnet2" in _reason(_port(api, flat, "ovs-host"))
    assert "linuxbridge: agent on lb-host has no interface mapping for physnet2" in _reason(_port(api, flat, "lb-host"))
    assert ("linuxbridge: agent on lb-host has no vxlan tunnels (its tunnel_types: none)"
            in _reason(_port(api, vxlan, "lb-host")))
    assert ("openvswitch: agent on ovs-host has no gre tunnels (its tunnel_types: vxlan)"
            in _reason(_port(api, gre, "ovs-host")))


@pytest.mark.parametrize("provider", [
    {"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 120},
    {"provider:network_type": "gre"},
    {"provider:network_type": "geneve"},
    {"provider:network_type": "flat", "provider:physical_network": "physnet1"},
])
def test_an_ovs_agent_binds_what_linux_bridge_cannot(api: Api, provider: dict[str, Any]) -> None:
    api.agent("ovs-host", OVS_AGENT, **OVS_CONF)
    net = api.create("network", **provider)
    port = _port(api, net, "ovs-host")
    assert port["binding:vif_type"] == "ovs" and port["binding:vif_details"] == OVS_DETAILS
    assert _get(api, port)["binding:vif_details"] == OVS_DETAILS


def test_each_host_gets_its_own_agents_driver_on_one_vxlan_network(api: Api) -> None:
    api.agent("lb-host")
    api.agent("ovs-host", OVS_AGENT, **OVS_CONF)
    net = api.create("network")
    assert net["provider:network_type"] == "vxlan"
    on_lb, on_ovs = _port(api, net, "lb-host"), _port(api, net, "ovs-host")
    assert on_lb["binding:vif_type"] == "bridge"
    assert on_lb["binding:vif_details"] == {"port_filter": True, "connectivity": "l2",
                                            "bridge_name": "brq" + net["id"][:11]}
    assert on_ovs["binding:vif_type"] == "ovs" and on_ovs["binding:vif_details"] == OVS_DETAILS
    moved = _put(api, on_lb, **{"binding:host_id": "ovs-host"})  # a migration rebinds with the new host's driver
    assert moved["binding:vif_type"] == "ovs"


def test_a_failed_binding_is_retried_when_the_hosts_agent_reports(api: Api) -> None:
    events: list[Event] = []
    api.srv.bus.subscribe(CHANGES, events.append)
    net = api.create("network")
    early = _port(api, net, "late-host")
    other = _port(api, net, "other-host")
    assert _reason(early) and _reason(other)
    revision = _get(api, early)["revision_number"]
    api.agent("late-host")  # the agent starts after the instance's port was bound
    bound = _get(api, early)
    assert bound["binding:vif_type"] == "bridge" and bound["revision_number"] == revision + 1
    assert ("agents", "late-host", "rebind") in {(e.resource, e.id, e.action) for e in events}  # agents wake
    assert _get(api, other)["binding:vif_type"] == "binding_failed"  # only that host's ports


def test_a_heartbeat_with_new_mappings_retries_the_same_heartbeat_does_not(api: Api) -> None:
    flat = api.create("network", **{"provider:network_type": "flat", "provider:physical_network": "physnet1"})
    api.agent("lb-host")
    port = _port(api, flat, "lb-host")
    assert "no interface mapping for physnet1" in _reason(port)
    revision = _get(api, port)["revision_number"]
    rpc = api.srv.rpc
    rpc.report_state("lb-host", LINUXBRIDGE_AGENT, lb_agent_conf(devices=3))  # a plain heartbeat
    assert _get(api, port)["revision_number"] == revision  # nothing retried, nothing rewritten
    rpc.report_state("lb-host", LINUXBRIDGE_AGENT, lb_agent_conf(interface_mappings={"physnet1": "eth1"}))
    assert _get(api, port)["binding:vif_type"] == "bridge"


def test_a_revived_agent_retries_and_a_port_update_retries(api: Api, cfg: Config) -> None:
    net = api.create("network")
    api.agent("compute1")
    _age_heartbeats(api, "compute1", cfg.DEFAULT.agent_down_time + 5)
    port = _port(api, net, "compute1")
    assert "its last heartbeat" in _reason(port)
    api.srv.rpc.report_state("compute1", LINUXBRIDGE_AGENT, lb_agent_conf())  # back, without a restart
    assert _get(api, port)["binding:vif_type"] == "bridge"
    # An agent disabled by the admin binds nothing; enabled again, the next port update binds.
    agent = api.get("/v2.0/agents", params={"host": "compute1"}).json()["agents"][0]
    assert api.put(f"/v2.0/agents/{agent['id']}", json={"agent": {"admin_state_up": False}}).status_code == 200
    second = _port(api, net, "compute1")
    assert "admin_state_up is false" in _reason(second)
    assert api.put(f"/v2.0/agents/{agent['id']}", json={"agent": {"admin_state_up": True}}).status_code == 200
    assert _put(api, second, name="any update")["binding:vif_type"] == "bridge"


def test_changing_the_vnic_type_or_host_binds_anew(api: Api) -> None:
    api.agent("compute1")
    net = api.create("network")
    port = _port(api, net, "compute1")
    assert port["binding:vif_type"] == "bridge"
    assert "vnic_type 'direct' is not supported" in _reason(_put(api, port, **{"binding:vnic_type": "direct"}))
    assert _put(api, port, **{"binding:vnic_type": "normal"})["binding:vif_type"] == "bridge"
    assert "host nowhere has no live" in _reason(_put(api, port, **{"binding:host_id": "nowhere"}))
    assert _put(api, port, **{"binding:host_id": ""})["binding:vif_type"] == "unbound"


def test_a_tenant_cannot_choose_the_host(api: Api) -> None:
    """``binding:host_id`` is admin-only (Neutron's policy): a project can neither set it nor
    learn it, so it cannot bind its port onto a host of its choosing."""
    api.agent("compute1")
    net = api.as_("tenant-a").create("network")
    r = api.as_("tenant-a").post("/v2.0/ports", json={"port": {"network_id": net["id"],
                                                               "binding:host_id": "compute1"}})
    assert r.status_code == 403, r.text
    port = api.as_("tenant-a").create("port", network_id=net["id"])
    r = api.as_("tenant-a").put(f"/v2.0/ports/{port['id']}", json={"port": {"binding:host_id": "compute1"}})
    assert r.status_code == 403, r.text
    stored = _get(api, port)
    assert stored["binding:host_id"] == "" and stored["binding:vif_type"] == "unbound"
    assert "binding:host_id" not in api.as_("tenant-a").get(f"/v2.0/ports/{port['id']}").json()["port"]
