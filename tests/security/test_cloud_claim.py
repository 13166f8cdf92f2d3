"""One cloud per host (issue 7, section 7): the machine-wide claim and record, without root.

``/run/neutrino`` is replaced by a temporary directory; the locks are real ``flock`` locks, which
conflict between two opens even inside one process, as between two processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.cmd import hostclaim
from neutrino.cmd.hostclaim import Footprint, HostBusy
from neutrino.config import Config
from tests.conftest import make_config


@pytest.fixture(autouse=True)
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(hostclaim, "RUN_DIR", tmp_path / "run")
    yield tmp_path / "run"


def _cfg(state: Path, node: str = "neutrino-aio", physnet: str = "public") -> Config:
    return make_config(state, DEFAULT={"bind": "127.0.0.1:9797"},
                       agent={"host": "aio", "node_namespace": node}, public={"physical_network": physnet})


def test_a_running_cloud_is_found_without_its_state_dir(tmp_path: Path) -> None:
    first = _cfg(tmp_path / "first")
    claim = hostclaim.claim(Footprint.of(first), "allinone")
    claim.record(tmp_path / "first", "127.0.0.1:9797", "http://127.0.0.1:9797", None)
    try:
        other = _cfg(Path("/var/lib/neutrino"))
        other.DEFAULT.bind = "127.0.0.1:9696"
        owner = hostclaim.locate(other, None)
        assert owner is not None and owner.state_dir == tmp_path / "first"
        assert hostclaim.claimed_hosts() == ["neutrino-aio"]  # `cleanup --all` refuses while it runs
        assert other.DEFAULT.state_dir == str(tmp_path / "first") and other.DEFAULT.bind == "127.0.0.1:9797"
        explicit = _cfg(Path("/var/lib/neutrino"))
        assert hostclaim.locate(explicit, str(tmp_path / "second")) is None
        assert explicit.DEFAULT.state_dir == "/var/lib/neutrino"  # a given --state-dir is kept
    finally:
        claim.release()
    assert hostclaim.running("neutrino-aio") is None
    assert not list((tmp_path / "run").rglob("*.*"))  # lock files and record go with the claim


@pytest.mark.parametrize("second_node", ["neutrino-aio", "neutrino-other"])
def test_a_second_cloud_is_refused_and_told_what_to_do(tmp_path: Path, second_node: str) -> None:
    """Same node namespace, or only the same gateway link (neutrino-public): either is refused."""
    claim = hostclaim.claim(Footprint.of(_cfg(tmp_path / "first")), "allinone")
    claim.record(tmp_path / "first", "127.0.0.1:9797", "http://127.0.0.1:9797", None)
    try:
        second = Footprint.of(_cfg(tmp_path / "second", node=second_node))
        with pytest.raises(HostBusy) as refused:
            hostclaim.check_free(second, "up", tmp_path / "second")
        assert "one cloud runs per host" in str(refused.value) and "neutrino down" in str(refused.value)
        with pytest.raises(HostBusy):
            hostclaim.claim(second, "allinone")
        assert hostclaim.running("neutrino-aio") is not None  # the refusal took nothing from the first
        owner = hostclaim.check_free(Footprint.of(_cfg(tmp_path / "first")), "up", tmp_path / "first")
        assert owner is not None and owner.pid > 0  # the same cloud again: found, not refused
    finally:
        claim.release()
    hostclaim.claim(Footprint.of(_cfg(tmp_path / "second", node=second_node)), "allinone").release()


def test_the_footprint_is_what_the_cloud_made_not_what_config_says_today(tmp_path: Path) -> None:
    made = Footprint.of(_cfg(tmp_path, node="nt-x-node"))
    made.save(tmp_path)
    assert made.gateway_link == "neutrino-public"
    assert Footprint.load(tmp_path) == made
    (tmp_path / hostclaim.FOOTPRINT).write_text("{not json")
    assert Footprint.load(tmp_path) is None
    for hostile in ("", "../etc", ".hidden", "a/b"):
        with pytest.raises(ValueError):
            hostclaim.claim(Footprint(host="h", node_ns=hostile), "up")
