"""Bulk create: each item bare or wrapped in its singular name, as Neutron takes both.

Neutron's ``prepare_request_body`` unwraps ``{"ports": [{"port": {...}}]}`` item by item, so
clients (openstacksdk among them) send either form and may mix them in one request. Garbage in
either form is a clean 400 that creates nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_bad_input import neutron_error
from tests.conftest import Api


def bulk(api: Api, path: str, collection: str, items: list[Any]) -> list[dict[str, Any]]:
    r = api.post(path, json={collection: items})
    assert r.status_code == 201, r.text
    assert list(r.json()) == [collection]
    return r.json()[collection]  # type: ignore[no-any-return]


def test_wrapped_bare_and_mixed_items_for_every_bulk_resource(api: Api) -> None:
    nets = bulk(api, "/v2.0/networks", "networks", [{"network": {"name": "n1"}}, {"network": {"name": "n2"}}])
    assert [n["name"] for n in nets] == ["n1", "n2"]
    mixed = bulk(api, "/v2.0/networks", "networks", [{"name": "n3"}, {"network": {"name": "n4"}}])
    assert [n["name"] for n in mixed] == ["n3", "n4"]
    subs = bulk(api, "/v2.0/subnets", "subnets", [
        {"subnet": {"network_id": nets[0]["id"], "ip_version": 4, "cidr": "10.1.0.0/24", "name": "s1"}},
        {"network_id": nets[1]["id"], "ip_version": 4, "cidr": "10.2.0.0/24", "name": "s2"}])
    assert [(s["name"], s["cidr"]) for s in subs] == [("s1", "10.1.0.0/24"), ("s2", "10.2.0.0/24")]
    ports = bulk(api, "/v2.0/ports", "ports", [{"port": {"network_id": nets[0]["id"], "name": "p1"}},
                                                {"port": {"network_id": nets[0]["id"], "name": "p2"}}])
    assert [p["name"] for p in ports] == ["p1", "p2"]
    assert all(p["fixed_ips"][0]["subnet_id"] == subs[0]["id"] for p in ports)
    groups = bulk(api, "/v2.0/security-groups", "security_groups", [{"security_group": {"name": "g1"}}])
    rules = bulk(api, "/v2.0/security-group-rules", "security_group_rules", [
        {"security_group_rule": {"security_group_id": groups[0]["id"], "direction": "ingress",
                                 "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}},
        {"security_group_id": groups[0]["id"], "direction": "ingress", "protocol": "udp"}])
    assert [(r["protocol"], r["port_range_min"]) for r in rules] == [("tcp", 22), ("udp", None)]
    routers = bulk(api, "/v2.0/routers", "routers", [{"router": {"name": "r1"}}])
    assert routers[0]["name"] == "r1"
    # what was answered is what was stored
    assert {p["id"] for p in api.get("/v2.0/ports", params={"name": ["p1", "p2"]}).json()["ports"]} == \
        {p["id"] for p in ports}


@pytest.mark.parametrize(("items", "words"), [
    ([{"network": "n1"}], ("network", "invalid data")),
    ([{"network": ["n1"]}], ("network", "invalid data")),
    ([{"network": None}], ("network", "invalid data")),
    ([{"name": "ok"}, {"network": 7}], ("network", "invalid data")),
    ([{"port": {"name": "x"}}], ("unrecognized", "port")),  # another resource's wrapper
    ([{"network": {"name": "ok"}}, {"subnet": {"name": "x"}}], ("unrecognized", "subnet")),
    ([{"network": {"bogus": 1}}], ("unrecognized", "bogus")),  # the wrapped item is validated
    ([{"network": {"network": {"name": "nested"}}}], ("unrecognized", "network")),
    ([{"network": {"name": 5}}], ("name",)),
    (["n1"], ("network", "dictionary")),
    ([7], ("network", "dictionary")),
    ([None], ("network", "dictionary")),
    ([[{"name": "x"}]], ("network", "dictionary")),
])
def test_garbage_items_are_400_and_create_nothing(api: Api, items: list[Any], words: tuple[str, ...]) -> None:
    neutron_error(api.post("/v2.0/networks", json={"networks": items}), 400, *words, type_="HTTPBadRequest")
    assert api.get("/v2.0/networks").json()["networks"] == []


def test_wrapped_bulk_is_atomic_and_authorized_per_item(api: Api) -> None:
    demo = api.as_("demo")
    r = demo.post("/v2.0/networks", json={"networks": [{"network": {"name": "a"}},
                                                       {"network": {"name": "b", "shared": True}}]})
    neutron_error(r, 403, type_="PolicyNotAuthorized")
    assert api.get("/v2.0/networks").json()["networks"] == []
