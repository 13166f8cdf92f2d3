"""Invariants that rest on reading other rows hold with two servers on one database.

PostgreSQL writers run REPEATABLE READ (``db/engine.py``), which catches two writers of one row
but not two that each read what the other writes: without a write guard on both sides
(``db/guards.py``) two servers both find no overlapping subnet and both create one, or both
count nine ports under a quota of ten. Each race is run many times across two server processes'
worth of engines and locks; MariaDB (SERIALIZABLE) must hold the same.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.conftest import Config, live_servers

ADMIN = {"X-Project-Id": "admin", "X-Roles": "admin,member"}


@contextmanager
def two_servers(cfg: Config, db_url: str) -> Iterator[Callable[..., httpx.Response]]:
    cfg.database.connection = db_url
    with live_servers(cfg, 2) as started:
        clients = [httpx.Client(base_url=live.url, timeout=60) for _, live in started]

        def call(i: int, method: str, path: str, body: Any = None, headers: dict[str, str] = ADMIN) -> httpx.Response:
            return clients[i % 2].request(method, path, json=body, headers=headers)
        try:
            yield call
        finally:
            for c in clients:
                c.close()


def race(n: int, fn: Callable[[int], httpx.Response]) -> list[int]:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return sorted(r.status_code for r in pool.map(fn, range(n)))


def test_no_two_overlapping_subnets_in_one_network(cfg: Config, db_url: str) -> None:
    with two_servers(cfg, db_url) as call:
        for k in range(6):
            net = call(0, "POST", "/v2.0/networks", {"network": {"name": f"n{k}"}}).json()["network"]
            codes = race(8, lambda i, net=net, k=k: call(i, "POST", "/v2.0/subnets", {"subnet": {
                "network_id": net["id"], "ip_version": 4, "cidr": f"10.{k}.{i % 2}.0/{23 + i % 2}"}}))
            made = call(0, "GET", f"/v2.0/subnets?network_id={net['id']}").json()["subnets"]
            assert codes.count(201) == len(made) == 1, (codes, [s["cidr"] for s in made])


def test_a_quota_holds_across_servers(cfg: Config, db_url: str) -> None:
    demo = {"X-Project-Id": "demo", "X-Roles": "member,reader"}
    with two_servers(cfg, db_url) as call:
        # ports without addresses: no IPAM run that every create would update (and so meet on)
        net = call(0, "POST", "/v2.0/networks", {"network": {"name": "q"}}, headers=demo).json()["network"]
        for limit in (4, 8, 12, 16, 20):
            assert call(0, "PUT", "/v2.0/quotas/demo", {"quota": {"port": limit}}).status_code == 200
            codes = race(12, lambda i: call(i, "POST", "/v2.0/ports", {"port": {"network_id": net["id"]}},
                                            headers=demo))
            have = call(0, "GET", "/v2.0/ports", headers=demo).json()["ports"]
            assert len(have) == limit and set(codes) <= {201, 409}, (limit, codes, len(have))


def test_unsharing_a_network_and_another_projects_port_never_both_succeed(cfg: Config, db_url: str) -> None:
    """Neutron refuses ``shared: false`` while another project has a port on the network (409)."""
    other = {"X-Project-Id": "other", "X-Roles": "member,reader"}
    with two_servers(cfg, db_url) as call:
        for k in range(8):
            net = call(0, "POST", "/v2.0/networks", {"network": {"name": f"s{k}", "shared": True}}).json()["network"]

            def act(i: int, net: dict[str, Any] = net, k: int = k) -> httpx.Response:
                if i == 0:
                    return call(k, "PUT", f"/v2.0/networks/{net['id']}", {"network": {"shared": False}})
                return call(k + 1, "POST", "/v2.0/ports", {"port": {"network_id": net["id"]}}, headers=other)
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                unshare, port = pool.map(act, range(2))
            shared = call(0, "GET", f"/v2.0/networks/{net['id']}").json()["network"]["shared"]
            ports = call(0, "GET", f"/v2.0/ports?network_id={net['id']}&project_id=other").json()["ports"]
            assert not (shared is False and ports), (unshare.status_code, port.status_code)
            assert {unshare.status_code, port.status_code} <= {200, 201, 404, 409}, (unshare.text, port.text)


def test_deleting_a_network_while_ports_are_made_on_it_gives_no_server_error(cfg: Config, db_url: str) -> None:
    """The delete checks "in use" on its snapshot; a port committed meanwhile makes the foreign
    key refuse the delete, and the rerun answers 409 NetworkInUse, never a 500."""
    with two_servers(cfg, db_url) as call:
        for k in range(6):
            net = call(0, "POST", "/v2.0/networks", {"network": {"name": f"d{k}"}}).json()["network"]

            def act(i: int, net: dict[str, Any] = net, k: int = k) -> httpx.Response:
                if i == 0:
                    return call(k, "DELETE", f"/v2.0/networks/{net['id']}")
                return call(k + i, "POST", "/v2.0/ports", {"port": {"network_id": net["id"]}})
            codes = race(4, act)
            assert 500 not in codes and set(codes) <= {201, 204, 404, 409}, codes


def test_a_project_id_an_admin_made_long_and_odd_still_guards(cfg: Config, db_url: str) -> None:
    """Guard keys carry project ids, which an admin may set (255 characters, any text): the key
    is a bound parameter, and one too long for its column is cut and completed by a digest."""
    odd = ("p'; DROP TABLE write_guards; --" + "x" * 255)[:255]
    with two_servers(cfg, db_url) as call:
        codes = race(4, lambda i: call(i, "POST", "/v2.0/networks", {"network": {"project_id": odd}}))
        assert codes == [201] * 4, codes  # the default quota (finite) is counted under the guard
        assert call(0, "GET", "/v2.0/networks").status_code == 200
    if db_url.startswith("postgresql"):
        from sqlalchemy import create_engine, text
        engine = create_engine(db_url)
        with engine.connect() as conn:
            keys = list(conn.execute(text("SELECT key FROM write_guards WHERE key LIKE 'quota:p%'")).scalars())
        engine.dispose()
        assert len(keys) == 1 and len(keys[0]) == 200 and "#" in keys[0], keys


def test_a_groups_stateful_flag_and_a_port_joining_it_never_both_succeed(cfg: Config, db_url: str) -> None:
    """A port's groups are all stateful or all stateless, and ``stateful`` may change only while
    no port uses the group (Neutron: 409 either way): a port joining ``default`` and a group
    while that group turns stateless must not end up with both. Port creates meet the change
    on one of the group's sharded guards, not on each other."""
    with two_servers(cfg, db_url) as call:
        net = call(0, "POST", "/v2.0/networks", {"network": {"name": "sg"}}).json()["network"]
        default = call(0, "GET", "/v2.0/security-groups?name=default").json()["security_groups"][0]["id"]
        for k in range(8):
            made = call(0, "POST", "/v2.0/security-groups", {"security_group": {"name": f"g{k}"}})
            sg = made.json()["security_group"]

            def act(i: int, sg: dict[str, Any] = sg, k: int = k) -> httpx.Response:
                if i == 0:
                    return call(k, "PUT", f"/v2.0/security-groups/{sg['id']}", {"security_group": {"stateful": False}})
                body = {"port": {"network_id": net["id"], "security_groups": [default, sg["id"]]}}
                return call(k + 1, "POST", "/v2.0/ports", body)
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                flip, port = pool.map(act, range(2))
            assert sorted((flip.status_code, port.status_code)) in ([200, 409], [201, 409]), (flip.text, port.text)


