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
