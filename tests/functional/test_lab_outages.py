"""RabbitMQ, then the database, restart under a running lab: no change is lost, and a change
made during the outage is applied after it (issue 8 §3.4).

The lab runs a RabbitMQ node and a PostgreSQL cluster of its own (``own_services``), so that
stopping them never touches the machine's, which other users rely on. Two hosts: host-1 the
controller and network node (DHCP), host-2 a compute node; instances on both meet over VXLAN.
Heartbeats come every second and the periodic resync is ten minutes away, so what applies a
change here is an event, a retry or an agent's resync once it can report again. Marked
``lab``; skipped with the reason when RabbitMQ or PostgreSQL is not installed or this is not root.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino import lab_services
from neutrino.amqp import AmqpBus
from neutrino.bus import CHANGES, Event
from neutrino.client import ApiError, Client
from neutrino.cmd import lab as labcmd
from tests.functional.cloud import ip_of, wait_for
from tests.functional.lab import LabHandle, built

pytestmark = pytest.mark.lab
NEUTRINO = str(Path(sys.executable).with_name("neutrino"))
SETTINGS = {"agent": {"report_interval": 1.0, "resync_interval": 600.0}}


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

def test_changes_made_while_rabbitmq_is_down_are_applied_after_it(lab: LabHandle) -> None:
    net, _ = lab.network("net-r", "10.41.0.0/24")
    closed = lab.demo.post("/v2.0/security-groups", {"security_group": {"name": "closed"}})["security_group"]
    vm1 = lab.instance("host-2", "net-r", "vm-r1", security_groups=["closed"])
    dhcp = lab.admin.get("/v2.0/ports", network_id=net["id"], device_owner="network:dhcp")["ports"][0]
    dhcp_ip = dhcp["fixed_ips"][0]["ip_address"]
    qdhcp = f"{lab.lab.host(dhcp['binding:host_id']).ns_prefix}qdhcp-{net['id']}"
    assert not lab.ping(qdhcp, ip_of(vm1), tries=1)  # "closed" lets nothing in yet
    lab.demo.put(f"/v2.0/networks/{net['id']}", {"network": {"description": "before the outage"}})

    lab_services.stop(lab.lab, "rabbitmq")
    try:
        # The API answers writes with the broker away; their change events are dropped, not waited for.
        lab.demo.post("/v2.0/security-group-rules", {"security_group_rule": {
            "security_group_id": closed["id"], "direction": "ingress", "protocol": "icmp"}})
        port = lab.demo.post("/v2.0/ports", {"port": {"network_id": net["id"], "name": "vm-r2"}})["port"]
        assert lab.ping(vm1, dhcp_ip)  # what was wired stays: host-2 still reaches host-1's dnsmasq
    finally:
        lab_services.start(lab.lab, "rabbitmq")

    # Nothing is written after the outage, the rule's event was dropped and host-2's periodic resync
    # is minutes away: the rule reaches host-2 because an agent resyncs once it can report again
    # (or retries the pass the outage broke).
    assert wait_for(lambda: lab.ping(qdhcp, ip_of(vm1), tries=1), timeout=20)
    # The port made during the outage serves a VM on host-1 (Nova's steps with --port).
    vm2 = labcmd.compute(lab.lab, "host-1").create("vm-r2", port=port["id"])
    assert vm2.lease["ip"] == port["fixed_ips"][0]["ip_address"]
    assert _status(lab, vm2.port_id) == _status(lab, vm1.port_id) == "ACTIVE"
    assert lab.ping(vm2, ip_of(vm1))  # across hosts, over VXLAN, into "closed" by its new rule
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

    _cli(lab, "service", "stop", "database")
    try:
        status = _cli(lab, "status", check=False)
        assert status.returncode == 1 and "NOT RUNNING (the lab's own)" in status.stdout, status.stdout
        quick = Client(lab.lab.server_url(0), lab.demo.headers, timeout=15, project_id=lab.demo.project_id)
        for call in (lambda: quick.get("/v2.0/networks"),
                     lambda: quick.post("/v2.0/networks", {"network": {"name": "during"}}),
                     lambda: Client.from_clouds(lab.lab.clouds, "demo", timeout=15)):
            with pytest.raises(ApiError) as unavailable:
                call()
            assert unavailable.value.status == 503, unavailable.value  # "try again later", not a 500 or a hang
        assert lab.ping(vm1, ip_of(vm2)) and lab.ping(vm2, ip_of(vm1))
    finally:
        _cli(lab, "service", "start", "database")

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


def _cli(lab: LabHandle, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``neutrino lab ...`` on this lab, as an operator types it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUTRINO_")}
    done = subprocess.run([NEUTRINO, "lab", *argv, "--name", lab.lab.name, "--state-dir", str(lab.lab.state_dir)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert not check or done.returncode == 0, done.stdout + done.stderr
    return done
