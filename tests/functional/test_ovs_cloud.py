"""The whole cloud on Open vSwitch: the host agent with ``l2_driver = openvswitch``, by real traffic.

Instances, DHCP and routers are made exactly as with Linux bridge (the agent frame is the
same); only the L2 driver differs: br-int with a local VLAN per network, br-tun with tunnels
to the other hosts, br-<physnet> for flat networks. These networks have no port security;
the OVS firewall's tests are in test_ovs_firewall.py.
Skipped with the reason when Open vSwitch is not installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.agent.host import HostAgent
from neutrino.agent.l2.ovs import OvsDriver
from neutrino.kernel import ovs
from tests.functional.cloud import EXT_HOST_IP, Cloud, cloud, ip_of, listener, tcp_ok, wait_for
from tests.functional.test_cloud import metadata
from tests.functional.traffic import ping

pytestmark = pytest.mark.skipif(shutil.which("ovs-vswitchd") is None,
                                reason="Open vSwitch is not installed (scripts/setup.sh installs openvswitch-switch)")


@pytest.fixture
def c(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    with cloud(tmp_path, ns_prefix, underlay_ip="172.30.0.11", l2_driver="openvswitch") as built:
        yield built


def _open_network(c: Cloud, name: str, cidr: str, pool: tuple[str, str] | None = None,
                  **provider: object) -> dict[str, object]:
    body = {"name": name, "port_security_enabled": False, **provider}
    client = c.admin if provider else c.client()
    net = client.post("/v2.0/networks", {"network": body})["network"]
    subnet = {"network_id": net["id"], "cidr": cidr, "ip_version": 4}
    if pool:
        subnet["allocation_pools"] = [{"start": pool[0], "end": pool[1]}]
    client.post("/v2.0/subnets", {"subnet": subnet})
    return net


def test_instances_on_one_ovs_host_get_dhcp_and_talk(c: Cloud) -> None:
    assert isinstance(c.agent.driver, OvsDriver)
    _open_network(c, "net1", "10.71.0.0/24")
    compute = c.compute()
    vm1, vm2 = compute.create("vm1", network="net1"), compute.create("vm2", network="net1")
    assert ping(vm1.namespace, ip_of(vm2))
    with listener(vm2.namespace, 8080):  # TCP catches the checksum trap that ping hides
        assert tcp_ok(vm1.namespace, ip_of(vm2), 8080)
    agents = {a["agent_type"] for a in c.admin.get("/v2.0/agents")["agents"] if a["alive"]}
    assert "Open vSwitch agent" in agents and "Linux bridge agent" not in agents


def test_two_networks_are_isolated_on_br_int(c: Cloud) -> None:
    """Same addresses on two networks: each instance reaches only its own network's peer."""
    _open_network(c, "a", "10.72.0.0/24")
    _open_network(c, "b", "10.72.0.0/24", pool=("10.72.0.100", "10.72.0.150"))
    compute = c.compute()
    a1, a2 = compute.create("a1", network="a"), compute.create("a2", network="a")
    b1 = compute.create("b1", network="b")
    assert ping(a1.namespace, ip_of(a2))
    tags = {p.external_ids["iface-id"]: p.tag for p in _switch(c.agent).ports("br-int") if "iface-id" in p.external_ids}
    assert tags[a1.port_id] == tags[a2.port_id] != tags[b1.port_id]
    assert not ping(a1.namespace, ip_of(b1), tries=1)  # nothing on network a has b1's address
    assert not ping(b1.namespace, ip_of(a1), tries=1)


@pytest.mark.parametrize("kind", ["vxlan", "gre", "geneve"])
def test_instances_on_two_ovs_hosts_meet_over_a_tunnel(c: Cloud, kind: str) -> None:
    host_b = c.add_host("host-b", "172.30.0.12")
    _open_network(c, f"t-{kind}", "10.73.0.0/24", **{"provider:network_type": kind})
    vm_a = c.compute(project="admin").create("vm-a", network=f"t-{kind}")
    vm_b = c.compute(project="admin", agent=host_b).create("vm-b", network=f"t-{kind}")
    assert ping(vm_a.namespace, ip_of(vm_b)) and ping(vm_b.namespace, ip_of(vm_a))
    with listener(vm_b.namespace, 8081):
        assert tcp_ok(vm_a.namespace, ip_of(vm_b), 8081)
    tunnels = [p for p in _switch(host_b).ports("br-tun") if p.type == kind]
    assert [p.options["remote_ip"] for p in tunnels] == ["172.30.0.11"]
    # l2population: host A sends to vm-b's MAC straight down the tunnel (table 20), no flooding
    mac_b = c.admin.get(f"/v2.0/ports/{vm_b.port_id}")["port"]["mac_address"]
    c.settle()
    assert any(f"dl_dst={mac_b}" in flow for flow in _switch(c.agent).dump_flows("br-tun", "table=20"))


