"""A lab for tests: ``neutrino lab up`` in this process (its servers and agents are processes of
their own, as on separate machines), with a random ``nt-`` name, removed whatever happens.

The handle gives what a test needs: the admin and demo clients (of the first server, and of
any other), the hosts, instances made on a chosen host exactly as ``neutrino lab instance
create`` makes them, and the lab's "outside" namespace to ping floating IPs from.
"""

from __future__ import annotations

import concurrent.futures
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from neutrino import lab as labmod
from neutrino.client import ApiError, Client
from neutrino.cmd import lab as labcmd
from neutrino.compute.manager import Instance
from neutrino.kernel import netns
from neutrino.kernel.names import NODE_PREFIX, is_our_link
from neutrino.lab import Lab, LabError
from neutrino.messages import DHCP_AGENT, L3_AGENT, LINUXBRIDGE_AGENT, METADATA_AGENT
from tests.functional.cloud import ip_of
from tests.functional.traffic import ping


def require(openvswitch: bool = False) -> None:
    """Skip here without root (network namespaces), or without Open vSwitch when the lab needs it."""
    if os.geteuid() != 0:
        pytest.skip("a lab needs root (network namespaces)")
    if openvswitch and shutil.which("ovs-vswitchd") is None:
        pytest.skip("Open vSwitch is not installed (scripts/setup.sh installs openvswitch-switch)")


def why_not(lab: Lab) -> str | None:
    """Why a lab cannot be built here (PostgreSQL or RabbitMQ missing), None when it can."""
    try:
        labmod.check_services(lab)
    except LabError as exc:
        return str(exc)
    return None


@dataclass
class LabHandle:
    lab: Lab
    admin: Client
    demo: Client

    @property
    def outside_ns(self) -> str:
        return self.lab.outside_ns

    def client(self, server: int, cloud: str = "demo") -> Client:
        """``cloud``'s client talking to server number ``server`` (0-based) of the lab: its token,
        issued by the first server, is checked by that one against the shared database. In an
        isolated lab its connections are made from inside host-1, as a client on the underlay."""
        signed_in = self.admin if cloud == "admin" else self.demo
        return Client(self.lab.server_url(server), signed_in.headers, project_id=signed_in.project_id,
                      via=labmod.api_connector(self.lab))

    def network(self, name: str, cidr: str) -> tuple[dict[str, Any], dict[str, Any]]:
        net = self.demo.post("/v2.0/networks", {"network": {"name": name}})["network"]
        sub = self.demo.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4,
                                                          "name": f"{name}-subnet"}})["subnet"]
        return net, sub

    def instance(self, host: str, network: str, name: str, timeout: float = 30.0,
                 security_groups: Sequence[str] = ()) -> Instance:
        """An instance on lab host ``host`` (host-1 ... host-N), with its DHCP lease."""
        return labcmd.compute(self.lab, host).create(name, network=network, security_groups=security_groups,
                                                     timeout=timeout)

    def delete(self, host: str, name: str) -> None:
        labcmd.compute(self.lab, host).delete(name)

    def ping(self, inst: Instance | str, dst: str, tries: int = 3) -> bool:
        """From an instance (or a namespace of the lab, such as ``outside_ns``) to ``dst``."""
        return ping(inst if isinstance(inst, str) else inst.namespace, dst, tries=tries)


@contextmanager
def built(state: Path, hosts: int = 3, servers: int = 1, **kw: Any) -> Iterator[LabHandle]:
    """A lab named ``nt-<random>`` in ``state``; skipped when PostgreSQL or RabbitMQ is absent
    (or, with ``own_services=True``, not installed).

    ``down`` runs whatever happened, also after a half-made ``up``: the lab's record is written
    before it makes anything.
    """
    lab = labmod.plan(f"nt-{secrets.token_hex(3)}", state, hosts, servers=servers, **kw)
    reason = why_not(lab)
    if reason:
        pytest.skip(reason)
    try:
        labcmd.up(lab)
        yield LabHandle(lab, labcmd.admin_client(lab), labcmd.admin_client(lab, "demo"))
    finally:
        labcmd.down(lab)


# ---------------------------------------------------------------- checks both kinds of lab make

