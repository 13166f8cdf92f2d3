"""The agent<->server contract: calls carry the version, another major version is refused clearly."""

from __future__ import annotations

import pytest

from neutrino import messages


def test_a_call_carries_the_version_and_round_trips() -> None:
    body = messages.request("sync", host="h1")
    assert body == {"version": messages.VERSION, "method": "sync", "kwargs": {"host": "h1"}}
    assert messages.parse_request(body) == ("sync", {"host": "h1"})


def test_a_newer_minor_version_is_accepted_and_a_missing_one_is_1_0() -> None:
    assert messages.parse_request({"version": "1.7", "method": "sync", "kwargs": {}}) == ("sync", {})
    assert messages.parse_request({"method": "sync", "kwargs": {}}) == ("sync", {})


@pytest.mark.parametrize("body", [
    {"version": "2.0", "method": "sync", "kwargs": {}},
    {"version": "0.9", "method": "sync", "kwargs": {}},
])
def test_another_major_version_is_refused_with_what_to_do(body: dict[str, object]) -> None:
    with pytest.raises(messages.IncompatibleVersion, match="same neutrino release"):
        messages.parse_request(body)


@pytest.mark.parametrize("body", [
    [], "sync", {"method": "__init__", "kwargs": {}}, {"method": "sync", "kwargs": []},
    {"method": "delete_everything", "kwargs": {}},
])
def test_anything_but_a_known_call_is_refused(body: object) -> None:
    with pytest.raises(ValueError):
        messages.parse_request(body)


def test_a_ports_own_host_is_told_before_the_other_hosts() -> None:
    from neutrino.amqp import BROADCAST, host_key, routing_keys
    from neutrino.bus import Event

    hosts = frozenset(f"h{i}" for i in range(10))
    for owner in ("h0", "h5", "h9"):
        keys = routing_keys(Event("ports", "p", "create", hosts=hosts, first=frozenset({owner})))
        assert keys[0] == host_key(owner) and sorted(keys) == sorted(host_key(h) for h in hosts)
    assert routing_keys(Event("agents", "x", "update")) == [BROADCAST]
