"""A router namespace on the real kernel: routing between subnets, SNAT, floating IPs, idempotency, teardown."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from neutrino.agent.l2.linuxbridge import BridgePlug
from neutrino.agent.l3 import nat
from neutrino.agent.l3.router import RouterNamespace, RouterState
from neutrino.kernel import NotOurs, links, netns, nft
from neutrino.kernel.names import bridge_name, tap_name

ROUTER = "5a5a5a5a-1111-4222-8333-444455556666"
NETS = {"a": "aaaa1111-0000-4000-8000-00000000000a", "b": "bbbb2222-0000-4000-8000-00000000000b",
        "ext": "eeee3333-0000-4000-8000-00000000000e"}
QR_A = {"id": "a0a0a0a0-77aa-4000-8000-0000000000a1", "mac_address": "fa:16:3e:10:01:01", "network_id": NETS["a"],
        "fixed_ips": [{"ip_address": "10.10.1.1", "cidr": "10.10.1.0/24"}]}
QR_B = {"id": "b0b0b0b0-77bb-4000-8000-0000000000b1", "mac_address": "fa:16:3e:10:02:01", "network_id": NETS["b"],
        "fixed_ips": [{"ip_address": "10.10.2.1", "cidr": "10.10.2.0/24"}]}
QG = {"id": "e0e0e0e0-77ee-4000-8000-0000000000e1", "mac_address": "fa:16:3e:0e:00:10", "network_id": NETS["ext"],
      "fixed_ips": [{"ip_address": "198.51.100.10", "cidr": "198.51.100.0/24", "gateway_ip": "198.51.100.1"}]}
ROUTER_DICT = {"id": ROUTER, "routes": [{"destination": "10.99.0.0/24", "nexthop": "10.10.2.10"}],
               "external_gateway_info": {"network_id": NETS["ext"], "enable_snat": True,
                                         "external_fixed_ips": [{"ip_address": "198.51.100.10"}]}}
FIP = {"floating_ip_address": "198.51.100.20", "fixed_ip_address": "10.10.1.10"}
# instance namespace -> (network, port id, MAC, address, gateway or None)
INSTANCES = {"vmA": ("a", "a1a1a1a1-88aa-4000-8000-0000000000a2", "fa:16:3e:10:01:0a", "10.10.1.10/24", "10.10.1.1"),
             "vmB": ("b", "b1b1b1b1-88bb-4000-8000-0000000000b2", "fa:16:3e:10:02:0a", "10.10.2.10/24", "10.10.2.1"),
             "ext": ("ext", "e1e1e1e1-88ee-4000-8000-0000000000e2", "fa:16:3e:0e:00:32", "198.51.100.50/24", None)}


@dataclass
class Lab:
    prefix: str
    host: str
    state: RouterState
    router: RouterNamespace

    def ns(self, name: str) -> str:
        return self.prefix + name

    def ping(self, src: str, dst: str, count: int = 2) -> bool:
        done = subprocess.run(["ip", "netns", "exec", self.ns(src), "ping", "-c", str(count), "-i", "0.2", "-W", "1",
                               dst], capture_output=True, timeout=10)
        return done.returncode == 0

    def snapshot(self) -> tuple[Any, ...]:
        ns = self.router.namespace
        # IPv4 only, and only what the router sets: IPv6 link-locals and address lifetimes change
        # on their own (DAD, timers) and would make two identical states look different.
        ip = [json.loads(subprocess.run(["ip", "-4", "-n", ns, "-j", *args], capture_output=True, text=True,
                                        check=True).stdout) for args in (["addr"], ["route"])]
        ip[0] = sorted((i["ifname"], a["local"], a["prefixlen"]) for i in ip[0] for a in i.get("addr_info", []))
        host = json.loads(subprocess.run(["ip", "-n", self.host, "-j", "link"], capture_output=True, text=True,
                                         check=True).stdout)
        return ip[0], ip[1], [h["ifname"] for h in host], nft.read_table(ns, nat.FAMILY, nat.NAT_TABLE)


def _plug_instance(host: str, ns: str, bridge: str, port_id: str, mac: str, cidr: str, gateway: str | None) -> None:
    netns.ensure_namespace(ns)
    links.ensure_veth(host, tap_name(port_id), ns, "eth0", mac_b=mac)
    links.set_master(host, tap_name(port_id), bridge)
    links.set_up(host, tap_name(port_id))
    links.set_up(ns, "eth0")
    links.add_address(ns, "eth0", cidr)
    if gateway:
        links.ensure_route(ns, "0.0.0.0/0", gateway)


@pytest.fixture
def lab(ns_prefix: str) -> Iterator[Lab]:
    host = ns_prefix + "host"
    netns.ensure_namespace(host)
    plugs = {net_id: BridgePlug(host, bridge_name(net_id)) for net_id in NETS.values()}
    for plug in plugs.values():
        links.ensure_bridge(host, plug.bridge)
        links.set_up(host, plug.bridge)
    for name, (net, port_id, mac, cidr, gateway) in INSTANCES.items():
        _plug_instance(host, ns_prefix + name, bridge_name(NETS[net]), port_id, mac, cidr, gateway)
    state = RouterState(router=ROUTER_DICT, interfaces=[QR_A, QR_B], gateway_port=QG, plugs=plugs)
    router = RouterNamespace(ROUTER, prefix=ns_prefix)
    try:
        yield Lab(ns_prefix, host, state, router)
    finally:
        router.teardown()  # the ns_prefix fixture removes the rest, even if this fails


def test_router_routes_snats_and_floats_then_tears_down(lab: Lab) -> None:
    assert lab.router.apply(lab.state) is True
    assert netns.get_sysctl(lab.router.namespace, "net.ipv4.ip_forward") == "1"
    assert lab.ping("vmA", "10.10.2.10"), "vmA -> vmB through the router"
    # The external host has no route to 10.10.0.0/16: a reply can only come back if the router SNATs to .10.
    assert lab.ping("vmA", "198.51.100.50"), "vmA -> external host via SNAT"
    assert not lab.ping("ext", "10.10.1.10", count=1), "no way in without a floating IP"

    with_fip = replace(lab.state, floating_ips=[FIP])
    assert lab.router.apply(with_fip) is True
    assert "198.51.100.20/32" in links.list_addresses(lab.router.namespace, "qg-e0e0e0e0-77")
    assert lab.ping("ext", "198.51.100.20"), "external host -> floating IP -> vmA"

    before = lab.snapshot()
    assert lab.router.apply(with_fip) is False
    assert lab.snapshot() == before
    assert RouterNamespace(ROUTER, prefix=lab.prefix).apply(with_fip) is False  # a restarted agent too

    assert lab.router.apply(lab.state) is True  # the floating IP is gone again
    assert "198.51.100.20/32" not in links.list_addresses(lab.router.namespace, "qg-e0e0e0e0-77")
    assert not lab.ping("ext", "198.51.100.20", count=1)
    assert lab.ping("vmA", "198.51.100.50"), "SNAT still works"

    only_a = replace(lab.state, interfaces=[QR_A], router={**ROUTER_DICT, "routes": []})
    assert lab.router.apply(only_a) is True
    names = {link.name for link in links.list_links(lab.router.namespace)}
    assert "qr-a0a0a0a0-77" in names and "qr-b0b0b0b0-77" not in names
    assert not links.link_exists(lab.host, tap_name(QR_B["id"]))
    assert [r.dst for r in links.list_routes(lab.router.namespace) if r.proto != links.RTPROT_KERNEL] == ["0.0.0.0/0"]
    assert not lab.ping("vmA", "10.10.2.10", count=1)

    assert lab.router.teardown() is True
    assert not netns.namespace_exists(lab.router.namespace)
    assert not any(links.link_exists(lab.host, tap_name(p["id"])) for p in (QR_A, QR_B, QG))
    assert lab.router.teardown() is False


def test_route_and_address_helpers_are_idempotent_and_refuse_the_root_namespace(ns_prefix: str) -> None:
    ns = ns_prefix + "r"
    netns.ensure_namespace(ns)
    links.ensure_veth(ns, "qr-0123456789a", ns, "qr-0123456789b")
    links.set_up(ns, "qr-0123456789a")
    assert links.add_address(ns, "qr-0123456789a", "10.20.0.1/24")
    assert links.ensure_route(ns, "10.30.0.0/24", "10.20.0.2") is True
    assert links.ensure_route(ns, "10.30.0.0/24", "10.20.0.2") is False
    assert links.ensure_route(ns, "10.30.0.0/24", "10.20.0.3") is True  # replaced, not duplicated
    ours = [r for r in links.list_routes(ns) if r.proto != links.RTPROT_KERNEL]
    assert [(r.dst, r.gateway, r.dev) for r in ours] == [("10.30.0.0/24", "10.20.0.3", "qr-0123456789a")]
    assert links.remove_route(ns, "10.30.0.0/24") is True
    assert links.remove_route(ns, "10.30.0.0/24") is False
    assert links.remove_address(ns, "qr-0123456789a", "10.20.0.1/24") is True
    assert links.remove_address(ns, "qr-0123456789a", "10.20.0.1/24") is False
    for call in (lambda: links.list_routes(None), lambda: links.ensure_route(None, "10.30.0.0/24", "10.20.0.2"),
                 lambda: links.remove_route(None, "10.30.0.0/24"),
                 lambda: links.gratuitous_arp(None, "eth0", "10.0.0.1")):
        with pytest.raises(NotOurs):
            call()
