"""A retried transaction re-runs on an untouched copy of the request (issue 7, section 4).

On PostgreSQL and MariaDB a write can lose a race (serialization failure, deadlock) and
``Database.transaction`` runs it again. Here the database driver's own transient error is
raised on the first attempt's write of the resource, *after* the service has run over the
request body, so the real retry path runs; every field of the request must still land.
Two server processes share the database: the one in the test process takes the writes (and
the injected failure), a ``neutrino server`` process reads the result back, so what is checked
is what was committed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, event, text

from neutrino.db.engine import Database
from neutrino.db.frozen import ReadOnlyInputError
from tests.conftest import Config
from tests.server_process import here_and_there

# binding:profile is Neutron's service_api rule (Nova sets it), so the writer holds the service role too
ADMIN = {"X-Project-Id": "admin", "X-Roles": "admin,member,reader,service"}


def _transient_error(dialect: str) -> Exception:
    """The exception the driver itself raises when the server aborts a transaction in a race."""
    if dialect == "postgresql":
        import psycopg

        return psycopg.errors.SerializationFailure("could not serialize access due to concurrent update")
    if dialect in ("mysql", "mariadb"):
        import pymysql

        return pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction")
    return sqlite3.OperationalError("database is locked")


@contextmanager
def fail_first_write(db: Database, table: str) -> Iterator[list[str]]:
    """Make the first UPDATE or INSERT of ``table`` on ``db`` fail as a lost race would.

    Yields the statements that failed, so the test can prove the retry really happened.
    """
    failed: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> Any:
        words = statement.split()
        verb = words[0].upper() if words else ""
        target = (words[2] if verb == "INSERT" else words[1] if verb == "UPDATE" else "").strip('`"')
        if not failed and target == table:
            failed.append(statement)
            raise _transient_error(db.engine.dialect.name)
        return statement, params

    event.listen(db.engine, "before_cursor_execute", before, retval=True)
    try:
        yield failed
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


@contextmanager
def conflicting_transaction(db: Database, url: str, table: str, row_id: str) -> Iterator[list[BaseException]]:
    """Just before the server's first write of ``table`` (its service has read the row and run
    over the request), another connection changes that row, so the database server itself
    aborts the server's transaction: PostgreSQL with a serialization failure (the row changed
    after the transaction's snapshot), MariaDB with a deadlock (both hold a shared lock on the
    row and want it exclusively; the other side has written more, so InnoDB picks ours).

    Yields the errors the database raised to the server.
    """
    other = create_engine(url)
    raised: list[BaseException] = []
    fired = threading.Event()
    holder: list[threading.Thread] = []
    touch = text(f"UPDATE {table} SET name = name WHERE id = :id")

    def hold_and_collide(locked: threading.Event) -> None:
        with other.connect() as conn, conn.begin():
            conn.execute(text("CREATE TEMPORARY TABLE weight (n INT)"))
            conn.execute(text("INSERT INTO weight (n) VALUES " + ",".join(f"({n})" for n in range(2000))))
            conn.execute(text(f"SELECT id FROM {table} WHERE id = :id LOCK IN SHARE MODE"), {"id": row_id})
            locked.set()
            time.sleep(0.5)  # the server's UPDATE now waits for this shared lock
            conn.execute(touch, {"id": row_id})

    def before(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> Any:
        if not fired.is_set() and statement.split()[:2] == ["UPDATE", table]:
            fired.set()
            if db.engine.dialect.name == "postgresql":
                with other.begin() as conn:
                    conn.execute(touch, {"id": row_id})
            else:
                locked = threading.Event()
                holder.append(threading.Thread(target=hold_and_collide, args=(locked,)))
                holder[0].start()
                assert locked.wait(30)
        return statement, params

    def on_error(ctx: Any) -> None:
        raised.append(ctx.original_exception)

    event.listen(db.engine, "before_cursor_execute", before, retval=True)
    event.listen(db.engine, "handle_error", on_error)
    try:
        yield raised
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "handle_error", on_error)
        for thread in holder:
            thread.join(60)
        other.dispose()


@pytest.fixture
def two(cfg: Config, db_url: str, tmp_path: Path) -> Iterator[tuple[Database, httpx.Client, httpx.Client]]:
    """(database of the writing server, client of the writing server, client of the other process)."""
    with here_and_there(cfg, db_url, tmp_path / "reader") as (writer, writer_live, reader):
        with httpx.Client(base_url=writer_live.url, headers=ADMIN, timeout=60) as w, \
                httpx.Client(base_url=reader.url, headers=ADMIN, timeout=60) as r:
            yield writer.db, w, r


def _ok(resp: httpx.Response, code: int = 200) -> Any:
    assert resp.status_code == code, resp.text
    return resp.json()


def _subset(expected: dict[str, Any], got: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) != v}


def test_retried_port_create_and_update_keep_every_field(
        two: tuple[Database, httpx.Client, httpx.Client]) -> None:
    db, w, r = two
    net = _ok(w.post("/v2.0/networks", json={"network": {"name": "n"}}), 201)["network"]
    sub = _ok(w.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                        "cidr": "10.9.0.0/24"}}), 201)["subnet"]
    sg = _ok(w.post("/v2.0/security-groups", json={"security_group": {"name": "g"}}), 201)["security_group"]
    create = {"network_id": net["id"], "name": "p", "description": "d", "mac_address": "fa:16:3e:00:00:01",
              "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.9.0.10"}], "security_groups": [sg["id"]],
              "allowed_address_pairs": [{"ip_address": "10.9.0.200", "mac_address": "fa:16:3e:00:00:08"}],
              "binding:host_id": "host-c", "binding:profile": {"k": "v"},
              "extra_dhcp_opts": [{"opt_name": "tftp-server", "opt_value": "10.9.0.5", "ip_version": 4}],
              "device_id": "dev-1", "device_owner": "compute:nova", "admin_state_up": False}
    with fail_first_write(db, "ports") as failed:
        port = _ok(w.post("/v2.0/ports", json={"port": create}), 201)["port"]
    assert failed, "the first attempt did not fail: the retry path did not run"
    update = {"name": "p2", "description": "d2", "mac_address": "fa:16:3e:00:00:02",
              "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.9.0.20"}], "security_groups": [],
              "allowed_address_pairs": [{"ip_address": "10.9.0.201", "mac_address": "fa:16:3e:00:00:09"}],
              "binding:host_id": "host-d", "binding:profile": {"k": "w"}, "binding:vnic_type": "direct",
              "extra_dhcp_opts": [{"opt_name": "tftp-server", "opt_value": "10.9.0.6", "ip_version": 4}],
              "device_id": "dev-2", "admin_state_up": True, "port_security_enabled": True}
    _check_port(create, port, _ok(r.get(f"/v2.0/ports/{port['id']}"))["port"])
    with fail_first_write(db, "ports") as failed:
        answered = _ok(w.put(f"/v2.0/ports/{port['id']}", json={"port": update}))["port"]
    assert failed, "the first attempt did not fail: the retry path did not run"
    stored = _ok(r.get(f"/v2.0/ports/{port['id']}"))["port"]
    _check_port(update, answered, stored)
    assert stored["revision_number"] == port["revision_number"] + 1


def _check_port(body: dict[str, Any], answered: dict[str, Any], stored: dict[str, Any]) -> None:
    """Every field of the request, in the answer and in what the other server reads back."""
    expected = {k: v for k, v in body.items() if k != "network_id"}
    expected["fixed_ips"] = [{"subnet_id": f["subnet_id"], "ip_address": f["ip_address"]} for f in body["fixed_ips"]]
    assert _subset(expected, answered) == {}
    assert _subset(expected, stored) == {}


def test_retried_writes_of_every_resource_keep_every_field(
        two: tuple[Database, httpx.Client, httpx.Client]) -> None:
    db, w, r = two
    ext = _ok(w.post("/v2.0/networks", json={"network": {"name": "ext", "router:external": True}}), 201)["network"]
    _ok(w.post("/v2.0/subnets", json={"subnet": {"network_id": ext["id"], "ip_version": 4,
                                                  "cidr": "198.51.100.0/24"}}), 201)
    net = _ok(w.post("/v2.0/networks", json={"network": {"name": "n"}}), 201)["network"]
    sub = _ok(w.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                        "cidr": "10.8.0.0/24"}}), 201)["subnet"]
    router = _ok(w.post("/v2.0/routers", json={"router": {"name": "r"}}), 201)["router"]
    _ok(w.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}))

    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("networks", "network", net["id"], {"name": "n2", "description": "nd", "mtu": 1400,
                                            "admin_state_up": False, "shared": True}),
        ("subnets", "subnet", sub["id"], {
            "name": "s2", "description": "sd", "gateway_ip": "10.8.0.1",
            "allocation_pools": [{"start": "10.8.0.100", "end": "10.8.0.150"}],
            "dns_nameservers": ["10.8.0.2"], "enable_dhcp": False,
            "host_routes": [{"destination": "172.16.0.0/16", "nexthop": "10.8.0.3"}]}),
        ("routers", "router", router["id"], {
            "name": "r2", "description": "rd", "admin_state_up": False,
            "routes": [{"destination": "172.17.0.0/16", "nexthop": "10.8.0.4"}],
            "external_gateway_info": {"network_id": ext["id"], "enable_snat": False}}),
    ]
    for table, member, id_, body in cases:
        with fail_first_write(db, table) as failed:
            answered = _ok(w.put(f"/v2.0/{table}/{id_}", json={member: body}))[member]
        assert failed, f"{table}: the first attempt did not fail: the retry path did not run"
        stored = _ok(r.get(f"/v2.0/{table}/{id_}"))[member]
        for got in (answered, stored):
            if member == "router":
                gw = got["external_gateway_info"] or {}
                assert (gw.get("network_id"), gw.get("enable_snat")) == (ext["id"], False), got
                got = {k: val for k, val in got.items() if k != "external_gateway_info"}
                body = {k: val for k, val in body.items() if k != "external_gateway_info"}
            assert _subset(body, got) == {}, (table, got)

    routes = [{"destination": f"172.{n}.0.0/16", "nexthop": "10.8.0.5"} for n in (18, 19)]
    with fail_first_write(db, "routers") as failed:
        _ok(w.put(f"/v2.0/routers/{router['id']}/add_extraroutes", json={"router": {"routes": routes}}))
    assert failed
    stored = _ok(r.get(f"/v2.0/routers/{router['id']}"))["router"]["routes"]
    assert all(route in stored for route in routes), stored

    vm = _ok(w.post("/v2.0/ports", json={"port": {"network_id": net["id"], "device_owner": "compute:nova"}}),
             201)["port"]
    fip_body = {"floating_network_id": ext["id"], "port_id": vm["id"], "description": "f",
                "fixed_ip_address": vm["fixed_ips"][0]["ip_address"]}
    with fail_first_write(db, "floatingips") as failed:
        fip = _ok(w.post("/v2.0/floatingips", json={"floatingip": fip_body}), 201)["floatingip"]
    assert failed
    assert _subset(fip_body, _ok(r.get(f"/v2.0/floatingips/{fip['id']}"))["floatingip"]) == {}
    with fail_first_write(db, "floatingips") as failed:
        _ok(w.put(f"/v2.0/floatingips/{fip['id']}", json={"floatingip": {"port_id": None, "description": "f2"}}))
    assert failed
    assert _subset({"port_id": None, "description": "f2", "router_id": None},
                   _ok(r.get(f"/v2.0/floatingips/{fip['id']}"))["floatingip"]) == {}

    sg = _ok(w.post("/v2.0/security-groups", json={"security_group": {"name": "g"}}), 201)["security_group"]
    with fail_first_write(db, "security_groups") as failed:
        _ok(w.put(f"/v2.0/security-groups/{sg['id']}",
                  json={"security_group": {"name": "g2", "description": "gd"}}))
    assert failed
    assert _subset({"name": "g2", "description": "gd"},
                   _ok(r.get(f"/v2.0/security-groups/{sg['id']}"))["security_group"]) == {}
    quota = {"network": 7, "port": 70, "router": 3, "floatingip": 9}
    with fail_first_write(db, "quotas") as failed:
        _ok(w.put("/v2.0/quotas/p1", json={"quota": quota}))
    assert failed
    assert _subset(quota, _ok(r.get("/v2.0/quotas/p1"))["quota"]) == {}


def test_each_attempt_gets_its_own_read_only_copy_of_the_input(cfg: Config) -> None:
    """A unit of work that tries to change its input fails loudly; one that fails transiently
    gets, on the next attempt, a fresh copy equal to the original request."""
    from neutrino.errors import TransientDatabaseError

    db = Database(f"sqlite:///{cfg.DEFAULT.state_dir}/t.db")
    body = {"name": "x", "fixed_ips": [{"subnet_id": "s"}]}
    seen: list[Any] = []

    def unit(_s: Any, b: dict[str, Any]) -> str:
        seen.append(b)
        with pytest.raises(ReadOnlyInputError):
            b.pop("name")
        with pytest.raises(ReadOnlyInputError):
            b["fixed_ips"][0]["ip_address"] = "10.0.0.1"
        with pytest.raises(ReadOnlyInputError):
            b["fixed_ips"].append({})
        if len(seen) == 1:
            raise TransientDatabaseError("lost a race")
        return str(b["name"])

    try:
        assert db.transaction(unit, body) == "x"
    finally:
        db.dispose()
    assert len(seen) == 2 and seen[0] is not seen[1]
    assert seen[1] == body == {"name": "x", "fixed_ips": [{"subnet_id": "s"}]}


def test_a_real_conflict_retries_the_port_update_whole(
        two: tuple[Database, httpx.Client, httpx.Client]) -> None:
    """The database server itself aborts the first attempt (no injected error): the retry
    still applies every field of the update."""
    db, w, r = two
    net = _ok(w.post("/v2.0/networks", json={"network": {"name": "n"}}), 201)["network"]
    sub = _ok(w.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                        "cidr": "10.7.0.0/24"}}), 201)["subnet"]
    sg = _ok(w.post("/v2.0/security-groups", json={"security_group": {"name": "g"}}), 201)["security_group"]
    port = _ok(w.post("/v2.0/ports", json={"port": {"network_id": net["id"], "name": "p"}}), 201)["port"]
    update = {"name": "p2", "mac_address": "fa:16:3e:00:00:07", "security_groups": [sg["id"]],
              "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.7.0.77"}], "binding:host_id": "host-e"}
    with conflicting_transaction(db, db.url, "ports", port["id"]) as raised:
        answered = _ok(w.put(f"/v2.0/ports/{port['id']}", json={"port": update}))["port"]
    transient = [e for e in raised if any(k in str(e).lower() for k in ("serializ", "deadlock"))]
    assert transient, f"the database did not abort the first attempt: {raised}"
    _check_port(update, answered, _ok(r.get(f"/v2.0/ports/{port['id']}"))["port"])
