"""Kill a host's agent process with SIGKILL, in a lab of separate agent processes (issue 8, 3.3).

host-1 is the controller (L2, DHCP, L3, metadata), host-2 a second network node (L2, DHCP),
host-3 a compute node. The agent of the host serving a network's DHCP is killed: the servers
mark it dead within ``agent_down_time``, its DHCP moves to the other DHCP host at once (the
server tells the live DHCP hosts, no resync is due within the test), the instances keep
reaching each other, and a new instance gets its lease from the new DHCP server. With
Neutron's default (``allow_automatic_l3agent_failover`` off) the router stays where it was.
Started again, the agent converges and leaves the DHCP server where it now is.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from neutrino import lab as labmod
from neutrino.kernel import netns
from tests.functional.cloud import ip_of, wait_for
from tests.functional.lab import LabHandle, built

pytestmark = pytest.mark.lab
DOWN_TIME = 4


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    if os.geteuid() != 0:
        pytest.skip("a lab needs root (network namespaces)")
    settings = {"DEFAULT": {"agent_down_time": DOWN_TIME}, "agent": {"report_interval": 1, "resync_interval": 600}}
    with built(tmp_path_factory.mktemp("lab"), hosts=3, roles={"host-2": ["l2", "dhcp"]},
               settings=settings) as handle:
        yield handle


def _agent(lab: LabHandle, host: str) -> labmod.Process:
    return next(p for p in labmod.agents(lab.lab) if p.name == f"agent-{host}")


def _dhcp_host(lab: LabHandle, network_id: str) -> str:
    ports = lab.admin.get("/v2.0/ports", network_id=network_id, device_owner="network:dhcp")["ports"]
    return str(ports[0]["binding:host_id"]) if ports else ""


def _alive(lab: LabHandle, host: str) -> bool:
    return any(a["alive"] for a in lab.admin.get("/v2.0/agents", host=host)["agents"])


def test_a_killed_agent_is_marked_dead_and_its_dhcp_moves(lab: LabHandle) -> None:
    net, sub = lab.network("net-f", "10.41.0.0/24")
    router = lab.demo.post("/v2.0/routers", {"router": {"name": "r-f"}})["router"]
    lab.demo.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    vm = lab.instance("host-3", "net-f", "vm-f1")
    assert wait_for(lambda: _dhcp_host(lab, net["id"]) in ("host-1", "host-2"), timeout=20)
    victim = _dhcp_host(lab, net["id"])
    survivor = "host-2" if victim == "host-1" else "host-1"
    router_host = lab.admin.get("/v2.0/ports", device_id=router["id"])["ports"][0]["binding:host_id"]
    agent = _agent(lab, victim)
    pid = agent.pid()
    assert pid is not None, agent.tail()
    os.kill(pid, signal.SIGKILL)  # no clean-up of any kind
    killed = time.monotonic()
    try:
        assert wait_for(lambda: not _alive(lab, victim), timeout=DOWN_TIME + 5), \
            "the killed agent must be marked dead within agent_down_time"
        assert time.monotonic() - killed < DOWN_TIME + 5
        assert wait_for(lambda: _dhcp_host(lab, net["id"]) == survivor, timeout=15), \
            "the network's DHCP must move to the live DHCP host"
        survivor_ns = lab.lab.host(survivor).ns_prefix + f"qdhcp-{net['id']}"
        assert wait_for(lambda: netns.namespace_exists(survivor_ns), timeout=15)
        late = lab.instance("host-3", "net-f", "vm-f2")  # its lease comes from the new server
        assert lab.ping(late, ip_of(vm)) and lab.ping(vm, ip_of(late))
        # the router stays bound to its host, dead or not (Neutron's default)
        assert lab.admin.get("/v2.0/ports", device_id=router["id"])["ports"][0]["binding:host_id"] == router_host
    finally:
        agent.start()  # the record's process again: lab down stops it by PID
    assert wait_for(lambda: _alive(lab, victim), timeout=20), agent.tail()
    time.sleep(2)
    assert _dhcp_host(lab, net["id"]) == survivor  # a revived agent never takes a working DHCP server back
    assert lab.ping(late, ip_of(vm))
