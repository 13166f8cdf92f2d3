#!/usr/bin/env python3
"""API benchmark for any Neutron v2.0 endpoint: neutrino's own, or a real Neutron.

Usage::

    bench/api.py                          # spawn a fresh neutrino, bench it as cloud "admin"
    bench/api.py --scale 0.1              # the same, 10x fewer resources (a quick run)
    bench/api.py --os-cloud mycloud [--server-pid PID] [--json out.json]

The cloud comes from clouds.yaml, found as the OpenStack clients find it (OS_CLIENT_CONFIG_FILE,
./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml). The bench gets a
Keystone v3 password token, takes the "network" endpoint from the catalog and then, at
concurrency 1 and again at 8, creates 100 networks, 100 subnets and 1000 ports, lists all ports
20 times, lists with filters (network_id, device_owner, name), shows, updates and deletes them.
Every name starts with a per-run prefix (bench-xxxxxx); whatever the run created is deleted at
the end, also after an error or Ctrl-C. If the token has the admin role, the project's
network/subnet/port quotas are lifted for the run and restored afterwards; otherwise the counts
are cut to what the quotas allow.

Concurrency: N threads, each with its own httpx.Client (HTTP/1.1 keep-alive, one connection),
pulling operations from a shared queue. A blocking client releases the GIL while it waits for
the server, so the client's CPU per request (a fraction of a ms) is small against the server's;
asyncio + httpx.AsyncClient costs more client CPU per request in a single thread, so at
concurrency 8 it measures the client sooner. Latency is the time of one request, response body
included, JSON parsing of it excluded; ops/s is successful operations / wall time of the phase.

With --spawn (the default without --os-cloud) the bench also starts `neutrino server` itself
(--cold-start-runs times, on fresh state dirs) to time the cold start (spawn until GET / answers
200) and reads the server's RSS from /proc after the load. Exit status: 0 when the bench ran
(even if a target failed), 2 when it could not run, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py, however this file is loaded
from machine import cpu_model, load_average  # noqa: E402

# (key, description, limit, unit); "measured" comes from evaluate_targets.
TARGETS = [
    ("port_create_p50", "port create p50 (c=1)", 5.0, "ms"),
    ("list_ports", "list 1000 ports p50 (c=1)", 50.0, "ms"),
    ("cold_start", "cold start (median)", 1.5, "s"),
    ("rss", "server peak RSS (VmHWM)", 120.0, "MB"),
]
CONCURRENCY = (1, 8)
QUOTA_KEYS = ("network", "subnet", "port")
# --servers: K server processes on one database against one; the issue's bar for K=2
DEFAULT_DB_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SCALING_TARGET = 1.6


class BenchError(Exception):
    """The bench itself cannot run; the message says what to do about it."""


class OpFailed(Exception):
    """One API call did not answer as expected (counted as an error, the phase goes on)."""


# ---------------------------------------------------------------- statistics and rendering

def percentile(values: Iterable[float], p: float) -> float | None:
    """The p-th percentile (0-100) with linear interpolation between ranks; None if empty."""
    s = sorted(values)
    if not s:
        return None
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


@dataclass
class OpResult:
    operation: str
    concurrency: int
    count: int = 0  # successful operations
    errors: int = 0
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    items: list[int] = field(default_factory=list)  # resources per response, for list calls
    first_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        d: dict[str, Any] = {
            "operation": self.operation, "concurrency": self.concurrency, "count": self.count,
            "errors": self.errors, "wall_s": round(self.wall_s, 4),
            "ops_per_s": round(self.count / self.wall_s, 1) if self.wall_s > 0 else None,
        }
        for p in (50, 95, 99):
            v = percentile(lat, p)
            d[f"p{p}_ms"] = None if v is None else round(v, 3)
        d["max_ms"] = round(lat[-1], 3) if lat else None
        if self.items:
            d["items_per_call"] = round(sum(self.items) / len(self.items), 1)
        if self.first_error:
            d["first_error"] = self.first_error
        return d


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def render_table(results: list[dict[str, Any]]) -> str:
    head = f"{'operation':<36} {'conc':>4} {'count':>6} {'err':>4} {'ops/s':>8} " \
           f"{'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  (ms)"
    lines = [head, "-" * len(head)]
    for r in results:
        op = r["operation"] + (f" ({r['items_per_call']:g}/call)" if "items_per_call" in r else "")
        lines.append(f"{op:<36} {r['concurrency']:>4} {r['count']:>6} {r['errors']:>4} "
                     f"{_fmt(r['ops_per_s'], '.1f'):>8} {_fmt(r['p50_ms']):>8} {_fmt(r['p95_ms']):>8} "
                     f"{_fmt(r['p99_ms']):>8} {_fmt(r['max_ms']):>8}")
    return "\n".join(lines)


def evaluate_targets(results: list[dict[str, Any]], server: dict[str, Any]) -> list[dict[str, Any]]:
    def find(op: str) -> dict[str, Any] | None:
        return next((r for r in results if r["operation"] == op and r["concurrency"] == 1), None)

    port, lst = find("create port"), find("list ports")
    measured: dict[str, tuple[float | None, str]] = {
        "port_create_p50": (port["p50_ms"] if port else None, "not measured"),
        "list_ports": (lst["p50_ms"] if lst else None, "not measured"),
        "cold_start": (server.get("cold_start_s"), server.get("note", "not measured")),
        "rss": (server.get("peak_rss_mb"), server.get("note", "not measured")),
    }
    out = []
    for key, name, limit, unit in TARGETS:
        value, why = measured[key]
        t: dict[str, Any] = {"name": name, "limit": limit, "unit": unit, "measured": value,
                             "pass": None if value is None else value < limit}
        if value is None:
            t["note"] = why
        elif key == "list_ports" and lst and lst.get("items_per_call", 0) < 1000:
            t["note"] = f"only {lst.get('items_per_call', 0):g} ports listed; the target is for 1000"
        out.append(t)
    return out


def render_targets(targets: list[dict[str, Any]]) -> str:
    lines = [f"{'target':<28} {'goal':<10} {'measured':<24} result"]
    for t in targets:
        goal = f"< {t['limit']:g} {t['unit']}"
        got = f"n/a ({t['note']})" if t["measured"] is None else f"{t['measured']:.2f} {t['unit']}"
        res = "-" if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")
        note = f"  ({t['note']})" if t["measured"] is not None and t.get("note") else ""
        lines.append(f"{t['name']:<28} {goal:<10} {got:<24} {res}{note}")
    return "\n".join(lines)


def build_report(meta: dict[str, Any], results: list[dict[str, Any]],
                 server: dict[str, Any]) -> dict[str, Any]:
    return {"meta": meta, "results": results, "server": server,
            "targets": evaluate_targets(results, server)}


# ---------------------------------------------------------------- clouds.yaml and Keystone

@dataclass
class Cloud:
    name: str
    auth: dict[str, Any]
    region: str | None = None
    interface: str = "public"
    verify: bool | str = True
    network_endpoint: str | None = None  # network_endpoint_override, if the cloud sets one


def load_cloud(name: str, path: str | Path | None = None) -> Cloud:
    """Cloud ``name`` as the OpenStack clients read it (or from exactly ``path``, if given)."""
    import openstack.config
    from openstack import exceptions

    try:
        if path is None:
            cfg = openstack.config.OpenStackConfig()
        else:
            cfg = openstack.config.OpenStackConfig(config_files=[str(path)], secure_files=[],
                                                   vendor_files=[], load_envvars=False)
        region = cfg.get_one(cloud=name, validate=False)
    except exceptions.ConfigException as exc:
        where = path or os.environ.get("OS_CLIENT_CONFIG_FILE") or "clouds.yaml"
        raise BenchError(f"cloud {name!r} not found in {where}: {exc}") from exc
    conf = region.config
    verify, _cert = region.get_requests_verify_args()
    return Cloud(name=name, auth=dict(conf.get("auth") or {}), region=region.region_name or None,
                 interface=conf.get("interface") or "public", verify=True if verify is None else verify,
                 network_endpoint=conf.get("network_endpoint_override"))


@dataclass
class Session:
    endpoint: str  # network endpoint, without /v2.0
    token: str
    project_id: str
    roles: list[str]
    verify: bool | str = True

    def client(self, endpoint: str | None = None) -> httpx.Client:
        """A keep-alive client of the network endpoint (or of ``endpoint``: another server of the same cloud)."""
        return httpx.Client(base_url=(endpoint or self.endpoint) + "/v2.0", verify=self.verify, timeout=120.0,
                            headers={"X-Auth-Token": self.token, "Accept": "application/json"})


def identity_v3_url(http: httpx.Client, auth_url: str) -> str:
    """auth_url may be versioned (.../v3) or not; as keystoneauth, discover v3 in the latter case."""
    url = auth_url.rstrip("/")
    if url.rsplit("/", 1)[-1].startswith("v3"):
        return url
    try:
        versions = http.get(url + "/").json().get("versions", {})
        for v in versions.get("values", versions) if isinstance(versions, dict) else versions:
            if str(v.get("id", "")).startswith("v3"):
                return next(ln["href"] for ln in v["links"] if ln.get("rel") == "self").rstrip("/")
    except (httpx.HTTPError, ValueError, KeyError, StopIteration, AttributeError):
        pass
    return url + "/v3"


def _domain(auth: dict[str, Any], kind: str) -> dict[str, str]:
    for key, field_ in ((f"{kind}_domain_id", "id"), (f"{kind}_domain_name", "name"),
                        ("domain_id", "id"), ("domain_name", "name"),
                        ("default_domain_id", "id"), ("default_domain_name", "name")):
        if auth.get(key):
            return {field_: auth[key]}
    return {"id": "default"}


def authenticate(cloud: Cloud, http: httpx.Client | None = None) -> Session:
    a = cloud.auth
    if not a.get("auth_url") or not a.get("password"):
        raise BenchError(f"cloud {cloud.name!r} needs auth_url and password (Keystone v3 password auth)")
    user = {"id": a["user_id"]} if a.get("user_id") else {"name": a.get("username"), "domain": _domain(a, "user")}
    if a.get("project_id"):
        scope: dict[str, Any] = {"project": {"id": a["project_id"]}}
    elif a.get("project_name"):
        scope = {"project": {"name": a["project_name"], "domain": _domain(a, "project")}}
    else:
        raise BenchError(f"cloud {cloud.name!r} has no project_name/project_id: a project-scoped token is needed")
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {**user, "password": a["password"]}}},
                     "scope": scope}}
    with http or httpx.Client(verify=cloud.verify, timeout=30.0) as http:
        try:
            url = identity_v3_url(http, a["auth_url"])
            r = http.post(url + "/auth/tokens", json=body)
        except httpx.HTTPError as exc:
            raise BenchError(f"cannot reach {a['auth_url']}: is the server running? ({exc})") from exc
    if r.status_code != 201:
        raise BenchError(f"authentication at {url} failed (HTTP {r.status_code}: {r.text[:200]}); "
                         f"check the credentials of cloud {cloud.name!r}")
    token = r.json()["token"]
    endpoint = cloud.network_endpoint
    if not endpoint:
        for svc in token.get("catalog", []):
            if svc.get("type") != "network":
                continue
            for ep in svc.get("endpoints", []):
                region = ep.get("region_id") or ep.get("region")
                if ep.get("interface") == cloud.interface and (not cloud.region or region == cloud.region):
                    endpoint = ep["url"]
                    break
    if not endpoint:
        types = sorted({s.get("type", "?") for s in token.get("catalog", [])})
        raise BenchError(f"no {cloud.interface} 'network' endpoint in region {cloud.region} in the catalog "
                         f"(service types: {', '.join(types) or 'none'})")
    endpoint = endpoint.rstrip("/").removesuffix("/v2.0")
    return Session(endpoint=endpoint, token=r.headers["X-Subject-Token"], project_id=token["project"]["id"],
                   roles=[x["name"] for x in token.get("roles", [])], verify=cloud.verify)


# ---------------------------------------------------------------- the server process

def process_rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) in MB of ``pid`` plus its descendants, from /proc; None if ``pid`` is gone."""
    rss = hwm = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            status = dict(ln.split(":", 1) for ln in Path(f"/proc/{p}/status").read_text().splitlines() if ":" in ln)
            todo += [int(c) for f in Path(f"/proc/{p}/task").glob("*/children") for c in f.read_text().split()]
        except (OSError, ValueError):
            if p == pid:
                return None
            continue
        rss += int(status.get("VmRSS", "0 kB").split()[0])
        hwm += int(status.get("VmHWM", "0 kB").split()[0])
    return rss / 1024, hwm / 1024


