#!/usr/bin/env python3
"""Wiring benchmark: how fast neutrino turns API calls into working packets on this host.

Usage (root; everything lives in throwaway namespaces ``nt-bench-<6 hex>-*``)::

    bench/wiring.py                    # the full run: 1, 10 and 100 instances, 10 rule repeats, 200-port resync
    bench/wiring.py --quick            # 1 and 10 instances, 3 rule repeats, 50-port resync
    bench/wiring.py --json wiring.json

It builds a whole all-in-one cloud inside this process, as ``neutrino up`` does: the server
(noauth, SQLite in a tmp dir) over HTTP on a free loopback port in a thread, and this host's
agent (``allinone.start_agents``) with a node namespace and a namespace prefix of the run's
own, and no external network, so nothing is created in the machine's own namespace. Then:

* port -> ping, for N instances (``--counts``): each made by ``compute.manager.Compute.create``
  (port create as the user, binding as admin, VIF plug, wait for ACTIVE, a real udhcpc lease),
  one at a time for the per-port latency and, for N=100, once more ``--concurrency`` at a time
  for throughput (in worker processes, as `neutrino instance create` runs; ``--in-process``: in
  threads of this process), then pinged from inside the instance to the network's DHCP server until
  the first reply. Per instance: first reply - the moment before the create call.
* rule -> packet: instance B in a security group without ingress rules; A pings B every 5 ms
  while an ingress ICMP rule for A's address is POSTed; the time until A's ping gets through.
* resync: N ports (``--resync-ports``) bound here with their VIFs plugged; the agent is
  stopped, its bridges, vxlan devices, DHCP namespace and nftables tables are removed, the
  ports set DOWN, and a fresh agent is timed until the kernel is rewired and every port is
  ACTIVE again ("cold"); then once more without touching the kernel ("warm").

Exit status: 0 when the bench ran (even if a target was missed), 2 when it could not run (not
root, a tool missing, the cloud would not start), 130 when interrupted. Whatever the run
created is removed at the end, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neutrino.client import Client
from neutrino.compute.manager import Compute

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py, however this file is loaded
from machine import cpu_model, load_average  # noqa: E402

# (key, description, limit, unit). The per-N p50 targets are added by evaluate_targets.
PORT_P50_LIMIT_MS = 300.0
WALL_100_LIMIT_S = 30.0
RESYNC_LIMIT_S = 10.0
RESYNC_TARGET_PORTS = 1000  # issue 8: a full resync of 1,000 ports on a host under 10 s
WALL_TARGET_INSTANCES = 100
PHASES = ("port_api", "bind", "plug", "wait_active", "dhcp_lease", "first_ping")
PHASE_TITLES = {"port_api": "port API", "bind": "bind", "plug": "plug", "wait_active": "wait ACTIVE",
                "dhcp_lease": "DHCP lease", "first_ping": "first ping"}
PROJECT = "b0000000000000000000000000000001"
TOOLS = ("ip", "ping", "busybox", "dnsmasq", "nft")
OVS_TOOLS = ("ovsdb-server", "ovs-vswitchd", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl", "ethtool")
DRIVERS = {"linuxbridge": "linuxbridge", "ovs": "openvswitch"}  # --driver -> [agent] l2_driver
UNDERLAY_NET = "172.30.0"  # host I's tunnel endpoint is 172.30.0.(10+I), on a fabric namespace of the run
MAX_HOSTS = 8
PROBE_INTERVAL = "0.005"  # seconds between echo requests of a probe (root may go below 0.2)


class BenchError(Exception):
    """The bench cannot run; the message says why."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- statistics, targets, rendering

def percentile(values: Iterable[float], p: float) -> float | None:
    """The p-th percentile (0-100) with linear interpolation between ranks; None if empty."""
    s = sorted(values)
    if not s:
        return None
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarize(values: Iterable[float], digits: int = 1) -> dict[str, Any]:
    """count, p50, p90, max and mean of ``values`` (None for an empty list), rounded."""
    v = list(values)

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)
    return {"count": len(v), "p50": r(percentile(v, 50)), "p90": r(percentile(v, 90)),
            "max": r(max(v) if v else None), "mean": r(sum(v) / len(v) if v else None)}


