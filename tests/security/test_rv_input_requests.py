"""Hostile request shapes found by a second reading of issue 7 section 1: every one is a 4xx
with Neutron's NeutronError body on SQLite, PostgreSQL and MariaDB, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.security.test_input_requests import neutron_4xx

WRONG_TYPES: list[Any] = [[], ["x"], {}, {"a": 1}, 7, 1.5, True, "x" * 37]


@pytest.mark.parametrize("attr", ["security_group_id", "remote_group_id", "remote_address_group_id"])
def test_security_group_rule_ids_of_the_wrong_type_are_400(any_db_api: Api, attr: str) -> None:
    """Neutron types security_group_id as a string of 36; a list or a dict reached the query (500)."""
    api = any_db_api
    sg = api.create("security_group", name="s")
    before = api.get("/v2.0/security-group-rules").json()["security_group_rules"]
    for value in WRONG_TYPES:
        body = {"security_group_id": sg["id"], "direction": "ingress", attr: value}
        err = neutron_4xx(api.post("/v2.0/security-group-rules", json={"security_group_rule": body}), 400)
        assert attr in err["message"], err
    assert api.get("/v2.0/security-group-rules").json()["security_group_rules"] == before


def test_tags_are_unique_and_at_most_fifty_per_resource(api: Api) -> None:
    """Neutron's validate_tags_limit (50) and list_of_unique_strings: without them a project grew
    one row without bound, one ``PUT .../tags/<tag>`` at a time, and every listing carried it."""
    net = api.create("network", name="n")
    url = f"/v2.0/networks/{net['id']}/tags"
    for i in range(50):
        assert api.put(f"{url}/t{i}").status_code == 201
    assert api.put(f"{url}/t7").status_code == 201  # already there: no change, no refusal
    err = neutron_4xx(api.put(f"{url}/t50"), 400)
    assert err["type"] == "BadRequest" and "limit of 50" in err["message"], err
    assert len(api.get(url).json()["tags"]) == 50
    neutron_4xx(api.put(url, json={"tags": [f"u{i}" for i in range(51)]}), 400)
    neutron_4xx(api.put(url, json={"tags": ["a", "a"]}), 400)
    assert len(api.get(url).json()["tags"]) == 50
    neutron_4xx(api.post("/v2.0/networks", json={"network": {"tags": [f"u{i}" for i in range(51)]}}), 400)
    neutron_4xx(api.post("/v2.0/networks", json={"network": {"tags": ["a", "a"]}}), 400)
    assert len(api.get("/v2.0/networks").json()["networks"]) == 1
