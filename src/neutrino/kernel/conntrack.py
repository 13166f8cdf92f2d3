"""Connection tracking inside our namespaces: forget one zone's flows (``conntrack`` from Debian).

A conntrack zone freed when a network leaves a host is given to the next new network; flows
still recorded in it would count as established for that network's traffic (same addresses,
same ports: overlapping CIDRs make that likely). So a zone is flushed when it is assigned.
"""

from __future__ import annotations

import re
import subprocess

from neutrino.kernel import KernelError, NamespaceNotFound, NotOurs
from neutrino.kernel.names import is_our_namespace
from neutrino.kernel.netns import is_root_namespace, namespace_exists

_DELETED = re.compile(r"(\d+) flow entries have been deleted")


def flush_zone(ns: str, zone: int) -> int:
    """Delete every conntrack entry of ``zone`` in our namespace ``ns``; returns how many."""
    if not is_our_namespace(ns):
        raise NotOurs("flush conntrack zone", ns, detail="not a neutrino namespace")
    if not namespace_exists(ns):
        raise NamespaceNotFound("flush conntrack zone", ns, detail="no such namespace")
    if is_root_namespace(ns):
        raise NotOurs("flush conntrack zone", ns, detail="refusing the machine's own conntrack table")
    if not 1 <= zone <= 65535:
        raise ValueError(f"conntrack zone {zone} is outside 1..65535")
    try:
        done = subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-D", "-w", str(zone)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelError("flush conntrack zone", f"{ns}:{zone}", detail=str(exc)) from exc
    found = _DELETED.search(done.stderr)
    if found:
        return int(found.group(1))
    if done.returncode not in (0, 1):  # 1: nothing matched
        raise KernelError("flush conntrack zone", f"{ns}:{zone}", detail=done.stderr.strip())
    return 0
