"""README.md's walk-through, run verbatim as a new user would (as root), so it cannot drift.

The commands of the ``sh`` blocks under "Run it" and "Five minutes with the openstack CLI" run
in order, in one shell, in a fresh copy of this repository (its tracked and new files, as a
clone would have them plus uncommitted edits), with nothing changed but the ``<...>``
placeholders, which are filled in with values read from the running cloud. The copy's
``.venv`` reuses the installed packages of the environment running the tests (a small venv
whose site-packages chain to ours, with the copy's ``src`` first), so ``scripts/run.sh``'s
set-up finds everything installed and the copy's own code is what runs.

The walk-through uses the machine's default names (node namespace ``neutrino-<hostname>``,
link ``neutrino-public``, 203.0.113.0/24, port 9696): it is skipped when a cloud already runs
here, and ends with ``neutrino down`` whatever happens.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from neutrino import config
from neutrino.client import Client
from neutrino.cmd import hostclaim
from neutrino.kernel import links, netns
from tests.functional.test_up_down import check_hints

REPO = Path(__file__).resolve().parents[2]
WALKTHROUGH = ("## Run it", "## Five minutes")
PLACEHOLDER = re.compile(r"<([\w' ]+)>")


def walkthrough(markdown: str) -> list[str]:
    """The shell commands of the walk-through sections' ``sh`` blocks, continuation lines joined."""
    commands: list[str] = []
    section, block, pending = "", None, ""
    for line in markdown.splitlines():
        if block is None and line.startswith("## "):
            section = line
        elif block is None and line.strip() == "```sh":
            block = section.startswith(WALKTHROUGH)
        elif block is not None and line.strip() == "```":
            assert not pending, f"README: a continued line ends its block: {pending!r}"
            block = None
        elif block:
            text = pending + line
            if text.endswith("\\"):
                pending = text + "\n"
                continue
            pending = ""
            if text.strip() and not text.lstrip().startswith("#"):
                commands.append(text)
    return commands


def test_walkthrough_parses_the_readme() -> None:
    """The parser sees what a reader sees: run.sh first, down last, the placeholders known."""
    commands = walkthrough((REPO / "README.md").read_text())
    assert commands[0].startswith("scripts/run.sh ") and commands[-1].endswith("neutrino down")
    assert any("instance exec vm1 -- python3 -c \\\n" in c for c in commands)
    used = {m for c in commands for m in PLACEHOLDER.findall(c)}
    assert used <= set(Placeholders.KNOWN), used - set(Placeholders.KNOWN)


def _copy_repository(dest: Path) -> None:
    """Tracked and new (not ignored) files, as they are now: what a clone of this work would hold."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if name.split("/")[0] in (".venv", "state"):
            continue
        src = REPO / name
        if not src.exists() and not src.is_symlink():  # deleted in the work tree
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


def _overlay_venv(copy: Path) -> None:
    """``copy/.venv``: the copy's ``src`` first, then the installed packages of our environment.

    Scripts (``neutrino``, ``openstack``) are ours with the shebang pointed at the new python.
    The set-up stamp says this pyproject.toml is installed, as it is.
    """
    import hashlib

    venv = copy / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    ours = Path(sysconfig.get_paths()["purelib"])
    site = venv / ours.relative_to(sys.prefix)
    (site / "00-neutrino-src.pth").write_text(f"{copy / 'src'}\n")
    (site / "zz-installed.pth").write_text(f"import site; site.addsitedir({str(ours)!r})\n")
    shebang = f"#!{Path(sys.prefix) / 'bin'}/python"
    for script in (Path(sys.prefix) / "bin").iterdir():
        target = venv / "bin" / script.name
        if target.exists() or not script.is_file():
            continue
        head = script.read_bytes()[:200]
        if head.startswith(shebang.encode()):
            text = script.read_text()
            target.write_text(f"#!{venv / 'bin' / 'python'}" + text[text.index("\n"):])
            target.chmod(0o755)
    digest = hashlib.sha256((copy / "pyproject.toml").read_bytes()).hexdigest()
    (venv / ".neutrino-installed").write_text(digest + "\n")


class Placeholders:
    """Values for the README's ``<...>`` placeholders, read from the running cloud."""

    KNOWN = ("vm2's address", "vm1's port id", "the floating IP")

    def __init__(self, state: Path) -> None:
        self.state = state

    def _demo(self) -> Client:
        return Client.from_clouds(self.state / "clouds.yaml", "demo")

    def _port(self, name: str) -> dict[str, object]:
        ports = self._demo().get("/v2.0/ports", name=name)["ports"]
        assert len(ports) == 1, f"expected one port named {name}: {ports}"
        return ports[0]  # type: ignore[no-any-return]

    def value(self, name: str) -> str:
        if name == "vm2's address":
            return str(self._port("vm2")["fixed_ips"][0]["ip_address"])  # type: ignore[index]
        if name == "vm1's port id":
            return str(self._port("vm1")["id"])
        if name == "the floating IP":
            fips = self._demo().get("/v2.0/floatingips", port_id=self._port("vm1")["id"])["floatingips"]
            assert len(fips) == 1, fips
            return str(fips[0]["floating_ip_address"])
        raise AssertionError(f"README placeholder <{name}> has no value in this test")

    def fill(self, command: str) -> str:
        return PLACEHOLDER.sub(lambda m: self.value(m.group(1)), command)


