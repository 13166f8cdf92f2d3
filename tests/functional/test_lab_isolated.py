"""An isolated lab (``neutrino lab up --isolated``): every role on its host as on separate machines.

Three hosts on the Linux-bridge driver: the lab's own PostgreSQL and RabbitMQ and server 1 in
host-1, server 2 in host-2, each agent in its own host; nothing in the machine's namespace.
The servers answer alike from two hosts, instances on host-2 and host-3 get their leases from
host-1 and ping each other (so the agents reached the broker on host-1 over the underlay), a
person's ``openstack`` CLI works through ``neutrino lab exec``, ``neutrino lab service``
restarts the database and the broker inside host-1, the machine's namespace holds
no listener, process or link of the lab, and ``down`` leaves it as it was. A second, smaller
lab on Open vSwitch shows that the control plane's connections survive each agent moving its
host's underlay address onto the OVS port ``br-phy``. Marked ``lab``; skipped with the reason
where PostgreSQL, RabbitMQ (or Open vSwitch) is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino import lab as labmod
from neutrino import lab_services
from neutrino.client import ApiError
from neutrino.cmd import lab as labcmd
from neutrino.kernel import links
from tests.functional.cloud import ip_of, wait_for
from tests.functional.lab import (
    LabHandle,
    built,
    compute_nodes_meet_over_vxlan,
    machine_view,
    require,
    two_servers_answer_alike,
)

pytestmark = pytest.mark.lab
NEUTRINO = str(Path(sys.executable).with_name("neutrino"))
BEFORE: dict[str, tuple[set[str], set[str]]] = {}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    require()
    BEFORE["machine"] = machine_view()
    with built(tmp_path_factory.mktemp("lab"), hosts=3, servers=2, isolated=True) as handle:
        yield handle


@pytest.fixture(scope="module")
def ovs_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    require(openvswitch=True)
    with built(tmp_path_factory.mktemp("ovs-lab"), hosts=2, servers=2, isolated=True, driver="openvswitch") as handle:
        yield handle


def _netns_of(pid: int) -> tuple[int, int]:
    st = os.stat(f"/proc/{pid}/ns/net")
    return st.st_dev, st.st_ino


def _namespace_id(name: str) -> tuple[int, int]:
    st = os.stat(f"/run/netns/{name}")
    return st.st_dev, st.st_ino


def _pids(lab: LabHandle) -> dict[str, int]:
    """Every process the lab started, by name (each must be running)."""
    procs = [*labmod.agents(lab.lab), *labmod.servers(lab.lab),
             *(lab_services.process(lab.lab, s) for s in lab_services.SERVICES)]
    found = {p.name: p.pid() for p in procs}
    assert None not in found.values(), found
    return {name: pid for name, pid in found.items() if pid is not None}


def _descendants(pids: set[int]) -> set[int]:
    """``pids`` and every process below them (RabbitMQ's VM and epmd, PostgreSQL's backends,
    the agents' dnsmasq and haproxy)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, grew = set(pids), True
    while grew:
        below = {pid for pid, ppid in parent.items() if ppid in found} - found
        found |= below
        grew = bool(below)
    return found


def _listeners(ns: str | None) -> list[str]:
    """``ss -Hltnp`` (listening TCP with their processes) of namespace ``ns`` (None: the machine's)."""
    argv = ["ss", "-Hltnp"] if ns is None else ["ip", "netns", "exec", ns, "ss", "-Hltnp"]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=10).stdout.splitlines()


def test_each_role_runs_in_its_host_on_the_underlay(lab: LabHandle) -> None:
    hosts = {h.name: h for h in lab.lab.hosts}
    where = {name: _netns_of(pid) for name, pid in _pids(lab).items()}
    host = {name: _namespace_id(h.namespace) for name, h in hosts.items()}
    assert where == {"agent-host-1": host["host-1"], "agent-host-2": host["host-2"], "agent-host-3": host["host-3"],
                     "server-1": host["host-1"], "server-2": host["host-2"],
                     "rabbitmq": host["host-1"], "postgresql": host["host-1"]}
    # host-1 listens on its underlay address (never 0.0.0.0: eth2 faces the outside); only the
    # Erlang node's own ports (epmd, distribution) sit on host-1's loopback.
    bound = {line.split()[3] for line in _listeners(hosts["host-1"].namespace)}
    assert {"172.30.0.11:5432", "172.30.0.11:5672", "172.30.0.11:9696"} <= bound, bound
    assert all(a.startswith(("172.30.0.11:", "127.0.0.1:")) for a in bound), bound
    assert {line.split()[3] for line in _listeners(hosts["host-2"].namespace)} == {"172.30.0.12:9696"}
    assert lab.lab.db_url.startswith("postgresql+psycopg://postgres@172.30.0.11:5432/")
    assert lab.lab.transport_url == "amqp://guest:guest@172.30.0.11:5672//"


