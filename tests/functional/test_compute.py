"""Instances as namespaces on the real kernel: plug into a bridge, a real DHCP lease from dnsmasq, ping, unplug."""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino import compute
from neutrino.agent.dhcp.dnsmasq import DhcpNetwork
from neutrino.agent.l2.linuxbridge import BridgePlug
from neutrino.compute import dhcp_client, vif
from neutrino.compute.dhcp_client import Lease, NoLease
from neutrino.kernel import links, netns, procs
from neutrino.kernel.names import bridge_name, tap_name
from tests.functional.traffic import ping

NET_ID = str(uuid.uuid4())
SUBNET: dict[str, Any] = {"id": str(uuid.uuid4()), "cidr": "10.20.0.0/24", "ip_version": 4,
                          "gateway_ip": "10.20.0.1", "enable_dhcp": True, "dns_nameservers": [],
                          "host_routes": [{"destination": "10.99.0.0/16", "nexthop": "10.20.0.254"}],
                          "allocation_pools": [{"start": "10.20.0.2", "end": "10.20.0.253"}]}
NETWORK = {"id": NET_ID, "mtu": 1450}
HOST_RESOLV = Path("/etc/resolv.conf")


def _port(mac: str, ip: str, owner: str = "compute:nova") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "mac_address": mac, "device_owner": owner, "extra_dhcp_opts": [],
            "fixed_ips": [{"subnet_id": SUBNET["id"], "ip_address": ip}]}


