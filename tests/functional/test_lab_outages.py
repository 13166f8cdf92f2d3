"""RabbitMQ, then the database, restart under a running lab: no change is lost, and a change
made during the outage is applied after it (issue 8 §3.4).

The lab runs a RabbitMQ node and a PostgreSQL cluster of its own (``own_services``), so that
stopping them never touches the machine's, which other users rely on. Two hosts: host-1 the
controller and network node (DHCP), host-2 a compute node; instances on both meet over VXLAN.
Short report and resync intervals keep the outages short. Marked ``lab``; skipped with the
reason when RabbitMQ or PostgreSQL is not installed or this is not root.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import time
from collections.abc import Iterator

import pytest

from neutrino import lab_services
from neutrino.amqp import AmqpBus
from neutrino.bus import CHANGES, Event
from neutrino.client import ApiError, Client
from tests.functional.cloud import ip_of, wait_for
from tests.functional.lab import LabHandle, built

pytestmark = pytest.mark.lab
RESYNC = 3.0  # [agent] resync_interval: what a broker outage made an agent miss, it fetches within this
SETTINGS = {"agent": {"report_interval": 1.0, "resync_interval": RESYNC}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    if os.geteuid() != 0:
        pytest.skip("a lab needs root (network namespaces)")
    with built(tmp_path_factory.mktemp("lab"), hosts=2, own_services=True, settings=SETTINGS) as handle:
        yield handle


def _all_agents_alive(lab: LabHandle) -> bool:
    agents = lab.admin.get("/v2.0/agents")["agents"]
    return len(agents) == 5 and all(a["alive"] for a in agents)  # host-1's four, host-2's L2 agent


def _status(lab: LabHandle, port_id: str) -> str:
    return str(lab.demo.get(f"/v2.0/ports/{port_id}")["port"]["status"])


def test_the_first_change_event_after_a_broker_restart_reaches_the_agents(lab: LabHandle) -> None:
    """The servers' publisher keeps one connection; a broker restart between two writes breaks it
    unseen, and the next event must still go out (not wait for the agents' periodic resync)."""
    prefix = f"{lab.lab.control_exchange}-probe"
    server_side = AmqpBus(lab.lab.transport_url, prefix)
    got: queue.Queue[Event] = queue.Queue()
    unsubscribe = AmqpBus(lab.lab.transport_url, prefix).subscribe(CHANGES, got.put)
    try:
        # the subscriber binds its queue in the background; once it hears, the publisher's connection is open
        assert wait_for(lambda: _delivered(server_side, got, "before", timeout=0.5), timeout=15)
        lab_services.stop(lab.lab, "rabbitmq")
        lab_services.start(lab.lab, "rabbitmq")
        other = AmqpBus(lab.lab.transport_url, prefix)  # a fresh publisher tells when the subscriber is back
        assert wait_for(lambda: _delivered(other, got, "probe", timeout=0.5), timeout=30)
        other.close()
        assert _delivered(server_side, got, "after")  # one write, one event: not lost on the old connection
    finally:
        unsubscribe()
        server_side.close()


def _delivered(bus: AmqpBus, got: queue.Queue[Event], tag: str, timeout: float = 5.0) -> bool:
    bus.publish(CHANGES, Event("network", tag, "update"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if got.get(timeout=max(0.01, deadline - time.monotonic())).id == tag:
                return True
        except queue.Empty:
            break
    return False

def test_a_port_made_while_rabbitmq_is_down_is_wired_after_it(lab: LabHandle) -> None:
    net, _ = lab.network("net-r", "10.41.0.0/24")
    vm1 = lab.instance("host-2", "net-r", "vm-r1")
    dhcp_ip = lab.admin.get("/v2.0/ports", network_id=net["id"], device_owner="network:dhcp")["ports"][0][
        "fixed_ips"][0]["ip_address"]
    lab.demo.put(f"/v2.0/networks/{net['id']}", {"network": {"description": "before the outage"}})

    lab_services.stop(lab.lab, "rabbitmq")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            # Nova's steps for a VM on host-1: the API answers them with the broker away (change
            # events are dropped, not waited for); wiring the port needs the agent's calls, so
            # the VM waits, as Nova waits for vif-plugged, until the broker is back.
            made = pool.submit(lab.instance, "host-1", "net-r", "vm-r2", timeout=120)
            assert wait_for(lambda: bool(lab.demo.get("/v2.0/ports", name="vm-r2")["ports"]), timeout=20)
            port = lab.demo.get("/v2.0/ports", name="vm-r2")["ports"][0]
            assert wait_for(lambda: lab.admin.get(f"/v2.0/ports/{port['id']}")["port"]["binding:host_id"] == "host-1",
                            timeout=20)
            assert _status(lab, port["id"]) == "DOWN"  # no agent could have heard of it
            assert lab.ping(vm1, dhcp_ip)  # what was wired stays: host-2 still reaches host-1's dnsmasq
        finally:
            lab_services.start(lab.lab, "rabbitmq")
        vm2 = made.result(timeout=150)

    assert _status(lab, vm2.port_id) == _status(lab, vm1.port_id) == "ACTIVE"
    assert lab.ping(vm1, ip_of(vm2)) and lab.ping(vm2, ip_of(vm1))  # across hosts, over VXLAN
    assert lab.demo.get(f"/v2.0/networks/{net['id']}")["network"]["description"] == "before the outage"
    assert wait_for(lambda: _all_agents_alive(lab), timeout=15)
    lab.delete("host-1", "vm-r2")
    lab.delete("host-2", "vm-r1")


def test_the_api_says_503_while_the_database_is_down_and_the_dataplane_stays(lab: LabHandle) -> None:
    net, _ = lab.network("net-d", "10.42.0.0/24")
    vm1 = lab.instance("host-2", "net-d", "vm-d1")
    vm2 = lab.instance("host-1", "net-d", "vm-d2")
    assert lab.ping(vm1, ip_of(vm2))
    lab.demo.put(f"/v2.0/networks/{net['id']}", {"network": {"description": "written just before"}})

    lab_services.stop(lab.lab, "database")
    try:
        quick = Client(lab.lab.server_url(0), lab.demo.headers, timeout=15, project_id=lab.demo.project_id)
        for call in (lambda: quick.get("/v2.0/networks"),
                     lambda: quick.post("/v2.0/networks", {"network": {"name": "during"}}),
                     lambda: Client.from_clouds(lab.lab.clouds, "demo", timeout=15)):
            with pytest.raises(ApiError) as unavailable:
                call()
            assert unavailable.value.status == 503, unavailable.value  # "try again later", not a 500 or a hang
        # The agents' syncs fail meanwhile; what they wired stays (a failed sync is not an empty one).
        time.sleep(2 * RESYNC)
        assert lab.ping(vm1, ip_of(vm2)) and lab.ping(vm2, ip_of(vm1))
    finally:
        lab_services.start(lab.lab, "database")

    assert wait_for(lambda: _answers(lab), timeout=15)
    assert lab.demo.get(f"/v2.0/networks/{net['id']}")["network"]["description"] == "written just before"
    vm3 = lab.instance("host-2", "net-d", "vm-d3")  # a change after the outage is applied
    assert lab.ping(vm3, ip_of(vm2)) and lab.ping(vm2, ip_of(vm3)) and lab.ping(vm1, ip_of(vm2))
    assert wait_for(lambda: _all_agents_alive(lab), timeout=15)
    for host, name in (("host-2", "vm-d1"), ("host-1", "vm-d2"), ("host-2", "vm-d3")):
        lab.delete(host, name)


def _answers(lab: LabHandle) -> bool:
    try:
        lab.demo.get("/v2.0/networks")
    except ApiError:
        return False
    return True