def _target(name: str, limit: float, unit: str, measured: float | None, note: str | None = None,
            fail: bool = False, load: list[float] | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {"name": name, "limit": limit, "unit": unit, "measured": measured,
                         "pass": None if measured is None else (measured < limit and not fail)}
    if note:
        t["note"] = note
    if load:
        t["load_start"] = load  # the machine's load averages when the phase began
    return t


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against the measurements: PASS/FAIL, or n/a (with why) when not measured."""
    out = []
    runs = {r["instances"]: r for r in report.get("port_ping", [])}
    for n in sorted(runs):
        r = runs[n]
        note = f"{r['errors']} of {n} failed: {r.get('first_error')}" if r["errors"] else None
        out.append(_target(f"port->ping p50 (N={n})", PORT_P50_LIMIT_MS, "ms", r["total_ms"]["p50"], note,
                           fail=bool(r["errors"]), load=r.get("load_start")))
    big = report.get("port_ping_wall") or runs.get(WALL_TARGET_INSTANCES)
    if big is None:
        out.append(_target(f"{WALL_TARGET_INSTANCES} instances pingable", WALL_100_LIMIT_S, "s", None,
                           f"N={WALL_TARGET_INSTANCES} not run"))
    else:
        note = (f"only {big['ok']}/{WALL_TARGET_INSTANCES} pingable" if big["ok"] < WALL_TARGET_INSTANCES
                else None)
        out.append(_target(f"{WALL_TARGET_INSTANCES} instances pingable", WALL_100_LIMIT_S, "s",
                           big["wall_s"] if big["ok"] else None, note or ("none pingable" if not big["ok"] else None),
                           fail=big["ok"] < WALL_TARGET_INSTANCES, load=big.get("load_start")))
    rs = report.get("resync")
    cold = (rs or {}).get("cold") or {}
    name = f"full resync, {RESYNC_TARGET_PORTS} ports"
    if not rs:
        out.append(_target(name, RESYNC_LIMIT_S, "s", None, "resync not run"))
    elif cold.get("seconds") is None:
        out.append(_target(name, RESYNC_LIMIT_S, "s", None, cold.get("error") or rs.get("error") or "no result",
                           load=rs.get("load_start")))
    else:
        notes = ([f"{rs['ports']} ports; the target is for {RESYNC_TARGET_PORTS}"]
                 if rs["ports"] != RESYNC_TARGET_PORTS else [])
        if rs.get("networks", 1) > 1:
            notes.append(f"over {rs['networks']} networks")
        note = "; ".join(notes) or None
        out.append(_target(name, RESYNC_LIMIT_S, "s", cold["seconds"], note, load=rs.get("load_start")))
    return out


def context(meta: dict[str, Any], load: list[float] | None = None) -> str:
    """Driver, hosts, CPU and load average, which every figure of the report depends on."""
    hosts = meta.get("hosts", 1)
    load = load or meta.get("loadavg_start")
    where = f"{meta.get('driver', 'linuxbridge')}, {hosts} host{'s' if hosts != 1 else ''}, " \
            f"{meta.get('cpu_model', '?')} x{meta.get('host_cpu_count', '?')}"
    return where + (f", load {'/'.join(f'{x:.2f}' for x in load)}" if load else "")


def _fmt(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def _parts(parts: dict[str, float] | None) -> str:
    return " ".join(f"{k} {v:.3f}" for k, v in (parts or {}).items()) or "-"


def render_targets(targets: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> str:
    """One line per target, ending with where it was measured ([driver, hosts, CPU, load at the
    phase's start]): figures taken on a loaded machine say so."""
    lines = [f"{'target':<30} {'goal':<10} {'measured':<28} {'result':<6} [driver, hosts, CPU, load 1/5/15 min]"]
    for t in targets:
        goal = f"< {t['limit']:g} {t['unit']}"
        got = f"n/a ({t['note']})" if t["measured"] is None else f"{t['measured']:.2f} {t['unit']}"
        res = "-" if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")
        note = f"  ({t['note']})" if t["measured"] is not None and t.get("note") else ""
        where = f" [{context(meta, t.get('load_start'))}]" if meta is not None else ""
        lines.append(f"{t['name']:<30} {goal:<10} {got:<28} {res:<6}{where}{note}")
    return "\n".join(lines)


def render_results(report: dict[str, Any]) -> str:
    """The measurements as readable tables (the JSON has the same and more)."""
    out: list[str] = []
    meta = report.get("meta") or {}
    if meta:
        end = meta.get("loadavg_end")
        out += [f"run: {context(meta)} at the start" + (f", {'/'.join(f'{x:.2f}' for x in end)} at the end"
                                                         if end else ""), ""]
    runs = list(report.get("port_ping") or []) + ([report["port_ping_wall"]] if report.get("port_ping_wall") else [])
    if runs:
        head = f"{'port -> ping (ms)':<22} {'N':>4} {'conc':>4} {'ok':>4} {'err':>4} {'wall s':>7} " \
               f"{'p50':>8} {'p90':>8} {'max':>8} {'load1':>6}"
        out += [head, "-" * len(head)]
        for r in runs:
            t = r["total_ms"]
            load = r.get("load_start") or [None]
            out.append(f"{'':<22} {r['instances']:>4} {r['concurrency']:>4} {r['ok']:>4} {r['errors']:>4} "
                       f"{_fmt(r['wall_s'], '.2f'):>7} {_fmt(t['p50']):>8} {_fmt(t['p90']):>8} {_fmt(t['max']):>8} "
                       f"{_fmt(load[0], '.2f'):>6}")
        for r in runs:
            if r.get("by_host_ms"):
                per = ", ".join(f"{h} {_fmt(v['p50'])} ({v['count']})" for h, v in r["by_host_ms"].items())
                out.append(f"  N={r['instances']} conc {r['concurrency']}: p50 (instances) per host: {per}; "
                           f"off host 1, across the underlay: {_fmt(r['across_hosts_ms']['p50'])}")
        out.append("")
        head = f"{'where it goes (p50 ms)':<22} {'N':>4} " + " ".join(f"{PHASE_TITLES[p]:>11}" for p in PHASES)
        out += [head, "-" * len(head)]
        for r in runs:
            out.append(f"{'':<22} {r['instances']:>4} "
                       + " ".join(f"{_fmt(r['phases_ms'][p]['p50']):>11}" for p in PHASES))
        out.append("")
        head = f"{'agent passes':<22} {'N':>4} {'passes':>7} {'p50 s':>7} {'max s':>7} {'net ready s':>12} " \
               f"{'teardown s':>11}  parts p50 s"
        out += [head, "-" * len(head)]
        for r in runs:
            a = r.get("agent_passes") or {}
            out.append(f"{'':<22} {r['instances']:>4} {a.get('passes', 0):>7} {_fmt(a.get('p50_s'), '.3f'):>7} "
                       f"{_fmt(a.get('max_s'), '.3f'):>7} {_fmt(r.get('network_ready_s'), '.2f'):>12} "
                       f"{_fmt(r.get('teardown_s'), '.2f'):>11}  {_parts(a.get('parts_p50_s'))}")
    rp = report.get("rule_packet")
    if rp:
        if out:
            out.append("")
        head = f"{'rule -> packet (ms)':<22} {'reps':>4} {'ok':>4} {'err':>4} {'p50':>8} {'p90':>8} {'max':>8}" \
               f"   {'delete -> blocked p50 (<=)':>26}"
        out += [head, "-" * len(head)]
        a, b = rp["allow_ms"], rp["block_ms"]
        out.append(f"{'':<22} {rp['repeats']:>4} {rp['ok']:>4} {rp['errors']:>4} {_fmt(a['p50']):>8} "
                   f"{_fmt(a['p90']):>8} {_fmt(a['max']):>8}   {_fmt(b['p50']):>26}")
        if rp.get("first_error"):
            out.append(f"  first error: {rp['first_error']}")
    rs = report.get("resync")
    if rs:
        if out:
            out.append("")
        head = f"{'resync':<16} {'ports':>5} {'nets':>5} {'restart':>8} {'seconds':>8} {'passes':>7} " \
               f"{'1st pass s':>10} {'L2 actions':>10} {'fw':>4} {'dhcp':>10} {'all ACTIVE':>10}"
        out += [head, "-" * len(head)]
        for kind in ("initial", "cold", "warm"):
            c = rs.get(kind) or {}
            if not c:
                continue
            dhcp = ",".join(sorted(set((c.get("dhcp") or {}).values()))) or "-"
            out.append(f"{'':<16} {rs['ports']:>5} {rs.get('networks', 1):>5} {kind:>8} "
                       f"{_fmt(c.get('seconds'), '.2f'):>8} {c.get('passes', 0):>7} "
                       f"{_fmt(c.get('first_pass_s'), '.2f'):>10} "
                       f"{_fmt(c.get('l2_actions'), 'd'):>10} {'yes' if c.get('firewall_applied') else 'no':>4} "
                       f"{dhcp:>10} {'yes' if c.get('all_active') else 'no':>10}")
        for kind in ("initial", "cold", "warm"):
            parts = (rs.get(kind) or {}).get("first_pass_parts_s")
            if parts:
                out.append(f"  {kind} restart, its first pass (s): {_parts(parts)}")
        extra = [f"{title} {rs[k]:.2f} s" for k, title in (("bulk_create_s", "bulk port create"),
                                                            ("plug_s", "plugging the VIFs (agent stopped)"))
                 if rs.get(k)]
        if extra:
            out.append("  setup: " + ", ".join(extra) + "; initial = the agent's first start with them plugged")
        if rs.get("error"):
            out.append(f"  error: {rs['error']}")
    mem = report.get("memory")
    if mem:
        if out:
            out.append("")
        out.append("bench process RSS (server + agent + bench, one process): "
                   + ", ".join(f"{k} {v:.1f} MB" for k, v in mem.items() if v is not None))
    return "\n".join(out)


def build_report(meta: dict[str, Any], port_ping: list[dict[str, Any]], rule_packet: dict[str, Any] | None,
                 resync: dict[str, Any] | None, memory: dict[str, Any],
                 port_ping_wall: dict[str, Any] | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {"meta": meta, "port_ping": port_ping, "rule_packet": rule_packet,
                              "resync": resync, "memory": memory, "port_ping_wall": port_ping_wall}
    report["targets"] = evaluate_targets(report)
    return report


@dataclass
class Sample:
    """One instance: when its create started, when it answered the first ping, and the phase marks."""

    start: float
    end: float
    marks: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    host: int = 0  # index of the host the instance ran on (0: host 1, which serves DHCP)

    @property
    def total_ms(self) -> float:
        return (self.end - self.start) * 1000


def port_ping_result(n: int, conc: int, samples: list[Sample], errors: list[str],
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON of one port -> ping run: totals and each phase summarized over the instances."""
    d: dict[str, Any] = {
        "instances": n, "concurrency": conc, "ok": len(samples), "errors": len(errors),
        "wall_s": round(max(s.end for s in samples) - min(s.start for s in samples), 3) if samples else None,
        "total_ms": summarize(s.total_ms for s in samples),
        "phases_ms": {p: summarize(s.marks[p] * 1000 for s in samples if p in s.marks) for p in PHASES},
    }
    if errors:
        d["first_error"] = errors[0]
    d.update(extra or {})
    return d


def phase_marks(marks: dict[str, float]) -> dict[str, float]:
    """Durations (s) of the create phases from the instants Compute.create passed through.

    ``marks`` holds instants (start, port: the port is created, plugged: the wait for ACTIVE
    begins, active, created, pinged) and ``bind_s``, the time spent in the binding PUT. Between
    "port" and "plugged" Compute binds the port and plugs the VIF (in whichever order it does
    them): "plug" is that stretch without the binding call.
    """
    order = [("port_api", "start", "port"), ("wait_active", "plugged", "active"),
             ("dhcp_lease", "active", "created"), ("first_ping", "created", "pinged")]
    out = {name: marks[b] - marks[a] for name, a, b in order if a in marks and b in marks}
    if "port" in marks and "plugged" in marks:
        bind = marks.get("bind_s", 0.0)
        out["bind"] = bind
        out["plug"] = marks["plugged"] - marks["port"] - bind
    return {name: out[name] for name in PHASES if name in out}


def pass_stats(seconds: list[float], passes: int, parts: dict[str, list[float]] | None = None) -> dict[str, Any]:
    """Agent passes during a phase: how many finished, p50/max of the durations sampled and, when
    the agent times its parts (PassResult.timings), the p50 of each part."""
    p50 = percentile(seconds, 50)
    out: dict[str, Any] = {"passes": passes, "p50_s": None if p50 is None else round(p50, 3),
                           "max_s": round(max(seconds), 3) if seconds else None, "sampled": len(seconds)}
    if parts:
        out["parts_p50_s"] = {k: round(percentile(v, 50) or 0.0, 3) for k, v in parts.items()}
    return out


def part_timings(result: Any) -> dict[str, float]:
    """Seconds per part of one agent pass (sync, l2, dhcp, ...), if the agent records them."""
    timings = getattr(result, "timings", None)
    return {str(k): float(v) for k, v in timings.items()} if isinstance(timings, dict) else {}


# ---------------------------------------------------------------- the cloud in this process

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn serving the app on a loopback port, in a thread of this process."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="bench-uvicorn", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise BenchError("the API server did not start within 15 s")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Marker:
    """Per-thread instants of one Compute.create (each create runs in one thread)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def begin(self) -> dict[str, float]:
        self._local.marks = {"start": time.perf_counter()}
        return self._local.marks  # type: ignore[no-any-return]

    def mark(self, key: str) -> None:
        marks = getattr(self._local, "marks", None)
        if marks is not None:
            marks[key] = time.perf_counter()

    def add(self, key: str, seconds: float) -> None:
        marks = getattr(self._local, "marks", None)
        if marks is not None:
            marks[key] = marks.get(key, 0.0) + seconds


class MarkedAdmin(Client):
    """The admin client Compute uses for the binding PUT, adding up the time spent in it."""

    def __init__(self, url: str, headers: dict[str, str], marker: Marker) -> None:
        super().__init__(url, headers)
        self.marker = marker

    def put(self, path: str, body: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return super().put(path, body)
        finally:
            self.marker.add("bind_s", time.perf_counter() - t0)


class TimedCompute(Compute):
    """Compute.create unchanged, with the instants between its steps recorded (port, plugged, active)."""

    def __init__(self, *args: Any, marker: Marker, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.marker = marker

    def _port(self, *args: Any, **kw: Any) -> tuple[bool, dict[str, Any]]:
        out = super()._port(*args, **kw)
        self.marker.mark("port")
        return out

    def _wait_active(self, port_id: str, timeout: float) -> None:
        self.marker.mark("plugged")
        super()._wait_active(port_id, timeout)
        self.marker.mark("active")


class PassRecorder:
    """Samples the agents' pass durations while a phase runs (a pass finishing wakes it); one
    thread per agent, the samples of all of them together."""

    def __init__(self, agents: list[Any]) -> None:
        self.agents = list(agents)
        self.seconds: list[float] = []
        self.parts: dict[str, list[float]] = {}
        self.first = [a.passes for a in self.agents]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(a, n), name="bench-passes", daemon=True)
                         for a, n in zip(self.agents, self.first, strict=True)]

    def __enter__(self) -> PassRecorder:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)

    def _run(self, agent: Any, seen: int) -> None:
        while not self._stop.is_set():
            with agent.converged:
                agent.converged.wait_for(lambda s=seen: agent.passes > s or self._stop.is_set(), timeout=0.5)
                result = agent.last_result
                if agent.passes > seen and result is not None:
                    with self._lock:
                        self.seconds.append(result.seconds)
                        for part, secs in part_timings(result).items():
                            self.parts.setdefault(part, []).append(secs)
                seen = agent.passes

    def stats(self) -> dict[str, Any]:
        with self._lock:
            passes = sum(a.passes - n for a, n in zip(self.agents, self.first, strict=True))
            return pass_stats(list(self.seconds), passes, {k: list(v) for k, v in self.parts.items()})


@dataclass
class BenchHost:
    """One host of the run: its node namespace, its agent and the Compute that plugs VIFs there."""

    name: str
    node_ns: str
    ns_prefix: str
    underlay_ip: str | None
    agent: Any
    compute: TimedCompute


def underlay_ip(index: int) -> str:
    """Host ``index`` (1-based)'s tunnel endpoint on the run's fabric."""
    return f"{UNDERLAY_NET}.{10 + index}"


def plug_underlay(prefix: str, node_ns: str, ip: str) -> None:
    """``ul0`` (``ip``/24) in the host's node namespace, cabled to the bridge ``underlay`` of the
    run's fabric namespace ``<prefix>fabric``: the hosts' tunnels cross it, nothing else sees it."""
    from neutrino.kernel import links, netns

    fabric = f"{prefix}fabric"
    netns.ensure_namespace(fabric)
    links.ensure_bridge(fabric, "underlay")
    links.set_up(fabric, "underlay")
    netns.ensure_namespace(node_ns)
    peer = "ul-" + ip.rsplit(".", 1)[1]
    links.ensure_veth(node_ns, "ul0", fabric, peer)
    links.set_master(fabric, peer, "underlay")
    links.set_up(fabric, peer)
    links.add_address(node_ns, "ul0", f"{ip}/24")
    links.set_up(node_ns, "ul0")


class BenchCloud:
    """Server + the agents of ``hosts`` hosts, every namespace under ``prefix``, nothing in the root one.

    Host 1 (node namespace ``<prefix>node``) runs every role (L2, DHCP, L3, metadata), as
    ``neutrino up``'s host does; hosts 2..N are compute nodes (L2 only), each with its node
    namespace ``<prefix>hI`` and its own agent (a ``HostAgent`` of its own in this process, on
    the same in-process bus, as tests/functional/cloud.py's ``add_host`` makes them). With more
    than one host, or with Open vSwitch, every host has ``ul0`` on a fabric namespace of the run
    (``<prefix>fabric``) and tunnels to the others across it.
    """

    def __init__(self, prefix: str, tmp: Path, driver: str = "linuxbridge", hosts: int = 1) -> None:
        from dataclasses import replace

        from neutrino import server
        from neutrino.agent.host import HostAgent
        from neutrino.allinone import start_agents
        from neutrino.config import Config

        self.prefix = prefix
        self.tmp = tmp
        self.driver = driver
        self.node_ns = f"{prefix}node"
        self.host = f"bench-{prefix.split('-')[2]}"
        cfg = Config()  # defaults only: no /etc/neutrino, no NEUTRINO_* environment
        cfg.DEFAULT.state_dir = str(tmp / "state")
        cfg.DEFAULT.auth_strategy = "noauth"
        port = free_port()
        cfg.DEFAULT.bind = f"127.0.0.1:{port}"
        for key in ("network", "subnet", "port", "security_group", "security_group_rule"):
            setattr(cfg.quotas, f"quota_{key}", -1)
        cfg.agent.host = self.host
        cfg.agent.node_namespace = self.node_ns
        cfg.agent.namespace_prefix = prefix
        cfg.agent.l2_driver = DRIVERS[driver]
        cfg.public.physical_network = ""  # no host-only uplink: nothing in the machine's namespace
        tunnels = hosts > 1 or driver == "ovs"  # OVS's userspace tunnels want a real underlay device
        if tunnels:
            cfg.vxlan.local_ip, cfg.vxlan.underlay_dev = underlay_ip(1), "ul0"
            plug_underlay(prefix, self.node_ns, underlay_ip(1))
        Path(cfg.DEFAULT.state_dir).mkdir(parents=True)
        self.cfg = cfg
        self.srv = server.build(cfg)
        self.live = LiveServer(self.srv.app, port)
        self.live.start()
        self.hosts: list[BenchHost] = []
        self._switches: dict[str, Any] = {}
        self.url = self.live.url
        self.admin = Client(self.url, {"X-Project-Id": "admin", "X-Roles": "admin,member,reader"})
        self.user = Client(self.url, {"X-Project-Id": PROJECT, "X-Roles": "member,reader"}, project_id=PROJECT)
        self.marker = Marker()
        first = start_agents(cfg, self.srv)
        self.hosts.append(BenchHost(self.host, self.node_ns, prefix, underlay_ip(1) if tunnels else None, first,
                                    self._compute(self.host, self.node_ns, prefix)))
        for i in range(2, hosts + 1):
            name, ns = f"{self.host}-h{i}", f"{prefix}h{i}"
            hc = replace(first.cfg, host=name, node_ns=ns, ns_prefix=f"{ns}-", state_dir=tmp / "hosts" / name,
                         local_ip=underlay_ip(i), underlay_dev="ul0", physical_interfaces={}, roles=("l2",))
            plug_underlay(prefix, ns, underlay_ip(i))
            agent = HostAgent(hc, self.srv.rpc, self.srv.bus)
            self.hosts.append(BenchHost(name, ns, f"{ns}-", underlay_ip(i), agent, self._compute(name, ns, f"{ns}-")))
            agent.start()
        self.compute = self.hosts[0].compute

    def compute_dir(self, host: str) -> Path:
        """The state dir of ``host``'s Compute (instance records), shared with the client processes."""
        return self.tmp / "compute" / host

    def _compute(self, host: str, node_ns: str, ns_prefix: str) -> TimedCompute:
        return TimedCompute(self.user, MarkedAdmin(self.url, self.admin.headers, self.marker), host, node_ns,
                            self.compute_dir(host), ns_prefix=ns_prefix, marker=self.marker)

    @property
    def agent(self) -> Any:
        """Host 1's agent (the one the resync phase restarts)."""
        return self.hosts[0].agent

    @property
    def agents(self) -> list[Any]:
        return [h.agent for h in self.hosts]

    def settle(self, timeout: float = 30.0) -> None:
        for agent in self.agents:
            agent.settle(timeout)

    def switch(self, host: BenchHost) -> Any:
        """The bench's own OVSDB connection to ``host``'s Open vSwitch (to read what the agent did)."""
        from neutrino.agent.l2.ovs import run_dir
        from neutrino.kernel import ovs

        if host.node_ns not in self._switches:  # deleting br-int with 1000 ports takes ovs-vswitchd > 10 s
            self._switches[host.node_ns] = ovs.OvsInstance(host.node_ns, run_dir(host.node_ns), timeout=120)
        return self._switches[host.node_ns]

    def restart_agent(self) -> Any:
        """A fresh agent on host 1 with the same config, RPC and bus (what a restarted process would be).

        The old agent's OVSDB connection is closed first: in this one process its client thread
        would otherwise keep parsing every update the new agent makes.
        """
        old = self.hosts[0].agent
        close = getattr(getattr(old.driver, "switch", None), "close", None)
        if close is not None:
            close()
        self.hosts[0].agent = type(old)(old.cfg, old.rpc, old.bus)
        return self.hosts[0].agent

    def stop(self) -> None:
        try:
            for agent in self.agents:
                if agent is not None:
                    agent.stop()
            for switch in [*self._switches.values(), *(getattr(a.driver, "switch", None) for a in self.agents)]:
                if switch is not None:
                    switch.close()
        finally:
            self.live.stop()
            self.srv.db.dispose()

    # ------------------------------------------------------------ helpers over the API

    def network(self, client: Client, name: str, cidr: str) -> tuple[dict[str, Any], dict[str, Any], str, float]:
        """Network + subnet; waits until its DHCP port is ACTIVE. Returns (net, subnet, DHCP IP, seconds)."""
        t0 = time.perf_counter()
        net = client.post("/v2.0/networks", {"network": {"name": name}})["network"]
        sub = client.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4,
                                                       "name": f"{name}-subnet"}})["subnet"]
        deadline = time.monotonic() + 30
        while True:
            found = self.admin.get("/v2.0/ports", network_id=net["id"], device_owner="network:dhcp")["ports"]
            if found and found[0]["status"] == "ACTIVE":
                return net, sub, found[0]["fixed_ips"][0]["ip_address"], time.perf_counter() - t0
            if time.monotonic() > deadline:
                raise BenchError(f"the DHCP port of network {name} is not ACTIVE after 30 s "
                                 f"(host 1's agent: {self.agent.last_result})")
            time.sleep(0.02)


# ---------------------------------------------------------------- probes (real packets)

def ping_until(ns: str, dst: str, deadline_s: int = 10) -> bool:
    """Echo requests every 5 ms from inside ``ns`` until the first reply (True) or ``deadline_s``."""
    done = subprocess.run(["ip", "netns", "exec", ns, "ping", "-n", "-q", "-c1", "-i", PROBE_INTERVAL,
                           "-w", str(deadline_s), dst], capture_output=True, timeout=deadline_s + 5)
    return done.returncode == 0


def blocked(ns: str, dst: str) -> bool:
    """Two echo requests 50 ms apart, 200 ms for an answer: True if neither got one."""
    done = subprocess.run(["ip", "netns", "exec", ns, "ping", "-n", "-q", "-c2", "-i", "0.05", "-W", "0.2", dst],
                          capture_output=True, timeout=10)
    return done.returncode != 0


def wait_blocked(ns: str, dst: str, timeout: float = 10.0, since: float | None = None) -> float | None:
    """Seconds from ``since`` (default: now) until a probe from ``ns`` found ``dst`` unreachable, counted
    to the start of that probe (its echoes are sent within 60 ms of it); None if ``dst`` kept answering."""
    t0 = time.perf_counter() if since is None else since
    while time.perf_counter() - t0 < timeout:
        start = time.perf_counter()
        if blocked(ns, dst):
            return start - t0
    return None


# ---------------------------------------------------------------- phases

class Stop(Exception):
    """The run was interrupted; workers that have not started give up."""


def run_pool(items: list[Any], conc: int, fn: Callable[[Any], Any], label: str,
             stop: threading.Event) -> tuple[list[Any], list[str]]:
    """``fn`` over ``items`` on ``conc`` threads; (results, error messages). Ctrl-C waits for calls in flight."""
    results: list[Any] = []
    errors: list[str] = []

    def guarded(item: Any) -> Any:
        if stop.is_set():
            raise Stop()
        return fn(item)

    pool = ThreadPoolExecutor(max_workers=max(1, conc), thread_name_prefix="bench")
    pending: set[Future[Any]] = {pool.submit(guarded, item) for item in items}
    last = time.monotonic()
    try:
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in done:
                exc = f.exception()
                if exc is None:
                    results.append(f.result())
                elif not isinstance(exc, Stop):
                    errors.append(f"{type(exc).__name__}: {exc}")
            if time.monotonic() - last >= 2 and pending:
                last = time.monotonic()
                log(f"  {label} {len(results)}/{len(items)}" + (f" ({len(errors)} failed)" if errors else ""))
    except KeyboardInterrupt:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results, errors


def wire_instance(compute: TimedCompute, marker: Marker, name: str, network_id: str, dhcp_ip: str) -> Sample:
    """One instance made the real way, then pinged from inside until the DHCP server answers."""
    marks = marker.begin()
    inst = compute.create(name, network=network_id)
    marks["created"] = time.perf_counter()
    if not ping_until(inst.namespace, dhcp_ip):
        raise RuntimeError(f"{name} ({inst.lease.get('ip')}) got no ping reply from {dhcp_ip} within 10 s")
    marks["pinged"] = time.perf_counter()
    return Sample(marks["start"], marks["pinged"], phase_marks(marks))


# By default the creates run in other processes (as `neutrino instance create` or Nova
# would), so their own Python work does not share the server's and agent's GIL.
_CLIENT: dict[str, Any] = {}


def client_init(url: str, hosts: list[tuple[str, str, str, str]]) -> None:
    """A worker's Compute for each host: (host, node namespace, state dir, namespace prefix)."""
    owner = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != owner:  # a pyroute2 helper fork()ed from this worker
            os._exit(128 + signum)
        raise KeyboardInterrupt

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, handler)
    marker = Marker()
    user = Client(url, {"X-Project-Id": PROJECT, "X-Roles": "member,reader"}, project_id=PROJECT)
    admin = MarkedAdmin(url, {"X-Project-Id": "admin", "X-Roles": "admin,member,reader"}, marker)
    _CLIENT.update(marker=marker, computes=[TimedCompute(user, admin, host, node_ns, Path(state_dir),
                                                         ns_prefix=prefix, marker=marker)
                                            for host, node_ns, state_dir, prefix in hosts])


