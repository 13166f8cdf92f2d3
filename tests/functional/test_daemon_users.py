"""Issue 7 section 6: dnsmasq and haproxy drop root after start, as Neutron runs them, and still serve.

Through the API and the host agent: the running daemons' /proc/<pid>/status say nobody and
nogroup; a second instance gets its lease after dnsmasq re-read its files on SIGHUP (same
PID, so a reload, not a restart), and metadata still answers through the router's haproxy,
which reaches the agent's unix socket as nobody.
"""

from __future__ import annotations

import grp
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.kernel import procs
from neutrino.kernel.names import qdhcp_ns, qrouter_ns
from tests.functional.cloud import Cloud, cloud, ip_of
from tests.functional.test_cloud import metadata


@pytest.fixture
def c(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    with cloud(tmp_path, ns_prefix) as built:
        yield built


def daemon(namespace: str, name: str) -> int:
    """The one process called ``name`` running in ``namespace``."""
    pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=True).stdout
    found = [int(pid) for pid in pids.split() if (procs.cmdline(int(pid)) or [""])[0].endswith(name)]
    assert len(found) == 1, (namespace, name, pids)
    return found[0]


def ids(pid: int) -> tuple[set[int], set[int]]:
    """(real, effective, saved, fs) uids and gids of a process, as sets."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {int(v) for v in status["Uid"].split()}, {int(v) for v in status["Gid"].split()}


def test_dnsmasq_and_haproxy_run_as_nobody_and_still_serve(c: Cloud) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    nogroup = grp.getgrnam("nogroup").gr_gid
    net, sub = c.network("net1", "10.1.0.0/24")
    api = c.client()
    router = api.post("/v2.0/routers", {"router": {"name": "r1"}})["router"]
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    compute = c.compute()
    vm1 = compute.create("vm1", network="net1")
    c.settle()

    dnsmasq = daemon(c.ns_prefix + qdhcp_ns(net["id"]), "dnsmasq")
    assert ids(dnsmasq) == ({nobody}, {nogroup})
    haproxy = daemon(c.ns_prefix + qrouter_ns(router["id"]), "haproxy")
    assert ids(haproxy) == ({nobody}, {nogroup})

    vm2 = compute.create("vm2", network="net1")  # its host line reached dnsmasq by SIGHUP, read as nobody
    assert daemon(c.ns_prefix + qdhcp_ns(net["id"]), "dnsmasq") == dnsmasq and ip_of(vm2) != ip_of(vm1)
    for vm in (vm1, vm2):
        assert metadata(vm.namespace, "instance-id") == vm.id
        assert metadata(vm.namespace, "local-ipv4") == ip_of(vm)
    assert daemon(c.ns_prefix + qrouter_ns(router["id"]), "haproxy") == haproxy
