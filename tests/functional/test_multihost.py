"""Two hosts (node namespaces on one underlay fabric), each with its own agent, one server.

Proves the parts one host cannot: VXLAN between hosts with unicast flood entries learned from
the other agents' tunnel IPs, DHCP served across the overlay by whichever host the network
was scheduled to, and the flood list following instances as they come and go.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.kernel import links
from neutrino.kernel.names import vxlan_name
from tests.functional.cloud import Cloud, cloud, ip_of
from tests.functional.traffic import ping


@pytest.fixture
def c(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    with cloud(tmp_path, ns_prefix, underlay_ip="172.30.0.11") as built:
        yield built


def test_instances_on_two_hosts_meet_over_vxlan(c: Cloud) -> None:
    host_b = c.add_host("host-b", "172.30.0.12")
    net, _ = c.network("net1", "10.1.0.0/24")
    vni = c.admin.get(f"/v2.0/networks/{net['id']}")["network"]["provider:segmentation_id"]
    vm_a = c.compute().create("vm-a", network="net1")
    vm_b = c.compute(agent=host_b).create("vm-b", network="net1")  # DHCP may come from the other host
    assert vm_b.namespace != vm_a.namespace
    port_b = c.admin.get(f"/v2.0/ports/{vm_b.port_id}")["port"]
    assert port_b["binding:host_id"] == "host-b" and port_b["status"] == "ACTIVE"
    assert ping(vm_a.namespace, ip_of(vm_b)) and ping(vm_b.namespace, ip_of(vm_a))
    # Each host floods unknown traffic to exactly the other host's VTEP: no multicast.
    c.settle()
    host_b.settle()
    assert links.fdb_flood_list(c.node_ns, vxlan_name(vni)) == ["172.30.0.12"]
    assert links.fdb_flood_list(host_b.cfg.node_ns, vxlan_name(vni)) == ["172.30.0.11"]
    # The last port leaving host B removes the network's bridge and vxlan device there.
    c.compute(agent=host_b).delete("vm-b")
    host_b.settle()
    host_b.settle()
    b_links = {link.name for link in links.list_links(host_b.cfg.node_ns)}
    dhcp_on_b = any(p["binding:host_id"] == "host-b" for p in c.admin.get("/v2.0/ports", network_id=net["id"],
                                                                         device_owner="network:dhcp")["ports"])
    if not dhcp_on_b:
        assert vxlan_name(vni) not in b_links
        c.settle()
        assert links.fdb_flood_list(c.node_ns, vxlan_name(vni)) == []


def test_a_port_bound_before_its_hosts_agent_runs_is_bound_and_wired_once_it_reports(c: Cloud) -> None:
    """Start order does not matter: binding to a host without a live agent fails with the
    reason, and the agent's first report binds the port again, so the instance then boots."""
    net, _ = c.network("net1", "10.1.0.0/24")
    user = c.client()
    port = user.post("/v2.0/ports", {"port": {"network_id": net["id"], "name": "early"}})["port"]
    failed = c.admin.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": "host-b"}})["port"]
    assert failed["binding:vif_type"] == "binding_failed"
    assert "linuxbridge: host host-b has no live Linux bridge agent" in failed["binding:vif_details"]["reason"]
    host_b = c.add_host("host-b", "172.30.0.12")
    bound = c.admin.get(f"/v2.0/ports/{port['id']}")["port"]
    assert bound["binding:host_id"] == "host-b" and bound["binding:vif_type"] == "bridge"
    vm_a = c.compute().create("vm-a", network="net1")
    vm_b = c.compute(agent=host_b).create("vm-b", port=port["id"])
    assert c.admin.get(f"/v2.0/ports/{port['id']}")["port"]["status"] == "ACTIVE"
    assert ping(vm_a.namespace, ip_of(vm_b)) and ping(vm_b.namespace, ip_of(vm_a))
