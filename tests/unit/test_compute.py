"""Instances without root: the udhcpc hook run against a fake ip(8), lease parsing, argv and path building."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from neutrino import compute
from neutrino.compute import dhcp_client, vif
from neutrino.compute.dhcp_client import Lease, LeaseNotApplied
from neutrino.kernel import NamespaceNotFound, NotOurs

FAKE_IP = """#!/bin/sh
# records each call (argv, then the batch it was fed) and fails when asked to
{ echo "ARGV $*"; cat; } >> "$FAKE_IP_LOG"
[ -n "$FAKE_IP_ERROR" ] && { echo "$FAKE_IP_ERROR" >&2; exit 1; }
exit 0
"""

BOUND = {"interface": "eth0", "ip": "10.20.0.11", "mask": "24", "subnet": "255.255.255.0", "router": "10.20.0.1",
         "mtu": "1450", "dns": "10.20.0.2 198.51.100.53", "domain": "openstacklocal", "hostname": "host-10-20-0-11",
         "staticroutes": "10.99.0.0/16 10.20.0.254 10.30.0.0/24 0.0.0.0 0.0.0.0/0 10.20.0.1",
         "lease": "86400", "serverid": "10.20.0.2"}


class Hook:
    """The real hook script in a temp dir, with a fake ``ip`` first on PATH."""

    def __init__(self, tmp: Path) -> None:
        self.script = dhcp_client.write_script(tmp / "state")
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        (bin_dir / "ip").write_text(FAKE_IP)
        (bin_dir / "ip").chmod(0o755)
        self.log, self.lease, self.resolv = tmp / "ip.log", tmp / "state" / "lease.json", tmp / "resolv.conf"
        self.path = f"{bin_dir}:{os.environ.get('PATH', dhcp_client.DEFAULT_PATH)}"

    def run(self, event: str, variables: dict[str, str], ip_error: str = "", resolv: bool = True) -> None:
        env = {"PATH": self.path, "FAKE_IP_LOG": str(self.log), "FAKE_IP_ERROR": ip_error,
               "NEUTRINO_LEASE_FILE": str(self.lease), **variables}
        if resolv:
            env["NEUTRINO_RESOLV_CONF"] = str(self.resolv)
        done = subprocess.run([str(self.script), event], env=env, capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, done.stderr

    def batches(self) -> list[list[str]]:
        """One list of ip commands per ip(8) call, the argv first."""
        calls: list[list[str]] = []
        for line in self.log.read_text().splitlines():
            if line.startswith("ARGV "):
                calls.append([line[5:]])
            elif line:
                calls[-1].append(line)
        return calls


@pytest.fixture
def hook(tmp_path: Path) -> Hook:
    return Hook(tmp_path)


def test_bound_applies_everything_in_one_ip_batch_and_writes_resolv_conf_and_lease(hook: Hook) -> None:
    host_resolv = Path("/etc/resolv.conf").read_bytes()
    hook.run("bound", BOUND)
    assert hook.batches() == [["-4 -force -batch -",
                               "addr flush dev eth0",
                               "addr replace 10.20.0.11/24 dev eth0",
                               "link set dev eth0 mtu 1450",
                               "route replace 10.99.0.0/16 via 10.20.0.254 dev eth0",
                               "route replace 10.30.0.0/24 dev eth0",  # nexthop 0.0.0.0: on-link
                               "route replace 0.0.0.0/0 via 10.20.0.1 dev eth0"]]
    assert hook.resolv.read_text() == "search openstacklocal\nnameserver 10.20.0.2\nnameserver 198.51.100.53\n"
    assert dhcp_client.read_lease(hook.lease) == Lease(
        ip="10.20.0.11", prefixlen=24, router="10.20.0.1", mtu=1450, dns=("10.20.0.2", "198.51.100.53"),
        routes=(("10.99.0.0/16", "10.20.0.254"), ("10.30.0.0/24", "0.0.0.0"), ("0.0.0.0/0", "10.20.0.1")),
        hostname="host-10-20-0-11", domain="openstacklocal")
    assert Path("/etc/resolv.conf").read_bytes() == host_resolv


def test_without_classless_routes_the_router_is_the_default_route(hook: Hook) -> None:
    hook.run("bound", {**BOUND, "staticroutes": "", "mtu": "", "router": "10.20.0.1 10.20.0.9"})
    assert hook.batches()[0][1:] == ["addr flush dev eth0", "addr replace 10.20.0.11/24 dev eth0",
                                     "route replace default via 10.20.0.1 dev eth0"]
    lease = dhcp_client.read_lease(hook.lease)
    assert (lease.router, lease.mtu, lease.routes) == ("10.20.0.1", None, ())


def test_renew_keeps_the_address_deconfig_flushes_it(hook: Hook) -> None:
    hook.run("renew", BOUND)
    assert "addr flush dev eth0" not in hook.batches()[0]
    hook.log.unlink()
    hook.run("deconfig", {"interface": "eth0"})
    assert hook.batches() == [["-4 -force -batch -", "addr flush dev eth0", "link set dev eth0 up"]]


def test_a_failed_ip_command_is_reported_not_hidden(hook: Hook) -> None:
    hook.run("bound", BOUND, ip_error="Error: Nexthop has invalid gateway.")
    raw = json.loads(hook.lease.read_text())
    assert "invalid gateway" in raw["failed"]
    with pytest.raises(LeaseNotApplied, match="10.20.0.11 for eth0 not fully applied: .*invalid gateway"):
        dhcp_client.read_lease(hook.lease)


def test_odd_server_strings_still_give_valid_json(hook: Hook) -> None:
    hook.run("bound", {**BOUND, "hostname": 'a"b\\c', "domain": "ex\tample"})
    lease = dhcp_client.read_lease(hook.lease)
    assert (lease.hostname, lease.domain) == ('a"b\\c', "example")


def test_no_resolv_conf_path_means_no_resolv_conf_written(hook: Hook) -> None:
    host_resolv = Path("/etc/resolv.conf").read_bytes()
    hook.run("bound", BOUND, resolv=False)
    assert not hook.resolv.exists() and hook.lease.exists()
    assert Path("/etc/resolv.conf").read_bytes() == host_resolv


def test_other_events_touch_nothing(hook: Hook) -> None:
    hook.run("leasefail", {"interface": "eth0"})
    hook.run("nak", {"interface": "eth0"})
    assert not hook.log.exists() and not hook.lease.exists() and not hook.resolv.exists()


def test_write_script_is_executable_and_idempotent(tmp_path: Path) -> None:
    path = dhcp_client.write_script(tmp_path)
    inode = path.stat().st_ino
    assert os.access(path, os.X_OK) and path.read_text() == dhcp_client.SCRIPT
    assert dhcp_client.write_script(tmp_path) == path and path.stat().st_ino == inode
    path.write_text("#!/bin/sh\n")
    dhcp_client.write_script(tmp_path)
    assert path.read_text() == dhcp_client.SCRIPT and os.access(path, os.X_OK)


def test_parse_lease_fills_gaps() -> None:
    lease = dhcp_client.parse_lease({"ip": "10.0.0.5", "mask": "", "subnet": "255.255.255.192", "router": "",
                                     "mtu": "", "dns": "", "staticroutes": "", "hostname": "", "domain": ""})
    assert lease == Lease(ip="10.0.0.5", prefixlen=26, router=None, mtu=None, dns=(), routes=(), hostname=None,
                          domain=None)
    assert dhcp_client.parse_lease({"ip": "10.0.0.5"}).prefixlen == 32
    with pytest.raises(ValueError):
        dhcp_client.parse_lease({"ip": ""})


def test_lease_to_dict_is_json_in_the_api_shape() -> None:
    lease = Lease(ip="10.0.0.5", prefixlen=24, router="10.0.0.1", mtu=1450, dns=("10.0.0.2",),
                  routes=(("10.99.0.0/16", "10.0.0.254"),), hostname="vm", domain="openstacklocal")
    assert lease.cidr == "10.0.0.5/24"
    assert json.loads(json.dumps(lease.to_dict())) == {
        "ip": "10.0.0.5", "prefixlen": 24, "router": "10.0.0.1", "mtu": 1450, "dns": ["10.0.0.2"],
        "routes": [{"destination": "10.99.0.0/16", "nexthop": "10.0.0.254"}], "hostname": "vm",
        "domain": "openstacklocal"}


def _flags(argv: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for i, arg in enumerate(argv):
        if arg.startswith("-"):
            value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("-") else ""
            found.setdefault(arg, []).append(value)
    return found


@pytest.mark.parametrize("timeout", [0.2, 1, 2.5, 10, 30])
def test_udhcpc_runs_in_the_foreground_and_retries_fast_enough_to_cover_the_timeout(timeout: float) -> None:
    argv = dhcp_client.udhcpc_argv("eth0", Path("/s/udhcpc.script"), Path("/run/x/udhcpc-eth0.pid"), timeout)
    assert argv[:2] == ["busybox", "udhcpc"]
    flags = _flags(argv)
    assert {"-f", "-q", "-n"} <= flags.keys() and "-R" not in flags and "-b" not in flags
    assert flags["-i"] == ["eth0"] and flags["-s"] == ["/s/udhcpc.script"] and flags["-p"] == ["/run/x/udhcpc-eth0.pid"]
    assert set(flags["-O"]) == {"mtu", "staticroutes"}
    tries, seconds = int(flags["-t"][0]), int(flags["-T"][0])
    assert seconds <= 1 and tries * seconds >= timeout and (tries - 1) * seconds < max(timeout, 1)


def test_exec_argv_runs_inside_the_instance() -> None:
    assert vif.exec_argv("vm-1b2c3d4e-aa", ["ping", "-c1", "10.0.0.1"]) == [
        "ip", "netns", "exec", "vm-1b2c3d4e-aa", "ping", "-c1", "10.0.0.1"]
    with pytest.raises(ValueError):
        vif.exec_argv("vm-1b2c3d4e-aa", [])


@pytest.mark.parametrize("name", ["", "eth0", "vm-", "default", "../vm-x", "vm-x/../..", "nt-"])
def test_names_that_are_not_ours_are_refused_before_anything_happens(name: str, tmp_path: Path) -> None:
    for call in (lambda: vif.exec_argv(name, ["true"]), lambda: compute.etc_dir(name),
                 lambda: compute.run_dir(name), lambda: vif.plug(name, "nt-host", "tap1b2c3d4e-aa", "fa:16:3e:00:00:01",
                                                                  None),
                 lambda: vif.unplug(name, "nt-host", "tap1b2c3d4e-aa"), lambda: dhcp_client.acquire(name, tmp_path),
                 lambda: dhcp_client.stop(name)):
        with pytest.raises(NotOurs):
            call()
    assert not (tmp_path / "udhcpc.script").exists()


def test_host_paths_of_an_instance() -> None:
    assert compute.resolv_conf("vm-1b2c3d4e-aa") == Path("/etc/netns/vm-1b2c3d4e-aa/resolv.conf")
    assert dhcp_client.pidfile_path("vm-1b2c3d4e-aa") == Path("/run/neutrino/instances/vm-1b2c3d4e-aa/udhcpc-eth0.pid")
    with pytest.raises(ValueError):
        dhcp_client.pidfile_path("vm-1b2c3d4e-aa", "eth0; rm -rf /")


def test_acquire_needs_the_namespace(tmp_path: Path) -> None:
    with pytest.raises(NamespaceNotFound):
        dhcp_client.acquire("vm-nonexistent-0", tmp_path, timeout=1)