def client_ready(hold: float) -> int:
    time.sleep(hold)  # busy for a moment, so that each of a batch of these lands on another worker
    return os.getpid()


def client_wire(host: int, name: str, network_id: str, dhcp_ip: str) -> tuple[float, float, dict[str, float]]:
    s = wire_instance(_CLIENT["computes"][host], _CLIENT["marker"], name, network_id, dhcp_ip)
    return s.start, s.end, s.marks


def client_pool(c: BenchCloud, workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes with their Compute ready (imports done before any timing)."""
    hosts = [(h.name, h.node_ns, str(c.compute_dir(h.name)), h.ns_prefix) for h in c.hosts]
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=client_init, initargs=(c.url, hosts))
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while len(pids) < workers:  # spawned on demand: wait until every one is up and has imported
        if time.monotonic() > deadline:
            pool.shutdown(cancel_futures=True)
            raise BenchError(f"only {len(pids)} of {workers} client processes started within 60 s")
        pids |= {f.result() for f in [pool.submit(client_ready, 0.2) for _ in range(workers)]}
    log(f"client processes: {sorted(pids)}")
    return pool


def phase_port_ping(c: BenchCloud, n: int, conc: int, index: int, stop: threading.Event,
                    clients: ProcessPoolExecutor | None = None) -> dict[str, Any]:
    """N instances, instance i on host i mod hosts; each pings the DHCP server (on host 1), so
    with several hosts every instance off host 1 is timed across the underlay."""
    base = ipaddress.ip_network("10.201.0.0/16")
    cidr = str(list(base.subnets(new_prefix=22))[index])
    load = load_average()
    net, _, dhcp_ip, ready_s = c.network(c.user, f"pp{n}", cidr)
    log(f"port->ping N={n}: network {cidr} ready in {ready_s:.2f} s (DHCP server {dhcp_ip}); "
        f"creating {n} instances, {conc} at a time, over {len(c.hosts)} host(s)")
    names = [(i % len(c.hosts), f"pp{n}-{i}") for i in range(n)]

    def wire(item: tuple[int, str]) -> Sample:
        host, name = item
        if clients is not None:  # in a client process: perf_counter is CLOCK_MONOTONIC, the same clock here
            start, end, marks = clients.submit(client_wire, host, name, net["id"], dhcp_ip).result()
            sample = Sample(start, end, marks)
        else:
            sample = wire_instance(c.hosts[host].compute, c.marker, name, net["id"], dhcp_ip)
        sample.host = host
        return sample

    with PassRecorder(c.agents) as rec:
        samples, errors = run_pool(names, min(conc, n), wire, f"N={n}: wired and pingable", stop)
    extra: dict[str, Any] = {"network_ready_s": round(ready_s, 3), "agent_passes": rec.stats(),
                             "client": "process" if clients else "thread", "hosts": len(c.hosts), "load_start": load}
    if len(c.hosts) > 1:
        extra["by_host_ms"] = {c.hosts[h].name: summarize(s.total_ms for s in samples if s.host == h)
                               for h in range(len(c.hosts))}
        extra["across_hosts_ms"] = summarize(s.total_ms for s in samples if s.host != 0)
    r = port_ping_result(n, min(conc, n), samples, errors, extra)
    t = r["total_ms"]
    log(f"port->ping N={n}: {len(samples)} ok, {len(errors)} failed, p50 {_fmt(t['p50'])} ms, "
        f"max {_fmt(t['max'])} ms, wall {_fmt(r['wall_s'], '.2f')} s; agent passes {rec.stats()['passes']}"
        + (f"; first error: {errors[0]}" if errors else ""))
    t0 = time.perf_counter()
    for h in c.hosts:
        created = [inst.name for inst in h.compute.instances()]
        run_pool(created, max(conc, 4), h.compute.delete, f"N={n}: deleted on {h.name}", stop)
    c.user.delete(f"/v2.0/networks/{net['id']}")
    c.settle(30)
    r["teardown_s"] = round(time.perf_counter() - t0, 3)
    return r


def phase_rule_packet(c: BenchCloud, repeats: int, stop: threading.Event) -> dict[str, Any]:
    load = load_average()
    net, _, _, ready_s = c.network(c.user, "rule", "10.201.252.0/24")
    sg = c.user.post("/v2.0/security-groups", {"security_group": {
        "name": f"{c.prefix}blocked", "description": "no ingress rules"}})["security_group"]
    host_b = c.hosts[1 if len(c.hosts) > 1 else 0]  # with several hosts, A and B are on two of them
    a = c.compute.create("rule-a", network=net["id"])
    b = host_b.compute.create("rule-b", network=net["id"], security_groups=[sg["id"]])
    a_ip, b_ip = str(a.lease["ip"]), str(b.lease["ip"])
    log(f"rule->packet: A {a_ip} on {c.host} -> B {b_ip} on {host_b.name} (group without ingress rules); "
        f"{repeats} repeats")
    allow_ms: list[float] = []
    block_ms: list[float] = []
    errors: list[str] = []
    for i in range(repeats):
        if stop.is_set():
            break
        if wait_blocked(a.namespace, b_ip) is None:
            errors.append(f"repeat {i}: B still answers A without a rule after 10 s")
            continue
        probe = subprocess.Popen(["ip", "netns", "exec", a.namespace, "ping", "-n", "-q", "-c1", "-i",
                                  PROBE_INTERVAL, "-w", "15", b_ip], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        rule: dict[str, Any] | None = None
        try:
            time.sleep(0.05)  # the probe is sending (and being dropped)
            if probe.poll() is not None:
                errors.append(f"repeat {i}: the probe got through before the rule existed")
                continue
            t0 = time.perf_counter()
            rule = c.user.post("/v2.0/security-group-rules", {"security_group_rule": {
                "security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv4", "protocol": "icmp",
                "remote_ip_prefix": f"{a_ip}/32"}})["security_group_rule"]
            rc = probe.wait(timeout=20)
            t1 = time.perf_counter()
            if rc == 0:
                allow_ms.append((t1 - t0) * 1000)
            else:
                errors.append(f"repeat {i}: no reply within 15 s of the rule create")
        finally:
            if probe.poll() is None:
                probe.kill()
            probe.wait()
            if rule is not None:
                t2 = time.perf_counter()
                c.user.delete(f"/v2.0/security-group-rules/{rule['id']}")
                gone = wait_blocked(a.namespace, b_ip, since=t2)
                if gone is not None:
                    block_ms.append(gone * 1000)
        if allow_ms:
            log(f"  rule->packet {i + 1}/{repeats}: {allow_ms[-1]:.1f} ms")
    r = {"repeats": repeats, "ok": len(allow_ms), "errors": len(errors), "allow_ms": summarize(allow_ms),
         "block_ms": summarize(block_ms), "samples_ms": [round(x, 1) for x in allow_ms],
         "network_ready_s": round(ready_s, 3), "hosts": 2 if host_b is not c.hosts[0] else 1, "load_start": load}
    if errors:
        r["first_error"] = errors[0]
    c.compute.delete("rule-a")
    host_b.compute.delete("rule-b")
    c.user.delete(f"/v2.0/networks/{net['id']}")
    c.user.delete(f"/v2.0/security-groups/{sg['id']}")
    c.settle(30)
    return r


def kernel_wired(c: BenchCloud, taps: dict[str, str]) -> int:
    """How many of ``taps`` (tap -> bridge) host 1's kernel has wired: with Linux bridge, up on their
    bridge; with Open vSwitch, ports of br-int with an ofport and their network's local VLAN (not the
    dead VLAN a port waits on until its firewall flows are in)."""
    from neutrino.kernel import links

    found = links.list_links(c.node_ns)
    if c.driver == "ovs":
        from neutrino.agent.l2.ovs_flows import DEAD_VLAN
        from neutrino.kernel import KernelError

        up = {link.name for link in found if link.up}
        try:
            ports = c.switch(c.hosts[0]).ports("br-int")
        except KernelError:  # OVS restarting, or its database gone
            return 0
        return sum(1 for p in ports if p.name in taps and p.name in up and p.ofport is not None
                   and p.tag is not None and p.tag != DEAD_VLAN)
    by_index = {link.index: link.name for link in found}
    return sum(1 for link in found if link.name in taps and link.up and link.master is not None
               and by_index.get(link.master) == taps[link.name])


def all_active(c: BenchCloud, network_ids: list[str], port_ids: set[str]) -> int:
    ports = c.admin.get("/v2.0/ports", network_id=network_ids, fields=["id", "status"])["ports"]
    return sum(1 for p in ports if p["id"] in port_ids and p["status"] == "ACTIVE")


def timed_restart(c: BenchCloud, network_ids: list[str], port_ids: set[str], taps: dict[str, str],
                  timeout: float = 60.0) -> dict[str, Any]:
    """Start a fresh agent; seconds until a pass ended with every tap wired and every port ACTIVE."""
    agent = c.restart_agent()
    seen = 0
    first: Any = None
    sampled: list[Any] = []
    t0 = time.perf_counter()
    agent.start()
    deadline = t0 + timeout
    while True:
        with agent.converged:
            agent.converged.wait_for(lambda s=seen: agent.passes > s,
                                     timeout=max(0.0, deadline - time.perf_counter()))
            t_end = time.perf_counter()
            if agent.passes <= seen:
                return {"seconds": None, "error": f"no converged pass within {timeout:.0f} s",
                        "passes": seen, "last": repr(agent.last_result)}
            seen = agent.passes
            result = agent.last_result
        sampled.append(result)
        if first is None:
            first = result
        wired, active = kernel_wired(c, taps), all_active(c, network_ids, port_ids)
        if wired == len(taps) and active == len(port_ids):
            break
        if time.perf_counter() > deadline:
            return {"seconds": None, "error": f"after {timeout:.0f} s: {wired}/{len(taps)} taps wired, "
                                              f"{active}/{len(port_ids)} ports ACTIVE", "passes": seen}
        agent.wake()
    return {"seconds": round(t_end - t0, 3), "passes": seen, "first_pass_s": round(first.seconds, 3),
            "pass_s": [round(r.seconds, 3) for r in sampled], "l2_actions": first.l2_actions,
            "first_pass_parts_s": {k: round(v, 3) for k, v in part_timings(first).items()},
            "dhcp": dict(first.dhcp), "firewall_applied": first.firewall_applied,
            "statuses_reported": len(first.statuses), "errors": list(first.errors), "all_active": True}


def make_cold(c: BenchCloud) -> str:
    """Take away what host 1's (stopped) agent made in the kernel, leaving the instances' taps.

    Linux bridge: its bridges and vxlan devices in the node namespace and the nftables tables
    ``inet neutrino-sg`` / ``bridge neutrino-antispoof``. Open vSwitch: br-int and br-tun with
    their ports and flows (OVS itself and br-phy, which holds the underlay address, stay: the
    machine's network, not the agent's). Both: the qdhcp namespace (dnsmasq with it).
    Returns what was removed, for the log.
    """
    from neutrino.agent.l2 import firewall
    from neutrino.kernel import janitor, links, names, nft
    from neutrino.kernel.names import is_our_link

    if c.driver == "ovs":
        switch = c.switch(c.hosts[0])
        for bridge in (names.OVS_INTEGRATION_BRIDGE, names.OVS_TUNNEL_BRIDGE):
            switch.delete_bridge(bridge)
        what = "br-int and br-tun (ports, flows)"
    else:
        for link in links.list_links(c.node_ns):
            if link.kind in ("bridge", "vxlan") and is_our_link(link.name):
                links.remove_link(c.node_ns, link.name)
        for family, table in firewall.OWNED_TABLES:
            nft.delete_table(c.node_ns, family, table)
        what = "bridges, vxlan, nft tables"
    janitor.cleanup(prefixes=(f"{c.prefix}qdhcp-",), root_links=False)
    return what + ", qdhcp namespace"


def phase_resync(c: BenchCloud, nports: int, conc: int, stop: threading.Event, nnets: int = 1) -> dict[str, Any]:
    """``nports`` ports bound to host 1, round-robin over ``nnets`` networks (a /22 each)."""
    from neutrino.compute import vif
    from neutrino.kernel.names import instance_ns, tap_name

    out: dict[str, Any] = {"ports": nports, "networks": nnets, "load_start": load_average()}
    timeout = 60.0 + nports * 0.1  # generous: a miss is reported with how far it got
    cidrs = list(ipaddress.ip_network("10.202.0.0/16").subnets(new_prefix=22))
    nets = [c.network(c.admin, f"resync{j}", str(cidrs[j]))[0] for j in range(nnets)]
    net_ids = [n["id"] for n in nets]
    t0 = time.perf_counter()
    body = {"ports": [{"network_id": net_ids[i % nnets], "name": f"rs-{i}", "device_owner": "compute:nova",
                       "device_id": str(uuid.uuid4()), "binding:host_id": c.host} for i in range(nports)]}
    ports = c.admin.post("/v2.0/ports", body)["ports"]
    out["bulk_create_s"] = round(time.perf_counter() - t0, 3)
    port_ids = {p["id"] for p in ports}
    ovs = c.driver == "ovs"
    taps = {tap_name(p["id"]): p["binding:vif_details"].get("bridge_name") or "" for p in ports}
    log(f"resync: {nports} ports created in one bulk POST ({out['bulk_create_s']:.2f} s); plugging their VIFs")

    def plug(p: dict[str, Any]) -> None:
        # as Compute plugs them: on Open vSwitch the agent adds the tap to br-int (which is also an
        # internal device of that name: never a master), and eth0 computes its own checksums
        bridge = None if ovs else p["binding:vif_details"].get("bridge_name")
        vif.plug(c.prefix + instance_ns(p["id"]), c.node_ns, tap_name(p["id"]), p["mac_address"], bridge,
                 checksum_offload=not ovs)

    # Each plug wakes the agent, and a pass over a growing port list competes with the plugging
    # for the CPU: plug them with the agent stopped (with Linux bridge the bridge exists: the taps
    # join it at once), then let a fresh agent report them ACTIVE.
    c.agent.stop()
    t0 = time.perf_counter()
    _, errors = run_pool(ports, conc, plug, "resync: plugged", stop)
    if errors:
        raise BenchError(f"resync: {len(errors)} VIFs failed to plug: {errors[0]}")
    out["plug_s"] = round(time.perf_counter() - t0, 3)
    log(f"resync: {nports} VIFs plugged in {out['plug_s']:.2f} s; starting the agent")
    out["initial"] = timed_restart(c, net_ids, port_ids, taps, timeout=max(120.0, timeout))
    if out["initial"].get("seconds") is None:
        raise BenchError(f"resync: the ports did not all become ACTIVE: {out['initial'].get('error')}")
    out["initial_active_s"] = out["initial"]["seconds"]
    log(f"resync: all {nports} ports ACTIVE {out['initial_active_s']:.2f} s after the agent started")

    # Cold: the agent goes, and so does everything it made in the kernel; the instances' taps stay.
    rss_before = rss_mb()
    c.agent.stop()
    what = make_cold(c)
    c.srv.rpc.update_port_status({pid: "DOWN" for pid in port_ids})  # the fresh agent must report them
    left = kernel_wired(c, taps)
    if left:
        raise BenchError(f"resync: {left} taps still wired after removing {what}")
    log(f"resync: kernel made cold ({what} gone; ports DOWN); restarting")
    out["cold_removed"] = what
    out["cold"] = timed_restart(c, net_ids, port_ids, taps, timeout=timeout)
    log(f"resync cold: {_fmt(out['cold'].get('seconds'), '.2f')} s, {out['cold'].get('passes')} passes"
        + (f" ({out['cold']['error']})" if out["cold"].get("error") else ""))
    c.agent.stop()
    out["warm"] = timed_restart(c, net_ids, port_ids, taps, timeout=timeout)
    log(f"resync warm: {_fmt(out['warm'].get('seconds'), '.2f')} s, L2 actions {out['warm'].get('l2_actions')}")
    out["rss_delta_mb"] = round(rss_mb()[0] - rss_before[0], 1)
    return out


# ---------------------------------------------------------------- main

def rss_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    status = dict(ln.split(":", 1) for ln in Path("/proc/self/status").read_text().splitlines() if ":" in ln)
    return (int(status.get("VmRSS", "0 kB").split()[0]) / 1024, int(status.get("VmHWM", "0 kB").split()[0]) / 1024)


def git(*argv: str) -> str | None:
    """Read-only git query about this checkout (None when git or the repository is not there)."""
    try:
        out = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), *argv],
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or any(n < 1 or n > 1000 for n in counts):
        raise argparse.ArgumentTypeError("counts are between 1 and 1000")
    return counts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--counts", type=parse_counts, help="instances per port->ping run (default 1,10,100)")
    ap.add_argument("--concurrency", type=int, default=4, help="instances created at a time (default 4)")
    ap.add_argument("--rule-repeats", type=int, help="rule->packet repeats (default 10)")
    ap.add_argument("--resync-ports", type=int, help=f"ports for the resync phase (default {RESYNC_TARGET_PORTS})")
    ap.add_argument("--resync-networks", type=int, default=1,
                    help="networks the resync phase's ports are spread over, round-robin (1..64, default 1)")
    ap.add_argument("--phases", default="port,rule,resync",
                    help="which phases to run, comma-separated (default: port,rule,resync)")
    ap.add_argument("--quick", action="store_true", help="counts 1,10; 3 rule repeats; 50-port resync")
    ap.add_argument("--in-process", action="store_true",
                    help="port->ping: run the creates in threads of this process (they then share its GIL with "
                         "the server and agent) instead of separate processes, as `neutrino instance create` runs")
    ap.add_argument("--driver", choices=sorted(DRIVERS), default="linuxbridge",
                    help="the hosts' L2 driver ([agent] l2_driver): linuxbridge (default) or ovs (Open vSwitch)")
    ap.add_argument("--hosts", type=int, default=1,
                    help=f"hosts (1..{MAX_HOSTS}), each its own agent; instances spread round-robin over them "
                         "and ping host 1's DHCP server across the underlay (default 1)")
    ap.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    args = ap.parse_args(argv)
    if args.counts is None:
        args.counts = [1, 10] if args.quick else [1, 10, WALL_TARGET_INSTANCES]
    if args.rule_repeats is None:
        args.rule_repeats = 3 if args.quick else 10
    if args.resync_ports is None:
        args.resync_ports = 50 if args.quick else RESYNC_TARGET_PORTS
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if not args.phases <= {"port", "rule", "resync"}:
        ap.error("--phases takes port, rule and resync")
    if args.concurrency < 1 or args.rule_repeats < 1 or not 1 <= args.resync_ports <= 1000:
        ap.error("--concurrency and --rule-repeats must be >= 1, --resync-ports 1..1000")
    if not 1 <= args.resync_networks <= 64:
        ap.error("--resync-networks takes 1..64")
    if not 1 <= args.hosts <= MAX_HOSTS:
        ap.error(f"--hosts takes 1..{MAX_HOSTS}")
    return args


def preflight(driver: str = "linuxbridge") -> None:
    if os.geteuid() != 0:
        raise BenchError("needs root: it builds namespaces, veths, bridges and nftables tables "
                         "(run it as root, e.g. sudo .venv/bin/python bench/wiring.py)")
    missing = [t for t in (*TOOLS, *(OVS_TOOLS if driver == "ovs" else ())) if shutil.which(t) is None]
    if missing:
        raise BenchError(f"missing tools: {', '.join(missing)} (see scripts/setup.sh)")


@contextmanager
def interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt in this process only, so the run cleans up.

    pyroute2 opens a socket in a namespace from a fork()ed copy of this process (the thread that
    asked, and nothing else) and stops it with SIGTERM; a Ctrl-C reaches it as well. Such a
    copy must never run the bench's own except/finally blocks (it would tear the run's
    namespaces down under the parent's feet): it just exits.
    """
    owner = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != owner:
            os._exit(128 + signum)
        raise KeyboardInterrupt

    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave the signals alone
        yield
        return
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def phase_errors(phase: str) -> Iterator[None]:
    """An unexpected failure inside a phase stops the run (after cleaning up) with exit status 2."""
    try:
        yield
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"the {phase} phase failed: {type(exc).__name__}: {exc}") from exc


