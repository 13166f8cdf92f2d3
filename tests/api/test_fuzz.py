"""Schemathesis against the live server: no request, however malformed, may produce a 5xx.

The schema is the server's own ``GET /openapi.json``; every operation is exercised through the
examples, coverage and fuzzing phases (positive and negative data) with only the
``not_a_server_error`` check, deterministically (``deterministic`` = Hypothesis' derandomize, and a
fixed seed), once as the noauth admin and once, for the /v2.0 resources, as a plain
``member,reader`` of another project. Schemathesis 4's engine (``schemathesis.engine``) runs it:
its pytest integration for lazily loaded schemas does not work with pytest 9.

To get past the 404s of random ids, a few resources are created first and the generators are
steered towards them: path ``{id}`` values and body references (``network_id``, ``subnet_id``,
``security_group_id``...) are often drawn from the ids that exist; CIDRs come from a real strategy
(format ``cidr``). The per-operation status counts are printed (``pytest -s``, or on failure).

Hostile families are mixed into every generated request (``hostile``): NUL, newline and other
control characters, over-long ids and deep nesting replace some strings and ids of bodies,
query strings and paths. The admin run uses SQLite; a shorter run (coverage phase plus a few
fuzzed cases per operation) repeats it on PostgreSQL and MariaDB, which refuse NUL and
over-long values where SQLite stores them.

Bugs the fuzzer found are kept as plain regression tests at the end of this file.
"""

from __future__ import annotations

import copy
import ipaddress
from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.config import CacheConfig, SchemathesisConfig
from schemathesis.engine import events

from tests.conftest import Config, LiveServer, free_port

ADMIN = {"X-Project-Id": "admin", "X-Roles": "admin,member,reader"}
MEMBER = {"X-Project-Id": "demo", "X-Roles": "member,reader"}

SEED = 20240601
MAX_EXAMPLES = 8  # fuzzing phase, per operation; examples and coverage are bounded by the schema


def _cidrs() -> st.SearchStrategy[str]:
    v4 = st.tuples(st.ip_addresses(v=4), st.integers(8, 30))
    v6 = st.tuples(st.ip_addresses(v=6), st.integers(48, 126))
    return st.one_of(v4, v6).map(lambda t: str(ipaddress.ip_network(f"{t[0]}/{t[1]}", strict=False)))


schemathesis.openapi.format("cidr", _cidrs())


# Deliberate 5xx answers, as Neutron gives them: (method, path template, status).
EXPECTED_5XX = {
    ("POST", "/v2.0/quotas", 501),  # quotasv2 has no create: HTTPNotImplemented, as in Neutron
}


# Strings no request may turn into a 5xx, whatever field they land in.
HOSTILE_STRINGS = ("\x00", "a\x00b", "name\n", "\r\nX-Injected: 1", "\x1b[31m", "tab\there", "\u2028",
                   "fa:16:3e:00:00:01\n", "10.0.0.0/24\n", "x" * 300, "é" * 100)


def _deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def _hostile(value: Any, n: int) -> Any:
    """Replace string leaves (and some ids) by hostile strings; now and then nest a value far
    deeper than any schema allows."""
    if isinstance(value, dict):
        out = {k: _hostile(x, n + i) for i, (k, x) in enumerate(value.items())}
        if out and n % 7 == 0:
            out[next(iter(out))] = _deep(200)
        return out
    if isinstance(value, list):
        return [_hostile(x, n + i) for i, x in enumerate(value)]
    if isinstance(value, str):
        return HOSTILE_STRINGS[n % len(HOSTILE_STRINGS)] if n % 2 == 0 else value + HOSTILE_STRINGS[n % 5]
    return value


