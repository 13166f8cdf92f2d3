"""Connection tracking inside our namespaces: forget a zone's flows, or those a rule no longer allows.

A conntrack zone freed when a network leaves a host is given to the next new network; flows
still recorded in it would count as established for that network's traffic (same addresses,
same ports: overlapping CIDRs make that likely). So a zone is flushed when it is assigned.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess

from neutrino.kernel import KernelError, NamespaceNotFound, NotOurs
from neutrino.kernel.names import is_our_namespace
from neutrino.kernel.netns import is_root_namespace, namespace_exists

_DELETED = re.compile(r"(\d+) flow entries have been deleted")


def flush_zone(ns: str, zone: int) -> int:
    """Delete every conntrack entry of ``zone`` in our namespace ``ns``; returns how many."""
    return _delete("flush conntrack zone", ns, zone, [])


def delete_flows(ns: str, zone: int, src: str | None = None, dst: str | None = None) -> int:
    """Delete the entries of ``zone`` in our namespace ``ns`` whose original direction comes from
    ``src`` and/or goes to ``dst`` (an address or a network, both of one family); how many.

    Used when a security group rule, a port's groups or a remote group's members change: the
    flows a rule no longer allows must not live on as ``established`` (Neutron deletes them too).
    """
    given = {flag: ipaddress.ip_network(value, strict=False) for flag, value in (("-s", src), ("-d", dst))
             if value is not None}
    if not given or len({n.version for n in given.values()}) != 1:
        raise ValueError("give src and/or dst, of one address family")
    args = ["-f", "ipv6" if next(iter(given.values())).version == 6 else "ipv4"]
    for flag, net in given.items():
        args += [flag, str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)]
    return _delete("delete conntrack flows", ns, zone, args)


def _delete(op: str, ns: str, zone: int, args: list[str]) -> int:
    """``conntrack -D -w zone ARGS`` inside our namespace ``ns``; how many entries went."""
    if not is_our_namespace(ns):
        raise NotOurs(op, ns, detail="not a neutrino namespace")
    if not namespace_exists(ns):
        raise NamespaceNotFound(op, ns, detail="no such namespace")
    if is_root_namespace(ns):
        raise NotOurs(op, ns, detail="refusing the machine's own conntrack table")
    if not 1 <= zone <= 65535:
        raise ValueError(f"conntrack zone {zone} is outside 1..65535")
    try:
        done = subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-D", "-w", str(zone), *args],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelError(op, f"{ns}:{zone}", detail=str(exc)) from exc
    found = _DELETED.search(done.stderr)
    if found:
        return int(found.group(1))
    if done.returncode not in (0, 1):  # 1: nothing matched
        raise KernelError(op, f"{ns}:{zone}", detail=done.stderr.strip())
    return 0
