"""A conntrack zone handed to a new network starts empty: its earlier flows are forgotten."""

from __future__ import annotations

import subprocess

import pytest

from neutrino.kernel import NotOurs, conntrack, netns


def _insert(ns: str, zone: int, sport: int) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-I", "-p", "udp", "-s", "10.0.0.5", "-d", "10.0.0.6",
                    "--sport", str(sport), "--dport", "6000", "-w", str(zone), "-t", "60"],
                   check=True, capture_output=True)


def _count(ns: str, zone: int) -> int:
    out = subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-L", "-w", str(zone)], capture_output=True,
                         text=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


def test_flush_zone_forgets_exactly_that_zone(ns_prefix: str) -> None:
    ns = f"{ns_prefix}node"
    netns.ensure_namespace(ns)
    _insert(ns, 5, 5000)
    _insert(ns, 5, 5001)
    _insert(ns, 6, 5000)
    assert _count(ns, 5) == 2
    assert conntrack.flush_zone(ns, 5) == 2
    assert _count(ns, 5) == 0 and _count(ns, 6) == 1
    assert conntrack.flush_zone(ns, 5) == 0
    with pytest.raises(NotOurs):
        conntrack.flush_zone("not-ours", 5)
