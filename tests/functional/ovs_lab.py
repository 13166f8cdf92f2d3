"""Shared by the OVS functional tests: skip reasons, and a host's OVS removed by PID whatever happens."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from neutrino.kernel import ovs


def why_no_ovs() -> str | None:
    if os.geteuid() != 0:
        return "OVS tests need root"
    for tool in ("ovsdb-server", "ovs-vswitchd", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl", "ethtool"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: openvswitch-switch, see scripts/setup.sh)"
    if not os.path.exists(ovs.SCHEMA):
        return f"no OVSDB schema at {ovs.SCHEMA}"
    try:
        import ovsdbapp  # noqa: F401
    except ImportError:
        return "ovsdbapp is not installed"
    return None


requires_ovs = pytest.mark.skipif(why_no_ovs() is not None, reason=why_no_ovs() or "")


@contextmanager
def run_dirs() -> Iterator[str]:
    """A short directory for OVS run dirs (unix socket paths must stay under 108 bytes)."""
    base = tempfile.mkdtemp(prefix="nt-ovs-")
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def instances(*made: ovs.OvsInstance) -> Iterator[tuple[ovs.OvsInstance, ...]]:
    """Stop every instance's daemons by their own PIDs at the end, also on failure."""
    try:
        yield made
    finally:
        for inst in made:
            inst.stop()