def _hostile_strategy(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(strategy, st.integers(0, 10**6)).map(lambda t: _hostile(copy.deepcopy(t[0]), t[1]))


# --------------------------------------------------------------------- seeding and steering

def _post(live: LiveServer, path: str, body: dict[str, Any], headers: dict[str, str] = ADMIN) -> dict[str, Any]:
    r = requests.post(live.url + path, json=body, headers=headers, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def seed(live: LiveServer, paths: dict[str, Any]) -> dict[str, list[str]]:
    """Resources for the generated requests to find: ids per URL collection segment (both the
    dashed and the underscore spelling), plus ``external-networks``."""
    ids: dict[str, list[str]] = {}

    def add(segment: str, item: dict[str, Any]) -> dict[str, Any]:
        for key in {segment, segment.replace("-", "_")}:
            ids.setdefault(key, []).append(item["id"])
        return item

    ext = add("external-networks", _post(live, "/v2.0/networks", {"network": {"name": "fuzz-ext",
                                                                           "router:external": True}})["network"])
    add("networks", ext)
    _post(live, "/v2.0/subnets", {"subnet": {"network_id": ext["id"], "ip_version": 4, "cidr": "203.0.113.0/24"}})
    for project in ("admin", "demo"):
        net = add("networks", _post(live, "/v2.0/networks", {"network": {
            "name": f"fuzz-{project}", "project_id": project}})["network"])
        add("subnets", _post(live, "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "ip_version": 4, "cidr": "10.99.0.0/24", "project_id": project}})["subnet"])
        add("ports", _post(live, "/v2.0/ports", {"port": {
            "network_id": net["id"], "project_id": project, "tags": ["fuzz"]}})["port"])
        if "/v2.0/security-groups" in paths:
            sg = add("security-groups", _post(live, "/v2.0/security-groups", {"security_group": {
                "name": f"fuzz-{project}", "project_id": project}})["security_group"])
            add("security-group-rules", _post(live, "/v2.0/security-group-rules", {"security_group_rule": {
                "security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp",
                "port_range_min": 22, "port_range_max": 22, "project_id": project}})["security_group_rule"])
        if "/v2.0/routers" in paths:
            add("routers", _post(live, "/v2.0/routers", {"router": {"name": f"fuzz-{project}",
                                                                     "project_id": project}})["router"])
    return ids


# Body keys that name another resource, and where the ids to use come from.
REFERENCES = {
    "network_id": "networks",
    "subnet_id": "subnets",
    "port_id": "ports",
    "security_group_id": "security-groups",
    "remote_group_id": "security-groups",
    "floating_network_id": "external-networks",
    "router_id": "routers",
}


def _steer(value: Any, ids: dict[str, list[str]], n: int) -> Any:
    """Point id references inside a generated body at existing resources (nested too)."""
    if isinstance(value, dict):
        if "project_id" in value and "tenant_id" in value:
            value["tenant_id"] = value["project_id"]
        for key in list(value):
            pool = ids.get(REFERENCES.get(key, ""))
            if pool and isinstance(value[key], str):
                value[key] = pool[n % len(pool)]
            else:
                value[key] = _steer(value[key], ids, n)
        if "ip_version" in value and "cidr" not in value and value.get("ip_version") in (4, 6):
            value["cidr"] = f"10.{n % 250}.0.0/24" if value["ip_version"] == 4 else f"fd00:{n:x}::/64"
    elif isinstance(value, list):
        return [_steer(v, ids, n) for v in value]
    return value


def _collection(path: str) -> str:
    parts = path.split("/")
    return parts[2] if len(parts) > 2 else ""


def load_schema(live: LiveServer, headers: dict[str, str], max_examples: int, hostile: bool = True) -> Any:
    """The live server's schema, configured for one run, with the steering hooks.

    No ``max_time``: with one, the engine keeps cycling the fuzzing phase until the time is up;
    without, each phase runs once, bounded by ``max_examples`` (fuzzing) and the schema (coverage).
    """
    paths = requests.get(live.url + "/openapi.json", timeout=10).json()["paths"]
    ids = seed(live, paths)
    config = SchemathesisConfig(cache=CacheConfig(enabled=False))  # no state carried between runs
    config.update(seed=SEED, max_failures=None)
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json", config=config, timeout=10)
    cfg = schema.config
    cfg.update(base_url=live.url, headers=headers, workers=1, request_timeout=10)
    cfg.phases.update(phases=["examples", "coverage", "fuzzing"])
    cfg.checks.update(included_check_names=["not_a_server_error"])
    cfg.generation.update(max_examples=max_examples, deterministic=True, database="none")

    @schema.hook
    def before_generate_path_parameters(context: Any, strategy: st.SearchStrategy) -> st.SearchStrategy:
        known = ids.get(_collection(context.operation.path))
        if not known or "{id}" not in context.operation.path:
            return strategy
        real = st.tuples(strategy, st.sampled_from(known)).map(
            lambda t: {**t[0], "id": t[1]} if isinstance(t[0], dict) else t[0])
        return st.one_of(strategy, real, real, *([_hostile_strategy(real)] if hostile else []))

    @schema.hook
    def before_generate_query(context: Any, strategy: st.SearchStrategy) -> st.SearchStrategy:
        return st.one_of(strategy, _hostile_strategy(strategy)) if hostile else strategy

    @schema.hook
    def before_generate_body(context: Any, strategy: st.SearchStrategy) -> st.SearchStrategy:
        steered = st.tuples(strategy, st.integers(0, 10**6)).map(lambda t: _steer(copy.deepcopy(t[0]), ids, t[1]))
        out = st.one_of(strategy, steered, steered, *([_hostile_strategy(steered)] if hostile else []))
        if context.operation.path.endswith("_router_interface"):  # a permissive body in the schema
            refs = st.one_of(st.sampled_from(ids["subnets"]).map(lambda i: {"subnet_id": i}),
                             st.sampled_from(ids["ports"]).map(lambda i: {"port_id": i}))
            out = st.one_of(out, refs)
        return out

    @schema.hook
    def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
        """Deliberate 501s (as Neutron answers them) do not fail the run."""
        return (case.method.upper(), case.operation.path, response.status_code) not in EXPECTED_5XX

    return schema


def run(schema: Any) -> tuple[list[str], int]:
    """Run the engine; returns (one line per failure with a curl reproduction, requests sent).

    Prints, per operation, how many responses of each status came back (shown on failure, or
    with ``pytest -s``): a fuzz run that only ever sees 404s tests little.
    """
    problems: list[str] = []
    statuses: dict[str, Counter[int]] = {}
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    statuses.setdefault(event.label, Counter())[interaction.response.status_code] += 1
            for checks in event.recorder.checks.values():
                for node in checks:
                    if node.failure_info is not None:
                        f = node.failure_info.failure
                        status = getattr(f, "status_code", "")
                        problems.append(f"{event.label}: {f.title} {status} {f.message}\n"
                                        f"    {node.failure_info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            problems.append(f"{event.label}: error {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    for label in sorted(statuses):
        print(f"{label:60} {dict(sorted(statuses[label].items()))}")
    return problems, sum(sum(c.values()) for c in statuses.values())


def test_no_server_errors_as_admin(live: LiveServer) -> None:
    """Every operation, as the (noauth) admin: examples, coverage and fuzzing phases."""
    schema = load_schema(live, ADMIN, MAX_EXAMPLES)
    problems, sent = run(schema)
    assert sent > 1000
    assert not problems, "server errors:\n" + "\n".join(problems)


def test_no_server_errors_as_member(live: LiveServer) -> None:
    """The /v2.0 operations again as a member of project demo (policy paths, other projects'
    ids): examples and fuzzing; the coverage phase's schema-driven cases are the admin run's."""
    schema = load_schema(live, MEMBER, MAX_EXAMPLES).include(path_regex=r"^/v2\.0/")
    schema.config.phases.update(phases=["examples", "fuzzing"])
    problems, sent = run(schema)
    assert sent > 300
    assert not problems, "server errors:\n" + "\n".join(problems)


@pytest.fixture
def live_on_server_db(cfg: Config, db_url: str) -> Any:
    """The server over HTTP on a throwaway PostgreSQL or MariaDB database."""
    from neutrino import server

    port = free_port()
    cfg.DEFAULT.bind = f"127.0.0.1:{port}"
    cfg.database.connection = db_url
    srv = server.build(cfg)
    try:
        with LiveServer(srv.app, port) as live_server:
            yield live_server
    finally:
        srv.db.dispose()


def test_no_server_errors_on_postgresql_and_mariadb(live_on_server_db: LiveServer) -> None:
    """The hostile run again where the database itself refuses NUL (PostgreSQL) and over-long
    values (both): the coverage phase and a few fuzzed cases per operation, as the admin."""
    schema = load_schema(live_on_server_db, ADMIN, 3)
    schema.config.phases.update(phases=["coverage", "fuzzing"])
    problems, sent = run(schema)
    assert sent > 500
    assert not problems, "server errors:\n" + "\n".join(problems)


# --------------------------------------------------------------------- bugs it found, as regressions

def _network(live: LiveServer) -> dict[str, Any]:
    return _post(live, "/v2.0/networks", {"network": {"name": "n"}})["network"]


def test_mixed_separator_mac_in_allowed_address_pairs_is_400(live: LiveServer) -> None:
    body = {"port": {"network_id": _network(live)["id"],
                     "allowed_address_pairs": [{"ip_address": "10.0.0.5", "mac_address": "fa:16:3e-00-00-01"}]}}
    r = requests.post(live.url + "/v2.0/ports", json=body, headers=ADMIN, timeout=10)
    assert r.status_code == 400, r.text


@pytest.mark.parametrize("query", ["networks?mtu=100000000000000000000",
                                   "networks?revision_number=-100000000000000000000",
                                   "ports?revision_number=100000000000000000000"])
def test_integer_filter_beyond_int64_is_not_a_server_error(live: LiveServer, query: str) -> None:
    _network(live)
    r = requests.get(f"{live.url}/v2.0/{query}", headers=ADMIN, timeout=10)
    assert r.status_code in (200, 400), r.text
