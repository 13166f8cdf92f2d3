"""Network namespaces: create, remove, list, open netlink inside one, and per-namespace sysctls."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2 import netns as pr_netns

from neutrino.kernel import KernelError, NamespaceNotFound, NotOurs
from neutrino.kernel.names import is_our_namespace

NETNS_RUN_DIR = "/run/netns"
# The descriptor (an environment variable naming its number) of the namespace of the process that
# started this one elsewhere: the machine's, when /proc/1/ns/net cannot be read to say so.
MACHINE_NETNS_FD = "NEUTRINO_MACHINE_NETNS_FD"
NETLINK_ROUTE = 0
T = TypeVar("T")


def _path(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise NamespaceNotFound("open namespace", repr(name), detail="not a namespace name")
    return os.path.join(NETNS_RUN_DIR, name)


def _require_ours(op: str, name: str) -> None:
    if not is_our_namespace(name):
        raise NotOurs(op, name, detail="not a neutrino namespace name")


def namespace_exists(name: str) -> bool:
    return os.path.exists(_path(name))


def list_namespaces() -> list[str]:
    return sorted(pr_netns.listnetns())


# Opening netlink inside a namespace costs ~7-18 ms, a request on an open socket ~1 ms: a
# reconcile pass makes dozens, so idle sockets are kept. pyroute2 keeps a socket's event loop
# and transport per thread, so an IPRoute is only ever used by the thread that made it: the
# pool is per thread. An entry remembers the namespace's inode (a namespace made again under
# the same name is never reached through an old socket), and since an open socket pins its
# namespace in the kernel, remove_namespace closes every thread's sockets for it first;
# sockets of threads that have ended are closed as well.
_POOL_MAX = 64  # per thread
_local = threading.local()
_registry_lock = threading.Lock()
_registry: set[_Entry] = set()


class _Entry:
    def __init__(self, ns: str, ident: tuple[int, int], ipr: IPRoute) -> None:
        self.ns = ns
        self.ident = ident
        self.ipr = ipr
        self.thread = weakref.ref(threading.current_thread())
        self.closed = False


def _identity(ns: str) -> tuple[int, int]:
    try:
        st = os.stat(_path(ns))
    except FileNotFoundError:
        raise NamespaceNotFound("open namespace", ns, detail="no such namespace") from None
    return st.st_dev, st.st_ino


def _thread_pool() -> dict[str, _Entry]:
    pool: dict[str, _Entry] | None = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    return pool


def _close(entry: _Entry) -> None:
    with _registry_lock:
        if entry.closed:
            return
        entry.closed = True
        _registry.discard(entry)
    entry.ipr.close()


def _checkout(ns: str) -> _Entry:
    ident = _identity(ns)
    entry = _thread_pool().pop(ns, None)
    if entry is not None and (entry.closed or entry.ident != ident):
        _close(entry)
        entry = None
    if entry is None:
        entry = _Entry(ns, ident, IPRoute(fileno=_netlink_socket_in(ns).detach()))
        with _registry_lock:
            _registry.add(entry)
    return entry


def _checkin(entry: _Entry) -> None:
    if entry.closed:
        return
    pool = _thread_pool()
    pool[entry.ns] = entry
    while len(pool) > _POOL_MAX:
        _close(pool.pop(next(iter(pool))))
    with _registry_lock:
        orphans = [e for e in _registry if (t := e.thread()) is None or not t.is_alive()]
    for orphan in orphans:
        _close(orphan)


def close_sockets(ns: str) -> None:
    """Close every kept netlink socket into ``ns``, whichever thread kept it (they pin it)."""
    with _registry_lock:
        entries = [e for e in _registry if e.ns == ns]
    for entry in entries:
        _close(entry)


@contextmanager
def iproute(ns: str | None) -> Iterator[IPRoute]:
    """An IPRoute bound to namespace ``ns`` (None: this process's own); never creates one."""
    if ns is None:
        with IPRoute() as ipr:
            yield ipr
        return
    entry = _checkout(ns)
    healthy = True
    try:
        yield entry.ipr
    except OSError:  # the socket itself failed: do not hand it out again
        healthy = False
        raise
    finally:
        if healthy:
            _checkin(entry)
        else:
            _close(entry)


def _run_inside(ns: str, op: str, target: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a short-lived thread that alone enters ``ns``; its result or error comes back.

    setns(CLONE_NEWNET) moves only the calling thread, so the rest of the process never leaves
    its namespace. Never pyroute2's forking helpers (``IPRoute(netns=...)``, ``netns.create``):
    they fork the whole process, and the child runs this process's Python signal handlers if
    a signal arrives (a Ctrl-C could make it run our clean-up).
    """
    result: dict[str, Any] = {}

    def worker() -> None:
        try:
            pr_netns.setns(ns, flags=0)  # flags=0: open the existing namespace, no fork
            result["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=worker, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join()
    error = result.get("error")
    if isinstance(error, OSError):
        raise KernelError(op, target, error.errno or 0, str(error)) from error
    if isinstance(error, BaseException):
        raise error
    value: T = result["value"]
    return value


def socket_in(ns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket opened inside ``ns``: it belongs to that namespace whichever thread uses it."""
    if not namespace_exists(ns):
        raise NamespaceNotFound("open namespace", ns, detail="no such namespace")
    return _run_inside(ns, "open namespace", ns, lambda: socket.socket(family, kind, proto))


def connect_in(ns: str, host: str, port: int, timeout: float | None = None) -> socket.socket:
    """A TCP connection to ``host``:``port`` made from inside ``ns`` (IPv4), as a process there
    would make it: how the machine reaches a service that listens only inside a lab."""
    sock = socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def call_in(ns: str, fn: Callable[[], T]) -> T:
    """``fn()`` run by a thread inside ``ns``: the sockets it opens belong there."""
    if not namespace_exists(ns):
        raise NamespaceNotFound("open namespace", ns, detail="no such namespace")
    return _run_inside(ns, "open namespace", ns, fn)


def _netlink_socket_in(ns: str) -> socket.socket:
    return socket_in(ns, socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)


def ensure_namespace(name: str) -> bool:
    """Create ``name`` (with lo up) unless it exists; True if anything changed."""
    _require_ours("create namespace", name)
    changed = False
    if not namespace_exists(name):
        # iproute2 rather than pyroute2's create, which forks this whole process (see above)
        done = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=30)
        if done.returncode != 0 and not namespace_exists(name):
            raise KernelError("create namespace", name, 0, done.stderr.strip() or f"ip exited {done.returncode}")
        changed = True
    with iproute(name) as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        if not ipr.get_links(lo)[0]["flags"] & 1:  # IFF_UP
            ipr.link("set", index=lo, state="up")
            changed = True
    return changed


def remove_namespace(name: str) -> bool:
    """Remove ``name`` (its links go with it); False if it was already absent."""
    _require_ours("remove namespace", name)
    close_sockets(name)
    if not namespace_exists(name):
        return False
    try:
        pr_netns.remove(name)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise KernelError("remove namespace", name, exc.errno or 0, str(exc)) from exc
    return True


def is_root_namespace(name: str) -> bool:
    """True if ``name`` is the machine's namespace: init's; where init's cannot be read (in a
    container), the one :data:`MACHINE_NETNS_FD` refers to, else this process's own.

    Not simply "this process's own": a process started inside a lab host's namespace
    (``neutrino lab up --isolated``) manages that namespace as its node, whose name is ours.
    """
    target = os.stat(_path(name))
    st = _machine_namespace()
    return (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino)


def machine_namespace_fd() -> int:
    """An inheritable descriptor of this process's namespace, for a child started in another one
    (pass it with ``pass_fds`` and name it in the child's :data:`MACHINE_NETNS_FD`)."""
    return os.open("/proc/self/ns/net", os.O_RDONLY)


def _machine_namespace() -> os.stat_result:
    try:
        return os.stat("/proc/1/ns/net")
    except PermissionError:
        pass
    own = os.stat("/proc/self/ns/net")
    fd = os.environ.get(MACHINE_NETNS_FD, "")
    if fd.isdigit():
        try:
            given = os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            return own
        if given.st_dev == own.st_dev:  # a namespace (nsfs), not some file that took the number
            return given
    return own


def is_own_namespace(name: str) -> bool:
    """True if ``name`` is the namespace this process runs in."""
    target, st = os.stat(_path(name)), os.stat("/proc/self/ns/net")
    return (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino)


def _sysctl_path(key: str) -> str:
    rel = key.replace(".", "/") if "/" not in key else key.strip("/")
    if ".." in rel.split("/"):
        raise ValueError(f"bad sysctl key {key!r}")
    return "/proc/sys/" + rel


def _guard_sysctl(op: str, ns: str) -> None:
    _require_ours(op, ns)
    if not namespace_exists(ns):
        raise NamespaceNotFound(op, ns, detail="no such namespace")
    if is_root_namespace(ns):
        raise NotOurs(op, ns, detail="refusing to change the root namespace")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def set_sysctls(ns: str, values: dict[str, str | int]) -> bool:
    """Set several sysctls (``net.ipv4.ip_forward`` style) inside ``ns`` only, from one thread
    that alone enters it (/proc/sys/net shows the calling thread's namespace); True if any changed."""
    _guard_sysctl("set sysctl", ns)
    paths = {_sysctl_path(key): str(value) for key, value in values.items()}

    def write() -> bool:
        changed = False
        for path, value in paths.items():
            if _read(path) != value:
                with open(path, "w") as f:
                    f.write(f"{value}\n")
                changed = True
        return changed

    return _run_inside(ns, "set sysctl", f"{ns}:{','.join(values)}", write)


def set_sysctl(ns: str, key: str, value: str | int) -> bool:
    """Set ``key`` inside ``ns`` only; True if it changed."""
    return set_sysctls(ns, {key: value})


def get_sysctl(ns: str, key: str) -> str:
    _guard_sysctl("read sysctl", ns)
    path = _sysctl_path(key)
    return _run_inside(ns, "read sysctl", f"{ns}:{key}", lambda: _read(path))

