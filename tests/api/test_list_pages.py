"""Lists cost what their page costs: filters, visibility, order and paging happen in SQL.

The rows the server reads are counted at the database driver (tests/api/rowcount.py). Before
lists were paged in SQL, ``GET /v2.0/ports?limit=10`` read every port (and its addresses) to
hand out ten; these tests fail on that. The pages themselves must be exactly those the
Python pass over every row gave: a hypothesis matrix of sort keys, filters and paging compares
them with :mod:`neutrino.api.query`'s functions, on SQLite and on PostgreSQL and MariaDB.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import netaddr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from neutrino.api import query
from neutrino.api.definitions.networks import NETWORKS
from neutrino.db.models.network import IPAllocation, Port
from neutrino.errors import HTTPBadRequest, MarkerNotFound
from tests.api.rowcount import RowCounter
from tests.conftest import Api, make_config

PORTS = 1000


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Api, Any]]:
    from neutrino import server

    cfg = make_config(tmp_path, DEFAULT={"auth_strategy": "noauth"})
    srv = server.build(cfg)
    with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
        yield Api(client), srv
    srv.db.dispose()


FIRST = int(netaddr.IPAddress("10.0.0.2"))  # the first address of 10.0.0.0/8's pool


def address(i: int) -> str:
    return str(netaddr.IPAddress(FIRST + i))


def bulk_ports(srv: Any, net: dict[str, Any], subnet: dict[str, Any], count: int,
               name: Any = lambda i: f"p{i}", project: Any = lambda i: "admin") -> None:
    """``count`` ports with one address each, written straight to the database (the API would
    take minutes; what is measured is reading them)."""
    def write(s: Any) -> None:
        for i in range(count):
            pid = str(uuid.uuid4())
            s.add(Port(id=pid, project_id=project(i), network_id=net["id"], name=name(i),
                       mac_address=f"fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                       fixed_ips=[IPAllocation(subnet_id=subnet["id"], ip_address=address(i),
                                               network_id=net["id"], port_id=pid)]))
    srv.db.transaction(write)


def network_with_subnet(api: Api, cidr: str = "10.0.0.0/8") -> tuple[dict[str, Any], dict[str, Any]]:
    net = api.create("network", name="n")
    sub = api.create("subnet", network_id=net["id"], ip_version=4, cidr=cidr)
    return net, sub


def test_a_page_of_ports_reads_about_a_page_of_rows(served: tuple[Api, Any]) -> None:
    api, srv = served
    net, sub = network_with_subnet(api)
    bulk_ports(srv, net, sub, PORTS, name=lambda i: "match" if i % 200 == 7 else f"p{i}",
                project=lambda i: "tenant-a" if i % 2 else "tenant-b")
    counter = RowCounter().attach(srv.db)

    r, rows = counter.during(lambda: api.get("/v2.0/ports", params={"limit": 10}))
    assert r.status_code == 200 and len(r.json()["ports"]) == 10
    assert rows < 60, f"a page of 10 ports read {rows} rows"
    links = {link["rel"]: link["href"] for link in r.json()["ports_links"]}
    nxt = dict(parse_qsl(urlsplit(links["next"]).query))
    r2, rows = counter.during(lambda: api.get("/v2.0/ports", params=nxt))
    assert len(r2.json()["ports"]) == 10 and rows < 60
    assert not {p["id"] for p in r.json()["ports"]} & {p["id"] for p in r2.json()["ports"]}

    r, rows = counter.during(lambda: api.get("/v2.0/ports", params={"name": "match"}))
    assert len(r.json()["ports"]) == 5
    assert rows < 40, f"5 matching ports of {PORTS} read {rows} rows"

    r, rows = counter.during(lambda: api.get("/v2.0/ports", params={"fixed_ips": f"ip_address={address(777)}"}))
    assert [p["fixed_ips"][0]["ip_address"] for p in r.json()["ports"]] == [address(777)]
    assert rows < 30, f"one port by address read {rows} rows"

    # a project sees half of them (the network is not its own): its pages are still full and cheap
    tenant = api.as_("tenant-a")
    r, rows = counter.during(lambda: tenant.get("/v2.0/ports", params={"limit": 10, "sort_key": "name",
                                                                        "sort_dir": "desc"}))
    page = r.json()["ports"]
    assert len(page) == 10 and {p["project_id"] for p in page} == {"tenant-a"}
    assert rows < 60, f"a project's page of 10 ports read {rows} rows"


def test_marker_of_an_invisible_row_is_not_found(served: tuple[Api, Any]) -> None:
    api, srv = served
    net, sub = network_with_subnet(api)
    bulk_ports(srv, net, sub, 20, project=lambda i: "tenant-a" if i % 2 else "tenant-b")
    ports = api.get("/v2.0/ports", params={"sort_key": "name", "sort_dir": "asc"}).json()["ports"]
    theirs = next(p for p in ports if p["project_id"] == "tenant-b")
    r = api.as_("tenant-a").get("/v2.0/ports", params={"limit": 2, "marker": theirs["id"]})
    assert r.status_code == 404 and r.json()["NeutronError"]["type"] == "MarkerNotFound", r.text
    mine = [p for p in ports if p["project_id"] == "tenant-a"]
    r = api.as_("tenant-a").get("/v2.0/ports", params={"limit": 2, "marker": mine[0]["id"],
                                                        "sort_key": "name", "sort_dir": "asc"})
    assert [p["id"] for p in r.json()["ports"]] == [p["id"] for p in mine[1:3]]


# ---------------------------------------------------------------- the same pages as the Python pass

NAMES = ["a", "A", "b", "a ", "", "é", "Zed", "a"]
TAGS = [[], ["x"], ["x", "y"], ["Y"], ["y"]]


def _networks(api: Api) -> None:
    for i in range(24):
        project = ("p1", "p2", "admin")[i % 3]
        api.create("network", name=NAMES[i % len(NAMES)], project_id=project, shared=i % 5 == 0,
                   mtu=1400 + (i % 4) * 10, admin_state_up=i % 7 != 0, tags=TAGS[i % len(TAGS)],
                   description=f"d{i % 3}")


SORT_KEYS = ["name", "mtu", "shared", "admin_state_up", "created_at", "description", "status",
             "provider:segmentation_id", "id", "project_id", "revision_number"]
FILTERS = st.lists(st.sampled_from([
    ("name", "a"), ("name", "A"), ("name", "b"), ("shared", "true"), ("shared", "False"),
    ("mtu", "1410"), ("mtu", "1420"), ("admin_state_up", "true"), ("tags", "x"), ("tags", "x,y"),
    ("tags-any", "y,Y"), ("not-tags", "x"), ("not-tags-any", "y"), ("description", "d1"),
    ("tenant_id", "p1"), ("project_id", "p2"), ("provider:network_type", "vxlan"),
]), max_size=3)
QUERIES = st.fixed_dictionaries({
    "sorts": st.lists(st.tuples(st.sampled_from(SORT_KEYS), st.sampled_from(["asc", "desc"])),
                      max_size=3, unique_by=lambda t: t[0]),
    "filters": FILTERS,
    "limit": st.sampled_from([None, 1, 2, 5, 30]),
    "marker": st.one_of(st.none(), st.integers(0, 40)),
    "page_reverse": st.booleans(),
    "who": st.sampled_from(["admin", "p1"]),
})


HIDDEN = {"provider:network_type", "provider:physical_network", "provider:segmentation_id"}


def _expected(everything: list[dict[str, Any]], params: list[tuple[str, str]], admin: bool) -> list[str] | None:
    """The ids the Python pass (query.matches, sort_items, paginate) gives; None: a 400."""
    try:
        q = query.parse(NETWORKS, params, hidden=set() if admin else HIDDEN)
        items = [i for i in everything if query.matches(i, q.filters, {})]
        if not (q.sorts or q.limit or q.marker):
            return sorted(i["id"] for i in items)
        return [i["id"] for i in query.paginate(query.sort_items(items, q.sorts), q)]
    except (HTTPBadRequest, MarkerNotFound):
        return None


def check_matrix(api: Api, data: st.DataObject) -> None:
    spec = data.draw(QUERIES)
    caller = api if spec["who"] == "admin" else api.as_(spec["who"])
    everything = caller.get("/v2.0/networks").json()["networks"]
    params: list[tuple[str, str]] = []
    for key, direction in spec["sorts"]:
        if spec["who"] != "admin" and key.startswith("provider:"):
            continue
        params += [("sort_key", key), ("sort_dir", direction)]
    params += list(spec["filters"])
    if spec["limit"]:
        params.append(("limit", str(spec["limit"])))
    if spec["marker"] is not None:
        every_id = sorted(n["id"] for n in api.get("/v2.0/networks").json()["networks"])
        params.append(("marker", every_id[spec["marker"] % len(every_id)]))
    if spec["page_reverse"]:
        params.append(("page_reverse", "True"))
    r = caller.get("/v2.0/networks", params=params)
    want = _expected(everything, params, spec["who"] == "admin")
    if want is None:
        assert r.status_code in (400, 404), (params, r.text)
        return
    assert r.status_code == 200, (params, r.text)
    got = [n["id"] for n in r.json()["networks"]]
    if not any(k in ("sort_key", "limit", "marker") for k, _ in params):
        got = sorted(got)
    assert got == want, params
    q = query.parse(NETWORKS, params, hidden=set() if spec["who"] == "admin" else HIDDEN)
    as_read = parse_qsl(r.request.url.query.decode(), keep_blank_values=True)  # as sent (httpx groups keys)
    assert r.json().get("networks_links", []) == query.links(
        "http://127.0.0.1:9696/v2.0/networks", as_read, r.json()["networks"], q), params


def test_pages_match_the_python_pass_sqlite(api: Api) -> None:
    _networks(api)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data: st.DataObject) -> None:
        check_matrix(api, data)

    run()


def test_pages_match_the_python_pass_on_servers(cfg: Any, db_url: str) -> None:
    """PostgreSQL and MariaDB order strings by their collations and MariaDB compares them
    without case: the pages must still be Python's."""
    from neutrino import server

    cfg.database.connection = db_url
    srv = server.build(cfg)
    try:
        with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
            api = Api(client)
            _networks(api)

            @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
            @given(st.data())
            def run(data: st.DataObject) -> None:
                check_matrix(api, data)

            run()
    finally:
        srv.db.dispose()