class SpawnedServer:
    """``<cmd> server --bind 127.0.0.1:<free port> --state-dir <tmp>``, timed until GET / is 200."""

    def __init__(self, cmd: list[str], timeout: float = 60.0, extra: list[str] | None = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="neutrino-bench-"))
        self.state = self.tmp / "state"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = self.tmp / "server.log"
        argv = [*cmd, "server", "--bind", f"127.0.0.1:{port}", "--state-dir", str(self.state), *(extra or [])]
        with httpx.Client(timeout=1.0) as poll, open(self.log_path, "wb") as log:  # client built before t0
            t0 = time.perf_counter()
            try:
                self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise BenchError(f"cannot start {cmd[0]}: {exc}; pass the server with --server-cmd") from exc
            try:
                while True:
                    try:
                        if poll.get(self.url + "/").status_code == 200:
                            self.cold_start_s = time.perf_counter() - t0
                            return
                    except httpx.TransportError:
                        pass
                    if self.proc.poll() is not None or time.perf_counter() - t0 > timeout:
                        tail = self.log_path.read_text(errors="replace")[-2000:]
                        rc = self.proc.poll()
                        why = f"exited with status {rc}" if rc is not None else f"did not answer in {timeout:.0f}s"
                        raise BenchError(f"{shlex.join(argv)} {why}; its output ends with:\n{tail}")
                    time.sleep(0.005)
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- the load

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def call(c: httpx.Client, method: str, path: str, expect: int, **kw: Any) -> tuple[float, Any]:
    """One timed request; returns (milliseconds, parsed body) or raises OpFailed."""
    t0 = time.perf_counter()
    r = c.request(method, path, **kw)
    ms = (time.perf_counter() - t0) * 1000
    if r.status_code != expect:
        raise OpFailed(f"{method} {path}: HTTP {r.status_code} {r.text[:200]}")
    return ms, (r.json() if r.content else None)


