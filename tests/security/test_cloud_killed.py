"""A cloud killed without `neutrino down` (SIGKILL, OOM): what the next commands do (issue 7 §7).

The kernel drops the dead process's flock, so the host is free again, but the record naming its
state directory stays. Commands given no ``--state-dir`` must still find that cloud, so that
``status`` says it is not running *there* and ``down``/``cleanup`` remove what it left, instead of
looking in /var/lib/neutrino and reporting nothing to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.cmd import hostclaim
from neutrino.cmd.hostclaim import Footprint
from tests.security.test_cloud_claim import _cfg

# Claim and record a footprint like `allinone`, say so, then wait to be killed.
CHILD = """import sys, time
from pathlib import Path
from neutrino.cmd import hostclaim
from neutrino.cmd.hostclaim import Footprint
hostclaim.RUN_DIR = Path(sys.argv[1])
state = Path(sys.argv[2])
fp = Footprint(host="aio", node_ns="neutrino-aio", gateway_link="neutrino-public")
fp.save(state)
claim = hostclaim.claim(fp, "allinone")
claim.record(state, "127.0.0.1:9797", "http://127.0.0.1:9797", None)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture(autouse=True)
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(hostclaim, "RUN_DIR", tmp_path / "run")
    yield tmp_path / "run"


def test_a_killed_cloud_is_still_found_and_the_host_is_free(tmp_path: Path, run_dir: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(run_dir), str(state)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert hostclaim.running("neutrino-aio") is not None
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert hostclaim.running("neutrino-aio") is None, "status must not call a dead cloud running"
    assert hostclaim.claimed_hosts() == []  # `cleanup --all` is not refused by a dead claim
    cfg = _cfg(Path("/var/lib/neutrino"))
    assert hostclaim.locate(cfg, None) is None
    assert cfg.DEFAULT.state_dir == str(state), "down/cleanup/status without --state-dir look where it ran"
    explicit = _cfg(Path("/var/lib/neutrino"))
    assert hostclaim.locate(explicit, str(tmp_path / "other")) is None
    assert explicit.DEFAULT.state_dir == "/var/lib/neutrino"
    # a record whose cloud was since removed (`down` deletes the footprint first) is not followed
    footprint = (state / hostclaim.FOOTPRINT).read_text()
    (state / hostclaim.FOOTPRINT).unlink()
    again = _cfg(Path("/var/lib/neutrino"))
    hostclaim.locate(again, None)
    assert again.DEFAULT.state_dir == "/var/lib/neutrino"
    (state / hostclaim.FOOTPRINT).write_text(footprint)
    # the next up (another state dir) is not refused, and claims the names for itself
    assert hostclaim.check_free(Footprint.of(_cfg(tmp_path / "next")), "up", tmp_path / "next") is None
    hostclaim.claim(Footprint.of(_cfg(tmp_path / "next")), "allinone").release()


def test_up_with_another_state_dir_refuses_while_a_dead_clouds_remains_are_there(
        tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before anything touches the host: the dead cloud's namespaces and dnsmasq/haproxy would
    stay behind for good once another cloud owns the names (its `down` removes only its own)."""
    from neutrino.cmd import cloud

    if os.geteuid() != 0:
        pytest.skip("`neutrino up` checks for root first")
    state = tmp_path / "state"
    state.mkdir()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(run_dir), str(state)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("`up` went on to start a cloud")

    monkeypatch.setattr(cloud.subprocess, "Popen", never)
    other = tmp_path / "other"
    cfg = _cfg(other)
    cfg.agent.node_namespace = "neutrino-aio"
    cfg.DEFAULT.bind = "127.0.0.1:1"  # never bound: the refusal comes first
    with pytest.raises(SystemExit) as refused:
        cloud.cmd_up(cfg, None)
    assert str(state) in str(refused.value) and "down" in str(refused.value)
    assert not other.exists(), "nothing was made before the refusal"
