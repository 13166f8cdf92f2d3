"""Daemons we start inside our namespaces, owned through pidfiles and checked by /proc/PID/cmdline.

A pidfile alone is not proof: the PID may have been reused by any other process. Every
action here first checks that the process's command line contains what we started it with
(``expect``, e.g. the pidfile path we passed), and refuses to touch anything else.

The daemons (dnsmasq, haproxy) start as root, bind their sockets, then become ``DAEMON_USER``
/ ``daemon_group()`` as Neutron runs them. What they still open after that (the files dnsmasq
re-reads on SIGHUP, the metadata unix socket haproxy connects to) lives under ``RUN_DIR``,
whose every directory is searchable by anyone: a state dir such as ``/root/state`` or
pytest's tmp dirs is root's alone.
"""

from __future__ import annotations

import grp
import os
import pwd
import signal as signal_mod
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from neutrino.kernel import KernelError, NamespaceNotFound, NotOurs
from neutrino.kernel.names import is_our_namespace
from neutrino.kernel.netns import namespace_exists

DAEMON_USER = "nobody"
RUN_DIR = Path("/run/neutrino")


def daemon_group() -> str:
    """The group daemons run as: ``nogroup`` (Debian's, as Neutron's dnsmasq), else nobody's own group."""
    try:
        return grp.getgrnam("nogroup").gr_name
    except KeyError:
        return grp.getgrgid(pwd.getpwnam(DAEMON_USER).pw_gid).gr_name


def run_path(*parts: str) -> Path:
    """``RUN_DIR/<parts>``, each part one plain path component (never ``..`` or a slash)."""
    if not parts or any(not p or "/" in p or "\0" in p or p in (".", "..") for p in parts):
        raise ValueError(f"unsafe run directory {parts!r}")
    return RUN_DIR.joinpath(*parts)


def daemon_dir(*parts: str) -> Path:
    """``run_path(*parts)``, created as needed, each level mode 0755 so a daemon that dropped root reaches it."""
    run_path(*parts)
    levels = [RUN_DIR]
    for part in parts:
        levels.append(levels[-1] / part)
    for level in levels:
        level.mkdir(mode=0o755, exist_ok=True)
        if level.stat().st_mode & 0o755 != 0o755:
            os.chmod(level, 0o755)
    return levels[-1]


def read_pid(pidfile: str) -> int | None:
    try:
        with open(pidfile) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def cmdline(pid: int) -> list[str] | None:
    """The argv of a live (not zombie) process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if state in ("Z", "X"):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def owned_pid(pidfile: str, expect: str) -> int | None:
    """The pidfile's PID if that process is alive and its command line contains ``expect``."""
    pid = read_pid(pidfile)
    return pid if pid is not None and _matches(pid, expect) else None


def _matches(pid: int, expect: str) -> bool:
    argv = cmdline(pid)
    return argv is not None and expect in "\0".join(argv)


def _wait_gone(pid: int, expect: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _matches(pid, expect):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def is_running(pidfile: str, expect: str) -> bool:
    return owned_pid(pidfile, expect) is not None


def start(ns: str, argv: Sequence[str], pidfile: str, expect: str, timeout: float = 5.0) -> int:
    """Run a self-daemonizing ``argv`` (which writes ``pidfile``) in ``ns``; return its PID.

    Idempotent: a matching running process is left alone and its PID returned.
    """
    if not is_our_namespace(ns):
        raise NotOurs("start daemon", ns, detail="not a neutrino namespace")
    if not namespace_exists(ns):
        raise NamespaceNotFound("start daemon", ns, detail="no such namespace")
    pid = owned_pid(pidfile, expect)
    if pid is not None:
        return pid
    done = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise KernelError("start daemon", f"{ns}/{argv[0]}", detail=done.stderr.strip() or f"exit {done.returncode}")
    deadline = time.monotonic() + timeout
    while (pid := owned_pid(pidfile, expect)) is None:
        if time.monotonic() > deadline:
            raise KernelError("start daemon", f"{ns}/{argv[0]}", detail=f"no live process behind {pidfile}")
        time.sleep(0.01)
    return pid


def signal(pidfile: str, expect: str, signum: int = signal_mod.SIGHUP) -> bool:
    """Send ``signum`` (reload by default) to our process; False if it is not running."""
    pid = owned_pid(pidfile, expect)
    if pid is None:
        return False
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def stop(pidfile: str, expect: str, timeout: float = 3.0) -> bool:
    """TERM, wait, then KILL our process and remove the pidfile; False if it was not running."""
    pid = owned_pid(pidfile, expect)
    stopped = False
    if pid is not None:
        stopped = signal(pidfile, expect, signal_mod.SIGTERM)
        if not _wait_gone(pid, expect, timeout) and _matches(pid, expect):
            os.kill(pid, signal_mod.SIGKILL)
            _wait_gone(pid, expect, timeout)
    try:
        os.unlink(pidfile)
    except FileNotFoundError:
        pass
    return stopped