class Runner:
    """Runs phases on up to 8 worker threads, each with its own keep-alive client."""

    def __init__(self, session: Session, workers: int, after_phase: Callable[[], None] = lambda: None,
                 endpoints: list[str] | None = None) -> None:
        self.session = session
        # with several servers of one cloud, worker i talks to server i mod K (its own connection)
        self.clients = [session.client(endpoints[i % len(endpoints)] if endpoints else None) for i in range(workers)]
        for c in self.clients:  # open the keep-alive connections before timing anything
            try:
                c.get("/")
            except httpx.HTTPError as exc:
                raise BenchError(f"cannot reach {session.endpoint}: is the server running? ({exc})") from exc
        self.after_phase = after_phase
        self.created: dict[str, set[str]] = {"ports": set(), "subnets": set(), "networks": set()}
        self.lock = threading.Lock()

    def close(self) -> None:
        for c in self.clients:
            c.close()

    def track(self, coll: str, rid: str, add: bool = True) -> None:
        with self.lock:
            (self.created[coll].add if add else self.created[coll].discard)(rid)

    def run(self, op: str, conc: int, items: Iterable[Any],
            fn: Callable[[httpx.Client, Any], tuple[float, int | None]], quiet: bool = False) -> OpResult:
        todo = list(items)
        res = OpResult(op, conc)
        it, lock, stop, done = iter(todo), threading.Lock(), threading.Event(), threading.Event()
        alive = [conc]

        def worker(c: httpx.Client) -> None:
            try:
                while not stop.is_set():
                    with lock:
                        item = next(it, StopIteration)
                    if item is StopIteration:
                        return
                    try:
                        ms, n = fn(c, item)
                    except Exception as exc:  # an error of this call, counted; the phase goes on
                        with lock:
                            res.errors += 1
                            res.first_error = res.first_error or (str(exc) or repr(exc))
                        continue
                    with lock:
                        res.count += 1
                        res.latencies_ms.append(ms)
                        if n is not None:
                            res.items.append(n)
            finally:
                with lock:
                    alive[0] -= 1
                    if not alive[0]:
                        done.set()

        t0 = last = time.perf_counter()
        for c in self.clients[:conc]:
            threading.Thread(target=worker, args=(c,), daemon=True).start()
        try:  # not Thread.join: on 3.11 a Ctrl-C inside join() can mark a running thread as stopped
            while not done.wait(0.5):
                if not quiet and time.perf_counter() - last > 5:
                    last = time.perf_counter()
                    log(f"  ... {op}: {res.count + res.errors}/{len(todo)}")
        except KeyboardInterrupt:
            stop.set()  # let the calls in flight finish, so that what they create is tracked
            done.wait()
            raise
        res.wall_s = time.perf_counter() - t0
        if not quiet:
            log(f"[c={conc}] {op}: {res.count} ok, {res.errors} errors, {res.wall_s:.2f}s"
                + (f"; first error: {res.first_error}" if res.first_error else ""))
            self.after_phase()
        return res


