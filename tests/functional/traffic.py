"""Real-traffic probes shared by the functional tests."""

from __future__ import annotations

import subprocess


def ping(ns: str, dst: str, tries: int = 3) -> bool:
    """One ICMP echo from namespace ``ns`` to ``dst``, retried: the first may wait on ARP."""
    for _ in range(tries):
        done = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c1", "-W1", dst], capture_output=True, timeout=10)
        if done.returncode == 0:
            return True
    return False
