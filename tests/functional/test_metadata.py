"""Metadata on the real kernel: instances ask 169.254.169.254 and each gets its own answer, forged headers or not."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.l2.linuxbridge import BridgePlug
from neutrino.agent.l3 import nat
from neutrino.agent.l3.router import RouterNamespace, RouterState
from neutrino.agent.metadata.proxy import METADATA_IP, PROXY_PORT, MetadataProxy
from neutrino.agent.metadata.server import MetadataServer, socket_path
from neutrino.kernel import links, netns, nft, procs
from neutrino.kernel.names import bridge_name, ns_name, tap_name

ROUTER = "3c3c3c3c-1111-4222-8333-444455556666"
OTHER_ROUTER = "4d4d4d4d-1111-4222-8333-444455556666"
NET = "cccc1111-0000-4000-8000-00000000000c"
QR = {"id": "c0c0c0c0-77cc-4000-8000-0000000000c1", "mac_address": "fa:16:3e:30:00:01", "network_id": NET,
      "fixed_ips": [{"ip_address": "10.30.0.1", "cidr": "10.30.0.0/24"}]}
ROUTER_DICT: dict[str, Any] = {"id": ROUTER, "routes": [], "external_gateway_info": None}
# instance namespace suffix -> (port id, MAC, address); the instance id is derived from the name
INSTANCES = {"vm1": ("c1c1c1c1-88cc-4000-8000-0000000000c2", "fa:16:3e:30:00:11", "10.30.0.11"),
             "vm2": ("c2c2c2c2-88cc-4000-8000-0000000000c3", "fa:16:3e:30:00:12", "10.30.0.12")}
DHCP_PORT_ID = "c9c9c9c9-99cc-4000-8000-0000000000c9"
URL = f"http://{METADATA_IP}/latest/meta-data/instance-id"

# Run inside an instance: GET argv[1] with "Name: value" headers from argv[2:], print status then body.
# urllib, never busybox wget (it segfaults here); no proxy from the environment.
FETCH = """
import sys, urllib.error, urllib.request
req = urllib.request.Request(sys.argv[1], headers=dict(h.split(": ", 1) for h in sys.argv[3:]))
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(req, timeout=float(sys.argv[2])) as r:
        status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
print(status)
sys.stdout.write(body.decode())
"""


def instance_id(name: str) -> str:
    return f"{name}-0000-4000-8000-000000000000"


@dataclass
class Lab:
    prefix: str
    host: str
    bridge: str
    router: RouterNamespace
    socket_path: str
    state_dir: Path

    def ns(self, name: str) -> str:
        return self.prefix + name

    def fetch(self, vm: str, url: str = URL, headers: Mapping[str, str] | None = None,
              timeout: float = 5.0) -> tuple[int, str] | None:
        """(status, body) of a GET from instance ``vm``; None if no HTTP answer came at all."""
        argv = ["ip", "netns", "exec", self.ns(vm), sys.executable, "-c", FETCH, url, str(timeout),
                *(f"{k}: {v}" for k, v in (headers or {}).items())]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            return None
        status, _, body = done.stdout.partition("\n")
        return int(status), body

    def proxy(self, socket_path: str | None = None) -> MetadataProxy:
        return MetadataProxy(self.state_dir, self.router.namespace, socket_path or self.socket_path, router_id=ROUTER)


def lookup(router_id: str | None, network_id: str | None, ip: str) -> Mapping[str, Any] | None:
    """Instances by (router or network, address) like the agent's port query; a decoy for any forged header."""
    if (router_id, network_id) not in ((ROUTER, None), (None, NET)):
        return {"instance_id": "forged-header-won", "hostname": "x", "name": "x", "local_ipv4": ip, "project_id": "x"}
    for name, (_, _, address) in INSTANCES.items():
        if ip == address:
            return {"instance_id": instance_id(name), "hostname": name, "name": name.upper(), "local_ipv4": ip,
                    "project_id": "proj"}
    return None


def _plug_instance(host: str, ns: str, bridge: str, port_id: str, mac: str, address: str) -> None:
    netns.ensure_namespace(ns)
    links.ensure_veth(host, tap_name(port_id), ns, "eth0", mac_b=mac)
    links.set_master(host, tap_name(port_id), bridge)
    links.set_up(host, tap_name(port_id))
    links.set_up(ns, "eth0")
    links.add_address(ns, "eth0", f"{address}/24")
    links.ensure_route(ns, "0.0.0.0/0", "10.30.0.1")


@pytest.fixture
def lab(ns_prefix: str, tmp_path: Path) -> Iterator[Lab]:
    host, bridge = ns_prefix + "host", bridge_name(NET)
    netns.ensure_namespace(host)
    links.ensure_bridge(host, bridge)
    links.set_up(host, bridge)
    for name, (port_id, mac, address) in INSTANCES.items():
        _plug_instance(host, ns_prefix + name, bridge, port_id, mac, address)
    router = RouterNamespace(ROUTER, prefix=ns_prefix)
    # Where the agent puts it: haproxy (no longer root) reaches it, tmp_path (root's own) it would not.
    server = MetadataServer(socket_path(tmp_path), lookup)
    try:
        router.apply(RouterState(router=ROUTER_DICT, interfaces=[QR], plugs={NET: BridgePlug(host, bridge)}))
        # The redirect, applied here so this test does not depend on how the agent wires it in.
        nft.apply(router.namespace, nat.render(ROUTER_DICT, None, [QR], [], metadata_port=PROXY_PORT))
        server.start()
        yield Lab(ns_prefix, host, bridge, router, server.socket_path, tmp_path / "metadata")
    finally:
        server.stop()
        router.teardown()  # the ns_prefix fixture removes the rest, even if this fails


