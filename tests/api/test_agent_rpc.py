"""The server side of the agents: events on writes, heartbeats, desired state, claims, status, metadata."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from neutrino import server
from neutrino.bus import CHANGES, Event, InprocBus
from neutrino.config import Config
from neutrino.messages import DHCP_AGENT, L3_AGENT
from neutrino.messages import LINUXBRIDGE_AGENT as L2_AGENT
from neutrino.services.agent_rpc import AgentRpc, pick_host
from tests.conftest import Api, lb_agent_conf

HOST = "host-a"


@pytest.fixture
def stack(cfg: Config) -> Iterator[tuple[Api, AgentRpc, list[Event]]]:
    bus = InprocBus()
    events: list[Event] = []
    bus.subscribe(CHANGES, events.append)
    srv = server.build(cfg, bus=bus)
    with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
        yield Api(client), srv.rpc, events
    srv.db.dispose()


def _report_all(rpc: AgentRpc, host: str = HOST, ip: str = "172.30.0.11") -> None:
    rpc.report_state(host, L2_AGENT, lb_agent_conf(ip), start_flag=True)
    rpc.report_state(host, DHCP_AGENT, {})
    rpc.report_state(host, L3_AGENT, {})


def _net(api: Api, cidr: str = "10.0.0.0/24") -> tuple[dict[str, Any], dict[str, Any]]:
    net = api.create("network", name="n")
    sub = api.create("subnet", network_id=net["id"], cidr=cidr, ip_version=4)
    return net, sub


def test_successful_writes_publish_events_failed_ones_do_not(stack: tuple[Api, AgentRpc, list[Event]]) -> None:
    api, _, events = stack
    net, sub = _net(api)
    router = api.create("router", name="r")
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]})
    api.get("/v2.0/networks")
    assert api.post("/v2.0/networks", json={"network": {"mtu": "x"}}).status_code == 400
    assert [e.resource for e in events] == ["networks", "subnets", "routers", "routers"]
    assert (events[-1].resource, events[-1].id, events[-1].action) == ("routers", router["id"], "add_router_interface")
    assert events[-1].routers == {router["id"]} and events[-1].networks == {net["id"]}
    assert events[0].action == "create"


def test_heartbeats_make_agents_alive_in_the_api(stack: tuple[Api, AgentRpc, list[Event]]) -> None:
    api, rpc, _ = stack
    _report_all(rpc)
    agents = api.get("/v2.0/agents").json()["agents"]
    assert {(a["agent_type"], a["host"], a["alive"]) for a in agents} == {
        (L2_AGENT, HOST, True), (DHCP_AGENT, HOST, True), (L3_AGENT, HOST, True)}
    assert next(a for a in agents if a["agent_type"] == L2_AGENT)["configurations"]["tunneling_ip"] == "172.30.0.11"
    _report_all(rpc)  # a second report refreshes, never duplicates
    assert len(api.get("/v2.0/agents").json()["agents"]) == 3


def test_sync_claims_dhcp_and_routers_and_describes_the_host(stack: tuple[Api, AgentRpc, list[Event]]) -> None:
    api, rpc, _ = stack
    _report_all(rpc)
    net, sub = _net(api)
    router = api.create("router", name="r")
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]})
    vm = api.create("port", network_id=net["id"], device_owner="compute:nova", **{"binding:host_id": HOST})
    state = rpc.sync(HOST)
    owners = sorted(p["device_owner"] for p in state["ports"])
    assert owners == ["compute:nova", "network:dhcp", "network:router_interface"]  # all bound here now
    assert [d["network"]["id"] for d in state["dhcp"]] == [net["id"]]
    assert state["dhcp"][0]["dhcp_port"]["fixed_ips"][0]["subnet_id"] == sub["id"]
    assert [r["router"]["id"] for r in state["routers"]] == [router["id"]]
    assert state["routers"][0]["interfaces"][0]["fixed_ips"][0]["cidr"] == "10.0.0.0/24"
    assert list(state["networks"]) == [net["id"]]
    assert {g["name"] for g in state["security_groups"]} == {"default"}
    assert vm["fixed_ips"][0]["ip_address"] in next(iter(state["members"].values()))
    # A second sync claims nothing new: the same DHCP port, no duplicates.
    again = rpc.sync(HOST)
    assert sorted(p["id"] for p in again["ports"]) == sorted(p["id"] for p in state["ports"])
    dhcp_ports = [p for p in api.get("/v2.0/ports").json()["ports"] if p["device_owner"] == "network:dhcp"]
    assert len(dhcp_ports) == 1 and dhcp_ports[0]["binding:host_id"] == HOST


def test_a_dhcp_subnet_added_later_gets_an_address_on_the_dhcp_port(stack: tuple[Api, AgentRpc, list[Event]]) -> None:
    api, rpc, _ = stack
    _report_all(rpc)
    net, _ = _net(api)
    rpc.sync(HOST)
    api.create("subnet", network_id=net["id"], cidr="10.5.0.0/24", ip_version=4)
    port = rpc.sync(HOST)["dhcp"][0]["dhcp_port"]
    assert len(port["fixed_ips"]) == 2


def test_remote_vteps_are_the_other_hosts_with_ports_on_the_network(
        stack: tuple[Api, AgentRpc, list[Event]]) -> None:
    api, rpc, _ = stack
    _report_all(rpc, HOST, "172.30.0.11")
    rpc.report_state("host-b", L2_AGENT, lb_agent_conf("172.30.0.12"))
    net, _ = _net(api)
    remote = api.create("port", network_id=net["id"], device_owner="compute:nova", **{"binding:host_id": "host-b"})
    api.create("port", network_id=net["id"], device_owner="compute:nova", **{"binding:host_id": HOST})
    state = rpc.sync(HOST)
    assert state["remote_vteps"] == {net["id"]: ["172.30.0.12"]}
    # l2population: the MACs behind each remote endpoint, so unicast need not flood
    assert state["remote_macs"] == {net["id"]: {"172.30.0.12": [remote["mac_address"]]}}


def test_scheduling_is_stable_and_spread() -> None:
    hosts = ["a", "b", "c"]
    picks = [pick_host(f"id-{i}", hosts) for i in range(60)]
    assert picks == [pick_host(f"id-{i}", list(reversed(hosts))) for i in range(60)]
    assert set(picks) == set(hosts)
    assert pick_host("x", []) is None


def test_port_status_reports_change_only_what_differs(stack: tuple[Api, AgentRpc, list[Event]]) -> None:
    api, rpc, events = stack
    net, _ = _net(api)
    port = api.create("port", network_id=net["id"])
    before = len(events)
    assert rpc.update_port_status({port["id"]: "ACTIVE", "no-such-port": "ACTIVE"}) == [port["id"]]
    assert rpc.update_port_status({port["id"]: "ACTIVE"}) == []
    shown = api.get(f"/v2.0/ports/{port['id']}").json()["port"]
    assert shown["status"] == "ACTIVE" and shown["revision_number"] == port["revision_number"] + 1
    assert rpc.update_port_status({port["id"]: "BOGUS"}) == []
    assert len(events) == before  # the agent's own report wakes nobody


def test_metadata_lookup_finds_only_instances_behind_that_router(stack: tuple[Api, AgentRpc, list[Event]]) -> None:
    api, rpc, _ = stack
    net, sub = _net(api)
    other, _ = _net(api, "10.9.0.0/24")
    router = api.create("router", name="r")
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]})
    vm = api.create("port", network_id=net["id"], device_owner="compute:nova", device_id="inst-1", name="vm1")
    stranger = api.create("port", network_id=other["id"], device_owner="compute:nova", device_id="inst-2")
    ip = vm["fixed_ips"][0]["ip_address"]
    found = rpc.metadata_lookup(router["id"], None, ip)
    assert found == {"instance_id": "inst-1", "name": "vm1", "hostname": "vm1", "local_ipv4": ip,
                     "project_id": vm["project_id"]}
    assert rpc.metadata_lookup(router["id"], None, stranger["fixed_ips"][0]["ip_address"]) is None
    assert rpc.metadata_lookup(None, net["id"], ip) is not None
    assert rpc.metadata_lookup(None, None, ip) is None
    assert rpc.metadata_lookup(router["id"], None, "not-an-ip") is None


def test_a_joining_agent_never_takes_a_working_dhcp_server_or_router(
        stack: tuple[Api, AgentRpc, list[Event]]) -> None:
    api, rpc, _ = stack
    _report_all(rpc, HOST)
    net, sub = _net(api)
    router = api.create("router", name="r")
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]})
    assert rpc.sync(HOST)["dhcp"] and rpc.sync(HOST)["routers"]
    _report_all(rpc, "host-b", "172.30.0.12")
    b = rpc.sync("host-b")
    assert b["dhcp"] == [] and b["routers"] == []
    a = rpc.sync(HOST)
    assert [d["network"]["id"] for d in a["dhcp"]] == [net["id"]] and len(a["routers"]) == 1


def test_a_network_that_cannot_be_served_does_not_stop_the_others(
        stack: tuple[Api, AgentRpc, list[Event]]) -> None:
    """A DHCP subnet with no free address for the DHCP port: that network waits, the host goes on."""
    api, rpc, events = stack
    _report_all(rpc)
    full = api.create("network", name="full")
    sub = api.create("subnet", network_id=full["id"], cidr="10.8.0.0/29", ip_version=4, enable_dhcp=False,
                     allocation_pools=[{"start": "10.8.0.2", "end": "10.8.0.2"}])
    api.create("port", network_id=full["id"])
    assert api.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"enable_dhcp": True}}).status_code == 200
    ok, _ = _net(api)
    state = rpc.sync(HOST)
    assert [d["network"]["id"] for d in state["dhcp"]] == [ok["id"]]
    assert (events[-1].resource, events[-1].id, events[-1].action) == ("agents", HOST, "claim")
    assert events[-1].hosts == {HOST} and events[-1].networks == {ok["id"]}


def test_a_port_moved_or_unbound_goes_down_and_stale_reports_are_ignored(
        stack: tuple[Api, AgentRpc, list[Event]]) -> None:
    api, rpc, _ = stack
    net, _ = _net(api)
    port = api.create("port", network_id=net["id"], device_owner="compute:nova", **{"binding:host_id": HOST})
    assert rpc.update_port_status({port["id"]: "ACTIVE"}, host=HOST) == [port["id"]]
    api.put(f"/v2.0/ports/{port['id']}", json={"port": {"binding:host_id": "host-b"}})
    assert api.get(f"/v2.0/ports/{port['id']}").json()["port"]["status"] == "DOWN"
    assert rpc.update_port_status({port["id"]: "ACTIVE"}, host=HOST) == []  # the old host's late report
    api.put(f"/v2.0/ports/{port['id']}", json={"port": {"binding:host_id": ""}})
    assert api.get(f"/v2.0/ports/{port['id']}").json()["port"]["status"] == "DOWN"