def cleanup(cloud: BenchCloud | None, prefix: str, tmp: Path) -> None:
    from neutrino.kernel import janitor, netns

    t0 = time.perf_counter()
    try:
        if cloud is not None:
            cloud.stop()
    finally:
        removed = janitor.cleanup(prefixes=(prefix,), root_links=False)
        shutil.rmtree(tmp, ignore_errors=True)
        left = [n for n in netns.list_namespaces() if n.startswith(prefix)]
        log(f"cleanup: removed {len(removed.namespaces)} namespaces in {time.perf_counter() - t0:.1f} s"
            + (f"; STILL THERE: {left}" if left else ""))


def run(args: argparse.Namespace) -> int:
    preflight(args.driver)
    prefix = f"nt-bench-{secrets.token_hex(3)}-"
    tmp = Path(tempfile.mkdtemp(prefix="neutrino-wiring-"))
    stop = threading.Event()
    cloud: BenchCloud | None = None
    port_ping: list[dict[str, Any]] = []
    wall_run: dict[str, Any] | None = None
    rule_packet: dict[str, Any] | None = None
    resync: dict[str, Any] | None = None
    load_start = load_average()
    rss0 = rss_mb()[0]
    memory: dict[str, Any] = {"rss_start_mb": round(rss0, 1)}
    t_run = time.perf_counter()
    log(f"wiring bench: prefix {prefix}, state in {tmp}; driver {args.driver}, {args.hosts} host(s); "
        f"{cpu_model()} x{os.cpu_count()}, load average {' '.join(map(str, load_start))}")
    try:
        try:
            cloud = BenchCloud(prefix, tmp, args.driver, args.hosts)
        except BenchError:
            raise
        except Exception as exc:
            raise BenchError(f"the cloud would not start: {type(exc).__name__}: {exc}") from exc
        for h in cloud.hosts:
            if h.agent.settle(30) is None:
                raise BenchError(f"the agent of {h.name} ran no pass within 30 s of starting")
        memory["rss_cloud_up_mb"] = round(rss_mb()[0], 1)
        if "port" in args.phases:
            clients = None if args.in_process else client_pool(cloud, args.concurrency)
            try:
                # Per-port latency one create at a time; then the throughput run, several at a time.
                for i, n in enumerate(args.counts):
                    with phase_errors(f"port->ping N={n}"):
                        port_ping.append(phase_port_ping(cloud, n, 1, i, stop, clients))
                if WALL_TARGET_INSTANCES in args.counts and args.concurrency > 1:
                    with phase_errors(f"{WALL_TARGET_INSTANCES} instances at concurrency {args.concurrency}"):
                        wall_run = phase_port_ping(cloud, WALL_TARGET_INSTANCES, args.concurrency, len(args.counts),
                                                   stop, clients)
            finally:
                if clients is not None:
                    clients.shutdown(wait=True, cancel_futures=True)
            memory["rss_after_port_ping_mb"] = round(rss_mb()[0], 1)
        if "rule" in args.phases:
            with phase_errors("rule->packet"):
                rule_packet = phase_rule_packet(cloud, args.rule_repeats, stop)
        if "resync" in args.phases:
            try:
                resync = phase_resync(cloud, args.resync_ports, args.concurrency, stop, args.resync_networks)
            except Exception as exc:  # the last phase: report it failed, with what the others measured
                why = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
                log(f"resync failed: {why}")
                resync = {"ports": args.resync_ports, "error": why}
            memory["rss_after_resync_mb"] = round(rss_mb()[0], 1)
    except KeyboardInterrupt:
        stop.set()
        log("interrupted: cleaning up")
        try:
            cleanup(cloud, prefix, tmp)
        except KeyboardInterrupt:
            log(f"cleanup interrupted: remove what is left with `neutrino cleanup --all` (namespaces {prefix}*)")
        raise
    except BaseException:
        cleanup(cloud, prefix, tmp)
        raise
    cleanup(cloud, prefix, tmp)
    memory["peak_mb"] = round(max([rss_mb()[1], *(v for v in memory.values() if v is not None)]), 1)
    status = git("status", "--porcelain", "--untracked-files=no")
    meta = {"date": datetime.now(UTC).isoformat(), "driver": args.driver, "hosts": args.hosts,
            "cpu_model": cpu_model(), "host_cpu_count": os.cpu_count(),
            "loadavg_start": load_start, "loadavg_end": load_average(),
            "python": platform.python_version(), "platform": platform.platform(),
            "git_commit": git("rev-parse", "HEAD") or None, "git_dirty": None if status is None else bool(status),
            "prefix": prefix, "counts": args.counts, "concurrency": args.concurrency,
            "rule_repeats": args.rule_repeats, "resync_ports": args.resync_ports,
            "resync_networks": args.resync_networks, "quick": args.quick,
            "client_process": not args.in_process,
            "phases": sorted(args.phases), "duration_s": round(time.perf_counter() - t_run, 1)}
    report = build_report(meta, port_ping, rule_packet, resync, memory, wall_run)
    print(render_results(report))
    print()
    print(render_targets(report["targets"], meta))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with interrupts():
            return run(args)
    except BenchError as exc:
        print(f"bench/wiring.py: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench/wiring.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
