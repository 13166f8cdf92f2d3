"""Instances: network namespaces standing in for VMs, and the host files that belong to each.

    vif           plug/unplug: the namespace, its ``eth0`` as a veth into the host's bridge
    dhcp_client   busybox udhcpc in the foreground: a real DHCP lease, applied and returned

An instance never sees the host's resolver: ``ip netns exec`` bind-mounts
``/etc/netns/<ns>/resolv.conf`` over ``/etc/resolv.conf``, and every instance gets that file
at plug time (empty until DHCP fills in its nameservers). A running DHCP client is found
again through its pidfile under ``/run/neutrino/instances/<ns>/``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from neutrino.kernel import NotOurs
from neutrino.kernel.names import is_our_namespace

ETC_NETNS = Path("/etc/netns")  # iproute2's convention; `ip netns exec` reads it
RUN_DIR = Path("/run/neutrino/instances")


def checked_ns(instance_ns: str) -> str:
    """``instance_ns`` if it is one of our namespace names and safe as a single path component."""
    if "/" in instance_ns or instance_ns in (".", "..") or not is_our_namespace(instance_ns):
        raise NotOurs("use instance namespace", repr(instance_ns), detail="not a neutrino namespace name")
    return instance_ns


def etc_dir(instance_ns: str) -> Path:
    """``/etc/netns/<ns>``: every file in it is bind-mounted over ``/etc/<file>`` by ``ip netns exec``."""
    return ETC_NETNS / checked_ns(instance_ns)


def resolv_conf(instance_ns: str) -> Path:
    return etc_dir(instance_ns) / "resolv.conf"


def run_dir(instance_ns: str) -> Path:
    """Runtime files of one instance (DHCP client pidfiles)."""
    return RUN_DIR / checked_ns(instance_ns)


def ensure_resolv_conf(instance_ns: str) -> bool:
    """Create the instance's own (empty) resolv.conf unless it exists; True if it was created."""
    path = resolv_conf(instance_ns)
    if path.is_file():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a"):  # never truncates what DHCP may have written meanwhile
        pass
    os.chmod(path, 0o644)
    return True


def remove_host_files(instance_ns: str) -> bool:
    """Remove ``/etc/netns/<ns>`` and the instance's run directory; False if neither existed."""
    changed = False
    for path in (etc_dir(instance_ns), run_dir(instance_ns)):
        if path.exists():
            shutil.rmtree(path)
            changed = True
    return changed
