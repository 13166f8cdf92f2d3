"""The same API on PostgreSQL and MariaDB/MySQL: migrations, constraints and concurrent IPAM.

Each test makes a throwaway database on the server at loopback and drops it afterwards; where
no server answers, the test is skipped and says how to provide one.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx

from tests.conftest import Config, live_servers


def test_two_servers_on_one_database_race_safely(cfg: Config, db_url: str) -> None:
    """Two servers (as two API workers would be) share the database; requests alternate between
    them, so allocations race across processes' worth of engines and locks, not within one."""
    cfg.database.connection = db_url
    headers = {"X-Project-Id": "admin", "X-Roles": "admin,member"}
    with live_servers(cfg, 2) as started:
        urls = [live.url for _, live in started]

        def call(i: int, method: str, path: str, body: Any = None) -> Any:
            with httpx.Client(base_url=urls[i % 2], headers=headers, timeout=60) as cc:
                return cc.request(method, path, json=body)

        net = call(0, "POST", "/v2.0/networks", {"network": {"name": "n"}}).json()["network"]
        r = call(1, "POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4,
                                                          "cidr": "10.0.0.0/26"}})
        assert r.status_code == 201, r.text
        subnet = r.json()["subnet"]

        def create(i: int) -> Any:
            if i < 50:
                return call(i, "POST", "/v2.0/ports", {"port": {"network_id": net["id"]}})
            return call(i, "POST", "/v2.0/networks", {"network": {}})

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(create, range(70)))
        assert all(r.status_code == 201 for r in results), [r.text for r in results if r.status_code != 201]
        ports = [r.json()["port"] for r in results[:50]]
        nets = [r.json()["network"] for r in results[50:]] + [net]
        assert len({p["fixed_ips"][0]["ip_address"] for p in ports}) == 50
        assert len({p["mac_address"] for p in ports}) == 50
        assert len({n["provider:segmentation_id"] for n in nets}) == 21
        body = {"network": {"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                            "provider:segmentation_id": 120}}
        assert call(0, "POST", "/v2.0/networks", body).status_code == 201
        assert call(1, "POST", "/v2.0/networks", body).status_code == 409
        assert call(0, "DELETE", f"/v2.0/networks/{net['id']}").status_code == 409

        sg = call(0, "POST", "/v2.0/security-groups", {"security_group": {"name": "race"}}).json()["security_group"]
        rule = {"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress",
                                        "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}}
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            codes = sorted(pool.map(lambda i: call(i, "POST", "/v2.0/security-group-rules", rule).status_code,
                                    range(10)))
        assert codes == [201] + [409] * 9, codes

        # read-modify-write across servers: no route may be lost (extraroute-atomic)
        router = call(0, "POST", "/v2.0/routers", {"router": {"name": "r"}}).json()["router"]
        call(1, "PUT", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})

        def add_route(i: int) -> int:
            route = {"destination": f"192.168.{i}.0/24", "nexthop": "10.0.0.9"}
            return call(i, "PUT", f"/v2.0/routers/{router['id']}/add_extraroutes",
                        {"router": {"routes": [route]}}).status_code

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            assert set(pool.map(add_route, range(10))) == {200}
        routes = call(0, "GET", f"/v2.0/routers/{router['id']}").json()["router"]["routes"]
        assert len(routes) == 10, routes


def test_gre_keys_use_all_32_bits(cfg: Config, db_url: str) -> None:
    """A GRE key is 32 bits unsigned, as in Neutron: the highest is stored, filtered and unique
    (a signed INTEGER column refused everything above 2147483647 with a 400)."""
    cfg.database.connection = db_url
    headers = {"X-Project-Id": "admin", "X-Roles": "admin,member"}
    body = {"network": {"provider:network_type": "gre", "provider:segmentation_id": 2**32 - 1}}
    with live_servers(cfg, 1) as started, httpx.Client(base_url=started[0][1].url, headers=headers,
                                                       timeout=60) as c:
        r = c.post("/v2.0/networks", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["network"]["provider:segmentation_id"] == 2**32 - 1
        found = c.get("/v2.0/networks", params={"provider:segmentation_id": str(2**32 - 1)}).json()["networks"]
        assert [n["id"] for n in found] == [r.json()["network"]["id"]]
        assert c.post("/v2.0/networks", json=body).status_code == 409
        body["network"]["provider:segmentation_id"] = 2**32
        assert c.post("/v2.0/networks", json=body).status_code == 400