def run_round(r: Runner, conc: int, prefix: str, n: dict[str, int]) -> list[OpResult]:
    """Create, list, filter, show, update and delete, all at concurrency ``conc``."""
    p = f"{prefix}-c{conc}"
    nets: dict[int, str] = {}
    ports: dict[int, str] = {}
    subnets: dict[int, str] = {}
    out: list[OpResult] = []

    def creator(coll: str, store: dict[int, str], body: Callable[[int], dict[str, Any]]) -> Callable[..., Any]:
        def fn(c: httpx.Client, i: int) -> tuple[float, None]:
            ms, data = call(c, "POST", f"/{coll}", 201, json=body(i))
            store[i] = data[coll[:-1]]["id"]
            r.track(coll, store[i])
            return ms, None
        return fn

    def cidr(i: int) -> str:  # 10.0.0.0/22, 10.0.4.0/22, ...: 1022 addresses each
        return str(ipaddress.IPv4Network((int(ipaddress.IPv4Address("10.0.0.0")) + (i % 16384) * 1024, 22)))

    out.append(r.run("create network", conc, range(n["networks"]), creator(
        "networks", nets, lambda i: {"network": {"name": f"{p}-net-{i}", "admin_state_up": True}})))
    if not nets:
        raise BenchError(f"could not create any network: {out[-1].first_error}")
    net_ids = [nets[i] for i in sorted(nets)]
    out.append(r.run("create subnet", conc, sorted(nets), creator("subnets", subnets, lambda i: {"subnet": {
        "network_id": nets[i], "name": f"{p}-subnet-{i}", "ip_version": 4, "cidr": cidr(i), "enable_dhcp": False}})))
    out.append(r.run("create port", conc, range(n["ports"]), creator("ports", ports, lambda j: {"port": {
        "network_id": net_ids[j % len(net_ids)], "name": f"{p}-port-{j}", "device_owner": f"bench:{p}:{j % 10}"}})))

    def lister(params: Callable[[Any], dict[str, str]]) -> Callable[..., Any]:
        def fn(c: httpx.Client, item: Any) -> tuple[float, int]:
            ms, data = call(c, "GET", "/ports", 200, params=params(item))
            return ms, len(data["ports"])
        return fn

    port_idx = sorted(ports) or [0]
    out.append(r.run("list ports", conc, range(n["lists"]), lister(lambda _: {})))
    out.append(r.run("list ports ?network_id", conc, range(n["filters"]),
                     lister(lambda k: {"network_id": net_ids[k % len(net_ids)]})))
    out.append(r.run("list ports ?device_owner", conc, range(n["filters"]),
                     lister(lambda k: {"device_owner": f"bench:{p}:{k % 10}"})))
    out.append(r.run("list ports ?name", conc, range(n["filters"]),
                     lister(lambda k: {"name": f"{p}-port-{port_idx[k % len(port_idx)]}"})))
    out.append(r.run("show port", conc, list(ports.values()),
                     lambda c, pid: (call(c, "GET", f"/ports/{pid}", 200)[0], None)))
    out.append(r.run("update port", conc, list(ports.items()), lambda c, jp: (call(
        c, "PUT", f"/ports/{jp[1]}", 200, json={"port": {"name": f"{p}-port-{jp[0]}-u"}})[0], None)))
    for coll, store in (("ports", ports), ("subnets", subnets), ("networks", nets)):
        out.append(r.run(f"delete {coll[:-1]}", conc, list(store.values()), deleter(r, coll)))
    return out