def _haproxy_pids(lab: Lab) -> list[int]:
    """PIDs of haproxy processes started from our state dir (any router), however they got there."""
    out = subprocess.run(["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [int(line.split(None, 1)[0]) for line in out.splitlines()
            if "haproxy" in line and str(lab.state_dir) in line]


def test_each_instance_gets_its_own_metadata_through_the_router(lab: Lab) -> None:
    md = lab.proxy()
    pids: list[int] = []
    try:
        assert md.apply() == "started"
        pid = md.pid()
        assert pid is not None
        pids.append(pid)
        assert procs.cmdline(pid) == md.argv
        assert md.apply() == "unchanged" and md.pid() == pid

        for vm in INSTANCES:
            assert lab.fetch(vm) == (200, instance_id(vm)), vm
        assert lab.fetch("vm1", f"http://{METADATA_IP}/latest/meta-data/local-ipv4") == (200, "10.30.0.11")
        got = lab.fetch("vm2", f"http://{METADATA_IP}/openstack/latest/meta_data.json")
        assert got is not None and got[0] == 200 and f'"uuid": "{instance_id("vm2")}"' in got[1]

        # The instance claims another router, network and address: haproxy drops all of it.
        forged = {"X-Neutron-Router-ID": OTHER_ROUTER, "X-Neutron-Network-ID": NET, "X-Forwarded-For": "10.30.0.12"}
        assert lab.fetch("vm1", headers=forged) == (200, instance_id("vm1"))

        # Straight to the proxy port on the router's address: dropped, only the redirect gets in.
        assert lab.fetch("vm1", f"http://10.30.0.1:{PROXY_PORT}/latest/meta-data/instance-id", timeout=1.5) is None

        # A config change restarts haproxy: pointed at a socket nobody serves, it answers 503.
        assert lab.proxy(socket_path=lab.socket_path + ".nobody").apply() == "restarted"
        other = md.pid()
        assert other is not None and other != pid
        pids.append(other)
        got = lab.fetch("vm1")
        assert got is not None and got[0] == 503
        assert md.apply() == "restarted"
        again = md.pid()
        assert again is not None
        pids.append(again)
        assert lab.fetch("vm1") == (200, instance_id("vm1"))
        assert _haproxy_pids(lab) == [again]
    finally:
        stopped = md.teardown()
    assert stopped
    assert md.pid() is None and not md.directory.exists()
    # Gone, or the PID already reused by something that is not our haproxy (a busy machine).
    assert all(str(md.config_path) not in " ".join(procs.cmdline(p) or []) for p in pids)
    assert _haproxy_pids(lab) == []
    assert subprocess.run(["ip", "netns", "pids", lab.router.namespace], capture_output=True, text=True,
                          check=True).stdout.split() == []
    assert md.teardown() is False


def test_a_network_proxy_serves_on_the_metadata_address_itself(lab: Lab) -> None:
    """The qdhcp flavour (isolated networks): 169.254.169.254/32 on the DHCP port, haproxy bound to it, Network-ID."""
    ns = lab.ns("qdhcp")
    dev = ns_name(DHCP_PORT_ID)
    netns.ensure_namespace(ns)
    links.ensure_veth(lab.host, tap_name(DHCP_PORT_ID), ns, dev, mac_b="fa:16:3e:30:00:02")
    links.set_master(lab.host, tap_name(DHCP_PORT_ID), lab.bridge)
    links.set_up(lab.host, tap_name(DHCP_PORT_ID))
    links.add_address(ns, dev, "10.30.0.2/24")
    links.add_address(ns, dev, f"{METADATA_IP}/32")
    links.set_up(ns, dev)
    for vm in INSTANCES:  # what DHCP option 121 tells instances on a network without a router
        links.ensure_route(lab.ns(vm), f"{METADATA_IP}/32", "10.30.0.2")
    md = MetadataProxy(lab.state_dir, ns, lab.socket_path, network_id=NET, bind=f"{METADATA_IP}:80")
    try:
        assert md.apply() == "started"
        pid = md.pid()
        forged = {"X-Neutron-Router-ID": ROUTER, "X-Forwarded-For": "10.30.0.11"}
        for vm in INSTANCES:
            assert lab.fetch(vm) == (200, instance_id(vm)), vm
            assert lab.fetch(vm, headers=forged) == (200, instance_id(vm)), vm
    finally:
        md.teardown()
    # Gone, or the PID already reused by something that is not our haproxy (a busy machine).
    assert pid is not None and str(md.config_path) not in " ".join(procs.cmdline(pid) or [])
    assert _haproxy_pids(lab) == []