class Shell:
    """One bash, fed one command at a time as a user types them (aliases expand, exports stay)."""

    def __init__(self, cwd: Path, env: dict[str, str], logs: Path) -> None:
        self.logs = logs
        self.count = 0
        self.proc = subprocess.Popen(["bash", "--norc", "--noprofile"], cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        self._send("shopt -s expand_aliases\n")  # as in the interactive shell the README is typed into

    def _send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def run(self, command: str, timeout: float) -> tuple[int, str]:
        self.count += 1
        out, rc = self.logs / f"{self.count}.out", self.logs / f"{self.count}.rc"
        self._send(f"{{ {command}\n}} >{out} 2>&1 </dev/null; echo $? >{rc}.tmp; mv {rc}.tmp {rc}\n")
        deadline = time.monotonic() + timeout
        while not rc.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                shown = out.read_text(errors="replace") if out.exists() else ""
                return -1, f"{shown}\n(no end after {timeout} s)"
            time.sleep(0.05)
        return int(rc.read_text()), out.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def _readme_env() -> dict[str, str]:
    """A root shell's environment: none of the test run's NEUTRINO_*, proxies or Python paths."""
    drop = ("NEUTRINO_", "PYTHON", "VIRTUAL_ENV", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["NO_PROXY"] = "*"
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return env


def _busy(bind: str) -> str | None:
    """Why the walk-through cannot run beside what already runs here (None: it can)."""
    cfg = config.load(env={})
    made = hostclaim.Footprint.of(cfg)
    owner = hostclaim.running(made.node_ns)
    if owner is not None:
        return f"a cloud already runs on this machine ({owner.describe()})"
    if netns.namespace_exists(made.node_ns) or (made.gateway_link and links.link_exists(None, made.gateway_link)):
        return f"{made.node_ns} or {made.gateway_link} already exists on this machine"
    host, _, port = bind.rpartition(":")
    with socket.socket() as sock:
        if sock.connect_ex((host, int(port))) == 0:
            return f"something already listens on {bind}"
    return None


@pytest.fixture
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    bind = re.search(r"--bind (\S+)", walkthrough((REPO / "README.md").read_text())[0])
    why = _busy(bind.group(1) if bind else "127.0.0.1:9696")
    if why:
        pytest.skip(f"the README walk-through needs this machine's default names: {why}")
    copy = tmp_path_factory.mktemp("readme") / "neutrino"
    _copy_repository(copy)
    _overlay_venv(copy)
    try:
        yield copy
    finally:  # whatever happened: the cloud goes (the README's own `down` normally did it already)
        down = subprocess.run([str(copy / ".venv/bin/neutrino"), "down", "--state-dir", str(copy / "state")],
                              env=_readme_env(), capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr



def test_readme_walkthrough_runs_verbatim(checkout: Path, tmp_path: Path) -> None:
    commands = walkthrough((checkout / "README.md").read_text())
    placeholders = Placeholders(checkout / "state")
    logs = tmp_path / "logs"
    logs.mkdir()
    shell = Shell(checkout, _readme_env(), logs)
    timings = []
    checks: dict[int, Callable[[str], None]] = {0: lambda out: check_hints(_readme_env(), out)}
    try:
        for i, written in enumerate(commands):
            command = placeholders.fill(written)
            started = time.monotonic()
            rc, out = shell.run(command, timeout=240 if i == 0 else 90)
            timings.append(f"{time.monotonic() - started:5.1f} s  {written.splitlines()[0]}")
            assert rc == 0, f"README command failed (exit {rc}):\n$ {command}\n{out}"
            if i in checks:
                checks[i](out)
    finally:
        shell.close()
        print("\n".join(timings))
    made = hostclaim.Footprint.of(config.load(env={}))
    assert not netns.namespace_exists(made.node_ns), "the README's `down` left the node namespace"
    assert not (made.gateway_link and links.link_exists(None, made.gateway_link)), "`down` left the gateway link"

