"""Several hosts on one machine (``neutrino lab``), proved by real traffic between real processes.

One lab serves the first three tests: three hosts (host-1 controller and network node, host-2
and host-3 compute nodes), each with its own ``neutrino agent`` process, and two ``neutrino
server`` processes on one PostgreSQL database and one RabbitMQ exchange. The last test drives
``neutrino lab up`` and ``down`` through the real command line. Skipped with the reason when
PostgreSQL or RabbitMQ does not answer on loopback; marked ``lab`` (``-m lab`` selects them).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino import lab as labmod
from neutrino.kernel import netns
from tests.functional.cloud import wait_for
from tests.functional.lab import (
    LabHandle,
    built,
    compute_nodes_meet_over_vxlan,
    machine_view,
    two_servers_answer_alike,
    why_not,
)

pytestmark = pytest.mark.lab
NEUTRINO = str(Path(sys.executable).with_name("neutrino"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    if os.geteuid() != 0:
        pytest.skip("a lab needs root (network namespaces)")
    with built(tmp_path_factory.mktemp("lab"), hosts=3, servers=2) as handle:
        yield handle


def test_compute_hosts_get_dhcp_from_the_network_node_and_meet_over_vxlan(lab: LabHandle) -> None:
    compute_nodes_meet_over_vxlan(lab, "net-a", "10.31.0.0/24")


def test_a_router_on_the_network_node_serves_two_compute_nodes(lab: LabHandle) -> None:
    _, sub = lab.network("net-b", "10.32.0.0/24")
    router = lab.demo.post("/v2.0/routers", {"router": {"name": "r-b"}})["router"]
    lab.demo.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    public = lab.admin.get("/v2.0/networks", name="public")["networks"][0]
    lab.demo.put(f"/v2.0/routers/{router['id']}", {"router": {"external_gateway_info": {"network_id": public["id"]}}})
    groups = lab.demo.get("/v2.0/security-groups", name="default")["security_groups"]
    lab.demo.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": groups[0]["id"], "direction": "ingress", "protocol": "icmp"}})
    vm2 = lab.instance("host-2", "net-b", "vm-b2")
    vm3 = lab.instance("host-3", "net-b", "vm-b3")
    try:
        ports = lab.admin.get("/v2.0/ports", device_id=router["id"])["ports"]
        assert {p["binding:host_id"] for p in ports} == {"host-1"}
        assert [h.name for h in lab.lab.hosts
                if netns.namespace_exists(f"{h.ns_prefix}qrouter-{router['id']}")] == ["host-1"]
        # SNAT: the outside namespace has no route to 10.32.0.0/24, so only translated pings return.
        assert lab.ping(vm2, labmod.OUTSIDE_IP) and lab.ping(vm3, labmod.OUTSIDE_IP)
        fip = lab.demo.post("/v2.0/floatingips", {"floatingip": {
            "floating_network_id": public["id"], "port_id": vm3.port_id}})["floatingip"]
        assert wait_for(lambda: lab.ping(lab.outside_ns, fip["floating_ip_address"]), timeout=15)
        # Metadata of an instance on a compute node, served through the router on the network node.
        fetch = "import urllib.request as u; print(u.urlopen('http://169.254.169.254/latest/meta-data/hostname', " \
                "timeout=5).read().decode())"
        got = subprocess.run(["ip", "netns", "exec", vm2.namespace, sys.executable, "-S", "-c", fetch],
                             capture_output=True, text=True, timeout=20)
        assert got.stdout.strip() == "vm-b2", got.stderr
    finally:
        lab.delete("host-2", "vm-b2")
        lab.delete("host-3", "vm-b3")


def test_two_servers_on_one_database_answer_alike(lab: LabHandle) -> None:
    two_servers_answer_alike(lab, "net-c", "10.33.0.0/24")


def test_lab_up_and_down_on_the_command_line_leave_the_machine_as_it_was(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("a lab needs root (network namespaces)")
    name, state = f"nt-{secrets.token_hex(3)}", tmp_path / "state"
    reason = why_not(labmod.plan(name, state, 2))
    if reason:
        pytest.skip(reason)
    common = ["--name", name, "--state-dir", str(state)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUTRINO_")}
    before_ns, before_links = machine_view()
    try:
        up = subprocess.run([NEUTRINO, "lab", "up", "--hosts", "2", *common], env=env, capture_output=True,
                            text=True, timeout=240)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "[7/7] waiting for every host's agents to report ... ok" in up.stdout
        during_ns, during_links = machine_view()
        assert {f"{name}-fabric", f"{name}-outside", f"{name}-host-1", f"{name}-host-2"} <= during_ns
        assert during_links == before_links, during_links ^ before_links  # nothing in the machine's namespace
        status = subprocess.run([NEUTRINO, "lab", "status", *common], env=env, capture_output=True, text=True,
                                timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "host-2" in status.stdout and "Linux bridge agent" in status.stdout
        pids = [int(p.read_text()) for p in (state / "run").glob("*.pid")]
        assert len(pids) == 3, pids  # one server and two agents
    finally:
        down = subprocess.run([NEUTRINO, "lab", "down", *common], env=env, capture_output=True, text=True,
                              timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "dropping the database ... dropped" in down.stdout
    after_ns, after_links = machine_view()
    assert {n for n in after_ns if n.startswith(f"{name}-")} == set()
    assert after_links == before_links, after_links ^ before_links
    # gone, or a zombie that its new parent (the machine's init) has not reaped yet: not running
    assert wait_for(lambda: not any(labmod.running(pid) for pid in pids), timeout=10), pids
