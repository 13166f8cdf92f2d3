"""dnsmasq in a qdhcp namespace hands real leases to instance namespaces on a Linux bridge."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

from neutrino.agent.dhcp.dnsmasq import DhcpNetwork
from neutrino.agent.l2.linuxbridge import BridgePlug
from neutrino.kernel import links, netns, procs
from neutrino.kernel.names import bridge_name, tap_name

UDHCPC_SCRIPT = """#!/bin/sh
# apply the lease with ip(8) only and print it; never touches /etc/resolv.conf
case "$1" in
  deconfig) ip addr flush dev $interface; ip link set $interface up ;;
  bound|renew)
    ip addr flush dev $interface
    ip addr add $ip/${mask:-24} dev $interface
    [ -n "$mtu" ] && ip link set $interface mtu $mtu
    for r in $router; do ip route replace default via $r dev $interface; break; done
    echo "LEASE ip=$ip mask=$mask router=$router mtu=$mtu dns=$dns hostname=$hostname domain=$domain" ;;
esac
"""

NET_ID = str(uuid.uuid4())
SUBNET: dict[str, Any] = {"id": str(uuid.uuid4()), "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.0.0.1",
                          "enable_dhcp": True, "dns_nameservers": [], "host_routes": [],
                          "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.254"}]}
NETWORK = {"id": NET_ID, "mtu": 1450}


def _port(mac: str, ip: str, owner: str = "compute:nova") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "mac_address": mac, "device_owner": owner, "extra_dhcp_opts": [],
            "fixed_ips": [{"subnet_id": SUBNET["id"], "ip_address": ip}]}


def _instance(host: str, bridge: str, ns: str, port: dict[str, Any]) -> None:
    netns.ensure_namespace(ns)
    tap = tap_name(port["id"])
    links.ensure_veth(host, tap, ns, "eth0", mac_b=port["mac_address"])
    links.set_master(host, tap, bridge)
    links.set_up(host, tap)
    links.set_up(ns, "eth0")


def _udhcpc(ns: str, script: Path, tries: int) -> subprocess.CompletedProcess[str]:
    argv = ["ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", "eth0", "-s", str(script), "-n", "-q",
            "-t", str(tries), "-T", "1", "-O", "mtu", "-O", "staticroutes"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)


def _lease_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("LEASE"))


def test_dhcp_leases_reload_and_teardown(ns_prefix: str, tmp_path: Path) -> None:
    host, bridge = f"{ns_prefix}host", bridge_name(NET_ID)
    script = tmp_path / "udhcpc.script"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    dhcp_port = _port("fa:16:3e:00:00:02", "10.0.0.2", owner="network:dhcp")
    vm1 = _port("fa:16:3e:00:00:05", "10.0.0.5")
    vm2 = _port("fa:16:3e:00:00:06", "10.0.0.6")
    netns.ensure_namespace(host)
    links.ensure_bridge(host, bridge)
    links.set_up(host, bridge)
    dhcp = DhcpNetwork(NET_ID, BridgePlug(host, bridge), namespace=f"{ns_prefix}qdhcp")
    try:
        assert dhcp.apply(NETWORK, [SUBNET], [dhcp_port, vm1], dhcp_port) == "started"
        pid = dhcp.pid()
        assert pid is not None and procs.is_running(dhcp.paths.pidfile, dhcp.paths.pidfile)
        assert dhcp.apply(NETWORK, [SUBNET], [dhcp_port, vm1], dhcp_port) == "unchanged"

        _instance(host, bridge, f"{ns_prefix}vm1", vm1)
        got = _udhcpc(f"{ns_prefix}vm1", script, tries=5)
        assert got.returncode == 0, got.stderr
        lease = _lease_line(got.stdout)
        assert "ip=10.0.0.5 " in lease and "router=10.0.0.1 " in lease and "mtu=1450 " in lease
        assert "dns=10.0.0.2 " in lease and "domain=openstacklocal" in lease
        assert links.list_addresses(f"{ns_prefix}vm1", "eth0") == ["10.0.0.5/24"]

        _instance(host, bridge, f"{ns_prefix}vm2", vm2)
        refused = _udhcpc(f"{ns_prefix}vm2", script, tries=2)
        assert refused.returncode != 0 and "LEASE" not in refused.stdout

        assert dhcp.apply(NETWORK, [SUBNET], [dhcp_port, vm1, vm2], dhcp_port) == "reloaded"
        assert dhcp.pid() == pid
        got = _udhcpc(f"{ns_prefix}vm2", script, tries=5)
        assert got.returncode == 0, got.stderr
        assert "ip=10.0.0.6 " in _lease_line(got.stdout)
    finally:
        dhcp.teardown()
    assert dhcp.pid() is None and not procs.is_running(dhcp.paths.pidfile, dhcp.paths.pidfile)
    assert pid is not None and procs.cmdline(pid) is None
    assert not netns.namespace_exists(f"{ns_prefix}qdhcp")
    assert not links.link_exists(host, tap_name(dhcp_port["id"]))
    assert not dhcp.directory.exists()