def test_tag_filters_are_exact_on_servers(cfg: Any, db_url: str) -> None:
    """Tags are compared byte for byte, as Neutron does, even where the database's collation
    ignores case (MariaDB): found by the matrix above (``tags-any=y,Y&not-tags-any=y``)."""
    from neutrino import server

    cfg.database.connection = db_url
    srv = server.build(cfg)
    try:
        with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
            api = Api(client)
            lower, upper = api.create("network", name="lower"), api.create("network", name="upper")
            assert api.put(f"/v2.0/networks/{lower['id']}/tags", json={"tags": ["y", "a-b"]}).status_code == 200
            assert api.put(f"/v2.0/networks/{upper['id']}/tags", json={"tags": ["Y", "A_B"]}).status_code == 200

            def names(query: str) -> list[str]:
                return sorted(n["name"] for n in api.get(f"/v2.0/networks?{query}").json()["networks"])
            assert names("tags=y") == ["lower"] and names("tags=Y") == ["upper"]
            assert names("tags-any=Y") == ["upper"] and names("tags-any=a_b") == []
            assert names("not-tags=y") == ["upper"] and names("tags-any=y,Y&not-tags-any=y") == ["upper"]
    finally:
        srv.db.dispose()


# ---------------------------------------------------------------- pagination_max_limit


