"""The pure parts of bench/api.py: statistics, rendering, clouds.yaml and token handling.

No server is started here; the full bench is run by hand (see bench/README.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml

BENCH = Path(__file__).resolve().parents[2] / "bench" / "api.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_api", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_api"] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


api = _load()


# ---------------------------------------------------------------- percentiles and results

def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert api.percentile(values, 50) == pytest.approx(50.5)
    assert api.percentile(values, 95) == pytest.approx(95.05)
    assert api.percentile(values, 99) == pytest.approx(99.01)
    assert api.percentile(values, 0) == 1.0
    assert api.percentile(values, 100) == 100.0


def test_percentile_unsorted_single_and_empty() -> None:
    assert api.percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert api.percentile([7.0], 99) == 7.0
    assert api.percentile([], 50) is None


def test_op_result_to_dict() -> None:
    r = api.OpResult("list ports", 8, count=4, errors=1, wall_s=0.5,
                     latencies_ms=[4.0, 1.0, 3.0, 2.0], items=[1000, 1000, 1000, 1000],
                     first_error="GET /ports: HTTP 500")
    d = r.to_dict()
    assert d["ops_per_s"] == 8.0
    assert d["p50_ms"] == 2.5
    assert d["max_ms"] == 4.0
    assert d["items_per_call"] == 1000
    assert d["errors"] == 1 and d["first_error"] == "GET /ports: HTTP 500"
    assert "latencies_ms" not in d


def test_op_result_without_successes() -> None:
    d = api.OpResult("create port", 1, errors=3, wall_s=0.1).to_dict()
    assert d["count"] == 0 and d["ops_per_s"] == 0.0
    assert d["p50_ms"] is None and d["max_ms"] is None
    assert "items_per_call" not in d


# ---------------------------------------------------------------- rendering

def _results() -> list[dict[str, Any]]:
    return [
        api.OpResult("create port", 1, count=3, wall_s=0.01, latencies_ms=[2.0, 3.0, 4.0]).to_dict(),
        api.OpResult("list ports", 1, count=2, wall_s=0.06, latencies_ms=[30.0, 30.0],
                     items=[1000, 1000]).to_dict(),
        api.OpResult("create port", 8, count=3, wall_s=0.01, latencies_ms=[9.0, 9.0, 9.0]).to_dict(),
    ]


def test_render_table_has_every_operation() -> None:
    text = api.render_table(_results())
    lines = text.splitlines()
    assert lines[0].split()[:9] == ["operation", "conc", "count", "err", "ops/s", "p50", "p95", "p99", "max"]
    assert len(lines) == 2 + 3
    assert lines[2].split()[:6] == ["create", "port", "1", "3", "0", "300.0"]
    assert "list ports (1000/call)" in text


def test_targets_pass_fail_and_na() -> None:
    server = {"rss_mb": 80.0, "peak_rss_mb": 130.0, "cold_start_s": 0.9}
    t = {x["name"]: x for x in api.evaluate_targets(_results(), server)}
    assert t["port create p50 (c=1)"]["measured"] == 3.0  # from c=1, not c=8
    assert t["port create p50 (c=1)"]["pass"] is True
    assert t["list 1000 ports p50 (c=1)"]["pass"] is True and "note" not in t["list 1000 ports p50 (c=1)"]
    assert t["cold start (median)"]["pass"] is True
    assert t["server peak RSS (VmHWM)"]["pass"] is False
    text = api.render_targets(list(t.values()))
    assert "PASS" in text and "FAIL" in text

    remote = api.evaluate_targets(_results(), {"rss_mb": None, "peak_rss_mb": None, "cold_start_s": None,
                                               "note": "remote endpoint"})
    assert [x["pass"] for x in remote][2:] == [None, None]
    assert "n/a (remote endpoint)" in api.render_targets(remote)


def test_list_target_notes_a_small_run() -> None:
    results = [api.OpResult("list ports", 1, count=1, wall_s=0.01, latencies_ms=[3.0], items=[100]).to_dict()]
    t = api.evaluate_targets(results, {})[1]
    assert t["pass"] is True and "100" in t["note"]


def test_report_is_json() -> None:
    meta = {"endpoint": "http://127.0.0.1:9696", "date": "2026-01-01T00:00:00+00:00", "host_cpu_count": 4,
            "python": "3.11.0", "git_commit": None}
    server = {"rss_mb": 50.0, "peak_rss_mb": 60.0, "cold_start_s": 1.0}
    report = json.loads(json.dumps(api.build_report(meta, _results(), server)))
    assert set(report) == {"meta", "results", "server", "targets"}
    assert report["server"] == server
    assert len(report["targets"]) == len(api.TARGETS)
    assert report["results"][0]["operation"] == "create port"


# ---------------------------------------------------------------- clouds.yaml and Keystone

def _write_clouds(path: Path, auth_url: str = "http://127.0.0.1:9696/identity/v3") -> Path:
    path.write_text(yaml.safe_dump({"clouds": {
        "bench": {"auth": {"auth_url": auth_url, "username": "admin", "password": "s3cret",
                           "project_name": "admin", "user_domain_name": "Default",
                           "project_domain_name": "Default"},
                  "region_name": "RegionTwo", "interface": "public", "identity_api_version": 3},
        "other": {"auth": {"auth_url": auth_url, "username": "demo", "password": "x", "project_id": "p1"}},
    }}))
    return path


def test_load_cloud_from_os_client_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(_write_clouds(tmp_path / "mine.yaml")))
    monkeypatch.chdir(tmp_path)
    cloud = api.load_cloud("bench")
    assert cloud.auth["username"] == "admin" and cloud.auth["password"] == "s3cret"
    assert cloud.auth["auth_url"] == "http://127.0.0.1:9696/identity/v3"
    assert cloud.region == "RegionTwo" and cloud.interface == "public" and cloud.verify is True
    with pytest.raises(api.BenchError, match="nope"):
        api.load_cloud("nope")


def test_load_cloud_from_explicit_path_ignores_environment(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "missing.yaml"))
    cloud = api.load_cloud("other", _write_clouds(tmp_path / "spawned.yaml"))
    assert cloud.auth["project_id"] == "p1" and cloud.interface == "public"


def _keystone(seen: list[httpx.Request], status: int = 201) -> httpx.MockTransport:
    catalog = [
        {"type": "identity", "endpoints": [{"interface": "public", "region_id": "RegionTwo",
                                            "url": "http://ks/identity"}]},
        {"type": "network", "endpoints": [
            {"interface": "internal", "region_id": "RegionTwo", "url": "http://internal:9696"},
            {"interface": "public", "region_id": "RegionOne", "url": "http://one:9696"},
            {"interface": "public", "region_id": "RegionTwo", "url": "http://two:9696/v2.0/"},
        ]},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET" and request.url.path in ("", "/"):
            return httpx.Response(300, json={"versions": {"values": [
                {"id": "v3.14", "links": [{"rel": "self", "href": "http://ks/v3/"}]}]}})
        if request.method == "POST" and request.url.path.endswith("/v3/auth/tokens"):
            if status != 201:
                return httpx.Response(status, json={"error": {"message": "nope"}})
            return httpx.Response(201, headers={"X-Subject-Token": "tok"}, json={"token": {
                "project": {"id": "pid"}, "roles": [{"name": "admin"}, {"name": "member"}], "catalog": catalog}})
        return httpx.Response(404)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("auth_url", ["http://ks/identity/v3", "http://ks/identity/v3/", "http://ks"])
def test_authenticate_picks_region_and_interface(tmp_path: Path, auth_url: str) -> None:
    cloud = api.load_cloud("bench", _write_clouds(tmp_path / "c.yaml", auth_url))
    seen: list[httpx.Request] = []
    s = api.authenticate(cloud, httpx.Client(transport=_keystone(seen)))
    assert (s.endpoint, s.token, s.project_id) == ("http://two:9696", "tok", "pid")
    assert "admin" in s.roles
    post = seen[-1]
    assert str(post.url) in ("http://ks/identity/v3/auth/tokens", "http://ks/v3/auth/tokens")
    body = json.loads(post.content)["auth"]
    assert body["identity"]["password"]["user"] == {"name": "admin", "domain": {"name": "Default"},
                                                    "password": "s3cret"}
    assert body["scope"] == {"project": {"name": "admin", "domain": {"name": "Default"}}}


def test_authenticate_failures_say_what_to_do(tmp_path: Path) -> None:
    cloud = api.load_cloud("bench", _write_clouds(tmp_path / "c.yaml", "http://ks/v3"))
    with pytest.raises(api.BenchError, match="credentials"):
        api.authenticate(cloud, httpx.Client(transport=_keystone([], status=401)))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(api.BenchError, match="is the server running"):
        api.authenticate(cloud, httpx.Client(transport=httpx.MockTransport(refuse)))
    cloud.region = "Nowhere"
    with pytest.raises(api.BenchError, match="network"):
        api.authenticate(cloud, httpx.Client(transport=_keystone([])))


def test_process_rss_of_this_process() -> None:
    if not Path(f"/proc/{os.getpid()}/status").exists():
        pytest.skip("no /proc")
    rss, peak = api.process_rss_mb(os.getpid())
    assert 1 < rss <= peak
    assert api.process_rss_mb(2**22 + 7) is None


def test_scale_and_spawn_defaults() -> None:
    args = api.parse_args(["--scale", "0.1"])
    assert args.spawn is True and args.os_cloud is None and args.cold_start_runs == 3
    assert api.parse_args(["--os-cloud", "x"]).spawn is False
    assert api.parse_args(["--os-cloud", "x", "--spawn"]).spawn is True


# ---------------------------------------------------------------- --servers: K servers on one database

def test_servers_arguments() -> None:
    args = api.parse_args(["--servers", "2,1,2", "--scale", "0.1"])
    assert args.servers == [1, 2] and args.concurrency == 8 and args.db_server == api.DEFAULT_DB_SERVER
    assert api.parse_args([]).servers is None
    for bad in (["--servers", "0"], ["--servers", "1,x"], ["--servers", "9"], ["--servers", "1", "--os-cloud", "c"],
                ["--servers", "1", "--concurrency", "0"]):
        with pytest.raises(SystemExit):
            api.parse_args(bad)


def test_database_url_names_the_run_database_on_the_same_server() -> None:
    assert api.database_url("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", "neutrino_bench_ab_s2") == \
        "postgresql+psycopg://postgres@127.0.0.1:5432/neutrino_bench_ab_s2"
    assert api.database_url("mysql+pymysql://root@h/mysql?charset=utf8mb4", "d") == \
        "mysql+pymysql://root@h/d?charset=utf8mb4"
    with pytest.raises(api.BenchError):
        api.database("postgresql+psycopg://postgres@127.0.0.1:1/postgres", "Bad; DROP", create=True)


def _step(k: int, rps: float, errors: int = 0) -> dict[str, Any]:
    results = [{"operation": "create port", "concurrency": 8, "count": int(rps), "errors": errors, "wall_s": 1.0,
                "ops_per_s": rps, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "max_ms": 4.0}]
    return {"servers": k, "load_start": [1.0, 0.5, 0.25], "results": results, "total": api.throughput(results),
            "cpu_s": {"servers": 1.0 * k, "database": 0.3, "database_backends": 3, "bench client": 0.2},
            "transactions": {"commits": 100, "rollbacks": 2 * (k - 1), "deadlocks": 0}}


def test_scaling_targets_and_rendering() -> None:
    steps = [_step(1, 100.0), _step(2, 170.0)]
    for st in steps:
        st["ratio"] = round(st["total"]["requests_per_s"] / 100.0, 3)
    targets = api.scaling_targets(steps)
    assert targets == [{"name": "2 servers / 1, requests/s", "limit": 1.6, "unit": "x", "measured": 1.7,
                        "load_start": [1.0, 0.5, 0.25], "pass": True}]
    meta = {"cpu_model": "AMD EPYC", "host_cpu_count": 2, "concurrency": 8, "db_dialect": "postgresql"}
    text = api.render_scaling({"meta": meta, "steps": steps, "targets": targets})
    assert text.splitlines()[0].startswith("servers on one postgresql database; AMD EPYC x2; concurrency 8")
    assert "2 server(s), load 1.00/0.50/0.25 at the start; CPU s over the round: servers 2.0" in text
    assert "2 rolled back (serialization failures, retried)" in text
    row = next(ln.split() for ln in text.splitlines() if ln.startswith("all requests"))
    assert row[-3:] == ["100.0", "170.0", "1.70"]
    assert text.splitlines()[-1].startswith("2 servers / 1, requests/s    >= 1.6 x   1.70 x")
    assert "PASS   [AMD EPYC x2, load 1.00/0.50/0.25]" in text
    slow = api.scaling_targets([_step(1, 100.0, errors=1), {**_step(2, 120.0), "ratio": 1.2}])
    assert slow[0]["pass"] is False and slow[0]["note"] == "errors in a round: see the table"
    assert api.scaling_targets([{**_step(3, 250.0), "ratio": None}])[0]["note"] == "1 server not run"
