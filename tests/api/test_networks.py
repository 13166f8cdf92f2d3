"""Networks over HTTP: defaults, provider segments, MTU, visibility, errors, list semantics."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api


def err(r: Any) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"NeutronError"}, body
    assert set(body["NeutronError"]) == {"type", "message", "detail"}
    return body["NeutronError"]  # type: ignore[no-any-return]


def test_create_defaults_and_vxlan_mtu(api: Api) -> None:
    net = api.create("network", name="n1")
    assert net["admin_state_up"] is True and net["shared"] is False and net["router:external"] is False
    assert net["status"] == "ACTIVE" and net["subnets"] == [] and net["revision_number"] == 0
    assert net["provider:network_type"] == "vxlan" and net["provider:segmentation_id"] == 1
    assert net["mtu"] == 1450 and net["tenant_id"] == net["project_id"] == "admin"
    assert net["created_at"].endswith("Z") and net["port_security_enabled"] is True


def test_provider_types_mtu_and_duplicates(api: Api) -> None:
    expect = {"vxlan": 1450, "gre": 1458, "geneve": 1442, "vlan": 1500, "flat": 1500, "local": 1500}
    for net_type, mtu in expect.items():
        body: dict[str, Any] = {"provider:network_type": net_type}
        if net_type in ("vlan", "flat"):
            body["provider:physical_network"] = "physnet1"
        if net_type in ("vxlan", "gre", "geneve", "vlan"):
            body["provider:segmentation_id"] = 150
        net = api.create("network", **body)
        assert net["mtu"] == mtu, net_type
        r = api.post("/v2.0/networks", json={"network": body})
        if net_type != "local":
            assert r.status_code == 409, (net_type, r.text)
            assert err(r)["type"] in ("VlanIdInUse", "TunnelIdInUse", "FlatNetworkInUse")


def test_bad_provider_input_is_400(api: Api) -> None:
    cases = [
        {"provider:network_type": "bogus"},
        {"provider:network_type": "vlan"},
        {"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 5000},
        {"provider:network_type": "flat", "provider:physical_network": "p", "provider:segmentation_id": 3},
        {"provider:network_type": "vxlan", "provider:physical_network": "physnet1"},
    ]
    for body in cases:
        r = api.post("/v2.0/networks", json={"network": body})
        assert r.status_code == 400, (body, r.text)
    assert api.get("/v2.0/networks").json()["networks"] == []


def test_exhausted_range_is_503(cfg: Any) -> None:
    from starlette.testclient import TestClient

    from neutrino import server

    cfg.ml2.vxlan_vni_ranges = ["10:11"]
    srv = server.build(cfg)
    with TestClient(srv.app) as client:
        a = Api(client)
        a.create("network")
        a.create("network")
        r = a.post("/v2.0/networks", json={"network": {}})
        assert r.status_code == 503 and err(r)["type"] == "NoNetworkAvailable"


def test_member_cannot_set_provider_or_shared(api: Api) -> None:
    member = api.as_("p1")
    r = member.post("/v2.0/networks", json={"network": {"provider:network_type": "local"}})
    assert r.status_code == 403 and err(r)["type"] == "PolicyNotAuthorized"
    r = member.post("/v2.0/networks", json={"network": {"shared": True}})
    assert r.status_code == 403
    net = member.create("network", shared=False)
    assert "provider:network_type" not in net


def test_visibility_shared_external_and_404(api: Api) -> None:
    a, b = api.as_("pa"), api.as_("pb")
    mine = a.create("network", name="a-private")
    shared = api.create("network", name="shared", shared=True)
    ext = api.create("network", name="ext", **{"router:external": True})
    names = {n["name"] for n in b.get("/v2.0/networks").json()["networks"]}
    assert names == {"shared", "ext"}
    r = b.get(f"/v2.0/networks/{mine['id']}")
    assert r.status_code == 404 and err(r)["type"] == "NetworkNotFound"
    assert err(r)["message"] == f"Network {mine['id']} could not be found."
    assert b.put(f"/v2.0/networks/{shared['id']}", json={"network": {"name": "x"}}).status_code == 403
    assert b.delete(f"/v2.0/networks/{ext['id']}").status_code == 403
    reader = api.as_("pa", roles="reader")
    assert reader.get(f"/v2.0/networks/{mine['id']}").status_code == 200
    assert reader.post("/v2.0/networks", json={"network": {}}).status_code == 403


def test_subnets_of_external_networks_are_visible_and_say_so(api: Api) -> None:
    """Neutron (subnet-external-network, 2024.1): another project's member sees the subnets of an
    external network (its access_as_external RBAC entry for '*', and get_subnet's
    ``rule:external_network``) and each says ``router:external``; the subnets of another
    project's network that is neither shared nor external stay hidden (404 on show). Tempest's
    test_external_network_visibility expects them only when this alias is advertised."""
    exts = {e["alias"] for e in api.get("/v2.0/extensions").json()["extensions"]}
    assert "subnet-external-network" in exts
    ext = api.create("network", name="ext", **{"router:external": True})
    ext_sub = api.create("subnet", network_id=ext["id"], ip_version=4, cidr="203.0.113.0/24")
    private = api.create("network", name="private")
    private_sub = api.create("subnet", network_id=private["id"], ip_version=4, cidr="10.1.0.0/24")
    assert ext_sub["router:external"] is True and private_sub["router:external"] is False
    b = api.as_("pb")
    mine = b.create("network")
    mine_sub = b.create("subnet", network_id=mine["id"], ip_version=4, cidr="10.2.0.0/24")
    seen = {s["id"]: s for s in b.get("/v2.0/subnets").json()["subnets"]}
    assert set(seen) == {ext_sub["id"], mine_sub["id"]}
    assert seen[ext_sub["id"]]["router:external"] is True and seen[mine_sub["id"]]["router:external"] is False
    shown = b.get(f"/v2.0/subnets/{ext_sub['id']}")
    assert shown.status_code == 200 and shown.json()["subnet"]["router:external"] is True
    r = b.get(f"/v2.0/subnets/{private_sub['id']}")
    assert r.status_code == 404 and err(r)["type"] == "SubnetNotFound"
    listed = b.get(f"/v2.0/subnets?network_id={ext['id']}").json()["subnets"]
    assert [s["id"] for s in listed] == [ext_sub["id"]]
    for value, wanted in (("True", {ext_sub["id"]}), ("false", {mine_sub["id"]})):
        got = b.get(f"/v2.0/subnets?router:external={value}").json()["subnets"]
        assert {s["id"] for s in got} == wanted, value
    only = b.get(f"/v2.0/subnets/{ext_sub['id']}?fields=router:external").json()["subnet"]
    assert only == {"router:external": True}
    # read-only, as in neutron-lib (allow_post and allow_put False)
    r = b.post("/v2.0/subnets", json={"subnet": {"network_id": mine["id"], "ip_version": 4, "cidr": "10.3.0.0/24",
                                                 "router:external": True}})
    assert r.status_code == 400
    r = api.put(f"/v2.0/subnets/{private_sub['id']}", json={"subnet": {"router:external": True}})
    assert r.status_code == 400 and "Cannot update read-only attribute router:external" in err(r)["message"]
    # the network turning internal takes its subnets with it
    assert api.put(f"/v2.0/networks/{ext['id']}", json={"network": {"router:external": False}}).status_code == 200
    assert b.get(f"/v2.0/subnets/{ext_sub['id']}").status_code == 404
    assert api.get(f"/v2.0/subnets/{ext_sub['id']}").json()["subnet"]["router:external"] is False


def test_update_revision_and_if_match(api: Api) -> None:
    net = api.create("network", name="a")
    r = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "b"}})
    assert r.status_code == 200 and r.json()["network"]["revision_number"] == 1
    r = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "c"}},
                headers={"If-Match": "revision_number=0"})
    assert r.status_code == 412
    r = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "c"}},
                headers={"If-Match": "revision_number=1"})
    assert r.status_code == 200 and r.json()["network"]["name"] == "c"
    r = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"id": "x"}})
    assert r.status_code == 400 and "Cannot update read-only attribute id" in err(r)["message"]
    r = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": 9000}})
    assert r.status_code == 400 and "maximum is 1450" in err(r)["message"]


def test_bad_bodies(api: Api) -> None:
    cases = [
        (b"{not json", 400, "MalformedRequestBody"),
        (b"[]", 400, "HTTPBadRequest"),
        (b'{"net": {}}', 400, "HTTPBadRequest"),
        (b'{"network": {"foo": 1}}', 400, "HTTPBadRequest"),
        (b'{"network": {"admin_state_up": "maybe"}}', 400, "HTTPBadRequest"),
        (b'{"network": {"name": 5}}', 400, "HTTPBadRequest"),
        (b'{"network": {"id": "x"}}', 400, "HTTPBadRequest"),
        (b'{"network": {"tenant_id": "other"}}', 400, "HTTPBadRequest"),
    ]
    member = api.as_("pm")
    for raw, status, kind in cases:
        r = member.post("/v2.0/networks", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == status, (raw, r.text)
        assert err(r)["type"] == kind, (raw, r.text)
    big = b'{"network": {"name": "' + b"x" * (2 * 1024 * 1024) + b'"}}'
    assert api.post("/v2.0/networks", content=big).status_code == 413
    assert api.get("/v2.0/networks").json()["networks"] == []
    assert api.get("/v2.0/networks/not-a-uuid").status_code == 404
    assert api.get("/v2.0/nothing").status_code == 404


def test_bulk_create_is_atomic(api: Api) -> None:
    r = api.post("/v2.0/networks", json={"networks": [{"name": "a"}, {"name": "b"}]})
    assert r.status_code == 201 and [n["name"] for n in r.json()["networks"]] == ["a", "b"]
    r = api.post("/v2.0/networks", json={"networks": [{"name": "c"}, {"name": 7}]})
    assert r.status_code == 400
    r = api.post("/v2.0/networks", json={"networks": [{"name": "c"}, {"provider:network_type": "vlan",
                 "provider:physical_network": "physnet1", "provider:segmentation_id": 100},
                 {"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                  "provider:segmentation_id": 100}]})
    assert r.status_code == 409
    assert sorted(n["name"] for n in api.get("/v2.0/networks").json()["networks"]) == ["a", "b"]


def test_fields_filters_sort_and_pagination(api: Api) -> None:
    for i in range(5):
        api.create("network", name=f"n{i}", admin_state_up=i % 2 == 0, tags=[f"t{i % 2}", "all"])
    r = api.get("/v2.0/networks?fields=id&fields=name")
    assert all(set(n) == {"id", "name"} for n in r.json()["networks"])
    r = api.get("/v2.0/networks?admin_state_up=false")
    assert sorted(n["name"] for n in r.json()["networks"]) == ["n1", "n3"]
    r = api.get("/v2.0/networks?name=n1&name=n2")
    assert sorted(n["name"] for n in r.json()["networks"]) == ["n1", "n2"]
    assert len(api.get("/v2.0/networks?tags=t0,all").json()["networks"]) == 3
    assert len(api.get("/v2.0/networks?tags-any=t1").json()["networks"]) == 2
    assert len(api.get("/v2.0/networks?not-tags=t1").json()["networks"]) == 3
    assert len(api.get("/v2.0/networks?not-tags-any=t0&not-tags-any=t1").json()["networks"]) == 0
    r = api.get("/v2.0/networks?bogus=1")
    assert r.status_code == 400 and "[bogus] is invalid attribute for filtering" in err(r)["message"]
    r = api.get("/v2.0/networks?sort_key=name&sort_dir=desc")
    assert [n["name"] for n in r.json()["networks"]] == ["n4", "n3", "n2", "n1", "n0"]
    assert api.get("/v2.0/networks?sort_key=bogus").status_code == 400
    seen: list[str] = []
    url = "/v2.0/networks?sort_key=name&sort_dir=asc&limit=2"
    while url:
        body = api.get(url).json()
        seen += [n["name"] for n in body["networks"]]
        nxt = [link["href"] for link in body.get("networks_links", []) if link["rel"] == "next"]
        url = nxt[0].replace("http://127.0.0.1:9696", "") if nxt else ""
    assert seen == ["n0", "n1", "n2", "n3", "n4"]
    r = api.get("/v2.0/networks?limit=2&marker=00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404


def test_tags_subresource(api: Api) -> None:
    net = api.create("network")
    base = f"/v2.0/networks/{net['id']}/tags"
    assert api.put(base + "/red").status_code == 201
    assert api.get(base + "/red").status_code == 204
    assert api.get(base + "/blue").status_code == 404
    assert api.put(base, json={"tags": ["a", "b"]}).json() == {"tags": ["a", "b"]}
    assert api.delete(base + "/a").status_code == 204
    assert api.get(base).json() == {"tags": ["b"]}
    assert api.delete(base).status_code == 204
    assert api.get(f"/v2.0/networks/{net['id']}").json()["network"]["tags"] == []


def test_delete_releases_segment(api: Api) -> None:
    net = api.create("network", **{"provider:network_type": "vxlan", "provider:segmentation_id": 77})
    assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
    api.create("network", **{"provider:network_type": "vxlan", "provider:segmentation_id": 77})
    assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 404


def test_extensions_list_only_served_aliases(api: Api) -> None:
    exts = {e["alias"]: e for e in api.get("/v2.0/extensions").json()["extensions"]}
    for alias in ("provider", "external-net", "net-mtu", "binding", "port-security", "pagination", "sorting"):
        assert alias in exts
    assert set(exts["provider"]) == {"alias", "name", "description", "updated", "links"}
    assert api.get("/v2.0/extensions/provider").json()["extension"]["alias"] == "provider"
    assert api.get("/v2.0/extensions/nope").status_code == 404
    served = {r["collection"] for r in api.get("/v2.0").json()["resources"]}
    assert "routers" in served and "router" in exts and "quotas" in exts
    assert not {"dvr", "l3-ha", "segment", "rbac-policies", "subnet_allocation"} & set(exts)


def test_version_documents(api: Api) -> None:
    doc = api.get("/").json()
    assert doc["versions"][0]["id"] == "v2.0" and doc["versions"][0]["status"] == "CURRENT"
    assert "networks" in {r["collection"] for r in api.get("/v2.0/").json()["resources"]}


def test_request_id_header(api: Api) -> None:
    assert api.get("/v2.0/networks").headers["x-openstack-request-id"].startswith("req-")
    assert api.get("/v2.0/networks/nope").headers["x-openstack-request-id"].startswith("req-")


def test_admin_only_attributes_are_not_filterable_by_members(api: Api) -> None:
    """Filtering or sorting on provider:* would reveal what the response hides from members."""
    ext = api.create("network", **{"router:external": True, "provider:network_type": "vxlan",
                                  "provider:segmentation_id": 42})
    member = api.as_("pm")
    for query in ("provider:segmentation_id=42", "sort_key=provider:segmentation_id"):
        r = member.get(f"/v2.0/networks?{query}")
        assert r.status_code == 400, (query, r.text)
    assert [n["id"] for n in api.get("/v2.0/networks?provider:segmentation_id=42").json()["networks"]] == [ext["id"]]


def test_unsharing_a_network_other_projects_use_is_409(api: Api) -> None:
    net = api.create("network", shared=True)
    api.create("subnet", network_id=net["id"], ip_version=4, cidr="10.0.0.0/24")
    api.as_("pb").create("port", network_id=net["id"])
    r = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"shared": False}})
    assert r.status_code == 409 and err(r)["type"] == "InvalidSharedSetting"


def test_timestamp_filters_match_exact_values(api: Api) -> None:
    net = api.create("network")
    found = api.get(f"/v2.0/networks?created_at={net['created_at']}").json()["networks"]
    assert [n["id"] for n in found] == [net["id"]]
    assert api.get("/v2.0/networks?created_at=garbage").json()["networks"] == []


def test_network_in_use_names_its_ports_as_neutron_does(api: Api) -> None:
    """neutron's _ensure_network_not_in_use: the 409's message names the ports in the way."""
    net = api.create("network")
    ports = sorted(api.create("port", network_id=net["id"])["id"] for _ in range(2))
    r = api.delete(f"/v2.0/networks/{net['id']}")
    assert r.status_code == 409, r.text
    assert r.json()["NeutronError"] == {
        "type": "NetworkInUse", "detail": "",
        "message": f"Unable to complete operation on network {net['id']}. There are one or more ports still in use "
                   f"on the network, id for these ports is: {','.join(ports)}."}