def test_pagination_max_limit_caps_pages_with_links(tmp_path: Path) -> None:
    from neutrino import server

    cfg = make_config(tmp_path, DEFAULT={"auth_strategy": "noauth", "pagination_max_limit": "3"})
    srv = server.build(cfg)
    try:
        with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
            api = Api(client)
            ids = sorted(api.create("network", name=f"n{i}")["id"] for i in range(5))
            r = api.get("/v2.0/networks").json()
            assert [n["id"] for n in r["networks"]] == ids[:3]
            links = {link["rel"]: link["href"] for link in r["networks_links"]}
            assert set(links) == {"next", "previous"}
            assert dict(parse_qsl(urlsplit(links["next"]).query)) == {"marker": ids[2]}
            second = api.get(links["next"].replace("http://127.0.0.1:9696", "")).json()
            assert [n["id"] for n in second["networks"]] == ids[3:]
            assert [link["rel"] for link in second["networks_links"]] == ["previous"]
            assert len(api.get("/v2.0/networks", params={"limit": 10}).json()["networks"]) == 3
            assert len(api.get("/v2.0/networks", params={"limit": 2}).json()["networks"]) == 2
            assert len(api.get("/v2.0/networks", params={"limit": 0}).json()["networks"]) == 3
    finally:
        srv.db.dispose()


