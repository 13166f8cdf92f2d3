"""The pure parts of bench/wiring.py: statistics, phase marks, targets, rendering, arguments, signals.

Nothing here builds namespaces; the bench itself is run by hand as root (see bench/README.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "wiring.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_wiring", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_wiring"] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


wiring = _load()


# ---------------------------------------------------------------- statistics

def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert wiring.percentile(values, 50) == pytest.approx(50.5)
    assert wiring.percentile(values, 90) == pytest.approx(90.1)
    assert wiring.percentile(values, 0) == 1.0 and wiring.percentile(values, 100) == 100.0
    assert wiring.percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert wiring.percentile([7.0], 90) == 7.0
    assert wiring.percentile([], 50) is None


def test_summarize_rounds_and_handles_empty() -> None:
    assert wiring.summarize([1.0, 2.0, 3.0, 4.0]) == {"count": 4, "p50": 2.5, "p90": 3.7, "max": 4.0, "mean": 2.5}
    assert wiring.summarize([0.12345], digits=3)["p50"] == 0.123
    assert wiring.summarize([]) == {"count": 0, "p50": None, "p90": None, "max": None, "mean": None}


def test_phase_marks_turn_instants_into_durations() -> None:
    marks = {"start": 10.0, "port": 10.05, "bind_s": 0.03, "plugged": 10.3, "active": 10.9, "created": 11.0,
             "pinged": 11.01}
    got = wiring.phase_marks(marks)
    assert list(got) == list(wiring.PHASES)
    assert got["port_api"] == pytest.approx(0.05) and got["wait_active"] == pytest.approx(0.6)
    assert got["bind"] == pytest.approx(0.03) and got["plug"] == pytest.approx(0.22)  # port -> plugged, less bind
    assert got["first_ping"] == pytest.approx(0.01)
    # a create that failed half-way has only the phases it finished
    assert set(wiring.phase_marks({"start": 1.0, "port": 1.1, "bind_s": 0.05})) == {"port_api"}


def _sample(start: float, total_s: float, plug: float = 0.2) -> Any:
    return wiring.Sample(start, start + total_s, {"port_api": 0.05, "plug": plug})


def test_port_ping_result() -> None:
    samples = [_sample(0.0, 0.4), _sample(0.1, 0.2), _sample(0.2, 1.0, plug=0.6)]
    r = wiring.port_ping_result(3, 2, samples, ["RuntimeError: boom"], {"network_ready_s": 0.5})
    assert (r["instances"], r["concurrency"], r["ok"], r["errors"]) == (3, 2, 3, 1)
    assert r["wall_s"] == pytest.approx(1.2)  # first start to last reply
    assert r["total_ms"]["p50"] == 400.0 and r["total_ms"]["max"] == 1000.0
    assert r["phases_ms"]["plug"]["max"] == 600.0 and r["phases_ms"]["plug"]["count"] == 3
    assert r["phases_ms"]["dhcp_lease"]["count"] == 0
    assert r["first_error"] == "RuntimeError: boom" and r["network_ready_s"] == 0.5
    empty = wiring.port_ping_result(5, 4, [], ["x"] * 5)
    assert empty["wall_s"] is None and empty["total_ms"]["p50"] is None


def test_pass_stats() -> None:
    assert wiring.pass_stats([0.5, 0.25, 1.0], 4) == {"passes": 4, "p50_s": 0.5, "max_s": 1.0, "sampled": 3}
    assert wiring.pass_stats([], 0) == {"passes": 0, "p50_s": None, "max_s": None, "sampled": 0}
    parts = wiring.pass_stats([0.3], 1, {"l2": [0.1, 0.3], "dhcp": [0.2]})["parts_p50_s"]
    assert parts == {"l2": 0.2, "dhcp": 0.2}


def test_part_timings_only_when_the_agent_records_them() -> None:
    class Result:
        timings = {"sync": 0.01, "l2": 0.5}

    assert wiring.part_timings(Result()) == {"sync": 0.01, "l2": 0.5}
    assert wiring.part_timings(object()) == {}


# ---------------------------------------------------------------- targets and rendering

def _run(n: int, p50_ms: float, wall_s: float, errors: int = 0) -> dict[str, Any]:
    ok = n - errors
    samples = [wiring.Sample(0.0, p50_ms / 1000, {p: 0.01 for p in wiring.PHASES}) for _ in range(ok)]
    if samples:
        samples[-1] = wiring.Sample(0.0, wall_s, {p: 0.01 for p in wiring.PHASES})
    r: dict[str, Any] = wiring.port_ping_result(n, min(4, n), samples, ["NoLease: no lease"] * errors,
                                {"network_ready_s": 0.8, "teardown_s": 1.5,
                                 "agent_passes": wiring.pass_stats([0.4, 0.6], 2, {"l2": [0.1], "dhcp": [0.2]})})
    return r


def _report(**over: Any) -> dict[str, Any]:
    port_ping = over.get("port_ping", [_run(1, 250.0, 0.25), _run(10, 280.0, 1.2), _run(100, 290.0, 12.0)])
    rule = {"repeats": 3, "ok": 3, "errors": 0, "allow_ms": wiring.summarize([40.0, 50.0, 60.0]),
            "block_ms": wiring.summarize([300.0]), "samples_ms": [40.0, 50.0, 60.0]}
    resync = over.get("resync", {"ports": 1000, "bulk_create_s": 1.2, "plug_s": 30.0,
                                 "initial": {"seconds": 1.3, "passes": 1, "first_pass_s": 1.2, "l2_actions": 0,
                                             "dhcp": {"n": "reloaded"}, "firewall_applied": True,
                                             "all_active": True},
                                 "cold": {"seconds": 4.5, "passes": 1, "first_pass_s": 4.4, "l2_actions": 205,
                                          "first_pass_parts_s": {"sync": 0.05, "l2": 3.9},
                                          "dhcp": {"n": "started"}, "firewall_applied": True, "all_active": True},
                                 "warm": {"seconds": 0.8, "passes": 1, "first_pass_s": 0.7, "l2_actions": 0,
                                          "dhcp": {"n": "unchanged"}, "firewall_applied": True,
                                          "all_active": True}})
    meta = over.get("meta", {"date": "2026-01-01T00:00:00+00:00", "host_cpu_count": 2, "driver": "ovs", "hosts": 2,
                             "cpu_model": "AMD EPYC", "loadavg_start": [0.5, 0.25, 0.1],
                             "loadavg_end": [1.5, 0.5, 0.2]})
    return wiring.build_report(meta, port_ping, rule, resync, {"rss_start_mb": 40.0, "peak_mb": 130.0})


def test_targets_all_pass() -> None:
    t = {x["name"]: x for x in _report()["targets"]}
    assert list(t) == ["port->ping p50 (N=1)", "port->ping p50 (N=10)", "port->ping p50 (N=100)",
                       "100 instances pingable", "full resync, 1000 ports"]
    assert all(x["pass"] is True for x in t.values())
    assert t["port->ping p50 (N=100)"]["measured"] == 290.0 and t["port->ping p50 (N=100)"]["unit"] == "ms"
    assert t["100 instances pingable"]["measured"] == 12.0
    assert t["full resync, 1000 ports"]["measured"] == 4.5 and "note" not in t["full resync, 1000 ports"]


def test_targets_fail_on_slow_runs_and_on_errors() -> None:
    report = _report(port_ping=[_run(1, 450.0, 0.45), _run(100, 200.0, 31.0, errors=2)],
                     resync={"ports": 1000, "cold": {"seconds": 12.0}})
    t = {x["name"]: x for x in report["targets"]}
    assert t["port->ping p50 (N=1)"]["pass"] is False
    fast_but_broken = t["port->ping p50 (N=100)"]
    assert fast_but_broken["measured"] == 200.0 and fast_but_broken["pass"] is False
    assert "2 of 100 failed" in fast_but_broken["note"]
    assert t["100 instances pingable"]["pass"] is False and "98/100" in t["100 instances pingable"]["note"]
    assert t["full resync, 1000 ports"]["pass"] is False


def test_targets_not_measured_in_a_quick_run() -> None:
    report = _report(port_ping=[_run(1, 100.0, 0.1), _run(10, 100.0, 0.5)],
                     resync={"ports": 50, "cold": {"seconds": 2.0}})
    t = {x["name"]: x for x in report["targets"]}
    assert t["100 instances pingable"]["pass"] is None and "N=100 not run" in t["100 instances pingable"]["note"]
    small = t["full resync, 1000 ports"]
    assert small["pass"] is True and "50 ports" in small["note"]
    failed = {x["name"]: x for x in _report(resync={"ports": 1000, "error": "only 3/1000 ports ACTIVE"})["targets"]}
    assert failed["full resync, 1000 ports"]["pass"] is None
    assert "3/1000" in failed["full resync, 1000 ports"]["note"]
    spread = {x["name"]: x for x in _report(resync={"ports": 1000, "networks": 4, "cold": {"seconds": 9.0}})["targets"]}
    assert spread["full resync, 1000 ports"]["note"] == "over 4 networks"
    skipped = {x["name"]: x for x in _report(resync=None)["targets"]}
    assert skipped["full resync, 1000 ports"]["note"] == "resync not run"


def test_render_targets() -> None:
    report = _report(port_ping=[_run(1, 450.0, 0.45), _run(10, 100.0, 0.5)])
    report["port_ping"][1]["load_start"] = [3.0, 2.0, 1.0]
    report["targets"] = wiring.evaluate_targets(report)
    lines = wiring.render_targets(report["targets"]).splitlines()
    assert lines[0].split()[:4] == ["target", "goal", "measured", "result"]
    assert lines[1].startswith("port->ping p50 (N=1)") and lines[1].rstrip().endswith("FAIL")
    assert "450.00 ms" in lines[1]
    assert lines[2].rstrip().endswith("PASS") and "< 300 ms" in lines[2]
    assert "n/a (N=100 not run)" in lines[3] and lines[3].rstrip().endswith("-")
    # with the run's meta, every line says where it was measured: driver, hosts, CPU, load of its phase
    lines = wiring.render_targets(report["targets"], report["meta"]).splitlines()
    assert "[ovs, 2 hosts, AMD EPYC x2, load 0.50/0.25/0.10]" in lines[1]
    assert lines[2].endswith("PASS   [ovs, 2 hosts, AMD EPYC x2, load 3.00/2.00/1.00]")


def test_context_says_driver_hosts_cpu_and_load() -> None:
    meta = {"driver": "linuxbridge", "hosts": 1, "cpu_model": "Xeon", "host_cpu_count": 4, "loadavg_start": [1, 2, 3]}
    assert wiring.context(meta) == "linuxbridge, 1 host, Xeon x4, load 1.00/2.00/3.00"
    assert wiring.context(meta, [0.5, 0.5, 0.5]).endswith("load 0.50/0.50/0.50")
    assert wiring.context({}) == "linuxbridge, 1 host, ? x?"


def test_render_results_has_every_section() -> None:
    report = _report()
    for r in report["port_ping"]:
        r["load_start"] = [0.75, 0.5, 0.25]
    report["port_ping"][2].update(by_host_ms={"h1": wiring.summarize([280.0]), "h2": wiring.summarize([300.0])},
                                  across_hosts_ms=wiring.summarize([300.0]))
    text = wiring.render_results(report)
    lines = text.splitlines()
    assert lines[0] == "run: ovs, 2 hosts, AMD EPYC x2, load 0.50/0.25/0.10 at the start, 1.50/0.50/0.20 at the end"
    assert lines[2].split()[:4] == ["port", "->", "ping", "(ms)"] and lines[2].split()[-1] == "load1"
    rows = [ln.split() for ln in lines[4:7]]
    assert [r[0] for r in rows] == ["1", "10", "100"]
    assert rows[2][:6] + rows[2][-1:] == ["100", "4", "100", "0", "12.00", "290.0", "0.75"]
    assert "N=100 conc 4: p50 (instances) per host: h1 280.0 (1), h2 300.0 (1); " \
           "off host 1, across the underlay: 300.0" in text
    assert "where it goes (p50 ms)" in text and "wait ACTIVE" in text and "DHCP lease" in text
    assert "rule -> packet (ms)" in text and "50.0" in text
    for kind in ("initial", "cold", "warm"):
        assert any(ln.split()[:3] == ["1000", "1", kind] for ln in lines), kind
    cold = next(ln.split() for ln in lines if " cold " in ln)
    assert cold[:7] == ["1000", "1", "cold", "4.50", "1", "4.40", "205"]
    assert "bench process RSS" in text and "peak_mb 130.0 MB" in text
    assert "l2 0.100 dhcp 0.200" in text and "cold restart, its first pass (s): sync 0.050 l2 3.900" in text


def test_render_results_of_a_partial_run() -> None:
    report = wiring.build_report({}, [], None, {"ports": 200, "error": "boom"}, {})
    text = wiring.render_results(report)
    assert "port -> ping" not in text and "rule -> packet" not in text
    assert "error: boom" in text


def test_report_is_json() -> None:
    report = json.loads(json.dumps(_report()))
    assert set(report) == {"meta", "port_ping", "rule_packet", "resync", "memory", "targets", "port_ping_wall"}
    assert report["port_ping"][2]["instances"] == 100
    assert len(report["targets"]) == 5


# ---------------------------------------------------------------- arguments, pool, signals, preflight

def test_parse_args_defaults_and_quick() -> None:
    a = wiring.parse_args([])
    assert (a.counts, a.concurrency, a.rule_repeats, a.resync_ports) == ([1, 10, 100], 4, 10, 1000)
    assert a.phases == {"port", "rule", "resync"}
    assert (a.driver, a.hosts, a.resync_networks) == ("linuxbridge", 1, 1)
    o = wiring.parse_args(["--driver", "ovs", "--hosts", "3", "--resync-networks", "4"])
    assert (o.driver, o.hosts, o.resync_networks) == ("ovs", 3, 4)
    q = wiring.parse_args(["--quick"])
    assert (q.counts, q.rule_repeats, q.resync_ports) == ([1, 10], 3, 50)
    mixed = wiring.parse_args(["--quick", "--counts", "5", "--resync-ports", "20", "--phases", "resync"])
    assert (mixed.counts, mixed.resync_ports, mixed.phases) == ([5], 20, {"resync"})


@pytest.mark.parametrize("argv", [["--counts", "1,x"], ["--counts", "0"], ["--phases", "port,nope"],
                                  ["--concurrency", "0"], ["--resync-ports", "5000"], ["--driver", "openvswitch"],
                                  ["--hosts", "0"], ["--hosts", "9"], ["--resync-networks", "0"]])
def test_parse_args_rejects(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        wiring.parse_args(argv)


def test_run_pool_collects_results_and_errors() -> None:
    def fn(i: int) -> int:
        if i == 3:
            raise ValueError("three")
        time.sleep(0.01)
        return i * 2

    results, errors = wiring.run_pool(list(range(6)), 3, fn, "test", threading.Event())
    assert sorted(results) == [0, 2, 4, 8, 10] and errors == ["ValueError: three"]
    stopped = threading.Event()
    stopped.set()
    assert wiring.run_pool([1, 2], 2, fn, "test", stopped) == ([], [])  # nothing starts after a stop


def test_main_says_root_is_needed(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert wiring.main(["--quick"]) == 2
    assert "needs root" in capsys.readouterr().err


def test_sigterm_interrupts_the_bench_but_a_forked_copy_just_exits() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with wiring.interrupts():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        pid = os.fork()  # as pyroute2 does to open a socket in a namespace, then SIGTERMs the copy
        if pid == 0:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(2)
            finally:
                os._exit(1)  # only reached if the handler did not exit
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_phase_that_breaks_stops_the_run_as_could_not_run() -> None:
    with pytest.raises(wiring.BenchError, match="the rule->packet phase failed: ValueError: nope"):
        with wiring.phase_errors("rule->packet"):
            raise ValueError("nope")
    with pytest.raises(wiring.BenchError, match="^as is$"):
        with wiring.phase_errors("resync"):
            raise wiring.BenchError("as is")
