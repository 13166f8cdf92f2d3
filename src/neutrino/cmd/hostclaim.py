"""One cloud per host: the machine-wide claim and record of the cloud that runs here.

A cloud's machine-wide names (its node namespace ``neutrino-<host>`` and the host-only gateway
link ``neutrino-public``) can belong to one cloud at a time, whatever state directory each was
started with. The all-in-one process therefore *claims* them before it touches the host: an
exclusive ``flock`` per name under ``/run/neutrino`` that it holds for its whole life (the
kernel releases it when the process dies, so a crash never leaves a stale claim). Next to the
node namespace's lock it writes a *record* naming its state directory, PID and API address, so
that ``status``, ``instance``, ``down`` and ``cleanup`` find the running cloud without being
told its ``--state-dir``.

What a cloud makes on the host (its *footprint*: node namespace, namespace prefix, gateway
link) is also written into its state directory before anything is made, so that ``down`` and
``cleanup`` remove exactly what that cloud made, even after a crash, and never what the same
configuration would name today.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from neutrino.config import Config

RUN_DIR = Path("/run/neutrino")
FOOTPRINT = "host.json"  # in the state dir: what this cloud made (or may have made) on the host


class HostBusy(SystemExit):
    """Another process holds one of this cloud's machine-wide names (its message says what to do)."""


