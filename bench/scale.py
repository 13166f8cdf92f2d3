"""Cost of a write at cloud scale: one server against many simulated host agents (issue 8, section 4).

For each host count (``--hosts 10,1000``) the bench starts one ``neutrino server`` on a fresh
PostgreSQL database with RabbitMQ as its bus, registers that many L2 agents, builds
``--ports`` ports (networks of ``--ports-per-network`` ports, each spread over
``--hosts-per-network`` hosts), and starts the simulated agents: each has its own queue
bound to its host on the change exchange and keeps its desired state with the real agent
code (``agent.host_state``: a full sync, then partial syncs merged in) over the real RPC
(``amqp.RpcClient``); only the kernel is missing, as nothing is wired. It then creates
``--sample`` ports one at a time and reports per port create:

* server CPU (user + system of the server process, milliseconds),
* messages delivered to agents (change events; each is one AMQP message to one host),
* bytes synced (the JSON the agents' sync answers weighed on the wire),
* time until the owning agent has the port in its state (POST sent -> state merged), p50/p99;

and the cost of one agent's full resync (time, bytes, server CPU) at that size. The target
(issue 8): per-write cost within 2x from 10 to 1,000 hosts, and notification p99 under 1 s
at 1,000 hosts. Ports are in a security group with a CIDR rule only: a group that names
itself as remote group (like ``default``) makes every port create reach every host with a
member, as in Neutron; ``--remote-group`` measures that instead.

    .venv/bin/python bench/scale.py                      # 10 and 1,000 hosts, 20,000 ports
    .venv/bin/python bench/scale.py --quick              # 10 and 100 hosts, 2,000 ports
    .venv/bin/python bench/scale.py --json scale.json

It needs PostgreSQL (``--db-admin-url``) and RabbitMQ (``--transport-url``) on loopback; it
creates a database and an exchange prefix of its own and removes both when done.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from kombu import Connection, Consumer, Queue, binding
from kombu.message import Message
from sqlalchemy import create_engine, text

from neutrino.agent.host_state import Pending, merge
from neutrino.amqp import BROADCAST, RpcClient, changes_exchange, drain, host_key, parse_event
from neutrino.messages import LINUXBRIDGE_AGENT

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py, however this file is loaded
from machine import cpu_model, load_average  # noqa: E402

NEUTRINO = [sys.executable, "-m", "neutrino.cmd.main"]
TICK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def machine() -> dict[str, Any]:
    return {"cpu_model": cpu_model(), "cpus": os.cpu_count(), "loadavg": load_average(),
            "python": platform.python_version()}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


# ---------------------------------------------------------------- the server and its database

@contextmanager
def database(admin_url: str) -> Iterator[str]:
    name = f"neutrino_scale_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        raise SystemExit(f"cannot create a database at {admin_url.split('@')[-1]} ({exc}); "
                         "start PostgreSQL or pass --db-admin-url") from exc
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@contextmanager
def server(db_url: str, transport: str, prefix: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    tmp = Path(tempfile.mkdtemp(prefix="neutrino-scale-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "NEUTRINO_DEFAULT__TRANSPORT_URL": transport, "NEUTRINO_DEFAULT__CONTROL_EXCHANGE": prefix,
           "NEUTRINO_DEFAULT__AUTH_STRATEGY": "noauth", "NEUTRINO_DEFAULT__AGENT_DOWN_TIME": "86400"}
    url = f"http://127.0.0.1:{port}"
    with open(tmp / "server.log", "wb") as out:
        proc = subprocess.Popen([*NEUTRINO, "server", "--bind", f"127.0.0.1:{port}", "--state-dir", str(tmp),
                                 "--db", db_url], stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; its log:\n{(tmp / 'server.log').read_text()[-3000:]}")
            time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- the simulated agents

@dataclass
class Agents:
    """H agents' change queues on one AMQP connection, and W workers fetching over the real RPC."""

    transport: str
    prefix: str
    hosts: list[str]
    workers: int
    pending: dict[str, Pending] = field(default_factory=dict)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    delivered: int = 0
    waiting: dict[str, tuple[str, float]] = field(default_factory=dict)  # port id -> (host, t0)
    arrived: dict[str, float] = field(default_factory=dict)  # port id -> seconds after its POST
    fetches: dict[str, int] = field(default_factory=lambda: {"full": 0, "partial": 0})

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._todo: queue.Queue[str | None] = queue.Queue()
        self._queued: set[str] = set()
        self._stop = threading.Event()
        self._clients = [RpcClient(self.transport, self.prefix, timeout=60) for _ in range(self.workers)]
        self.pending = {h: Pending() for h in self.hosts}
        self._ready = threading.Event()
        self._threads = [threading.Thread(target=self._consume, daemon=True)]
        self._threads += [threading.Thread(target=self._work, args=(c,), daemon=True) for c in self._clients]

    @property
    def synced_bytes(self) -> int:
        return sum(c.received_bytes for c in self._clients)

    def start(self) -> None:
        for t in self._threads:
            t.start()
        if not self._ready.wait(120):
            raise SystemExit("the agents' queues were not consuming within 120 s: is RabbitMQ up?")

    def stop(self) -> None:
        self._stop.set()
        for _ in self._clients:
            self._todo.put(None)
        for t in self._threads:
            t.join(10)
        for c in self._clients:
            c.close()

    def _consume(self) -> None:
        exchange = changes_exchange(self.prefix)
        with Connection(self.transport, connect_timeout=10) as conn:
            channel = conn.channel()
            consumers = []
            for host in self.hosts:
                q = Queue(f"{exchange.name}.{uuid.uuid4().hex[:12]}", exclusive=True, auto_delete=True,
                          durable=False, bindings=[binding(exchange, routing_key=k)
                                                   for k in (host_key(host), BROADCAST)])
                consumer = Consumer(channel, queues=[q], accept=["json"],
                                    callbacks=[lambda body, msg, host=host: self._on_event(host, body, msg)])
                consumer.consume()
                consumers.append(consumer)
            self._ready.set()
            drain(conn, self._stop)

    def _on_event(self, host: str, body: Any, msg: Message) -> None:
        msg.ack()
        with self._lock:
            self.delivered += 1
        self.pending[host].add(parse_event(body))
        self.fetch(host)

    def fetch(self, host: str) -> None:
        with self._lock:
            if host in self._queued:
                return
            self._queued.add(host)
        self._todo.put(host)

    def _work(self, client: RpcClient) -> None:
        while (host := self._todo.get()) is not None:
            with self._lock:
                self._queued.discard(host)
            scope = self.pending[host].take()
            try:
                if scope is None or host not in self.state:
                    self.state[host] = client.sync(host)
                    self.fetches["full"] += 1
                elif scope is not False:
                    self.state[host] = merge(self.state[host], client.sync(host, scope), scope)
                    self.fetches["partial"] += 1
            except Exception as exc:  # noqa: BLE001 - a failed fetch is retried in full, as the agent does
                log(f"  {host}: fetch failed ({exc}); again in full")
                self.pending[host].everything()
                self.fetch(host)
                continue
            self._arrivals(host)

    def _arrivals(self, host: str) -> None:
        now = time.perf_counter()
        with self._lock:
            mine = [pid for pid, (h, _) in self.waiting.items() if h == host]
        if not mine:
            return
        have = {p["id"] for p in self.state[host]["ports"]}
        with self._lock:
            for pid in mine:
                if pid in have and pid in self.waiting:
                    self.arrived[pid] = now - self.waiting.pop(pid)[1]

    def idle(self, quiet: float = 0.5, timeout: float = 600) -> None:
        """Until no fetch is queued or running and no event came for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last = (-1, -1)
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            with self._lock:
                now = (self.delivered, self.fetches["full"] + self.fetches["partial"])
                busy = bool(self._queued) or not self._todo.empty()
            if now != last or busy:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= quiet:
                return
            time.sleep(0.05)
        raise SystemExit("the agents never went quiet")


# ---------------------------------------------------------------- one size

def run_pool(n: int, workers: int, fn: Callable[[int], Any]) -> list[Any]:
    out: list[Any] = [None] * n
    items: queue.Queue[int] = queue.Queue()
    for i in range(n):
        items.put(i)
    errors: list[BaseException] = []

    def worker() -> None:
        while not errors:
            try:
                i = items.get_nowait()
            except queue.Empty:
                return
            try:
                out[i] = fn(i)
            except BaseException as exc:  # noqa: BLE001 - reported after the pool
                errors.append(exc)
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


def post(http: httpx.Client, path: str, body: dict[str, Any]) -> Any:
    r = http.post(path, json=body)
    if r.status_code != 201:
        raise SystemExit(f"POST {path} answered {r.status_code}: {r.text[:500]}")
    return r.json()


def one_size(args: argparse.Namespace, n_hosts: int) -> dict[str, Any]:
    hosts = [f"sim-{i:04d}" for i in range(n_hosts)]
    per_net = args.ports_per_network
    n_nets = math.ceil(args.ports / per_net)
    span = min(args.hosts_per_network, n_hosts)
    prefix = f"nscale{uuid.uuid4().hex[:8]}"
    log(f"{n_hosts} hosts, {args.ports} ports on {n_nets} networks of {per_net} ports over {span} hosts each")
    with database(args.db_admin_url) as db_url, server(db_url, args.transport_url, prefix) as (proc, url), \
            httpx.Client(base_url=url, timeout=120, headers={"X-Project-Id": "bench",
                                                             "X-Roles": "admin,member,reader"}) as http:
        agents = Agents(args.transport_url, prefix, hosts, args.workers)
        clients = agents._clients

        def report(i: int) -> None:
            clients[i % len(clients)].report_state(hosts[i], LINUXBRIDGE_AGENT, {
                "tunneling_ip": f"10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}", "tunnel_types": ["vxlan"],
                "bridge_mappings": {}, "interface_mappings": {}}, start_flag=True)
        t = time.perf_counter()
        run_pool(n_hosts, len(clients), report)
        log(f"  {n_hosts} agents reported in {time.perf_counter() - t:.1f} s")
        r = http.put("/v2.0/quotas/bench", json={"quota": {"port": -1, "network": -1, "subnet": -1}})
        if r.status_code != 200:
            raise SystemExit(f"cannot lift the bench project's quotas: {r.status_code} {r.text[:300]}")
        group = post(http, "/v2.0/security-groups", {"security_group": {"name": "scale"}})["security_group"]
        post(http, "/v2.0/security-group-rules", {"security_group_rule": {
            "security_group_id": group["id"], "direction": "ingress", "protocol": "tcp",
            "port_range_min": 22, "port_range_max": 22,
            **({"remote_group_id": group["id"]} if args.remote_group else {"remote_ip_prefix": "10.0.0.0/8"})}})
        nets: list[str] = []
        subnets: list[str] = []
        for start in range(0, n_nets, 100):
            batch = range(start, min(n_nets, start + 100))
            nets += [n["id"] for n in post(http, "/v2.0/networks", {"networks": [
                {"name": f"scale-{i}"} for i in batch]})["networks"]]
            subnets += [s["id"] for s in post(http, "/v2.0/subnets", {"subnets": [
                {"network_id": nets[i], "ip_version": 4, "enable_dhcp": False,
                 "cidr": f"10.{i // 64}.{i % 64 * 4}.0/22"} for i in batch]})["subnets"]]

        def host_of(net: int, k: int) -> str:
            return hosts[(net * span + k % span) % n_hosts]

        def port_body(j: int) -> dict[str, Any]:
            net = j // per_net
            return {"network_id": nets[net], "device_owner": "compute:nova", "device_id": f"vm-{j}",
                    "security_groups": [group["id"]], "binding:host_id": host_of(net, j)}
        t = time.perf_counter()
        done = [0]

        def ports_batch(b: int) -> None:
            lo, hi = b * 100, min(args.ports, b * 100 + 100)
            post(http, "/v2.0/ports", {"ports": [port_body(j) for j in range(lo, hi)]})
            done[0] += hi - lo
            if done[0] % 2000 < 100:
                log(f"  {done[0]}/{args.ports} ports ({time.perf_counter() - t:.0f} s)")
        run_pool(math.ceil(args.ports / 100), 2, ports_batch)
        populate = time.perf_counter() - t
        log(f"  {args.ports} ports in {populate:.1f} s")

        # every agent's first, full sync
        agents.start()
        cpu0, bytes0, t = cpu_seconds(proc.pid), agents.synced_bytes, time.perf_counter()
        for host in hosts:
            agents.fetch(host)
        agents.idle()
        full_wall = time.perf_counter() - t
        full = {"agents": n_hosts, "wall_s": round(full_wall, 2),
                "server_cpu_ms_per_agent": round((cpu_seconds(proc.pid) - cpu0) * 1000 / n_hosts, 2),
                "bytes_per_agent": round((agents.synced_bytes - bytes0) / n_hosts),
                "ports_per_agent": round(args.ports / n_hosts, 1)}
        one = RpcClient(args.transport_url, prefix, timeout=60)
        resync_times = []
        for host in hosts[: min(20, n_hosts)]:
            t1 = time.perf_counter()
            one.sync(host)
            resync_times.append(time.perf_counter() - t1)
        one.close()
        full["one_resync_s_p50"] = round(percentile(resync_times, 50) or 0, 4)
        log(f"  full syncs: {full}")

        # the sample: one port create at a time
        latencies, notified = [], []
        delivered0, bytes0, cpu0 = agents.delivered, agents.synced_bytes, cpu_seconds(proc.pid)
        for k in range(args.sample):
            net = (k * 7919) % n_nets
            host = host_of(net, k)
            body = {"port": {"network_id": nets[net], "device_owner": "compute:nova", "device_id": f"s-{k}",
                             "security_groups": [group["id"]], "binding:host_id": host}}
            t1 = time.perf_counter()
            r = http.post("/v2.0/ports", json=body)
            latencies.append(time.perf_counter() - t1)
            if r.status_code != 201:
                raise SystemExit(f"port create answered {r.status_code}: {r.text[:300]}")
            pid = r.json()["port"]["id"]
            with agents._lock:
                if pid not in agents.arrived:
                    agents.waiting[pid] = (host, t1)
            agents._arrivals(host)  # it may have arrived before it was awaited
            deadline = time.monotonic() + 10
            while pid not in agents.arrived and time.monotonic() < deadline:
                time.sleep(0.001)
            if pid not in agents.arrived:
                raise SystemExit(f"port {pid} never reached its agent on {host}")
            notified.append(agents.arrived[pid])
        agents.idle()
        n = args.sample
        per_write = {"server_cpu_ms": round((cpu_seconds(proc.pid) - cpu0) * 1000 / n, 2),
                     "messages": round((agents.delivered - delivered0) / n, 2),
                     "bytes_synced": round((agents.synced_bytes - bytes0) / n),
                     "api_ms_p50": round((percentile(latencies, 50) or 0) * 1000, 1),
                     "notified_ms_p50": round((percentile(notified, 50) or 0) * 1000, 1),
                     "notified_ms_p99": round((percentile(notified, 99) or 0) * 1000, 1)}
        log(f"  per port create: {per_write}")
        agents.stop()
        return {"hosts": n_hosts, "ports": args.ports, "networks": n_nets, "hosts_per_network": span,
                "populate_s": round(populate, 1), "per_write": per_write, "full_sync": full,
                "fetches": dict(agents.fetches)}


# ---------------------------------------------------------------- report

def render(report: dict[str, Any]) -> str:
    rows = [("hosts", "ports", "cpu ms/write", "msgs/write", "bytes/write", "api p50 ms", "notified p50 ms",
             "notified p99 ms", "full sync ms", "full sync bytes")]
    for r in report["runs"]:
        w, f = r["per_write"], r["full_sync"]
        rows.append((str(r["hosts"]), str(r["ports"]), str(w["server_cpu_ms"]), str(w["messages"]),
                     str(w["bytes_synced"]), str(w["api_ms_p50"]), str(w["notified_ms_p50"]),
                     str(w["notified_ms_p99"]), str(round(f["one_resync_s_p50"] * 1000, 1)),
                     str(f["bytes_per_agent"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    m = report["machine"]
    lines.insert(0, f"{m['cpu_model']} x{m['cpus']}, load {m['loadavg_before']} before, {m['loadavg']} after")
    for name, value in report.get("ratios", {}).items():
        lines.append(f"{name}: {value}")
    for t in report.get("targets", []):
        lines.append(f"{'PASS' if t['ok'] else 'MISS'} {t['what']}: {t['value']}")
    return "\n".join(lines)


def evaluate(runs: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if len(runs) < 2:
        return {}, []
    small, big = runs[0]["per_write"], runs[-1]["per_write"]
    ratios = {f"{k} ratio {runs[-1]['hosts']}/{runs[0]['hosts']} hosts":
              round(big[k] / small[k], 2) if small[k] else None
              for k in ("server_cpu_ms", "messages", "bytes_synced")}
    targets = [{"what": f"{k} within 2x", "value": v, "ok": v is not None and v <= 2.0} for k, v in ratios.items()]
    if runs[-1]["hosts"] >= 1000:
        p99 = big["notified_ms_p99"]
        targets.append({"what": f"notified p99 < 1000 ms at {runs[-1]['hosts']} hosts", "value": p99,
                        "ok": p99 < 1000})
    return ratios, targets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", default="10,1000", help="host counts, comma-separated (default 10,1000)")
    ap.add_argument("--ports", type=int, default=20000)
    ap.add_argument("--ports-per-network", type=int, default=20)
    ap.add_argument("--hosts-per-network", type=int, default=10)
    ap.add_argument("--sample", type=int, default=200, help="port creates measured one at a time")
    ap.add_argument("--workers", type=int, default=8, help="agent fetches in flight at once")
    ap.add_argument("--remote-group", action="store_true", help="the ports' group names itself as remote group")
    ap.add_argument("--quick", action="store_true", help="10 and 100 hosts, 2,000 ports, 50 samples")
    ap.add_argument("--db-admin-url", default=os.environ.get("NEUTRINO_TEST_PG_URL",
                                                             "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--transport-url", default="amqp://guest:guest@127.0.0.1:5672//")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    if args.quick:
        args.hosts, args.ports, args.sample = "10,100", 2000, 50
    counts = [int(h) for h in args.hosts.split(",")]
    info = machine()
    info["loadavg_before"] = info.pop("loadavg")
    t = time.perf_counter()
    runs = [one_size(args, n) for n in counts]
    info["loadavg"] = load_average()
    ratios, targets = evaluate(runs)
    report = {"date": datetime.now(UTC).isoformat(), "machine": info, "args": vars(args), "runs": runs,
              "ratios": ratios, "targets": targets, "duration_s": round(time.perf_counter() - t, 1)}
    print(render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