def test_two_servers_on_two_hosts_answer_alike(lab: LabHandle) -> None:
    assert [lab.lab.server_url(k) for k in (0, 1)] == ["http://172.30.0.11:9696", "http://172.30.0.12:9696"]
    two_servers_answer_alike(lab, "iso-c", "10.36.0.0/24")


def test_compute_hosts_get_dhcp_from_host_1_and_meet(lab: LabHandle) -> None:
    compute_nodes_meet_over_vxlan(lab, "iso-a", "10.35.0.0/24")


def test_a_person_reaches_the_api_with_lab_exec(lab: LabHandle) -> None:
    lab.demo.post("/v2.0/networks", {"network": {"name": "iso-cli"}})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEUTRINO_", "OS_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    listed = subprocess.run([NEUTRINO, "lab", "exec", "--name", lab.lab.name, "--state-dir", str(lab.lab.state_dir),
                             "host-3", "--", "openstack", "--os-cloud", "demo", "network", "list", "-f", "value",
                             "-c", "Name"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "iso-cli" in listed.stdout.split()


def test_lab_service_restarts_host_1_s_database_and_broker(lab: LabHandle) -> None:
    """``neutrino lab service`` reaches the services inside host-1 (PostgreSQL by its unix socket,
    RabbitMQ from a thread in host-1); both servers write again afterwards. (That agents resync
    after such outages is test_lab_outages.py's, the same in either kind of lab.)"""
    common = ["--name", lab.lab.name, "--state-dir", str(lab.lab.state_dir)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUTRINO_")}
    for service in ("database", "rabbitmq"):
        done = subprocess.run([NEUTRINO, "lab", "service", *common, "restart", service], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "serving" in done.stdout, done.stdout + done.stderr
    for k in (0, 1):
        assert wait_for(lambda k=k: _writes(lab, k), timeout=20), f"server {k + 1} does not write again"


def _writes(lab: LabHandle, k: int) -> bool:
    try:
        net = lab.client(k).post("/v2.0/networks", {"network": {"name": f"after-{k}"}})["network"]
    except ApiError:
        return False
    lab.client(k).delete(f"/v2.0/networks/{net['id']}")
    return True


def test_the_machine_namespace_holds_nothing_of_the_lab(lab: LabHandle) -> None:
    """No process of the lab (nor any it started) lives or listens in the machine's namespace
    (its loopback carries nothing of the lab), and the machine gained no link."""
    everything = _descendants(set(_pids(lab).values()))
    machine = _netns_of(os.getpid())  # this test runs in the machine's namespace
    assert len(everything) > 7 and not [pid for pid in everything if _netns_of(pid) == machine]
    assert not [line for line in _listeners(None) for pid in everything if f"pid={pid}," in line]
    assert machine_view()[1] == BEFORE["machine"][1]


def test_down_leaves_the_machine_as_it_was(lab: LabHandle) -> None:
    pids = list(_pids(lab).values())
    labcmd.down(lab.lab)
    namespaces, links = machine_view()
    assert {n for n in namespaces if n.startswith(f"{lab.lab.name}-")} == set()
    assert links == BEFORE["machine"][1], links ^ BEFORE["machine"][1]
    assert wait_for(lambda: not any(labmod.running(pid) for pid in pids), timeout=10), pids
    assert lab.lab.own is not None and not Path(lab.lab.own.postgresql_dir).exists()


def test_on_open_vswitch_the_control_plane_survives_the_underlay_moving_to_br_phy(ovs_lab: LabHandle) -> None:
    """Both hosts' agents moved 172.30.0.1X to br-phy after the servers had connected: server 2
    (host-2) still writes to the database on host-1, and host-2's instance gets its lease from
    host-1 over an OVS userspace tunnel."""
    for host in ovs_lab.lab.hosts:
        assert wait_for(lambda h=host: links.link_exists(h.namespace, "br-phy")
                        and f"{h.underlay_ip}/24" in links.list_addresses(h.namespace, "br-phy"))
    net, _ = ovs_lab.network("iso-ovs", "10.37.0.0/24")
    port = ovs_lab.client(1).post("/v2.0/ports", {"port": {"network_id": net["id"], "name": "via-two"}})["port"]
    assert ovs_lab.client(0).get(f"/v2.0/ports/{port['id']}")["port"]["name"] == "via-two"
    vm = ovs_lab.instance("host-2", "iso-ovs", "iso-ovs-vm2")
    try:
        dhcp = ovs_lab.admin.get("/v2.0/ports", network_id=net["id"], device_owner="network:dhcp")["ports"]
        assert [p["binding:host_id"] for p in dhcp] == ["host-1"]
        assert ovs_lab.ping(vm, dhcp[0]["fixed_ips"][0]["ip_address"]) and ip_of(vm).startswith("10.37.0.")
    finally:
        ovs_lab.delete("host-2", "iso-ovs-vm2")
