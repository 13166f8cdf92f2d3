"""The node namespace removed under a running agent (issue 7 §7: `down` of another cloud did it).

The agent must rebuild it without a hot loop and then behave as before: a VIF plugged into
the new namespace wakes it at once (its link monitor watches the namespace that now carries
the name, not the deleted one), so an instance gets ACTIVE in seconds, not at the next resync.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.kernel import netns
from tests.functional.cloud import Cloud, cloud, ip_of, wait_for
from tests.functional.traffic import ping


@pytest.fixture
def c(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    with cloud(tmp_path, ns_prefix) as built:
        c = built
        c.agent.cfg.resync_interval = 600.0  # only events and back-offs wake it here
        yield built


def test_the_agent_rebuilds_a_removed_node_namespace_and_still_hears_its_links(c: Cloud) -> None:
    c.network("net1", "10.86.0.0/24")
    compute = c.compute()
    vm1 = compute.create("vm1", network="net1")
    compute.delete("vm1")
    subprocess.run(["ip", "netns", "delete", c.node_ns], check=True, timeout=10)
    c.agent.wake()
    assert wait_for(lambda: netns.namespace_exists(c.node_ns), timeout=15), "the node namespace is rebuilt"
    time.sleep(3)
    before = c.agent.passes
    time.sleep(3)
    assert c.agent.passes - before <= 3, f"{c.agent.passes - before} passes in 3 s while idle: a hot loop"
    started = time.monotonic()
    vm2 = compute.create("vm2", network="net1", timeout=25)
    assert time.monotonic() - started < 15, "the VIF plug in the new namespace did not wake the agent"
    assert ip_of(vm2) and ip_of(vm1)
    assert ping(vm2.namespace, c.admin.get("/v2.0/ports", device_owner="network:dhcp")["ports"][0]
                ["fixed_ips"][0]["ip_address"])


def test_a_whole_part_that_fails_is_reported_by_its_agent(c: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only single objects: when a part fails as a whole (here the L2 reconcile, then the DHCP
    part), the agent that owns it says so in its configurations until it recovers."""
    from neutrino.agent import host
    from tests.functional.test_firewall_tenants import agent_failures

    c.network("net1", "10.87.0.0/24")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("injected: the bridge cannot be made")

    monkeypatch.setattr(c.agent.driver, "reconcile", broken)
    c.agent.wake()
    assert wait_for(lambda: "l2" in agent_failures(c, "Linux bridge agent"), timeout=10), \
        agent_failures(c, "Linux bridge agent")
    assert "injected" in agent_failures(c, "Linux bridge agent")["l2"]
    monkeypatch.undo()
    assert wait_for(lambda: agent_failures(c, "Linux bridge agent") == {}, timeout=20), "cleared once it works"
    monkeypatch.setattr(host.HostAgent, "_dhcp", lambda *_: broken())
    c.agent.wake()
    assert wait_for(lambda: "dhcp" in agent_failures(c, "DHCP agent"), timeout=10), agent_failures(c, "DHCP agent")


def test_a_network_whose_bridge_cannot_be_made_does_not_stop_another_networks_wiring(
        c: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """One L2 object fails for real reasons of its own (injected: its bridge cannot be created);
    the L2 actions of every other network still run in the same pass, and the failure is reported."""
    from neutrino.agent.l2 import linuxbridge
    from neutrino.kernel import KernelError
    from neutrino.kernel.names import bridge_name
    from tests.functional.test_firewall_tenants import agent_failures

    api = c.client()
    # the broken bridge must come first in the pass (bridges are made in name order): of two
    # networks, the one whose id sorts first is the broken one, whatever uuid4 deals
    pair = [api.post("/v2.0/networks", {"network": {"name": name}})["network"] for name in ("n1", "n2")]
    broken, fine = sorted(pair, key=lambda net: net["id"])
    api.post("/v2.0/subnets", {"subnet": {"network_id": fine["id"], "cidr": "10.93.0.0/24", "ip_version": 4}})
    real = linuxbridge.links.ensure_bridge

    def refuses(ns: str | None, name: str, mtu: int | None = None) -> bool:
        if name == bridge_name(broken["id"]):
            raise KernelError("ensure bridge", name, detail="injected")
        return real(ns, name, mtu)

    monkeypatch.setattr(linuxbridge.links, "ensure_bridge", refuses)
    api.post("/v2.0/subnets", {"subnet": {"network_id": broken["id"], "cidr": "10.94.0.0/24", "ip_version": 4}})
    vm = c.compute().create("vm1", network=fine["id"], timeout=20)
    assert ip_of(vm).startswith("10.93.0.")
    assert "injected" in agent_failures(c, "Linux bridge agent").get("l2", "")
