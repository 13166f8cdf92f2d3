"""Agents, availability zones and network IP availability over HTTP: shapes, policy, filters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from neutrino.config import Config
from neutrino.db.models.agent import Agent
from neutrino.db.models.base import utcnow
from tests.api.test_networks import err
from tests.conftest import Api

IPA = "/v2.0/network-ip-availabilities"


@pytest.fixture
def server_api(cfg: Config) -> Iterator[tuple[Any, Api]]:
    """The server and a client, for tests that put rows (agents) straight into its database."""
    from neutrino import server

    srv = server.build(cfg)
    with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
        yield srv, Api(client)
    srv.db.dispose()


def add_agents(srv: Any) -> dict[str, str]:
    now = utcnow()
    rows = {
        "dhcp": Agent(agent_type="DHCP agent", binary="neutron-dhcp-agent", topic="dhcp_agent", host="net1",
                      availability_zone="az1", heartbeat_timestamp=now, configurations={"networks": 1}),
        "l3": Agent(agent_type="L3 agent", binary="neutron-l3-agent", topic="l3_agent", host="net1",
                    availability_zone="az1", heartbeat_timestamp=now - dt.timedelta(seconds=300)),
        "ovs": Agent(agent_type="Open vSwitch agent", binary="neutron-openvswitch-agent", topic="N/A",
                     host="cmp1", heartbeat_timestamp=now, resources_synced=True),
    }

    def insert(s: Any) -> dict[str, str]:
        for row in rows.values():
            s.add(row)
        s.flush()
        return {k: r.id for k, r in rows.items()}

    return srv.db.transaction(insert)  # type: ignore[no-any-return]


def test_agents_admin_only(server_api: tuple[Any, Api]) -> None:
    srv, api = server_api
    ids = add_agents(srv)
    agents = api.get("/v2.0/agents").json()["agents"]
    assert len(agents) == 3
    dhcp = next(a for a in agents if a["id"] == ids["dhcp"])
    assert set(dhcp) == {"id", "agent_type", "binary", "topic", "host", "admin_state_up", "alive",
                         "availability_zone", "created_at", "started_at", "heartbeat_timestamp", "description",
                         "configurations", "resources_synced"}
    assert dhcp["alive"] is True and dhcp["admin_state_up"] is True and dhcp["configurations"] == {"networks": 1}
    assert dhcp["availability_zone"] == "az1" and len(dhcp["heartbeat_timestamp"]) == 19  # "2026-11-21 09:00:00"
    assert [a["id"] for a in api.get("/v2.0/agents", params={"alive": "false"}).json()["agents"]] == [ids["l3"]]
    assert [a["host"] for a in api.get("/v2.0/agents", params={"agent_type": "Open vSwitch agent"})
            .json()["agents"]] == ["cmp1"]
    one = api.get(f"/v2.0/agents/{ids['ovs']}").json()["agent"]
    assert one["resources_synced"] is True and one["alive"] is True
    r = api.put(f"/v2.0/agents/{ids['ovs']}", json={"agent": {"admin_state_up": False, "description": "drain"}})
    assert r.status_code == 200
    assert r.json()["agent"]["admin_state_up"] is False and r.json()["agent"]["description"] == "drain"
    r = api.put(f"/v2.0/agents/{ids['ovs']}", json={"agent": {"host": "elsewhere"}})
    assert r.status_code == 400
    # others see no agents at all
    member = api.as_("projA")
    assert member.get("/v2.0/agents").json() == {"agents": []}
    r = member.get(f"/v2.0/agents/{ids['ovs']}")
    assert r.status_code == 404 and err(r)["type"] == "AgentNotFound"
    assert member.put(f"/v2.0/agents/{ids['ovs']}", json={"agent": {"admin_state_up": True}}).status_code == 404
    assert member.delete(f"/v2.0/agents/{ids['ovs']}").status_code == 404
    assert api.get(f"/v2.0/agents/{ids['ovs']}").json()["agent"]["admin_state_up"] is False
    # admins may delete an agent; nobody creates one over the API
    assert api.delete(f"/v2.0/agents/{ids['l3']}").status_code == 204
    assert api.get(f"/v2.0/agents/{ids['l3']}").status_code == 404
    assert api.post("/v2.0/agents", json={"agent": {}}).status_code == 405


def test_availability_zones(server_api: tuple[Any, Api]) -> None:
    srv, api = server_api
    member = api.as_("projA", roles="reader")
    expected = [{"name": "nova", "resource": "network", "state": "available"},
                {"name": "nova", "resource": "router", "state": "available"}]
    assert member.get("/v2.0/availability_zones").json() == {"availability_zones": expected}
    add_agents(srv)
    zones = api.get("/v2.0/availability_zones").json()["availability_zones"]
    assert {"name": "az1", "resource": "network", "state": "available"} in zones
    assert {"name": "az1", "resource": "router", "state": "unavailable"} in zones  # its L3 agent is dead
    routers = api.get("/v2.0/availability_zones", params={"resource": "router", "state": "available"}).json()
    assert routers == {"availability_zones": [expected[1]]}
    assert api.get("/v2.0/availability_zones", params={"fields": "name", "name": "az1"}).json() == {
        "availability_zones": [{"name": "az1"}, {"name": "az1"}]}
    assert api.get("/v2.0/availability_zones", params={"bogus": "1"}).status_code == 400


def test_network_ip_availability(api: Api) -> None:
    a = api.as_("projA")
    net = a.create("network", name="n1")
    sub4 = a.create("subnet", network_id=net["id"], ip_version=4, cidr="10.0.0.0/24", name="s4")
    sub6 = a.create("subnet", network_id=net["id"], ip_version=6, cidr="2001:db8::/120", name="s6")
    empty = api.create("network", name="empty")
    ports = [a.create("port", network_id=net["id"]),
             a.create("port", network_id=net["id"], fixed_ips=[{"subnet_id": sub4["id"]}])]
    used = {sid: sum(ip["subnet_id"] == sid for p in ports for ip in p["fixed_ips"])
            for sid in (sub4["id"], sub6["id"])}
    assert used[sub4["id"]] == 2

    r = api.get(f"{IPA}/{net['id']}")
    assert r.status_code == 200, r.text
    ipa = r.json()["network_ip_availability"]
    assert ipa["network_id"] == net["id"] and ipa["network_name"] == "n1"
    assert ipa["project_id"] == ipa["tenant_id"] == "projA"
    by_subnet = {x["subnet_id"]: x for x in ipa["subnet_ip_availability"]}
    assert by_subnet[sub4["id"]] == {"subnet_id": sub4["id"], "subnet_name": "s4", "cidr": "10.0.0.0/24",
                                     "ip_version": 4, "total_ips": 253, "used_ips": 2}
    assert by_subnet[sub6["id"]]["total_ips"] == 254 and by_subnet[sub6["id"]]["used_ips"] == used[sub6["id"]]
    assert ipa["total_ips"] == 253 + 254 and ipa["used_ips"] == 2 + used[sub6["id"]]

    listed = api.get(IPA).json()["network_ip_availabilities"]
    assert {x["network_id"] for x in listed} == {net["id"], empty["id"]}
    none = next(x for x in listed if x["network_id"] == empty["id"])
    assert none["total_ips"] == 0 and none["used_ips"] == 0 and none["subnet_ip_availability"] == []
    v6 = api.get(IPA, params={"ip_version": "6"}).json()["network_ip_availabilities"]
    assert [x["network_id"] for x in v6] == [net["id"]]
    assert [s["ip_version"] for s in v6[0]["subnet_ip_availability"]] == [6]
    assert v6[0]["used_ips"] == used[sub6["id"]] and v6[0]["total_ips"] == 254
    for params in ({"network_name": "n1"}, {"project_id": "projA"}, {"tenant_id": "projA"},
                   {"network_id": net["id"]}):
        assert [x["network_id"] for x in api.get(IPA, params=params).json()["network_ip_availabilities"]] \
            == [net["id"]], params
    paged = api.get(IPA, params={"limit": 1, "sort_key": "network_name", "sort_dir": "desc"}).json()
    assert [x["network_name"] for x in paged["network_ip_availabilities"]] == ["n1"]
    assert paged["network_ip_availabilities_links"][0]["rel"] == "next"

    r = api.get(f"{IPA}/6f2e4bb5-8d8c-4f34-9d43-6b6d9f9e5d7e")
    assert r.status_code == 404 and err(r)["type"] == "NetworkNotFound"
    # admin only: the owner lists nothing and sees no single network
    assert a.get(IPA).json() == {"network_ip_availabilities": []}
    assert a.get(f"{IPA}/{net['id']}").status_code == 404
    assert api.post(IPA, json={"network_ip_availability": {}}).status_code == 405


def test_ip_availability_of_huge_ipv6_subnets(api: Api) -> None:
    net = api.create("network", name="big")
    api.create("subnet", network_id=net["id"], ip_version=6, cidr="2001:db8::/48")
    api.create("subnet", network_id=net["id"], ip_version=6, cidr="2001:db9::/64")
    r = api.get(f"{IPA}/{net['id']}")
    assert r.status_code == 200, r.text
    ipa = r.json()["network_ip_availability"]
    assert ipa["total_ips"] == 2**64 - 1  # Neutron would say 2**80 + 2**64 - 3; JSON here stops at 64 bits
    assert sorted(s["total_ips"] for s in ipa["subnet_ip_availability"]) == [2**64 - 2, 2**64 - 1]
