"""A host's agent dies: it is marked dead within agent_down_time, its DHCP networks move to a
live host (Neutron's default), its routers stay unless the operator allows L3 failover, and
the instances keep or regain connectivity. Two hosts on one underlay, Linux bridge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.host import HostAgent
from tests.functional.cloud import Cloud, cloud, ip_of, wait_for
from tests.functional.traffic import ping

DOWN_TIME = 3


def _cloud(tmp_path: Path, ns_prefix: str, **defaults: Any) -> Iterator[Cloud]:
    with cloud(tmp_path, ns_prefix, underlay_ip="172.30.0.11", report_interval=0.5,
               agent_down_time=DOWN_TIME, **defaults) as built:
        yield built


@pytest.fixture
def c(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    yield from _cloud(tmp_path, ns_prefix)


@pytest.fixture
def c_l3_failover(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    yield from _cloud(tmp_path, ns_prefix, allow_automatic_l3agent_failover=True)


def _host_of(c: Cloud, **filters: str) -> str:
    ports = c.admin.get("/v2.0/ports", **filters)["ports"]
    assert ports, filters
    return str(ports[0]["binding:host_id"])


def _kill(c: Cloud, host: str, agents: dict[str, HostAgent]) -> None:
    agents[host].stop()  # no more heartbeats, as after SIGKILL
    assert wait_for(lambda: not any(a["alive"] for a in c.admin.get("/v2.0/agents", host=host)["agents"]),
                    timeout=DOWN_TIME + 5), "the dead agent must be marked dead within agent_down_time"


def test_dhcp_moves_off_a_dead_agent_and_routers_stay_by_default(c: Cloud) -> None:
    host_b = c.add_host("host-b", "172.30.0.12")
    agents = {"host-a": c.agent, "host-b": host_b}
    net, sub = c.network("net1", "10.81.0.0/24")
    router = c.client().post("/v2.0/routers", {"router": {"name": "r1"}})["router"]
    c.client().put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    vm_a = c.compute().create("vm-a", network="net1")
    vm_b = c.compute(agent=host_b).create("vm-b", network="net1")
    dhcp_host = _host_of(c, device_owner="network:dhcp", network_id=net["id"])
    assert wait_for(lambda: _host_of(c, device_id=router["id"]) in agents, timeout=15)
    router_host = _host_of(c, device_id=router["id"])
    survivor = "host-b" if dhcp_host == "host-a" else "host-a"
    _kill(c, dhcp_host, agents)  # the server tells the survivor (no resync is due within the test)
    assert wait_for(lambda: _host_of(c, device_owner="network:dhcp", network_id=net["id"]) == survivor,
                    timeout=15), "the network's DHCP must move to the live host"
    late = c.compute(agent=agents[survivor]).create("vm-late", network="net1")  # a lease from the new server
    assert ping(late.namespace, ip_of(vm_a if survivor == "host-a" else vm_b))
    # the router stays bound to its host even when that host's agent is the dead one
    assert _host_of(c, device_id=router["id"]) == router_host


def test_routers_move_when_the_operator_allows_l3_failover(c_l3_failover: Cloud) -> None:
    c = c_l3_failover
    host_b = c.add_host("host-b", "172.30.0.12")
    agents = {"host-a": c.agent, "host-b": host_b}
    _, sub = c.network("net1", "10.82.0.0/24")
    router = c.client().post("/v2.0/routers", {"router": {"name": "r1"}})["router"]
    c.client().put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    assert wait_for(lambda: _host_of(c, device_id=router["id"]) in agents, timeout=15)
    router_host = _host_of(c, device_id=router["id"])
    survivor = "host-b" if router_host == "host-a" else "host-a"
    vm = c.compute(agent=agents[survivor]).create("vm", network="net1")
    gateway = str(sub["gateway_ip"])
    assert wait_for(lambda: ping(vm.namespace, gateway, tries=1), timeout=10)
    _kill(c, router_host, agents)
    assert wait_for(lambda: _host_of(c, device_id=router["id"]) == survivor, timeout=15)
    assert wait_for(lambda: ping(vm.namespace, gateway, tries=1), timeout=15), \
        "the instance regains its gateway on the router's new host"