@pytest.mark.parametrize("value, cap", [("-1", 0), ("infinite", 0), ("0", 0), ("x", 0), ("7", 7), (50, 50)])
def test_pagination_max_limit_reads_as_neutron(value: Any, cap: int) -> None:
    assert query.pagination_max_limit(value) == cap


def test_pages_follow_an_operators_policy(tmp_path: Path) -> None:
    """A rule SQL cannot fully say (a regular expression, ``not``): the query reads more, the
    policy engine still decides each row, and paging through gives exactly what it allows."""
    from neutrino import server
    from neutrino.context import Context

    policy = tmp_path / "policy.yaml"
    policy.write_text('"get_network": "rule:admin_only or field:networks:name=~^pub or '
                      '(role:reader and not field:networks:shared=True and project_id:%(project_id)s)"\n')
    cfg = make_config(tmp_path, DEFAULT={"auth_strategy": "noauth"}, oslo_policy={"policy_file": str(policy)})
    srv = server.build(cfg)
    try:
        with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
            api = Api(client)
            for i in range(30):
                api.create("network", name=("pub", "Pub", "priv")[i % 3] + str(i), shared=i % 4 == 0,
                           project_id=("p1", "p2")[i % 2])
            everything = api.get("/v2.0/networks").json()["networks"]
            who = Context(user_id="u", project_id="p1", roles=frozenset({"member", "reader"}))
            allowed = sorted(n["id"] for n in everything
                             if srv.deps.policy.check(who, "get_network", {**n, "tenant_id": n["project_id"]}))
            assert 0 < len(allowed) < len(everything)
            seen: list[str] = []
            params: dict[str, str] = {"limit": "2"}
            while True:
                r = api.as_("p1").get("/v2.0/networks", params=params).json()
                seen += [n["id"] for n in r["networks"]]
                nxt = [link["href"] for link in r.get("networks_links", []) if link["rel"] == "next"]
                if len(r["networks"]) < 2 or not nxt:
                    break
                params = dict(parse_qsl(urlsplit(nxt[0]).query))
            assert seen == allowed
    finally:
        srv.db.dispose()


def test_a_limit_beyond_any_sql_integer_lists_everything(api: Api) -> None:
    """The fuzzer's ``?limit=35665495005020901376``: no database takes it as a LIMIT."""
    ids = sorted(api.create("network", name=f"n{i}")["id"] for i in range(3))
    r = api.get("/v2.0/networks", params={"limit": str(10**20), "revision_number": str(-(10**19))})
    assert r.status_code == 200 and r.json()["networks"] == []
    r = api.get("/v2.0/networks", params={"limit": str(10**20)})
    assert r.status_code == 200, r.text
    assert [n["id"] for n in r.json()["networks"]] == ids
