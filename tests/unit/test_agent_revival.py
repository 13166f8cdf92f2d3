"""An agent whose heartbeats failed (broker or database away) resyncs as soon as one gets through:
the change events of the outage were lost, and its periodic resync may be minutes away."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neutrino import config
from neutrino.agent.host import HostAgent
from neutrino.allinone import host_config


class Outage:
    """The server's side as an agent sees it: the first ``failures`` heartbeats find nobody."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.reports = 0
        self.answered = threading.Event()

    def sync(self, host: str) -> dict[str, Any]:
        raise AssertionError("the heartbeat thread never syncs itself")

    def report_state(self, host: str, agent_type: str, configurations: Mapping[str, Any],
                     start_flag: bool = False) -> None:
        self.reports += 1
        if self.reports <= self.failures:
            raise ConnectionRefusedError("no broker")
        self.answered.set()

    def update_port_status(self, statuses: Mapping[str, str], host: str | None = None) -> list[str]:
        return []

    def metadata_lookup(self, router_id: str | None, network_id: str | None, ip: str) -> dict[str, Any] | None:
        return None


def _heartbeats(tmp_path: Path, rpc: Outage) -> HostAgent:
    cfg = host_config(config.load(env={"NEUTRINO_DEFAULT__STATE_DIR": str(tmp_path), "NEUTRINO_AGENT__ROLES": "l2",
                                       "NEUTRINO_AGENT__REPORT_INTERVAL": "0.01"}))
    agent = HostAgent(cfg, rpc)
    thread = threading.Thread(target=agent._heartbeat_loop, daemon=True)
    thread.start()
    assert rpc.answered.wait(5)
    agent._stop.set()
    thread.join(5)
    return agent


def test_the_first_heartbeat_after_an_outage_wakes_a_full_pass(tmp_path: Path) -> None:
    agent = _heartbeats(tmp_path, Outage(failures=3))
    assert agent._wake.is_set() and agent._full_due


def test_heartbeats_that_always_got_through_wake_nothing(tmp_path: Path) -> None:
    agent = _heartbeats(tmp_path, Outage(failures=0))
    assert not agent._wake.is_set() and not agent._full_due