def test_every_subnet_create_and_delete_revises_its_network_once(cfg: Config, db_url: str) -> None:
    """Subnets made and removed at once on one network by two servers: each revises the network
    (Neutron's revises_on_change), and none of those revisions is lost to another."""
    with two_servers(cfg, db_url) as call:
        net = call(0, "POST", "/v2.0/networks", {"network": {"name": "rev"}}).json()["network"]
        start = net["revision_number"]
        made = race(8, lambda i: call(i, "POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "ip_version": 4, "cidr": f"10.9.{i}.0/24"}}))
        assert made == [201] * 8
        subs = call(0, "GET", f"/v2.0/subnets?network_id={net['id']}").json()["subnets"]
        gone = race(8, lambda i: call(i, "DELETE", f"/v2.0/subnets/{subs[i]['id']}"))
        assert gone == [204] * 8
        after = call(1, "GET", f"/v2.0/networks/{net['id']}").json()["network"]
        assert after["revision_number"] == start + 16 and after["subnets"] == []


def test_an_external_network_delete_and_floating_ip_associations_agree(cfg: Config, db_url: str) -> None:
    """Deleting an external network deletes its disassociated floating IPs (Neutron's BEFORE_DELETE
    callback) while another server associates them: each floating IP is either associated and
    kept, or deleted and its association refused (404); the router gateway keeps the network (409)."""
    demo = {"X-Project-Id": "demo", "X-Roles": "member,reader"}
    with two_servers(cfg, db_url) as call:
        ext = call(0, "POST", "/v2.0/networks", {"network": {"router:external": True}}).json()["network"]
        call(0, "POST", "/v2.0/subnets", {"subnet": {"network_id": ext["id"], "ip_version": 4,
                                                     "cidr": "203.0.113.0/24"}})
        net = call(0, "POST", "/v2.0/networks", {"network": {}}, headers=demo).json()["network"]
        sub = call(0, "POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4,
                                                           "cidr": "10.0.0.0/24"}}, headers=demo).json()["subnet"]
        router = call(0, "POST", "/v2.0/routers", {"router": {"external_gateway_info": {"network_id": ext["id"]}}},
                      headers=demo).json()["router"]
        call(0, "PUT", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]}, headers=demo)
        vms = [call(0, "POST", "/v2.0/ports", {"port": {"network_id": net["id"]}}, headers=demo).json()["port"]
               for _ in range(6)]
        for _round in range(3):
            fips = [call(0, "POST", "/v2.0/floatingips", {"floatingip": {"floating_network_id": ext["id"]}},
                         headers=demo).json()["floatingip"] for _ in vms]

            def act(i: int, fips: list[dict[str, Any]] = fips) -> httpx.Response:
                if i == len(vms):
                    return call(i, "DELETE", f"/v2.0/networks/{ext['id']}")
                return call(i, "PUT", f"/v2.0/floatingips/{fips[i]['id']}",
                            {"floatingip": {"port_id": vms[i]["id"]}}, headers=demo)
            with concurrent.futures.ThreadPoolExecutor(len(vms) + 1) as pool:
                answers = list(pool.map(act, range(len(vms) + 1)))
            assert answers[-1].status_code == 409, answers[-1].text
            left = {f["id"] for f in call(1, "GET", "/v2.0/floatingips", headers=demo).json()["floatingips"]}
            for fip, answer in zip(fips, answers, strict=False):
                assert answer.status_code in (200, 404), answer.text
                assert (answer.status_code == 200) == (fip["id"] in left), (answer.status_code, fip["id"] in left)
            for fip_id in left:  # free the ports for the next round
                assert call(0, "DELETE", f"/v2.0/floatingips/{fip_id}", headers=demo).status_code == 204
        # without the gateway, the network goes with its floating IPs
        for _ in range(3):
            call(0, "POST", "/v2.0/floatingips", {"floatingip": {"floating_network_id": ext["id"]}}, headers=demo)
        call(0, "PUT", f"/v2.0/routers/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]}, headers=demo)
        call(0, "DELETE", f"/v2.0/routers/{router['id']}", headers=demo)
        assert call(1, "DELETE", f"/v2.0/networks/{ext['id']}").status_code == 204
        assert call(0, "GET", "/v2.0/floatingips").json()["floatingips"] == []
