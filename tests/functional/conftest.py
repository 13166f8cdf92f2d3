"""Functional tests on the real kernel: root only, each test inside its own throwaway namespaces."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from neutrino.kernel import janitor
from neutrino.kernel.names import TEST_NAMESPACE_PREFIX


def _why_not_runnable() -> str | None:
    if os.geteuid() != 0:
        return "functional tests need root (network namespaces)"
    probe = f"{TEST_NAMESPACE_PREFIX}probe-{secrets.token_hex(3)}"
    try:
        added = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns add` cannot run here: {exc}"
    if added.returncode != 0:
        return f"`ip netns add` fails here: {added.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, timeout=10)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    mine = [item for item in items if str(item.path).startswith(here)]
    if not mine:
        return
    for item in mine:  # one worker builds a lab module's lab (scripts/test.sh: --dist loadgroup)
        if item.get_closest_marker("lab") is not None:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
    reason = _why_not_runnable()
    if reason:
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def ns_prefix() -> Iterator[str]:
    """A unique namespace prefix for one test; every namespace with it is removed afterwards."""
    prefix = f"{TEST_NAMESPACE_PREFIX}{secrets.token_hex(3)}-"
    try:
        yield prefix
    finally:
        janitor.cleanup(prefixes=(prefix,), root_links=False)