def _switch(agent: HostAgent) -> ovs.OvsInstance:
    assert isinstance(agent.driver, OvsDriver)
    return agent.driver.switch


def test_a_restarted_ovs_vswitchd_gets_its_flows_back_at_once(c: Cloud) -> None:
    """ovs-vswitchd comes back with no flows (fail_mode secure drops everything); the bridges'
    internal ports reappear in the node namespace, which wakes the agent, which re-applies."""
    _open_network(c, "net1", "10.75.0.0/24")
    compute = c.compute()
    vm1, vm2 = compute.create("vm1", network="net1"), compute.create("vm2", network="net1")
    assert ping(vm1.namespace, ip_of(vm2))
    _switch(c.agent).restart_vswitchd()
    assert wait_for(lambda: ping(vm1.namespace, ip_of(vm2), tries=1), timeout=10)


def test_a_restarted_agent_keeps_tags_and_traffic(c: Cloud) -> None:
    _open_network(c, "net1", "10.76.0.0/24")
    compute = c.compute()
    vm1, vm2 = compute.create("vm1", network="net1"), compute.create("vm2", network="net1")
    before = {p.name: p.tag for p in _switch(c.agent).ports("br-int")}
    c.agent.stop()
    c.agent = HostAgent(c.agent.cfg, c.srv.rpc, c.srv.bus)
    c.agent.start()
    c.settle()
    assert {p.name: p.tag for p in _switch(c.agent).ports("br-int")} == before
    assert ping(vm1.namespace, ip_of(vm2))


def test_router_snat_floating_ip_and_metadata_on_ovs(c: Cloud) -> None:
    """The router's qr- and qg- ports join br-int; the external network is flat on br-public."""
    api = c.client()
    nets = [_open_network(c, name, cidr) for name, cidr in (("net1", "10.77.1.0/24"), ("net2", "10.77.2.0/24"))]
    router = api.post("/v2.0/routers", {"router": {"name": "r1",
                                                   "external_gateway_info": {"network_id": c.public["id"]}}})["router"]
    for net in nets:
        sub = api.get("/v2.0/subnets", network_id=net["id"])["subnets"][0]
        api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    compute = c.compute()
    vm1, vm2 = compute.create("vm1", network="net1"), compute.create("vm2", network="net2")
    assert ping(vm1.namespace, ip_of(vm2))  # routed between the networks
    assert ping(vm1.namespace, EXT_HOST_IP)  # SNAT to the external host
    assert metadata(vm1.namespace, "instance-id") == vm1.id
    fip = api.post("/v2.0/floatingips", {"floatingip": {"floating_network_id": c.public["id"],
                                                        "port_id": vm2.port_id}})["floatingip"]
    c.settle()
    assert wait_for(lambda: ping(c.ext_ns, fip["floating_ip_address"], tries=1))


def test_a_linux_bridge_host_and_an_ovs_host_share_a_vxlan_network(c: Cloud) -> None:
    """Kernel VXLAN on one host, OVS userspace VXLAN on the other, one VNI: they interoperate."""
    lb_host = c.add_host("host-lb", "172.30.0.13", l2_driver="linuxbridge")
    _open_network(c, "mixed", "10.78.0.0/24", **{"provider:network_type": "vxlan"})
    vm_ovs = c.compute(project="admin").create("vm-ovs", network="mixed")
    vm_lb = c.compute(project="admin", agent=lb_host).create("vm-lb", network="mixed")
    assert ping(vm_lb.namespace, ip_of(vm_ovs)) and ping(vm_ovs.namespace, ip_of(vm_lb))
    with listener(vm_lb.namespace, 8082):
        assert tcp_ok(vm_ovs.namespace, ip_of(vm_lb), 8082)