def deleter(r: Runner, coll: str) -> Callable[[httpx.Client, str], tuple[float, None]]:
    def fn(c: httpx.Client, rid: str) -> tuple[float, None]:
        ms, _ = call(c, "DELETE", f"/{coll}/{rid}", 204)
        r.track(coll, rid, add=False)
        return ms, None
    return fn


def cleanup(r: Runner, prefix: str) -> None:
    """Delete what this run created: tracked ids, plus anything named ``prefix*`` in the project."""
    for coll in ("ports", "subnets", "networks"):
        ids = set(r.created[coll])
        try:
            resp = r.clients[0].get(f"/{coll}", params={"project_id": r.session.project_id, "fields": ["id", "name"]})
            ids |= {x["id"] for x in resp.json().get(coll, []) if str(x.get("name", "")).startswith(prefix)}
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        if ids:
            res = r.run(f"cleanup {coll}", len(r.clients), ids, deleter(r, coll), quiet=True)
            log(f"cleanup: deleted {res.count} {coll}" + (f", {res.errors} failed ({res.first_error})"
                                                           if res.errors else ""))


def prepare_quotas(c: httpx.Client, session: Session,
                   want: dict[str, int]) -> tuple[dict[str, int], Callable[[], None] | None, str]:
    """Lift the project's quotas if admin (returning how to restore them), else fit the counts to them."""
    pid = session.project_id
    note = "not admin: quotas left as they are"
    if "admin" in session.roles:
        try:
            previous = None
            resp = c.get("/quotas")
            if resp.status_code == 200:
                for q in resp.json().get("quotas", []):
                    if q.get("project_id", q.get("tenant_id")) == pid:
                        previous = {k: q[k] for k in QUOTA_KEYS if k in q}
            resp = c.put(f"/quotas/{pid}", json={"quota": {k: -1 for k in QUOTA_KEYS}})
            if resp.status_code == 200:
                def restore() -> None:
                    back = c.put(f"/quotas/{pid}", json={"quota": previous}) if previous else c.delete(f"/quotas/{pid}")
                    if back.status_code not in (200, 204):
                        log(f"WARNING: could not restore the quotas of project {pid}: HTTP {back.status_code}")
                return want, restore, "quotas lifted for the run, restored afterwards"
            note = f"could not lift quotas: HTTP {resp.status_code} {resp.text[:150]}"
        except httpx.HTTPError as exc:
            note = f"could not lift quotas: {exc}"
    got = dict(want)
    try:
        resp = c.get(f"/quotas/{pid}")
        quota = resp.json().get("quota", {}) if resp.status_code == 200 else {}
        if resp.status_code != 200:
            note += f"; quotas unknown (GET /quotas/{pid}: HTTP {resp.status_code})"
        for key, wkey in (("network", "networks"), ("subnet", "networks"), ("port", "ports")):
            limit = quota.get(key)
            if isinstance(limit, int) and limit >= 0:
                used = len(c.get(f"/{key}s", params={"project_id": pid, "fields": "id"}).json()[f"{key}s"])
                got[wkey] = max(0, min(got[wkey], limit - used))
    except (httpx.HTTPError, ValueError, KeyError, AttributeError) as exc:
        note += f"; could not read the quotas ({exc})"
    if got != want:
        note += f"; counts cut to fit the quotas: {got['networks']} networks, {got['ports']} ports"
    return got, None, note


# ---------------------------------------------------------------- several servers on one database

def database_url(db_server: str, name: str) -> str:
    """``db_server`` (a URL of any database on that server) pointed at database ``name``."""
    base, _, rest = db_server.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{rest}" if rest else "")


