"""Issue 3's proofs by real traffic, through the API, the host agent and real instances.

Each test builds a whole cloud in its own namespaces (tests/functional/cloud.py): the server
over HTTP, the agent ``neutrino up`` runs, instances made as ``neutrino instance create``
makes them (port, binding, veth, a DHCP client inside), and an external host namespace on
the flat external network.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.compute.manager import InstanceError
from neutrino.kernel import netns
from tests.functional.cloud import (
    EXT_HOST_IP,
    OTHER_PROJECT,
    PROJECT,
    Cloud,
    cloud,
    ip_of,
    listener,
    run_in,
    tcp_ok,
    wait_for,
)
from tests.functional.traffic import ping


@pytest.fixture
def c(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    with cloud(tmp_path, ns_prefix) as built:
        yield built


def _router(c: Cloud, *subnets: dict[str, object], gateway: bool = False, project: str = PROJECT) -> dict[str, object]:
    api = c.client(project)
    body: dict[str, object] = {"name": "r1"}
    if gateway:
        body["external_gateway_info"] = {"network_id": c.public["id"]}
    router = api.post("/v2.0/routers", {"router": body})["router"]
    for sub in subnets:
        api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    return router  # type: ignore[no-any-return]


def _allow(c: Cloud, protocol: str, project: str = PROJECT, **rule: object) -> dict[str, object]:
    api = c.client(project)
    default = api.get("/v2.0/security-groups", name="default", project_id=project)["security_groups"][0]
    body = {"security_group_id": default["id"], "direction": "ingress", "ethertype": "IPv4", "protocol": protocol,
            **rule}
    return api.post("/v2.0/security-group-rules", {"security_group_rule": body})["security_group_rule"]  # type: ignore[no-any-return]


def test_instances_get_leases_and_networks_meet_only_through_a_router(c: Cloud) -> None:
    """Issue test 1 (and ports going ACTIVE when wired)."""
    net1, sub1 = c.network("net1", "10.1.0.0/24")
    net2, sub2 = c.network("net2", "10.2.0.0/24")
    compute = c.compute()
    vm1 = compute.create("vm1", network="net1")
    vm2 = compute.create("vm2", network=net1["id"])
    vm3 = compute.create("vm3", network="net2")
    assert vm1.lease["ip"].startswith("10.1.0.") and vm1.lease["mtu"] == 1450 and vm1.lease["router"] == "10.1.0.1"
    assert vm3.lease["ip"].startswith("10.2.0.")
    port = c.admin.get(f"/v2.0/ports/{vm1.port_id}")["port"]
    assert port["status"] == "ACTIVE" and port["device_owner"] == "compute:nova"
    assert port["binding:vif_type"] == "bridge"
    assert ping(vm1.namespace, ip_of(vm2)) and ping(vm2.namespace, ip_of(vm1))
    assert not ping(vm3.namespace, ip_of(vm1), tries=1)
    # DNS names from dnsmasq, through the instance's own resolv.conf (never the machine's resolver).
    name = "host-" + ip_of(vm2).replace(".", "-")
    found = run_in(vm1.namespace, "getent", "hosts", f"{name}.openstacklocal")
    assert found.returncode == 0 and found.stdout.split()[0] == ip_of(vm2), found
    # admin_state_up=false takes the port DOWN and its traffic with it; true brings both back.
    api = c.client()
    api.put(f"/v2.0/ports/{vm2.port_id}", {"port": {"admin_state_up": False}})
    c.settle()
    assert api.get(f"/v2.0/ports/{vm2.port_id}")["port"]["status"] == "DOWN"
    assert not ping(vm1.namespace, ip_of(vm2), tries=1)
    api.put(f"/v2.0/ports/{vm2.port_id}", {"port": {"admin_state_up": True}})
    c.settle()
    assert api.get(f"/v2.0/ports/{vm2.port_id}")["port"]["status"] == "ACTIVE"
    assert ping(vm1.namespace, ip_of(vm2))

    _router(c, sub1, sub2)
    c.settle()
    assert wait_for(lambda: ping(vm3.namespace, ip_of(vm1), tries=1))
    assert ping(vm1.namespace, ip_of(vm3))


def test_an_instance_on_a_given_port_releases_it_on_delete(c: Cloud) -> None:
    net, _ = c.network("net1", "10.1.0.0/24")
    api = c.client()
    port = api.post("/v2.0/ports", {"port": {"network_id": net["id"], "name": "mine",
                                             "fixed_ips": [{"ip_address": "10.1.0.77"}]}})["port"]
    compute = c.compute()
    vm = compute.create("vm1", port="mine")
    assert vm.port_id == port["id"] and ip_of(vm) == "10.1.0.77" and not vm.created_port
    with pytest.raises(InstanceError, match="in use"):
        compute.create("vm2", port=port["id"])
    compute.delete("vm1")
    released = c.admin.get(f"/v2.0/ports/{port['id']}")["port"]
    assert released["device_owner"] == "" and released["device_id"] == "" and released["binding:host_id"] == ""
    assert not netns.namespace_exists(vm.namespace)
    assert compute.instances() == []


def test_network_types_linux_bridge_cannot_do_fail_clearly(c: Cloud) -> None:
    net = c.admin.post("/v2.0/networks", {"network": {"name": "vl", "provider:network_type": "vlan",
                                                      "provider:physical_network": "physnet1",
                                                      "project_id": PROJECT}})["network"]
    c.client().post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}})
    with pytest.raises(InstanceError, match="failed to bind.*vlan"):
        c.compute().create("vm1", network="vl")
    assert not [p for p in c.admin.get("/v2.0/ports", network_id=net["id"])["ports"]
                if p["device_owner"] == "compute:nova"]
    assert not [n for n in netns.list_namespaces() if n.startswith(f"{c.ns_prefix}vm-")]


def test_snat_and_floating_ip_to_an_external_host(c: Cloud) -> None:
    """Issue test 2."""
    _, sub1 = c.network("net1", "10.1.0.0/24")
    _, sub2 = c.network("net2", "10.2.0.0/24")
    router = _router(c, sub1, sub2, gateway=True)
    compute = c.compute()
    vm1, vm2 = compute.create("vm1", network="net1"), compute.create("vm2", network="net2")
    assert ping(vm1.namespace, ip_of(vm2))
    # SNAT: the external host has no route to 10.1.0.0/24, yet answers.
    assert ping(vm1.namespace, EXT_HOST_IP)
    # Metadata through the router: each instance gets its own identity, never another's.
    for vm in (vm1, vm2):
        assert metadata(vm.namespace, "instance-id") == vm.id
        assert metadata(vm.namespace, "local-ipv4") == ip_of(vm)
    assert metadata(vm1.namespace, "hostname") == "vm1"
    assert router["external_gateway_info"] is not None
    # A floating IP lets the external host in (the group must allow it, as in Neutron).
    _allow(c, "icmp", remote_ip_prefix="203.0.113.0/24")
    api = c.client()
    fip = api.post("/v2.0/floatingips", {"floatingip": {"floating_network_id": c.public["id"],
                                                        "port_id": vm1.port_id}})["floatingip"]
    c.settle()
    assert wait_for(lambda: ping(c.ext_ns, fip["floating_ip_address"], tries=1))
    api.put(f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
    c.settle()
    assert not ping(c.ext_ns, fip["floating_ip_address"], tries=2)


def test_security_groups_through_the_api(c: Cloud) -> None:
    """Issue test 3."""
    c.network("net1", "10.1.0.0/24")
    api = c.client()
    other = api.post("/v2.0/security-groups", {"security_group": {"name": "other"}})["security_group"]
    compute = c.compute()
    vm1, vm2 = compute.create("vm1", network="net1"), compute.create("vm2", network="net1")
    outsider = compute.create("vm3", network="net1", security_groups=["other"])
    assert other["id"]
    # Same (default) group may come in; another group may not.
    assert ping(vm2.namespace, ip_of(vm1))
    assert not ping(outsider.namespace, ip_of(vm1), tries=1)
    with listener(vm1.namespace, 22), listener(vm1.namespace, 23):
        assert not tcp_ok(outsider.namespace, ip_of(vm1), 22)
        rule = _allow(c, "tcp", port_range_min=22, port_range_max=22, remote_ip_prefix=f"{ip_of(outsider)}/32")
        c.settle()
        assert wait_for(lambda: tcp_ok(outsider.namespace, ip_of(vm1), 22))
        assert not tcp_ok(outsider.namespace, ip_of(vm1), 23)
        api.delete(f"/v2.0/security-group-rules/{rule['id']}")
        c.settle()
        assert not tcp_ok(outsider.namespace, ip_of(vm1), 22)
    # Anti-spoofing: another source IP, or another MAC, never leaves the instance's port.
    assert run_in(vm2.namespace, "ip", "addr", "add", "10.1.0.250/24", "dev", "eth0").returncode == 0
    assert not ping_from(vm2.namespace, ip_of(vm1), "10.1.0.250")
    assert ping(vm2.namespace, ip_of(vm1))
    assert run_in(vm2.namespace, "ip", "link", "set", "eth0", "address", "fa:16:3e:ee:ee:ee").returncode == 0
    assert not ping(vm2.namespace, ip_of(vm1), tries=2)


FETCH = """import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
print(opener.open("http://169.254.169.254/latest/meta-data/" + sys.argv[1], timeout=5).read().decode())
"""


def metadata(ns: str, key: str) -> str:
    done = run_in(ns, sys.executable, "-S", "-c", FETCH, key)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def ping_from(ns: str, dst: str, src: str) -> bool:
    done = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c1", "-W1", "-I", src, dst], capture_output=True,
                          timeout=10)
    return done.returncode == 0


def test_overlapping_cidrs_of_two_projects_stay_isolated(c: Cloud) -> None:
    """Issue test 4: both projects use 10.0.0.0/24 with the same addresses."""
    instances = {}
    for project, names in ((PROJECT, ("a1", "a2")), (OTHER_PROJECT, ("b1", "b2"))):
        net, _ = c.network("net", "10.0.0.0/24", project=project)
        compute = c.compute(project)
        for name, ip in zip(names, ("10.0.0.10", "10.0.0.11"), strict=True):  # the same addresses on both
            c.client(project).post("/v2.0/ports", {"port": {"network_id": net["id"], "name": f"{name}-port",
                                                            "fixed_ips": [{"ip_address": ip}]}})
            instances[name] = compute.create(name, port=f"{name}-port")
    a1, a2, b1, b2 = (instances[n] for n in ("a1", "a2", "b1", "b2"))
    assert (ip_of(a1), ip_of(a2)) == (ip_of(b1), ip_of(b2)) == ("10.0.0.10", "10.0.0.11")
    assert ping(a1.namespace, ip_of(a2)) and ping(b1.namespace, ip_of(b2))
    # Nothing of one project's traffic reaches the other's instances: watch b2 while a1 talks to a2.
    with listener(b2.namespace, 7000):
        assert not tcp_ok(a1.namespace, ip_of(b2), 7000)  # this is a2's address: a2 has no listener
    _allow(c, "tcp", project=OTHER_PROJECT, port_range_min=7000, port_range_max=7000)
    c.settle()
    with listener(b2.namespace, 7000):
        assert wait_for(lambda: tcp_ok(b1.namespace, ip_of(b2), 7000))
        assert not tcp_ok(a1.namespace, ip_of(b2), 7000)


def test_agent_restart_converges_without_duplicates(c: Cloud) -> None:
    """Issue test 5: restart the agent while instances run; a change made meanwhile is applied."""
    _, sub1 = c.network("net1", "10.1.0.0/24")
    _, sub2 = c.network("net2", "10.2.0.0/24")
    compute = c.compute()
    vm1, vm2 = compute.create("vm1", network="net1"), compute.create("vm2", network="net2")
    before = sorted(n for n in netns.list_namespaces() if n.startswith(c.ns_prefix))
    c.agent.stop()
    # While it is down: attach both subnets to a router (nothing happens in the kernel yet).
    _router(c, sub1, sub2)
    assert not ping(vm1.namespace, ip_of(vm2), tries=1)
    agent = type(c.agent)(c.agent.cfg, c.agent.rpc, c.agent.bus)
    agent.start()
    c.agent = agent
    c.settle()
    assert wait_for(lambda: ping(vm1.namespace, ip_of(vm2), tries=1))
    assert ping(vm1.namespace, ip_of(vm1))
    # Nothing duplicated: one more qrouter namespace, the same DHCP servers, a quiet next pass.
    after = sorted(n for n in netns.list_namespaces() if n.startswith(c.ns_prefix))
    assert len(set(after) - set(before)) == 1 and all(n.startswith(f"{c.ns_prefix}qrouter-")
                                                      for n in set(after) - set(before))
    c.settle()
    result = agent.last_result
    assert result is not None and result.l2_actions == 0 and not result.firewall_applied
    assert all(v == "unchanged" for v in result.dhcp.values()) and not any(result.routers.values())