@dataclass(frozen=True)
class Footprint:
    """The machine-wide names a cloud creates; recorded before the first one is made."""

    host: str
    node_ns: str
    ns_prefix: str = ""
    gateway_link: str | None = None

    @classmethod
    def of(cls, cfg: Config) -> Footprint:
        from neutrino.allinone import host_config
        from neutrino.kernel.names import gateway_link

        hc = host_config(cfg)
        physnet = cfg.public.physical_network
        link = gateway_link(physnet) if physnet and physnet not in hc.physical_interfaces else None
        return cls(host=hc.host, node_ns=hc.node_ns, ns_prefix=hc.ns_prefix, gateway_link=link)

    def save(self, state: Path) -> None:
        _write_json(state / FOOTPRINT, asdict(self))

    @classmethod
    def load(cls, state: Path) -> Footprint | None:
        try:
            data = json.loads((state / FOOTPRINT).read_text())
            return cls(host=str(data["host"]), node_ns=str(data["node_ns"]), ns_prefix=str(data.get("ns_prefix", "")),
                       gateway_link=data.get("gateway_link"))
        except (OSError, ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class Running:
    """The record of a live cloud: where its state is, which process serves it, where its API answers."""

    state_dir: Path
    pid: int
    bind: str
    url: str
    host: str
    node_ns: str
    config: str | None = None

    def describe(self) -> str:
        return f"pid {self.pid}, state {self.state_dir}, API {self.url}"


def _lock_path(kind: str, name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"not a host name to claim: {name!r}")
    return RUN_DIR / kind / f"{name}.lock"


def _record_path(node_ns: str) -> Path:
    return _lock_path("hosts", node_ns).with_suffix(".json")


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    tmp.chmod(0o644)
    tmp.replace(path)


def _held(path: Path) -> bool:
    """Whether some live process holds the lock at ``path`` (we take and drop a shared lock to ask)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock if we got it
    return False


def running(node_ns: str) -> Running | None:
    """The live cloud that owns node namespace ``node_ns`` on this machine, if any."""
    if not _held(_lock_path("hosts", node_ns)):
        return None
    return _read_record(node_ns)  # None: held, but the record is not written yet (the owner is starting)


def _read_record(node_ns: str) -> Running | None:
    try:
        data = json.loads(_record_path(node_ns).read_text())
        return Running(state_dir=Path(data["state_dir"]), pid=int(data["pid"]), bind=str(data["bind"]),
                       url=str(data["url"]), host=str(data["host"]), node_ns=str(data["node_ns"]),
                       config=data.get("config"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def left_behind(node_ns: str) -> Running | None:
    """The record of a cloud that died without ``down`` (SIGKILL, OOM): nobody holds its claim, but
    its footprint is still in its state directory, so it may have left namespaces on the host."""
    if _held(_lock_path("hosts", node_ns)):
        return None
    record = _read_record(node_ns)
    return record if record is not None and (record.state_dir / FOOTPRINT).exists() else None


def claimed_hosts() -> list[str]:
    """The node namespaces that a live cloud or agent holds on this machine now."""
    return sorted(path.stem for path in (RUN_DIR / "hosts").glob("*.lock") if _held(path))


def owner_message(verb: str, owner: Running | None, name: str) -> str:
    who = f"the cloud running on this host ({owner.describe()})" if owner else "another neutrino process"
    return (f"neutrino {verb}: {name} belongs to {who}; one cloud runs per host. Use that cloud "
            "(`neutrino status`, `neutrino instance ...` find it without --state-dir) or stop it first with "
            "`neutrino down`")


@dataclass
class Claim:
    """This process's exclusive hold on a footprint's machine-wide names, until ``release``."""

    footprint: Footprint
    _files: list[IO[str]] = field(default_factory=list)

    def record(self, state: Path, bind: str, url: str, config: str | None) -> None:
        """Say where this cloud runs, for commands that are not told its state directory."""
        fp = self.footprint
        _write_json(_record_path(fp.node_ns), {"state_dir": str(state), "pid": os.getpid(), "bind": bind, "url": url,
                                               "host": fp.host, "node_ns": fp.node_ns, "config": config})

    def release(self) -> None:
        """Drop the record and the lock files (removed while still held: see ``_lock``)."""
        if self._files:
            _record_path(self.footprint.node_ns).unlink(missing_ok=True)
        for f in self._files:
            Path(f.name).unlink(missing_ok=True)
            f.close()
        self._files.clear()


def _lock(path: Path) -> IO[str] | None:
    """An exclusive lock on ``path``, or None when another process holds it.

    The holder removes the file when it lets go; whoever locked that removed file in between
    holds nothing, so it checks that the path still names the file it locked, and tries again.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    patience = time.monotonic() + 0.3  # a reader's brief shared lock (``_held``) is not an owner
    while True:
        f = open(path, "a")  # noqa: SIM115 - held open for the claim's life
        os.chmod(path, 0o644)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            if time.monotonic() > patience:
                return None
            time.sleep(0.02)
            continue
        try:
            if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                return f
        except FileNotFoundError:
            pass
        f.close()


def claim(fp: Footprint, verb: str) -> Claim:
    """Hold ``fp``'s node namespace and gateway link for this process, or raise ``HostBusy``."""
    held = Claim(fp)
    names = [("hosts", fp.node_ns, f"node namespace {fp.node_ns}")]
    if fp.gateway_link:
        names.append(("links", fp.gateway_link, f"link {fp.gateway_link}"))
    for kind, name, what in names:
        f = _lock(_lock_path(kind, name))
        if f is None:
            held.release()
            raise HostBusy(owner_message(verb, running(fp.node_ns), what))
        held._files.append(f)
    return held


def check_free(fp: Footprint, verb: str, state: Path) -> Running | None:
    """Before touching anything: the cloud already running for ``state`` (``None`` if none), or
    ``HostBusy`` when another cloud (another state directory) owns this footprint's names."""
    owner = running(fp.node_ns)
    if owner is not None and owner.state_dir != state:
        raise HostBusy(owner_message(verb, owner, f"node namespace {fp.node_ns}"))
    if owner is None:
        for kind, name in (("hosts", fp.node_ns), ("links", fp.gateway_link)):
            if name and _held(_lock_path(kind, name)):
                raise HostBusy(owner_message(verb, running(fp.node_ns), f"{kind[:-1]} {name}"))
    return owner


def locate(cfg: Config, explicit_state_dir: str | None) -> Running | None:
    """Point ``cfg`` at the running cloud of this host unless a ``--state-dir`` was given, or at
    the cloud that last ran here and died without ``down`` (``status`` then says it is not
    running there; ``down``/``cleanup`` remove what it left; ``up`` starts it again).

    Returns the running cloud when ``cfg`` now points at it.
    """
    owner = running(Footprint.of(cfg).node_ns)
    if explicit_state_dir:
        state = Path(explicit_state_dir).resolve()
        return owner if owner is not None and owner.state_dir == state else None
    found = owner or left_behind(Footprint.of(cfg).node_ns)  # a dead cloud: `down` and `cleanup` remove its remains
    if found is not None:
        cfg.DEFAULT.state_dir = str(found.state_dir)
        cfg.DEFAULT.bind = found.bind
    return owner
