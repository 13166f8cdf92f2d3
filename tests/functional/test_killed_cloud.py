"""`neutrino up`, then the all-in-one process is SIGKILLed (OOM, a crash): what a user does next.

The next commands, given no --state-dir as the README shows them, must find that cloud: status
says it is not running (there), and down removes what it left (node namespace, DHCP
namespaces, the gateway link). On main they looked in /var/lib/neutrino and found nothing.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from neutrino.client import Client
from neutrino.kernel import links, netns
from tests.conftest import free_port
from tests.functional.test_up_down import GATEWAY_LINK, _processes_mentioning, env, run  # noqa: F401 - fixture


def test_a_killed_cloud_is_found_by_status_and_removed_by_down(env: dict[str, str], ns_prefix: str) -> None:  # noqa: F811
    state = env["NEUTRINO_TEST_STATE"]
    run(env, "up", "--state-dir", state, "--bind", f"127.0.0.1:{free_port()}")
    demo = Client.from_clouds(Path(state) / "clouds.yaml", "demo")
    net = demo.post("/v2.0/networks", {"network": {"name": "net1"}})["network"]
    demo.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.92.0.0/24", "ip_version": 4}})
    assert _wait_for_namespace(f"{ns_prefix}qdhcp-{net['id']}")
    pid = int((Path(state) / "neutrino.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)

    status = run(env, "status", check=False)
    assert "not running" in status.stdout and f"state {state}" in status.stdout, status.stdout
    down = run(env, "down")
    assert "neutrino is down" in down.stdout
    assert not [n for n in netns.list_namespaces() if n.startswith(ns_prefix)], "down left the dead cloud's namespaces"
    assert not links.link_exists(None, GATEWAY_LINK)
    assert not _processes_mentioning(f"{ns_prefix}qdhcp-")


def _wait_for_namespace(name: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if netns.namespace_exists(name):
            return True
        time.sleep(0.2)
    return False


def _wait_gone(pid: int) -> None:
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
