"""Remove everything neutrino left on the host: namespaces and root-namespace links with our names."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from neutrino.kernel import links, netns, procs
from neutrino.kernel.names import ALL_NAMESPACE_PREFIXES, is_our_link, is_our_namespace


@dataclass
class Removed:
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


def select_namespaces(names: Iterable[str], prefixes: tuple[str, ...] = ALL_NAMESPACE_PREFIXES) -> list[str]:
    """The namespaces among ``names`` that carry one of ``prefixes`` (all of them are ours)."""
    chosen = (p for p in prefixes if is_our_namespace(p + "x"))  # never widen beyond our own prefixes
    allowed = tuple(chosen)
    return sorted(n for n in set(names) if allowed and is_our_namespace(n, allowed))


def select_links(names: Iterable[str]) -> list[str]:
    """The links among ``names`` (in our own namespace) that follow neutrino's device naming."""
    return sorted(n for n in set(names) if is_our_link(n))


def namespace_pids(name: str) -> list[int]:
    """The processes living in namespace ``name`` (``ip netns pids``): only ours are ever asked for."""
    done = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, timeout=10)
    return [int(p) for p in done.stdout.split() if p.isdigit()]


def stop_namespace_processes(name: str, timeout: float = 3.0) -> list[int]:
    """SIGTERM what runs inside our namespace ``name`` (dnsmasq, haproxy), SIGKILL what stays.

    Never for a name that is (or aliases) the machine's own namespace or this process's: every
    process of the machine (or of this lab host) lives there. This process and its parents are
    never signalled.
    """
    if not is_our_namespace(name) or not netns.namespace_exists(name):
        return []
    if netns.is_root_namespace(name) or netns.is_own_namespace(name):
        return []
    spared = {os.getpid(), os.getppid()}
    pids = [p for p in namespace_pids(name) if p not in spared]
    for pid in pids:
        _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            _kill(pid, signal.SIGKILL)
    return pids


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _remove_host_files(name: str) -> None:
    """The files a namespace of ours had on the host: an instance's own resolv.conf, a dnsmasq's or OVS's run files."""
    shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)
    shutil.rmtree(procs.run_path("dhcp", name), ignore_errors=True)
    shutil.rmtree(procs.run_path("ovs", name), ignore_errors=True)  # a host's own Open vSwitch


def remove_namespaces(names: Iterable[str]) -> list[str]:
    """Remove exactly these namespaces of ours (their processes first); returns those removed."""
    removed = []
    for name in sorted(set(names)):
        if not is_our_namespace(name) or not netns.namespace_exists(name):
            continue
        stop_namespace_processes(name)
        _remove_host_files(name)
        if netns.remove_namespace(name):
            removed.append(name)
    return removed


def cleanup(prefixes: tuple[str, ...] = ALL_NAMESPACE_PREFIXES, root_links: bool = True) -> Removed:
    """Remove our namespaces (their links go with them), then our links in this process's namespace."""
    removed = Removed()
    for name in select_namespaces(netns.list_namespaces(), prefixes):
        stop_namespace_processes(name)
        _remove_host_files(name)
        if netns.remove_namespace(name):
            removed.namespaces.append(name)
    if root_links:
        for name in select_links(link.name for link in links.list_links(None)):
            if links.remove_link(None, name):
                removed.links.append(name)
    return removed
