"""Filters Neutron has that are not plain shown columns: a subnet's ``shared`` (its network's
flag, not shown on the subnet but ``is_filter`` in neutron-lib) and the networks' provider
attributes (their first segment's). Each is applied in SQL, on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from tests.api.rowcount import RowCounter
from tests.api.test_bad_input import neutron_error
from tests.conftest import Api, Config, live_servers, make_config


def ids(r: Any, collection: str) -> set[str]:
    assert r.status_code == 200, r.text
    return {i["id"] for i in r.json()[collection]}


def make_world(admin: Api, member: Api) -> dict[str, dict[str, Any]]:
    """A shared vxlan network, an admin's vlan and flat network, a member's own network: each
    with one subnet."""
    nets = {
        "shared": admin.create("network", shared=True, **{"provider:network_type": "vxlan",
                                                          "provider:segmentation_id": 101}),
        "vlan": admin.create("network", **{"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                                           "provider:segmentation_id": 200}),
        "flat": admin.create("network", **{"provider:network_type": "flat", "provider:physical_network": "physnet1"}),
        "mine": member.create("network", name="mine"),
    }
    world = {f"net-{k}": n for k, n in nets.items()}
    for i, (k, n) in enumerate(nets.items()):
        owner = member if k == "mine" else admin
        world[f"sub-{k}"] = owner.create("subnet", network_id=n["id"], ip_version=4, cidr=f"10.{i}.0.0/24")
    return world


def check_subnet_shared_filter(admin: Api, member: Api, world: dict[str, dict[str, Any]]) -> None:
    def subs(*names: str) -> set[str]:
        return {world[f"sub-{n}"]["id"] for n in names}

    for value in ("True", "true", "TRUE", "1"):
        assert ids(admin.get(f"/v2.0/subnets?shared={value}"), "subnets") == subs("shared"), value
    for value in ("False", "false", "FALSE", "0"):
        assert ids(admin.get(f"/v2.0/subnets?shared={value}"), "subnets") == subs("vlan", "flat", "mine"), value
    assert ids(admin.get("/v2.0/subnets?shared=true&shared=false"), "subnets") == subs("shared", "vlan", "flat",
                                                                                      "mine")
    assert ids(admin.get("/v2.0/subnets?shared=false&ip_version=4&cidr=10.1.0.0/24"), "subnets") == subs("vlan")
    # a member sees its own subnets and the shared network's, and filters within them
    assert ids(member.get("/v2.0/subnets?shared=true"), "subnets") == subs("shared")
    assert ids(member.get("/v2.0/subnets?shared=False"), "subnets") == subs("mine")
    # pages of a filtered list hold only matching subnets
    seen: list[str] = []
    url = "/v2.0/subnets?shared=false&limit=1"
    while url:
        r = admin.get(url).json()
        seen += [s["id"] for s in r["subnets"]]
        url = next((lk["href"].split("9696", 1)[-1] for lk in r.get("subnets_links", []) if lk["rel"] == "next"), "")
        url = url if r["subnets"] else ""
    assert sorted(seen) == sorted(subs("vlan", "flat", "mine"))
    # not shown, not settable, and a wrong value is a clean 400
    shown = admin.get(f"/v2.0/subnets/{world['sub-shared']['id']}").json()["subnet"]
    assert "shared" not in shown and "shared" not in admin.get("/v2.0/subnets?shared=true").json()["subnets"][0]
    neutron_error(admin.get("/v2.0/subnets?shared=perhaps"), 400, "shared", type_="HTTPBadRequest")
    neutron_error(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": world["net-vlan"]["id"], "ip_version": 4, "cidr": "10.9.0.0/24", "shared": True}}),
        400, "shared")
    # it follows the network's flag
    r = admin.put(f"/v2.0/networks/{world['net-shared']['id']}", json={"network": {"shared": False}})
    assert r.status_code == 200, r.text
    assert ids(admin.get("/v2.0/subnets?shared=true"), "subnets") == set()
    assert ids(member.get("/v2.0/subnets?shared=false"), "subnets") == subs("mine")


def check_provider_filters(admin: Api, member: Api, world: dict[str, dict[str, Any]]) -> None:
    def nets(*names: str) -> set[str]:
        return {world[f"net-{n}"]["id"] for n in names}

    def find(query: str) -> set[str]:
        return ids(admin.get(f"/v2.0/networks?{query}"), "networks")

    mine = admin.get(f"/v2.0/networks/{world['net-mine']['id']}").json()["network"]
    mine_type = mine["provider:network_type"]
    assert find("provider:network_type=vlan") == nets("vlan")
    assert find("provider:network_type=vlan&provider:network_type=flat") == nets("vlan", "flat")
    assert find("provider:network_type=vxlan") == nets("shared", *(["mine"] if mine_type == "vxlan" else []))
    assert find("provider:network_type=gre") == set()
    assert find("provider:physical_network=physnet1") == nets("vlan", "flat")
    assert find("provider:physical_network=physnet1&provider:physical_network=physnet2") == nets("vlan", "flat")
    assert find("provider:physical_network=physnet2") == set()
    assert find("provider:segmentation_id=200") == nets("vlan")
    assert find("provider:segmentation_id=101&provider:segmentation_id=200") == nets("shared", "vlan")
    assert find("provider:network_type=vlan&provider:physical_network=physnet1&provider:segmentation_id=200") == \
        nets("vlan")
    assert find("provider:network_type=flat&provider:segmentation_id=200") == set()
    neutron_error(admin.get("/v2.0/networks?provider:segmentation_id=x"), 400, "provider:segmentation_id")
    for key in ("provider:network_type", "provider:physical_network", "provider:segmentation_id"):
        neutron_error(member.get(f"/v2.0/networks?{key}=1"), 400, key)  # hidden from members, so not a filter


def test_subnet_shared_and_provider_filters(api: Api) -> None:
    member = api.as_("pm")
    world = make_world(api, member)
    check_provider_filters(api, member, world)
    check_subnet_shared_filter(api, member, world)


def test_subnet_shared_and_provider_filters_on_server_databases(cfg: Config, db_url: str) -> None:
    cfg.database.connection = db_url
    with live_servers(cfg, 1) as started, httpx.Client(base_url=started[0][1].url, timeout=60) as client:
        admin = Api(client)  # type: ignore[arg-type]
        member = admin.as_("pm")
        world = make_world(admin, member)
        check_provider_filters(admin, member, world)
        check_subnet_shared_filter(admin, member, world)


def test_the_filters_are_read_in_sql(tmp_path: Path) -> None:
    """Among 90 networks and subnets, one match costs a few rows, not a pass over all of them."""
    from neutrino import server

    srv = server.build(make_config(tmp_path, DEFAULT={"auth_strategy": "noauth"}))
    with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
        api = Api(client, srv)
        r = api.post("/v2.0/networks", json={"networks": [{"network": {"name": f"n{i}"}} for i in range(90)]})
        assert r.status_code == 201, r.text
        nets = r.json()["networks"]
        r = api.post("/v2.0/subnets", json={"subnets": [{"subnet": {
            "network_id": n["id"], "ip_version": 4, "cidr": f"10.{i}.0.0/24"}} for i, n in enumerate(nets)]})
        assert r.status_code == 201, r.text
        shared = api.create("network", shared=True, **{"provider:network_type": "vlan",
                                                       "provider:physical_network": "physnet1"})
        sub = api.create("subnet", network_id=shared["id"], ip_version=4, cidr="10.200.0.0/24")
        counter = RowCounter().attach(srv.db)
        for path, collection, want in (("/v2.0/subnets?shared=true", "subnets", sub["id"]),
                                       ("/v2.0/networks?provider:network_type=vlan", "networks", shared["id"]),
                                       ("/v2.0/networks?provider:physical_network=physnet1", "networks",
                                        shared["id"])):
            r, rows = counter.during(lambda path=path: api.get(path))  # type: ignore[misc]
            assert ids(r, collection) == {want}, path
            assert rows < 30, f"{path} read {rows} rows"
    srv.db.dispose()
