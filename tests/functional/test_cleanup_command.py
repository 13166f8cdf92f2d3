"""`neutrino cleanup` removes what one (stopped) cloud made; only `--all` reaches beyond it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from starlette.testclient import TestClient

from neutrino.cmd.hostclaim import Footprint
from neutrino.kernel import netns
from neutrino.kernel.names import qdhcp_ns, qrouter_ns
from tests.conftest import make_config

NEUTRINO = str(Path(sys.executable).parent / "neutrino")


def _cleanup(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NEUTRINO, "cleanup", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_dry_run_all_lists_our_namespace_and_removes_nothing(ns_prefix: str) -> None:
    name = ns_prefix + "dry"
    netns.ensure_namespace(name)
    out = _cleanup("--all", "--dry-run")
    assert out.returncode == 0 and name in out.stdout, out.stdout + out.stderr
    assert netns.namespace_exists(name)


def test_cleanup_removes_only_the_clouds_own_namespaces(tmp_path: Path, ns_prefix: str) -> None:
    """A stopped cloud's leftovers (its database's networks and routers, its node namespace) go;
    another cloud's namespaces with the same prefixes stay, unless `--all` is asked for."""
    from neutrino import server

    state = tmp_path / "state"
    cfg = make_config(state, DEFAULT={"auth_strategy": "noauth"})
    srv = server.build(cfg)
    with TestClient(srv.app) as client:
        admin = {"X-Project-Id": "admin", "X-Roles": "admin,member,reader"}
        net = client.post("/v2.0/networks", json={"network": {"name": "n"}}, headers=admin).json()["network"]
        router = client.post("/v2.0/routers", json={"router": {"name": "r"}}, headers=admin).json()["router"]
    srv.db.dispose()
    made = Footprint(host="cleanup-test", node_ns=f"{ns_prefix}node", ns_prefix=ns_prefix)
    made.save(state)
    ours = [made.node_ns, ns_prefix + qdhcp_ns(net["id"]), ns_prefix + qrouter_ns(router["id"])]
    foreign = [ns_prefix + "other-node", ns_prefix + qdhcp_ns("0" * 8 + net["id"][8:])]
    for name in ours + foreign:
        netns.ensure_namespace(name)
    env = {"NEUTRINO_AGENT__NODE_NAMESPACE": made.node_ns, "NEUTRINO_AGENT__NAMESPACE_PREFIX": ns_prefix}

    dry = _cleanup("--state-dir", str(state), "--dry-run", env=env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert all(n in dry.stdout for n in ours) and not any(n in dry.stdout for n in foreign), dry.stdout
    assert all(netns.namespace_exists(n) for n in ours)

    done = _cleanup("--state-dir", str(state), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not any(netns.namespace_exists(n) for n in ours), done.stdout
    assert all(netns.namespace_exists(n) for n in foreign), done.stdout
    assert Footprint.load(state) is None  # nothing of it is left to remember

    everything = _cleanup("--all", "--dry-run")
    assert all(n in everything.stdout for n in foreign), everything.stdout
    assert _cleanup("--state-dir", str(state), "--links", env=env).returncode != 0  # root links: only with --all
