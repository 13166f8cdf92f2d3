"""Issue 7 section 1: a port's DHCP options reach only that port, whoever owns the network.

On an admin's shared network, tenant B's port asks for its own router and DNS server, and
tries to smuggle untagged lines into dnsmasq's opts file. Tenant A's instance, leased after
that, still gets the subnet's router and the DHCP server as its resolver; B's instance gets
what B asked for. Real dnsmasq, real udhcpc leases, through the API and the host agent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.client import ApiError
from tests.functional.cloud import OTHER_PROJECT, Cloud, cloud

SMUGGLED = "10.5.0.66"
OWN = [{"opt_name": "router", "opt_value": "10.5.0.99"}, {"opt_name": "dns-server", "opt_value": "10.5.0.98"}]


def hostile(subnet_id: str) -> list[dict[str, str]]:
    """Options that try to leave their port's tag: untagged lines, and lines tagged like the subnet's own."""
    lines = [f"tag:subnet-{subnet_id},option:router,{SMUGGLED}", f"tag:subnet-{subnet_id},option:dns-server,{SMUGGLED}",
             f"tag:known,option:router,{SMUGGLED}", f"option:router,{SMUGGLED}", f"option:dns-server,{SMUGGLED}",
             "option:domain-name,smuggled.example"]
    return [{"opt_name": "ntp-server", "opt_value": f"10.5.0.97\n{line}"} for line in lines] + [
        {"opt_name": f"ntp-server,10.5.0.97\n{line}\nntp-server", "opt_value": "10.5.0.97"} for line in lines]


@pytest.fixture
def c(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    with cloud(tmp_path, ns_prefix) as built:
        yield built


def test_a_tenants_dhcp_options_reach_only_its_own_port(c: Cloud) -> None:
    net = c.admin.post("/v2.0/networks", {"network": {"name": "shared", "shared": True}})["network"]
    subnet = c.admin.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.5.0.0/24",
                                                       "ip_version": 4}})["subnet"]
    tenant_b = c.client(OTHER_PROJECT)
    ports = []
    for smuggler in hostile(subnet["id"]):  # whatever the API lets through, the renderer must keep to B's port
        try:
            ports.append(tenant_b.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                                                "extra_dhcp_opts": [*OWN, smuggler]}})["port"])
        except ApiError as exc:
            assert exc.status == 400, exc
    if not ports:
        ports.append(tenant_b.post("/v2.0/ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": OWN}})["port"])
    vm_b = c.compute(OTHER_PROJECT).create("vm-b", port=ports[0]["id"])
    vm_a = c.compute().create("vm-a", network=net["id"])
    dhcp_ip = next(p for p in c.admin.get("/v2.0/ports", network_id=net["id"])["ports"]
                   if p["device_owner"] == "network:dhcp")["fixed_ips"][0]["ip_address"]
    assert vm_a.lease["router"] == "10.5.0.1" and vm_a.lease["dns"] == [dhcp_ip], vm_a.lease
    assert vm_a.lease["domain"] == "openstacklocal"
    assert SMUGGLED not in str(vm_a.lease) and "10.5.0.9" not in str(vm_a.lease)
    assert vm_b.lease["router"] == "10.5.0.99" and vm_b.lease["dns"] == ["10.5.0.98"], vm_b.lease
