"""Attribute validators, the attribute engine and list-query parsing, without a server."""

from __future__ import annotations

import pytest

from neutrino.api import attributes, query
from neutrino.api import validators as v
from neutrino.api.definitions.networks import NETWORKS
from neutrino.api.definitions.ports import PORTS
from neutrino.context import Context
from neutrino.errors import HTTPBadRequest, MarkerNotFound
from neutrino.policy import Policy

MEMBER = Context(user_id="u", project_id="p", roles=frozenset({"member"}))
ADMIN = Context(user_id="a", project_id="admin", roles=frozenset({"admin", "member"}))


@pytest.mark.parametrize("value,ok", [("10.0.0.1", True), ("10.0.0.256", False), ("010.0.0.1", False),
                                      ("2001:db8::1", True), ("", False), (5, False)])
def test_ip_address(value: object, ok: bool) -> None:
    assert (v.ip_address(value) is None) is ok


@pytest.mark.parametrize("value,ok", [("10.0.0.0/24", True), ("10.0.0.1/24", False), ("10.0.0.0", False),
                                      ("2001:db8::/64", True), ("10.0.0.0/33", False)])
def test_subnet_cidr(value: str, ok: bool) -> None:
    assert (v.subnet_cidr(value) is None) is ok


def test_mac_uuid_boolean() -> None:
    assert v.mac_address("fa:16:3e:00:00:01") is None
    assert v.mac_address("01:16:3e:00:00:01") is not None  # multicast
    assert v.mac_address("zz:16:3e:00:00:01") is not None
    assert v.uuid_("3b9d8f1c-4f0e-4a4b-9d3e-2a7c1a0b9c11") is None and v.uuid_("nope") is not None
    assert v.to_boolean("True") is True and v.to_boolean("false") is False
    with pytest.raises(v.ConversionError):
        v.to_boolean("maybe")


def test_prepare_create_defaults() -> None:
    """Validation only: who may set ``shared`` or ``provider:*`` is the policy engine's question
    (tests/security/test_policy_*.py)."""
    body = attributes.prepare_create(NETWORKS, {"name": "x"}, MEMBER)
    assert body["admin_state_up"] is True and body["project_id"] == "p" and body["shared"] is False
    assert attributes.prepare_create(NETWORKS, {"shared": False}, MEMBER)["shared"] is False
    with pytest.raises(HTTPBadRequest, match="Unrecognized attribute"):
        attributes.prepare_create(NETWORKS, {"color": "red"}, MEMBER)
    with pytest.raises(HTTPBadRequest, match="not allowed in POST"):
        attributes.prepare_create(NETWORKS, {"status": "DOWN"}, MEMBER)
    with pytest.raises(HTTPBadRequest, match="not allowed for the current user"):
        attributes.prepare_create(NETWORKS, {"tenant_id": "other"}, MEMBER)
    assert attributes.prepare_create(NETWORKS, {"tenant_id": "other"}, ADMIN)["project_id"] == "other"
    with pytest.raises(HTTPBadRequest, match="Required attribute 'network_id'"):
        attributes.prepare_create(PORTS, {}, MEMBER)


def test_render_hides_what_the_policy_hides_and_applies_fields() -> None:
    item = {"id": "i", "project_id": "p", "name": "n", "provider:network_type": "vxlan", "shared": False}
    hidden = Policy().hidden(MEMBER, "network", list(NETWORKS.attrs), item)
    assert "provider:network_type" in hidden and "name" not in hidden
    assert "provider:network_type" not in attributes.render(NETWORKS, item, hidden, None)
    assert not Policy().hidden(ADMIN, "network", list(NETWORKS.attrs), item)
    assert attributes.render(NETWORKS, item, set(), None)["provider:network_type"] == "vxlan"
    assert attributes.render(NETWORKS, item, set(), ["name"]) == {"name": "n"}
    assert attributes.render(NETWORKS, item, set(), None)["tenant_id"] == "p"


def test_query_parse_sort_paginate_links() -> None:
    params = [("name", "a"), ("name", "b"), ("shared", "False"), ("sort_key", "name"), ("sort_dir", "desc"),
              ("limit", "2"), ("fields", "id,name")]
    q = query.parse(NETWORKS, params)
    assert q.filters == {"name": ["a", "b"], "shared": [False]} and q.sorts == [("name", False)]
    assert q.limit == 2 and q.fields == ["id", "name"]
    items = [{"id": str(i), "name": n} for i, n in enumerate("cab")]
    ordered = query.sort_items(items, q.sorts)
    assert [i["name"] for i in ordered] == ["c", "b", "a"]
    page = query.paginate(ordered, q)
    assert [i["name"] for i in page] == ["c", "b"]
    links = query.links("http://x/v2.0/networks", params, page, q)
    assert links[0]["rel"] == "next" and "marker=2" in links[0]["href"]
    q2 = query.parse(NETWORKS, [("limit", "2"), ("marker", "nope")])
    with pytest.raises(MarkerNotFound):
        query.paginate(ordered, q2)
    for bad in ([("limit", "-1")], [("sort_key", "bogus")], [("bogus", "1")], [("shared", "maybe")],
                [("sort_key", "name"), ("sort_key", "id"), ("sort_dir", "asc")]):
        with pytest.raises(HTTPBadRequest):
            query.parse(NETWORKS, bad)


def test_tag_filters() -> None:
    item = {"tags": ["a", "b"]}
    assert query.matches(item, {"tags": ["a,b"]}, {})
    assert not query.matches(item, {"tags": ["a,c"]}, {})
    assert query.matches(item, {"tags-any": ["c,b"]}, {})
    assert query.matches(item, {"not-tags": ["a,c"]}, {})
    assert not query.matches(item, {"not-tags-any": ["c,b"]}, {})


def test_links_follow_neutron_rules() -> None:
    items = [{"id": "a"}, {"id": "b"}]
    full = query.parse(NETWORKS, [("limit", "2")])
    rels = {link["rel"]: link["href"] for link in query.links("http://x/v2.0/networks", [("limit", "2")], items, full)}
    assert rels == {"next": "http://x/v2.0/networks?limit=2&marker=b",
                    "previous": "http://x/v2.0/networks?limit=2&marker=a&page_reverse=True"}
    short = query.links("http://x/v2.0/networks", [("limit", "3")], items, query.parse(NETWORKS, [("limit", "3")]))
    assert [link["rel"] for link in short] == ["previous"]
    rev_params = [("limit", "3"), ("marker", "c"), ("page_reverse", "True")]
    rev = query.links("http://x/v2.0/networks", rev_params, items, query.parse(NETWORKS, rev_params))
    assert [link["rel"] for link in rev] == ["next"] and rev[0]["href"].endswith("limit=3&marker=b")