def _fingerprint(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_ino, st.st_mtime_ns


def _in_instance(ns: str, *argv: str) -> str:
    done = subprocess.run(vif.exec_argv(ns, argv), capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return done.stdout


class Cloud:
    """A host namespace with the network's bridge and a real dnsmasq; instances plugged into it."""

    def __init__(self, prefix: str, state: Path) -> None:
        self.prefix, self.state = prefix, state
        self.host, self.bridge = f"{prefix}host", bridge_name(NET_ID)
        self.dhcp_port = _port("fa:16:3e:20:00:02", "10.20.0.2", owner="network:dhcp")
        self.ports = [self.dhcp_port, _port("fa:16:3e:20:00:0b", "10.20.0.11"),
                      _port("fa:16:3e:20:00:0c", "10.20.0.12")]
        self.dhcp = DhcpNetwork(NET_ID, BridgePlug(self.host, self.bridge), namespace=f"{prefix}qdhcp")
        self.instances: list[tuple[str, str]] = []  # (namespace, tap) to unplug

    def start(self) -> None:
        netns.ensure_namespace(self.host)
        netns.set_sysctl(self.host, "net.ipv6.conf.all.disable_ipv6", 1)
        links.ensure_bridge(self.host, self.bridge)
        links.set_up(self.host, self.bridge)
        assert self.dhcp.apply(NETWORK, [SUBNET], self.ports, self.dhcp_port) == "started"

    def plug(self, name: str, port: dict[str, Any]) -> tuple[str, str, bool]:
        ns, tap = f"{self.prefix}{name}", tap_name(port["id"])
        self.instances.append((ns, tap))
        return ns, tap, vif.plug(ns, self.host, tap, port["mac_address"], self.bridge)

    def close(self) -> None:
        for ns, tap in self.instances:
            vif.unplug(ns, self.host, tap)
        self.dhcp.teardown()


@pytest.fixture
def cloud(ns_prefix: str, tmp_path: Path) -> Iterator[Cloud]:
    made = Cloud(ns_prefix, tmp_path)
    try:
        made.start()
        yield made
    finally:
        made.close()


def _check_instance(ns: str, lease: Lease, ip: str) -> None:
    assert (lease.ip, lease.prefixlen, lease.router, lease.mtu) == (ip, 24, "10.20.0.1", 1450)
    assert lease.dns == ("10.20.0.2",) and lease.domain == "openstacklocal"
    assert lease.hostname == "host-" + ip.replace(".", "-")
    assert ("10.99.0.0/16", "10.20.0.254") in lease.routes and ("0.0.0.0/0", "10.20.0.1") in lease.routes
    assert links.list_addresses(ns, "eth0") == [f"{ip}/24"]
    assert {link.name: link.mtu for link in links.list_links(ns)}["eth0"] == 1450
    routes = {(r.dst, r.gateway, r.dev) for r in links.list_routes(ns)}
    assert ("10.99.0.0/16", "10.20.0.254", "eth0") in routes
    assert ("0.0.0.0/0", "10.20.0.1", "eth0") in routes
    # what the instance sees as /etc/resolv.conf is its own file (a bind mount), filled by DHCP
    inside = _in_instance(ns, "cat", "/etc/resolv.conf")
    assert inside == compute.resolv_conf(ns).read_text()
    assert inside.splitlines() == ["search openstacklocal", "nameserver 10.20.0.2"]
    inode = compute.resolv_conf(ns).stat().st_ino
    assert _in_instance(ns, "stat", "-c", "%i", "/etc/resolv.conf").strip() == str(inode)
    assert _in_instance(ns, "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6").strip() == "1"


def test_two_instances_get_leases_ping_and_unplug(cloud: Cloud, tmp_path: Path) -> None:
    host_resolv = _fingerprint(HOST_RESOLV)
    state = tmp_path / "compute"
    leases: dict[str, Lease] = {}
    for name, port in (("vm1", cloud.ports[1]), ("vm2", cloud.ports[2])):
        ns, tap, changed = cloud.plug(name, port)
        assert changed
        assert compute.resolv_conf(ns).read_text() == ""
        started = time.monotonic()
        leases[ns] = dhcp_client.acquire(ns, state, timeout=5)
        print(f"\nDHCP lease for {ns}: {leases[ns].cidr} in {(time.monotonic() - started) * 1000:.0f} ms")
        _check_instance(ns, leases[ns], port["fixed_ips"][0]["ip_address"])
        link = {link.name: link for link in links.list_links(cloud.host)}[tap]
        assert link.up and link.master == {x.name: x for x in links.list_links(cloud.host)}[cloud.bridge].index
        assert not compute.run_dir(ns).exists()  # the client quit after the lease, its pidfile went with it
    assert _fingerprint(HOST_RESOLV) == host_resolv

    (vm1, tap1), (vm2, tap2) = cloud.instances
    assert ping(vm1, leases[vm2].ip) and ping(vm2, leases[vm1].ip)
    assert not vif.plug(vm1, cloud.host, tap1, cloud.ports[1]["mac_address"].upper(), cloud.bridge)
    assert ping(vm1, leases[vm2].ip)

    assert vif.unplug(vm1, cloud.host, tap1)
    assert not netns.namespace_exists(vm1) and not links.link_exists(cloud.host, tap1)
    assert not compute.etc_dir(vm1).exists() and not compute.run_dir(vm1).exists()
    assert not vif.unplug(vm1, cloud.host, tap1)
    assert not ping(vm2, leases[vm1].ip, tries=1)
    assert netns.namespace_exists(vm2) and compute.resolv_conf(vm2).exists()
    assert _fingerprint(HOST_RESOLV) == host_resolv


def test_plug_without_bridge_then_repair(cloud: Cloud) -> None:
    ns, tap, _ = cloud.plug("vm1", cloud.ports[1])
    assert vif.unplug(ns, cloud.host, tap)
    assert vif.plug(ns, cloud.host, tap, cloud.ports[1]["mac_address"], None)
    assert {link.name: link for link in links.list_links(cloud.host)}[tap].master is None
    assert vif.plug(ns, cloud.host, tap, cloud.ports[1]["mac_address"], cloud.bridge)  # attaches it now
    assert not vif.plug(ns, cloud.host, tap, cloud.ports[1]["mac_address"], cloud.bridge)
    eth0 = {link.name: link for link in links.list_links(ns)}["eth0"]
    assert eth0.mac == cloud.ports[1]["mac_address"] and eth0.up and eth0.kind == "veth"


def test_unknown_mac_gets_no_lease_and_unplug_stops_a_running_client(cloud: Cloud, tmp_path: Path) -> None:
    stranger = _port("fa:16:3e:20:00:99", "10.20.0.99")  # not in dnsmasq's hosts: static leases only
    ns, tap, _ = cloud.plug("vm9", stranger)
    started = time.monotonic()
    with pytest.raises(NoLease, match="no DHCP lease for .*vm9/eth0 within 1 s"):
        dhcp_client.acquire(ns, tmp_path / "compute", timeout=1)
    assert time.monotonic() - started < 1 + dhcp_client.GRACE_SECONDS
    assert links.list_addresses(ns, "eth0") == []

    # a client still trying when the instance goes away is stopped through its pidfile
    failure: list[BaseException] = []

    def run() -> None:
        try:
            dhcp_client.acquire(ns, tmp_path / "compute", timeout=30)
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    pidfile = dhcp_client.pidfile_path(ns)
    deadline = time.monotonic() + 5
    while procs.owned_pid(str(pidfile), str(pidfile)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = procs.owned_pid(str(pidfile), str(pidfile))
    assert pid is not None
    stopped_at = time.monotonic()
    assert vif.unplug(ns, cloud.host, tap)
    worker.join(timeout=10)
    assert not worker.is_alive() and time.monotonic() - stopped_at < 5
    assert len(failure) == 1 and isinstance(failure[0], NoLease)
    assert procs.cmdline(pid) is None and not netns.namespace_exists(ns)
