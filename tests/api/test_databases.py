"""The same API on PostgreSQL and MariaDB/MySQL: migrations, constraints and concurrent IPAM.

Each test makes a throwaway database on the server at loopback and drops it afterwards; where
no server answers, the test is skipped and says how to provide one.
"""

from __future__ import annotations

import concurrent.futures
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import Config, LiveServer, free_port

ADMIN_URLS = {
    "postgresql": os.environ.get("NEUTRINO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "mysql": os.environ.get("NEUTRINO_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"),
}


@pytest.fixture(params=["postgresql", "mysql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    kind = request.param
    admin_url = ADMIN_URLS[kind]
    name = f"neutrino_t_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means skip
        pytest.skip(f"{kind} not reachable at {admin_url.split('@')[-1]} ({type(exc).__name__}); start it "
                    f"or set NEUTRINO_TEST_{'PG' if kind == 'postgresql' else 'MYSQL'}_URL")
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if kind == "postgresql" else ""
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
        admin.dispose()


def test_concurrent_ports_and_segments(cfg: Config, db_url: str) -> None:
    from neutrino import server

    cfg.database.connection = db_url
    port = free_port()
    cfg.DEFAULT.bind = f"127.0.0.1:{port}"
    srv = server.build(cfg)
    headers = {"X-Project-Id": "admin", "X-Roles": "admin,member"}
    try:
        with LiveServer(srv.app, port) as live, httpx.Client(base_url=live.url, headers=headers, timeout=60) as c:
            net = c.post("/v2.0/networks", json={"network": {"name": "n"}}).json()["network"]
            r = c.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                         "cidr": "10.0.0.0/26"}})
            assert r.status_code == 201, r.text
            subnet = r.json()["subnet"]

            def create(kind: str) -> Any:
                with httpx.Client(base_url=live.url, headers=headers, timeout=60) as cc:
                    if kind == "port":
                        return cc.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
                    return cc.post("/v2.0/networks", json={"network": {}})

            with concurrent.futures.ThreadPoolExecutor(25) as pool:
                results = list(pool.map(create, ["port"] * 50 + ["network"] * 20))
            assert all(r.status_code == 201 for r in results), [r.text for r in results if r.status_code != 201]
            ports = [r.json()["port"] for r in results[:50]]
            nets = [r.json()["network"] for r in results[50:]] + [net]
            assert len({p["fixed_ips"][0]["ip_address"] for p in ports}) == 50
            assert len({p["mac_address"] for p in ports}) == 50
            assert len({n["provider:segmentation_id"] for n in nets}) == 21
            body = {"network": {"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                                "provider:segmentation_id": 120}}
            assert c.post("/v2.0/networks", json=body).status_code == 201
            assert c.post("/v2.0/networks", json=body).status_code == 409
            assert c.delete(f"/v2.0/networks/{net['id']}").status_code == 409
            sg = c.post("/v2.0/security-groups", json={"security_group": {"name": "race"}}).json()["security_group"]
            rule = {"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress",
                                            "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}}

            def add_rule(_: int) -> int:
                with httpx.Client(base_url=live.url, headers=headers, timeout=60) as cc:
                    return cc.post("/v2.0/security-group-rules", json=rule).status_code

            with concurrent.futures.ThreadPoolExecutor(10) as pool:
                codes = sorted(pool.map(add_rule, range(10)))
            assert codes == [201] + [409] * 9, codes
            # read-modify-write under concurrency: no route may be lost (extraroute-atomic)
            r = c.post("/v2.0/routers", json={"router": {"name": "r"}}).json()["router"]
            c.put(f"/v2.0/routers/{r['id']}/add_router_interface", json={"subnet_id": subnet["id"]})

            def add_route(i: int) -> int:
                route = {"destination": f"192.168.{i}.0/24", "nexthop": "10.0.0.9"}
                with httpx.Client(base_url=live.url, headers=headers, timeout=60) as cc:
                    return cc.put(f"/v2.0/routers/{r['id']}/add_extraroutes",
                                  json={"router": {"routes": [route]}}).status_code

            with concurrent.futures.ThreadPoolExecutor(10) as pool:
                assert set(pool.map(add_route, range(10))) == {200}
            routes = c.get(f"/v2.0/routers/{r['id']}").json()["router"]["routes"]
            assert len(routes) == 10, routes
    finally:
        srv.db.dispose()
