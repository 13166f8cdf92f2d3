"""``neutrino up`` / ``status`` / ``instance`` / ``down`` exactly as a user runs them (issue test 6).

The only test that gives the machine's own namespace something: the host-only external
network's gateway link (``neutrino-nttest``, 198.51.100.1/24 rather than the default public
range, so a real ``neutrino up`` on this machine is not disturbed). From the machine, a
floating IP answers; after ``down`` nothing of the project remains.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.client import Client
from neutrino.kernel import janitor, links, netns
from tests.conftest import free_port

NEUTRINO = str(Path(sys.executable).with_name("neutrino"))
GATEWAY_LINK = "neutrino-nttest"


def _processes_mentioning(text: str) -> list[str]:
    out = subprocess.run(["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if text in line and "pytest" not in line and "ps -eww" not in line]


@pytest.fixture
def env(tmp_path: Path, ns_prefix: str) -> Iterator[dict[str, str]]:
    values = {
        "NEUTRINO_AGENT__HOST": "up-test", "NEUTRINO_AGENT__NAMESPACE_PREFIX": ns_prefix,
        "NEUTRINO_AGENT__NODE_NAMESPACE": f"{ns_prefix}node", "NEUTRINO_AGENT__REPORT_INTERVAL": "2",
        "NEUTRINO_PUBLIC__PHYSICAL_NETWORK": "nttest", "NEUTRINO_PUBLIC__CIDR": "198.51.100.0/24",
        "NEUTRINO_PUBLIC__GATEWAY_IP": "198.51.100.1", "NEUTRINO_PUBLIC__ALLOCATION_START": "198.51.100.10",
        "NEUTRINO_PUBLIC__ALLOCATION_END": "198.51.100.100",
    }
    full = {**os.environ, **values, "NO_PROXY": "*"}
    full.pop("http_proxy", None)
    full.pop("HTTP_PROXY", None)
    state = tmp_path / "state"
    full["NEUTRINO_TEST_STATE"] = str(state)
    try:
        yield full
    finally:
        run(full, "down", "--state-dir", str(state), check=False)
        janitor.cleanup(prefixes=(ns_prefix,), root_links=False)
        links.remove_link(None, GATEWAY_LINK)


def run(env: dict[str, str], *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([NEUTRINO, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert done.returncode == 0, f"neutrino {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


def test_up_instance_floating_ip_from_the_machine_then_down(env: dict[str, str], ns_prefix: str) -> None:
    state = env["NEUTRINO_TEST_STATE"]
    bind = f"127.0.0.1:{free_port()}"
    up = run(env, "up", "--state-dir", state, "--bind", bind)
    assert "[4/4]" in up.stdout and "neutrino is up" in up.stdout, up.stdout
    assert "198.51.100.1/24" in links.list_addresses(None, GATEWAY_LINK)
    assert open(f"/proc/sys/net/ipv4/conf/{GATEWAY_LINK}/forwarding").read().strip() == "0"
    # idempotent: finds it running; run through sudo, it gives clouds.yaml to the user behind sudo
    again = run({**env, "SUDO_UID": "65534", "SUDO_GID": "65534"}, "up", "--state-dir", state, "--bind", bind)
    assert "already running" in again.stdout and "neutrino is up" in again.stdout
    clouds = Path(state) / "clouds.yaml"
    assert (clouds.stat().st_uid, clouds.stat().st_mode & 0o777) == (65534, 0o600)
    second = run(env, "allinone", "--state-dir", state, "--bind", f"127.0.0.1:{free_port()}", check=False,
                 timeout=60)
    assert second.returncode != 0 and "already runs" in second.stderr
    check_hints(env, up.stdout)
    status = run(env, "status")  # no --state-dir: the running cloud is found by its record
    for kind in ("Linux bridge agent", "DHCP agent", "L3 agent", "Metadata agent"):
        assert kind in status.stdout
    assert "XXX" not in status.stdout and f"state {state}" in status.stdout
    _one_cloud_per_host(env, ns_prefix, Path(state))

    demo = Client.from_clouds(Path(state) / "clouds.yaml", "demo")
    net = demo.post("/v2.0/networks", {"network": {"name": "net1"}})["network"]
    sub = demo.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24",
                                                 "ip_version": 4}})["subnet"]
    public = demo.find("networks", "public")
    router = demo.post("/v2.0/routers", {"router": {"name": "r1",
                                                    "external_gateway_info": {"network_id": public["id"]}}})["router"]
    demo.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    default = demo.get("/v2.0/security-groups", name="default", project_id=demo.project_id)["security_groups"][0]
    demo.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": default["id"], "direction": "ingress", "protocol": "icmp"}})

    created = run(env, "instance", "create", "--network", "net1", "vm1")  # finds the cloud by itself
    assert "10.0.0." in created.stdout and "mtu" in created.stdout
    # The instance reaches the machine's gateway address through SNAT ...
    run(env, "instance", "--state-dir", state, "exec", "vm1", "--", "ping", "-c1", "-W2", "198.51.100.1")
    listed = run(env, "instance", "--state-dir", state, "list")
    assert "vm1" in listed.stdout and "ACTIVE" in listed.stdout
    port_id = run(env, "instance", "--state-dir", state, "show", "vm1").stdout.split("port")[1].split()[0]
    fip = demo.post("/v2.0/floatingips", {"floatingip": {"floating_network_id": public["id"],
                                                         "port_id": port_id}})["floatingip"]
    # ... and the machine reaches the instance through its floating IP, as with DevStack's br-ex.
    ok = any(subprocess.run(["ping", "-c1", "-W1", fip["floating_ip_address"]], capture_output=True).returncode == 0
             for _ in range(5))
    assert ok, "the floating IP did not answer from the machine"

    deleted = run(env, "instance", "--state-dir", state, "delete", "vm1")
    assert "deleted instance vm1" in deleted.stdout
    assert "vm1" not in run(env, "instance", "--state-dir", state, "list").stdout
    run(env, "instance", "--state-dir", state, "create", "--network", "net1", "vm2")  # down removes it too

    down = run(env, "down")  # finds the cloud by itself, and removes exactly what it made
    assert "neutrino is down" in down.stdout
    assert not [n for n in netns.list_namespaces() if n.startswith(ns_prefix)]
    assert not links.link_exists(None, GATEWAY_LINK)
    assert not _processes_mentioning(state)
    assert "not running" in run(env, "status", "--state-dir", state, check=False).stdout


def _firewall(node_ns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", node_ns, "nft", "-s", "list", "ruleset"], capture_output=True,
                          text=True, check=True).stdout


def _one_cloud_per_host(env: dict[str, str], ns_prefix: str, state: Path) -> None:
    """A second cloud is refused before it touches anything, and cannot take the running one down."""
    node = f"{ns_prefix}node"
    before = _firewall(node)
    other = state.parent / "other-state"
    second = run(env, "up", "--state-dir", str(other), "--bind", f"127.0.0.1:{free_port()}", check=False, timeout=60)
    assert second.returncode != 0, second.stdout
    assert "one cloud runs per host" in second.stderr and "neutrino down" in second.stderr, second.stderr
    assert str(state) in second.stderr  # it names the running cloud
    assert not other.exists() and not _processes_mentioning(str(other))  # nothing started, nothing made
    refused = run(env, "down", "--state-dir", str(other), check=False)
    assert refused.returncode != 0 and "one cloud runs per host" in refused.stderr, refused.stdout + refused.stderr
    busy = run(env, "cleanup", check=False)  # finds the running cloud: its namespaces are not leftovers
    assert busy.returncode != 0 and "is running" in busy.stderr, busy.stdout + busy.stderr
    assert netns.namespace_exists(node) and links.link_exists(None, GATEWAY_LINK)
    assert _firewall(node) == before
    run(env, "status")  # still healthy
    # Printing commands end quietly when their reader goes away (`neutrino status | head`).
    piped = subprocess.run(f"{NEUTRINO} status | head -n 0", shell=True, capture_output=True, text=True, env=env,
                           timeout=60)
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr


def check_hints(env: dict[str, str], up_output: str) -> None:
    """Every path that ``up`` prints exists, and its ``status`` line runs as printed."""
    hints = up_output[up_output.index("neutrino is up"):]
    paths = re.findall(r"(?<![\w.])(/[\w.+-]+(?:/[\w.+-]+)+)", hints)
    assert any(p.endswith("/bin/neutrino") for p in paths) and any(p.endswith("/bin/openstack") for p in paths)
    assert [p for p in paths if not Path(p).exists()] == [], hints
    line = next(line for line in hints.splitlines() if line.split()[1:2] == ["status"])
    done = subprocess.run(line.split("#")[0].split(), capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and "L3 agent" in done.stdout, done.stdout + done.stderr