def _qdhcp_hosts(lab: LabHandle, network_id: str) -> list[str]:
    return [h.name for h in lab.lab.hosts if netns.namespace_exists(f"{h.ns_prefix}qdhcp-{network_id}")]


def compute_nodes_meet_over_vxlan(lab: LabHandle, name: str, cidr: str) -> None:
    """Every host's agents alive; instances on host-2 and host-3 get their leases from host-1's
    dnsmasq (the only qdhcp-) and ping each other over VXLAN."""
    agents = {(a["host"], a["agent_type"]) for a in lab.admin.get("/v2.0/agents")["agents"] if a["alive"]}
    assert agents == {("host-1", t) for t in (LINUXBRIDGE_AGENT, DHCP_AGENT, L3_AGENT, METADATA_AGENT)} | {
        ("host-2", LINUXBRIDGE_AGENT), ("host-3", LINUXBRIDGE_AGENT)}
    net, _ = lab.network(name, cidr)
    assert lab.admin.get(f"/v2.0/networks/{net['id']}")["network"]["provider:network_type"] == "vxlan"
    vm2 = lab.instance("host-2", name, f"{name}-vm2")
    vm3 = lab.instance("host-3", name, f"{name}-vm3")
    try:
        dhcp = lab.admin.get("/v2.0/ports", network_id=net["id"], device_owner="network:dhcp")["ports"]
        assert [p["binding:host_id"] for p in dhcp] == ["host-1"]
        assert _qdhcp_hosts(lab, net["id"]) == ["host-1"]
        assert vm2.lease["mtu"] == vm3.lease["mtu"] == 1450  # VXLAN over the 1500-byte underlay
        assert lab.ping(vm2, ip_of(vm3)) and lab.ping(vm3, ip_of(vm2))
    finally:
        lab.delete("host-2", f"{name}-vm2")
        lab.delete("host-3", f"{name}-vm3")


def two_servers_answer_alike(lab: LabHandle, name: str, cidr: str) -> None:
    """Writes through one server are seen through the other; concurrent creates through both get
    distinct addresses; a delete through one is a 404 through the other."""
    one, two = lab.client(0), lab.client(1)
    net = one.post("/v2.0/networks", {"network": {"name": name}})["network"]
    sub = two.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": cidr,
                                                "ip_version": 4}})["subnet"]
    assert two.get(f"/v2.0/networks/{net['id']}")["network"]["subnets"] == [sub["id"]]
    two.put(f"/v2.0/networks/{net['id']}", {"network": {"description": "set on two"}})
    assert one.get(f"/v2.0/networks/{net['id']}") == two.get(f"/v2.0/networks/{net['id']}")
    assert one.get(f"/v2.0/networks/{net['id']}")["network"]["description"] == "set on two"

    def create(server_and_i: tuple[int, int]) -> dict[str, str]:
        server, i = server_and_i
        port = lab.client(server).post("/v2.0/ports", {"port": {"network_id": net["id"], "name": f"p{i}"}})["port"]
        return {"id": port["id"], "ip": port["fixed_ips"][0]["ip_address"], "mac": port["mac_address"]}

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        made = list(pool.map(create, [(i % 2, i) for i in range(24)]))
    assert len({m["ip"] for m in made}) == len({m["mac"] for m in made}) == 24
    listed = [sorted((p["id"], p["revision_number"]) for p in c.get("/v2.0/ports", network_id=net["id"])["ports"])
              for c in (one, two)]
    assert listed[0] == listed[1] and len(listed[0]) == 24 + 1  # and the DHCP port
    one.delete(f"/v2.0/ports/{made[0]['id']}")
    with pytest.raises(ApiError) as gone:
        two.get(f"/v2.0/ports/{made[0]['id']}")
    assert gone.value.status == 404


def machine_view() -> tuple[set[str], set[str]]:
    """``ip netns`` and ``ip link`` of the machine. An all-in-one cloud's gateway link (``neutrino-public``)
    is left out: other test runs on this machine make and remove theirs while this one runs."""
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    root_links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    names = {line.split(": ")[1].split("@")[0] for line in root_links.splitlines()}
    return ({line.split()[0] for line in namespaces.splitlines() if line.strip()},
            {n for n in names if not (n.startswith(NODE_PREFIX) and is_our_link(n))})
