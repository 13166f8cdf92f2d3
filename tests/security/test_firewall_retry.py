"""Issue 7 §3/§8: a port may not mix stateful and stateless groups (Neutron's 409), and one failed
object is retried on its own exponential back-off with rate-limited logs (agent.retry)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import Api


def _group(api: Api, name: str, stateful: bool) -> str:
    r = api.post("/v2.0/security-groups", json={"security_group": {"name": name, "stateful": stateful}})
    assert r.status_code == 201, r.text
    return str(r.json()["security_group"]["id"])


def test_a_port_cannot_mix_stateful_and_stateless_groups(api: Api) -> None:
    a = api.as_("projA")
    net = a.post("/v2.0/networks", json={"network": {"name": "n"}}).json()["network"]
    full, bare = _group(a, "full", True), _group(a, "bare", False)
    r = a.post("/v2.0/ports", json={"port": {"network_id": net["id"], "security_groups": [full, bare]}})
    assert r.status_code == 409, r.text
    body: dict[str, Any] = r.json()["NeutronError"]
    assert body["type"] == "SecurityGroupConflict"
    assert body["message"] == ("Error Cannot apply both stateful and stateless security groups on the same port "
                               "at the same time while attempting the operation.")
    made = a.post("/v2.0/ports", json={"port": {"network_id": net["id"], "security_groups": [bare]}})
    assert made.status_code == 201, made.text
    port = made.json()["port"]
    r = a.put(f"/v2.0/ports/{port['id']}", json={"port": {"security_groups": [bare, full]}})
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == "SecurityGroupConflict"
    assert a.get(f"/v2.0/ports/{port['id']}").json()["port"]["security_groups"] == [bare]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_back_off_doubles_and_a_changed_object_is_retried_at_once(caplog: pytest.LogCaptureFixture) -> None:
    from neutrino.agent.retry import Retries  # here: the 409 test above runs (and fails) on main without it

    clock = Clock()
    retries = Retries(clock=clock, base=1.0, cap=8.0, log_every=60.0)
    caplog.set_level(logging.WARNING, logger="neutrino.agent.retry")
    delays = []
    for _ in range(6):
        assert retries.due("dhcp:n1", b"v1")
        retries.failed("dhcp:n1", "dnsmasq exited 2", b"v1")
        start = clock.now
        while not retries.due("dhcp:n1", b"v1"):
            clock.now += 0.5
        delays.append(clock.now - start)
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert len(caplog.records) == 1, "the same failure is logged once a minute, not per attempt"
    clock.now += 60
    retries.failed("dhcp:n1", "dnsmasq exited 2", b"v1")
    assert len(caplog.records) == 2
    retries.failed("dhcp:n1", "another reason", b"v1")
    assert len(caplog.records) == 3, "a new reason is logged at once"
    assert not retries.due("dhcp:n1", b"v1") and retries.due("dhcp:n1", b"v2"), "a fix through the API: at once"
    assert retries.failures("dhcp:") == {"dhcp:n1": "another reason"} and retries.failures("router:") == {}
    retries.succeeded("dhcp:n1")
    assert retries.failures() == {} and retries.next_due() is None
    # a value that cannot be rendered is re-checked by every pass: reported, never put on a timer
    retries.failed("rule:r1", "unknown protocol 'x'", timed=False)
    assert retries.failures() == {"rule:r1": "unknown protocol 'x'"} and retries.next_due() is None
