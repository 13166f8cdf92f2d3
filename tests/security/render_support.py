"""Shared by the render property tests: a server with its agent RPC, hostile strings, and the real parsers.

Each parser is the daemon's own: ``dnsmasq --test`` (the hosts and opts lines are exactly the
arguments of ``dhcp-host=`` and ``dhcp-option=``, so a conf-file of those checks them),
``nft -c`` in a network namespace that ``unshare`` creates and that dies with it (check mode
commits nothing, and there is nothing to commit to), ``haproxy -c``.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from neutrino import server
from neutrino.agent.dhcp import render
from neutrino.messages import DHCP_AGENT, L3_AGENT
from neutrino.messages import LINUXBRIDGE_AGENT as L2_AGENT
from neutrino.services.agent_rpc import AgentRpc
from tests.conftest import Api, lb_agent_conf, make_config

HOST = "host-a"

# Modest: each example makes API calls and runs a parser; the whole suite has 15 minutes.
PROPERTY = settings(max_examples=30, deadline=timedelta(seconds=5),
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# What ends a token or a line in one of our formats, or starts a new directive in it.
INJECTIONS = ["\n", "\r", "\r\n", "\x00", "\x0b", "\x0c", "\x1b", "\x7f", "\u2028", "\u0085", ",", " ", "\t", "#",
              '"', "'", "\\", ";", "}", "{", "/", ":", "=", "*", "tag:", ",set:x", "\noption:router,6.6.6.6",
              "\ndhcp-option=3,6.6.6.6", "\n6.6.6.6\tevil", ",option:dns-server,6.6.6.6", "; drop", " } table ip x {"]


def hostile(*bases: str) -> st.SearchStrategy[str]:
    """A plausible value with something hostile before, inside or after it, or any text at all."""
    base = st.sampled_from(bases or ("x",))
    bad = st.sampled_from(INJECTIONS)
    return st.one_of(
        st.builds(lambda b, i, t: b + i + t, base, bad, st.text(max_size=6)),
        st.builds(lambda i, b: i + b, bad, base),
        st.builds(lambda b, i, n: b[:n] + i + b[n:], base, bad, st.integers(0, 8)),
        st.text(max_size=24),
    )


@pytest.fixture(scope="module", name="stack")
def stack_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, AgentRpc]]:
    """One server for a module's examples (noauth), with live agents on ``HOST``."""
    cfg = make_config(tmp_path_factory.mktemp("render"), DEFAULT={"auth_strategy": "noauth"})
    srv = server.build(cfg)
    with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
        srv.rpc.report_state(HOST, L2_AGENT, lb_agent_conf("172.30.0.11"), start_flag=True)
        srv.rpc.report_state(HOST, DHCP_AGENT, {})
        srv.rpc.report_state(HOST, L3_AGENT, {})
        yield Api(client), srv.rpc
    srv.db.dispose()


def dnsmasq_check(files: render.Rendered, argv: list[str] | None = None) -> None:
    """``dnsmasq --test`` over the hosts and opts lines (and the daemon's own arguments)."""
    lines = [f"dhcp-host={line}" for line in files.hosts.splitlines()]
    lines += [f"dhcp-option={line}" for line in files.opts.splitlines()]
    with tempfile.TemporaryDirectory(prefix="nt-render-") as tmp:
        conf = Path(tmp) / "dnsmasq.conf"
        conf.write_text("".join(line + "\n" for line in lines))
        args = [a for a in (argv or ["dnsmasq"])[1:] if a != "--conf-file=/dev/null"]
        done = subprocess.run(["dnsmasq", "--test", f"--conf-file={conf}", *args], capture_output=True, text=True,
                              timeout=10)
    assert done.returncode == 0, (done.stderr, lines)


def addn_hosts_entries(text: str) -> list[tuple[str, list[str]]]:
    """(address, names) per line of an addn-hosts file, asserting each line is ``IP<TAB>name name``."""
    entries = []
    for line in text.split("\n")[:-1] if text else []:
        address, _, names = line.partition("\t")
        assert names and all(ch.isascii() and ch.isprintable() for ch in line.replace("\t", " ")), line
        entries.append((address, names.split(" ")))
    return entries


def nft_check(script: str) -> None:
    """``nft -c -f -`` in a throwaway network namespace: parses and type-checks, changes nothing anywhere."""
    done = subprocess.run(["unshare", "--net", "nft", "-c", "-f", "-"], input=script, capture_output=True, text=True,
                          timeout=10)
    assert done.returncode == 0, (done.stderr, script)


def haproxy_check(config: str) -> None:
    with tempfile.TemporaryDirectory(prefix="nt-render-") as tmp:
        path = Path(tmp) / "haproxy.cfg"
        path.write_text(config)
        done = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, (done.stdout, done.stderr, config)


def created(response: Any, member: str) -> dict[str, Any] | None:
    """The created resource, or None when the API refused the hostile input with a 4xx (never a 5xx)."""
    assert response.status_code < 500, response.text
    return response.json()[member] if response.status_code == 201 else None  # type: ignore[no-any-return]