def database(db_server: str, name: str, create: bool) -> None:
    """CREATE (or DROP, with the sessions still on it) database ``name`` on ``db_server``."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    if not name.replace("_", "").isalnum() or not name.islower():
        raise BenchError(f"database name {name!r}: lowercase letters, digits and '_' only")
    engine = create_engine(db_server, isolation_level="AUTOCOMMIT")
    postgres = engine.dialect.name == "postgresql"
    quoted = f'"{name}"' if postgres else f"`{name}`"
    try:
        with engine.connect() as conn:
            if create:
                conn.execute(text(f"CREATE DATABASE {quoted}"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {quoted}{' WITH (FORCE)' if postgres else ''}"))
    except SQLAlchemyError as exc:
        where = db_server.split("@")[-1]
        raise BenchError(f"cannot {'create' if create else 'drop'} database {name} on {where}: {exc}") from exc
    finally:
        engine.dispose()


class Fleet:
    """K ``neutrino server`` processes on one database, each on its own port and state dir.

    The first one migrates the database, bootstraps identity and writes ``clouds.yaml``; the
    others start once it answers and find that done (as ``neutrino lab up`` starts them). A
    token from the first is checked by any of them against the shared database.
    """

    def __init__(self, cmd: list[str], k: int, db: str) -> None:
        self.servers: list[SpawnedServer] = []
        try:
            for _ in range(k):
                self.servers.append(SpawnedServer(cmd, extra=["--db", db]))
        except BaseException:
            self.stop()
            raise

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` (and its waited-for children) from /proc; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def database_backends(db_server: str, name: str) -> list[int]:
    """PIDs of the PostgreSQL backends connected to database ``name`` (the servers' pools)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_server)
    try:
        if engine.dialect.name != "postgresql":
            return []
        with engine.connect() as conn:
            return [int(r[0]) for r in conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :n"), {"n": name})]
    except Exception:  # only for the CPU split: never worth failing the run
        return []
    finally:
        engine.dispose()


def database_stats(db_server: str, name: str) -> dict[str, int]:
    """PostgreSQL's counters of database ``name``: transactions committed and rolled back (a
    serialization failure between two servers' writers is a rollback, and the server retries)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_server)
    try:
        if engine.dialect.name != "postgresql":
            return {}
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            row = conn.execute(text("SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database "
                                    "WHERE datname = :n"), {"n": name}).first()
        return {} if row is None else {"commits": int(row[0]), "rollbacks": int(row[1]), "deadlocks": int(row[2])}
    except Exception:  # only for the report: never worth failing the run
        return {}
    finally:
        engine.dispose()


def warm_up(r: Runner, prefix: str) -> None:
    """Untimed, through every client (so every server and each of its connections): a network,
    subnet and port created, listed, updated and deleted. A fresh process's first requests
    pay for lazy imports and SQL compilation; with K servers each would pay it in the round."""
    def one(c: httpx.Client, i: int) -> tuple[float, None]:
        _, net = call(c, "POST", "/networks", 201, json={"network": {"name": f"{prefix}-warm-{i}"}})
        nid = net["network"]["id"]
        r.track("networks", nid)
        _, sub = call(c, "POST", "/subnets", 201, json={"subnet": {
            "network_id": nid, "name": f"{prefix}-warm-{i}", "ip_version": 4, "cidr": "10.255.0.0/24",
            "enable_dhcp": False}})
        r.track("subnets", sub["subnet"]["id"])
        _, port = call(c, "POST", "/ports", 201, json={"port": {"network_id": nid, "name": f"{prefix}-warm-{i}"}})
        pid = port["port"]["id"]
        r.track("ports", pid)
        call(c, "GET", "/ports", 200, params={"network_id": nid})
        call(c, "PUT", f"/ports/{pid}", 200, json={"port": {"name": f"{prefix}-warm-{i}-u"}})
        for coll, rid in (("ports", pid), ("subnets", sub["subnet"]["id"]), ("networks", nid)):
            call(c, "DELETE", f"/{coll}/{rid}", 204)
            r.track(coll, rid, add=False)
        return 0.0, None

    # one item per client, each client taking one: every connection is used once
    res = r.run("warm-up", len(r.clients), range(len(r.clients)), one, quiet=True)
    if res.errors:
        raise BenchError(f"warm-up failed: {res.first_error}")


def throughput(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Every successful request of a round over the round's wall time (the sum of its phases)."""
    count = sum(r["count"] for r in results)
    wall = sum(r["wall_s"] for r in results)
    return {"requests": count, "errors": sum(r["errors"] for r in results), "wall_s": round(wall, 3),
            "requests_per_s": round(count / wall, 1) if wall > 0 else None}


def scaling_targets(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's bar: K=2 servers serve at least 1.6x the requests/s of one, in the same run."""
    base = next((st for st in steps if st["servers"] == 1), None)
    out = []
    for st in steps:
        if st["servers"] == 1:
            continue
        limit = SCALING_TARGET if st["servers"] == 2 else None
        ratio = st.get("ratio")
        t: dict[str, Any] = {"name": f"{st['servers']} servers / 1, requests/s", "limit": limit, "unit": "x",
                             "measured": ratio, "load_start": st["load_start"],
                             "pass": None if ratio is None or limit is None else ratio >= limit}
        if base is None:
            t["note"] = "1 server not run"
        elif st["total"]["errors"] or base["total"]["errors"]:
            t["note"] = "errors in a round: see the table"
        out.append(t)
    return out


def render_scaling(report: dict[str, Any]) -> str:
    meta, steps = report["meta"], report["steps"]
    where = f"{meta['cpu_model']} x{meta['host_cpu_count']}"
    lines = [f"servers on one {meta['db_dialect']} database; {where}; concurrency {meta['concurrency']} "
             f"(clients spread round-robin over the servers)", ""]
    for st in steps:
        cpu, total = st["cpu_s"], st["total"]
        per = (f"; CPU s over the round: servers {cpu['servers']}, PostgreSQL backends {cpu['database']} "
               f"({cpu['database_backends']} seen at the start; a backend opened later is not counted), "
               f"bench client {cpu['bench client']}; wall {total['wall_s']} s"
               + (f"; transactions {st['transactions']['commits']} committed, {st['transactions']['rollbacks']} "
                  f"rolled back (serialization failures, retried), {st['transactions']['deadlocks']} deadlocks"
                  if st.get("transactions") else ""))
        lines += [f"{st['servers']} server(s), load {'/'.join(f'{x:.2f}' for x in st['load_start'])} at the start"
                  f"{per}:", render_table(st["results"]), ""]
    ks = [st["servers"] for st in steps]
    head = f"{'requests/s':<36} " + " ".join(f"{f'{k} srv':>9}" for k in ks) + \
           "".join(f" {f'{k}/1':>7}" for k in ks if k != 1 and 1 in ks)
    lines += [head, "-" * len(head)]
    base = next((st for st in steps if st["servers"] == 1), None)
    ops = [r["operation"] for r in steps[0]["results"]]
    for op in [*ops, "all requests"]:
        vals = [st["total"]["requests_per_s"] if op == "all requests" else
                next((r["ops_per_s"] for r in st["results"] if r["operation"] == op), None) for st in steps]
        row = f"{op:<36} " + " ".join(f"{_fmt(v, '.1f'):>9}" for v in vals)
        if base is not None:
            b = vals[ks.index(1)]
            row += "".join(f" {_fmt(v / b if v and b else None, '.2f'):>7}" for k, v in zip(ks, vals, strict=True)
                           if k != 1)
        lines.append(row)
    lines += ["", f"{'target':<28} {'goal':<10} {'measured':<24} {'result':<6} [CPU, load 1/5/15 min at its start]"]
    for t in report["targets"]:
        goal = "-" if t["limit"] is None else f">= {t['limit']:g} x"
        got = "n/a" if t["measured"] is None else f"{t['measured']:.2f} x"
        res = "-" if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")
        load = "/".join(f"{x:.2f}" for x in t["load_start"])
        note = f"  ({t['note']})" if t.get("note") else ""
        lines.append(f"{t['name']:<28} {goal:<10} {got:<24} {res:<6} [{where}, load {load}]{note}")
    return "\n".join(lines)


def run_scaling(args: argparse.Namespace) -> int:
    """``--servers 1,2``: per K, a fresh database, K servers on it, one round at ``--concurrency``
    with the clients spread over the servers; then the database is dropped. Ratios against K=1."""
    n = {"networks": max(1, round(100 * args.scale)), "ports": max(1, round(1000 * args.scale)),
         "lists": max(5, round(20 * args.scale))}
    n["filters"] = n["networks"]
    run_id = secrets.token_hex(3)
    prefix = f"bench-{run_id}"
    cmd = shlex.split(args.server_cmd)
    steps: list[dict[str, Any]] = []
    dialect = args.db_server.split(":", 1)[0].split("+", 1)[0]
    for k in args.servers:
        name = f"neutrino_bench_{run_id}_s{k}"
        load = load_average()
        log(f"{k} server(s): database {name} on {args.db_server.split('@')[-1]}, load {load}")
        database(args.db_server, name, create=True)
        try:
            fleet = Fleet(cmd, k, database_url(args.db_server, name))
            try:
                log(f"{k} server(s) up: {', '.join(fleet.urls)}")
                session = authenticate(load_cloud("admin", fleet.servers[0].state / "clouds.yaml"))
                runner = Runner(session, args.concurrency, endpoints=fleet.urls)
                try:
                    counts, restore, quota_note = prepare_quotas(runner.clients[0], session, n)
                    if counts["networks"] < 1:
                        raise BenchError(f"no room for a single network: {quota_note}")
                    warm_up(runner, f"{prefix}-s{k}")
                    backends = database_backends(args.db_server, name)
                    watched = {"servers": [s.proc.pid for s in fleet.servers], "database": backends}
                    cpu0 = {key: [cpu_seconds(x) or 0.0 for x in pids] for key, pids in watched.items()}
                    client0 = time.process_time()
                    time.sleep(0.6)  # the statistics collector publishes every 500 ms
                    db0 = database_stats(args.db_server, name)
                    results = [r.to_dict() for r in run_round(runner, args.concurrency, f"{prefix}-s{k}", counts)]
                    time.sleep(0.6)
                    db1 = database_stats(args.db_server, name)
                    xacts = {key: db1[key] - db0.get(key, 0) for key in db1}
                    cpu = {key: round(sum((cpu_seconds(x) or 0.0) - c0 for x, c0 in zip(pids, cpu0[key],
                                                                                      strict=True)), 2)
                           for key, pids in watched.items()}
                    cpu["bench client"] = round(time.process_time() - client0, 2)
                    cpu["database_backends"] = len(backends)
                finally:
                    try:
                        cleanup(runner, prefix)
                    finally:
                        runner.close()
            finally:
                fleet.stop()
        finally:
            database(args.db_server, name, create=False)
        steps.append({"servers": k, "database": name, "load_start": load, "load_end": load_average(),
                      "results": results, "total": throughput(results), "cpu_s": cpu, "transactions": xacts})
        log(f"{k} server(s): {steps[-1]['total']['requests_per_s']} requests/s")
    base = next((st for st in steps if st["servers"] == 1), None)
    for st in steps:
        b, v = (base or {}).get("total", {}).get("requests_per_s"), st["total"]["requests_per_s"]
        st["ratio"] = round(v / b, 3) if b and v else None
    meta = {"mode": "servers", "date": datetime.now(UTC).isoformat(), "cpu_model": cpu_model(),
            "host_cpu_count": os.cpu_count(), "loadavg_end": load_average(), "python": platform.python_version(),
            "platform": platform.platform(), "git_commit": git_commit(), "scale": args.scale, "counts": n,
            "prefix": prefix, "servers": args.servers, "concurrency": args.concurrency,
            "db_server": args.db_server.split("@")[-1], "db_dialect": dialect}
    report = {"meta": meta, "steps": steps, "targets": scaling_targets(steps)}
    print(render_scaling(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


# ---------------------------------------------------------------- main

def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--os-cloud", help="cloud in clouds.yaml (default: spawn neutrino, use its cloud admin)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the resource counts (0.1: quick run)")
    ap.add_argument("--spawn", action="store_true", help="start a fresh neutrino server for the run")
    ap.add_argument("--server-cmd", default=str(Path(sys.executable).parent / "neutrino"),
                    help="command that runs neutrino (default: %(default)s)")
    ap.add_argument("--server-pid", type=int, help="PID of the server behind --os-cloud, to read its RSS")
    ap.add_argument("--cold-start-runs", type=int, default=3, help="spawns to time (median is reported)")
    ap.add_argument("--servers", type=parse_servers,
                    help="throughput of K server processes on one database, e.g. 1,2: per K a fresh database "
                         "on --db-server, K spawned servers, one round at --concurrency spread over them")
    ap.add_argument("--db-server", default=DEFAULT_DB_SERVER,
                    help="with --servers: the database server the per-run databases are created on and dropped "
                         "from (default: %(default)s)")
    ap.add_argument("--concurrency", type=int, default=max(CONCURRENCY),
                    help="with --servers: requests in flight, over all servers (default %(default)s)")
    args = ap.parse_args(argv)
    args.spawn = args.spawn or not args.os_cloud
    if args.scale <= 0:
        ap.error("--scale must be > 0")
    if args.servers and args.os_cloud:
        ap.error("--servers spawns its servers: it does not take --os-cloud")
    if args.concurrency < 1:
        ap.error("--concurrency must be >= 1")
    return args


def parse_servers(text: str) -> list[int]:
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not ks or any(k < 1 or k > 8 for k in ks):
        raise argparse.ArgumentTypeError("server counts are between 1 and 8")
    return ks


def run(args: argparse.Namespace) -> int:
    n = {"networks": max(1, round(100 * args.scale)), "ports": max(1, round(1000 * args.scale)),
         "lists": max(5, round(20 * args.scale))}
    n["filters"] = n["networks"]
    prefix = f"bench-{secrets.token_hex(3)}"
    server_info: dict[str, Any] = {"rss_mb": None, "peak_rss_mb": None, "cold_start_s": None}
    results: list[OpResult] = []
    spawned: SpawnedServer | None = None
    try:
        if args.spawn:
            samples = []
            for i in range(max(1, args.cold_start_runs)):
                spawned = SpawnedServer(shlex.split(args.server_cmd))
                samples.append(spawned.cold_start_s)
                log(f"cold start {i + 1}/{max(1, args.cold_start_runs)}: {spawned.cold_start_s:.3f}s")
                if i < args.cold_start_runs - 1:
                    spawned.stop()
            server_info["cold_start_s"] = round(sorted(samples)[len(samples) // 2], 4)
            server_info["cold_start_samples_s"] = [round(s, 4) for s in samples]
            assert spawned is not None
            cloud = load_cloud(args.os_cloud or "admin", spawned.state / "clouds.yaml")
            pid: int | None = spawned.proc.pid
        else:
            cloud = load_cloud(args.os_cloud)
            pid = args.server_pid
            if pid is None:
                server_info["note"] = "remote endpoint"
        session = authenticate(cloud)
        peak_rss = [0.0]

        def sample_rss() -> None:
            got = process_rss_mb(pid) if pid else None
            if got:
                peak_rss[0] = max(peak_rss[0], got[0])

        runner = Runner(session, max(CONCURRENCY), sample_rss)
        restore = None
        try:
            n, restore, quota_note = prepare_quotas(runner.clients[0], session, n)
            log(f"endpoint {session.endpoint}, prefix {prefix}, {n['networks']} networks/subnets, "
                f"{n['ports']} ports; {quota_note}")
            if n["networks"] < 1:
                raise BenchError(f"no room for a single network: {quota_note}")
            for conc in CONCURRENCY:
                results += run_round(runner, conc, prefix, n)
        finally:
            try:
                cleanup(runner, prefix)
                if restore:
                    restore()
            except KeyboardInterrupt:
                log(f"cleanup interrupted: resources named {prefix}-* may be left in project {session.project_id}")
                raise
            finally:
                runner.close()
        if pid:
            got = process_rss_mb(pid)
            if got is None:
                server_info["note"] = f"process {pid} not found"
            else:
                server_info["rss_mb"] = round(max(peak_rss[0], got[0]), 1)
                server_info["peak_rss_mb"] = round(got[1], 1)
    finally:
        if spawned is not None:
            spawned.stop()
    meta = {"endpoint": session.endpoint, "cloud": cloud.name, "date": datetime.now(UTC).isoformat(),
            "host_cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "git_commit": git_commit(), "scale": args.scale, "counts": n, "prefix": prefix, "quotas": quota_note,
            "spawned": args.spawn}
    report = build_report(meta, [r.to_dict() for r in results], server_info)
    print(render_table(report["results"]))
    print()
    print(render_targets(report["targets"]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run_scaling(args) if args.servers else run(args)
    except BenchError as exc:
        print(f"bench/api.py: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench/api.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
