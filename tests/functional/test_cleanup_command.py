"""`neutrino cleanup --dry-run` finds the project's namespaces and touches nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from neutrino.kernel import netns


def test_dry_run_lists_our_namespace_and_removes_nothing(ns_prefix: str) -> None:
    name = ns_prefix + "dry"
    netns.ensure_namespace(name)
    out = subprocess.run([str(Path(sys.executable).parent / "neutrino"), "cleanup", "--dry-run"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and name in out.stdout, out.stdout + out.stderr
    assert netns.namespace_exists(name)
