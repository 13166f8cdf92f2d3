"""The metadata proxy: one haproxy inside a router (or DHCP) namespace, in front of the agent's unix socket.

Instances reach it at 169.254.169.254:80 (the router's nft table redirects that to
``PROXY_PORT``). haproxy drops whatever X-Neutron-*-ID and X-Forwarded-For headers the
instance sent, then adds the real source address (``option forwardfor``) and the router or
network ID it serves, so the server behind the socket can trust both: that pair names
exactly one port. Same recipe as Neutron's ``neutron-metadata-proxy`` haproxy config.

``MetadataProxy.apply`` is idempotent, like ``DhcpNetwork.apply``: the config is written
atomically and haproxy is started if absent, restarted if its config changed, otherwise
left alone. The process is owned through its pidfile and checked by its command line (which
carries the config path), so nothing else is ever signalled.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from neutrino.agent.metadata import METADATA_IP as METADATA_IP  # re-exported: part of this module's API
from neutrino.agent.metadata import PROXY_PORT
from neutrino.files import write_atomic
from neutrino.kernel import procs

ROUTER_HEADER = "X-Neutron-Router-ID"
NETWORK_HEADER = "X-Neutron-Network-ID"
FORWARDED_FOR = "X-Forwarded-For"
DEFAULT_BIND = f"0.0.0.0:{PROXY_PORT}"
HAPROXY = "/usr/sbin/haproxy"
PIDFILE = "haproxy.pid"  # next to the config; the metadata server checks its peer against it

# Every value below lands in a config file: refuse anything that could end a token or a line.
# Full matches only: ``$`` would let a trailing newline through.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_PATH = re.compile(r"/[^\s\"'#\\]+")
_BIND = re.compile(r"[^\s\"'#\\]+:[0-9]{1,5}")
_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")  # a user or group name


def _resource(router_id: str | None, network_id: str | None) -> tuple[str, str]:
    """(header, id) the proxy stamps on requests: exactly one of router_id / network_id."""
    if (router_id is None) == (network_id is None):
        raise ValueError("give exactly one of router_id and network_id")
    header, ident = (ROUTER_HEADER, router_id) if router_id is not None else (NETWORK_HEADER, network_id)
    assert ident is not None
    if not _ID.fullmatch(ident):
        raise ValueError(f"unsafe resource id {ident!r}")
    return header, ident


def render_config(*, socket_path: str, pidfile: str, router_id: str | None = None, network_id: str | None = None,
                  bind: str = DEFAULT_BIND, user: str = procs.DAEMON_USER, group: str | None = None) -> str:
    """haproxy's config for one router or network (pure: same input, same text).

    ``user``/``group``: who haproxy becomes once it has bound its port and written its pidfile
    (``global`` ``user``/``group``, as Neutron's metadata proxy config); it then still connects
    to ``socket_path``, so that socket must be open to ``group``.
    """
    header, ident = _resource(router_id, network_id)
    group = group if group is not None else procs.daemon_group()
    for what, value, pattern in (("socket path", socket_path, _PATH), ("pidfile", pidfile, _PATH),
                                 ("bind address", bind, _BIND), ("user", user, _NAME), ("group", group, _NAME)):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"unsafe {what} {value!r}")
    return "\n".join([
        "global",
        "    daemon",
        f"    pidfile {pidfile}",
        f"    user {user}",
        f"    group {group}",
        "    maxconn 1024",
        "",
        "defaults",
        "    mode http",
        "    option http-server-close",  # one request per backend connection: the server speaks HTTP/1.0
        "    retries 3",
        "    timeout http-request 30s",
        "    timeout connect 30s",
        "    timeout client 32s",
        "    timeout server 32s",
        "    timeout http-keep-alive 30s",
        "",
        "listen metadata",
        f"    bind {bind}",
        # Whatever the instance claims about itself goes; forwardfor then appends its real address.
        f"    http-request del-header {ROUTER_HEADER}",
        f"    http-request del-header {NETWORK_HEADER}",
        f"    http-request del-header {FORWARDED_FOR}",
        f"    http-request set-header {header} {ident}",
        "    option forwardfor",
        f"    server metadata unix@{socket_path}",
        "",
    ])


class MetadataProxy:
    """haproxy for ``router_id`` (or ``network_id``) inside ``namespace``, relaying to ``socket_path``."""

    def __init__(self, state_dir: Path, namespace: str, socket_path: str, router_id: str | None = None,
                 network_id: str | None = None, bind: str = DEFAULT_BIND, haproxy: str = HAPROXY) -> None:
        _, ident = _resource(router_id, network_id)
        self.namespace = namespace
        self.socket_path = socket_path
        self.router_id = router_id
        self.network_id = network_id
        self.bind = bind
        self.haproxy = haproxy
        self.directory = Path(state_dir) / ident
        self.config_path = self.directory / "haproxy.cfg"
        self.pidfile = self.directory / PIDFILE

    @property
    def argv(self) -> list[str]:
        """haproxy's command line; it carries the config path, which is how we recognise our process."""
        return [self.haproxy, "-f", str(self.config_path)]

    def render(self) -> str:
        return render_config(socket_path=self.socket_path, pidfile=str(self.pidfile), router_id=self.router_id,
                             network_id=self.network_id, bind=self.bind)

    def pid(self) -> int | None:
        """haproxy's PID if it runs for this router/network (pidfile checked against /proc/PID/cmdline)."""
        return procs.owned_pid(str(self.pidfile), str(self.config_path))

    def apply(self) -> str:
        """Make it so; returns what happened to haproxy: started, restarted or unchanged."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o755)  # root's alone to write: the metadata server trusts what it holds
        changed = write_atomic(self.config_path, self.render())
        pid = self.pid()
        if pid is None:
            self._start()
            return "started"
        if changed or procs.cmdline(pid) != self.argv:
            # haproxy has no in-place reload outside master-worker mode; a restart takes milliseconds
            # and instances (cloud-init) retry metadata requests anyway.
            procs.stop(str(self.pidfile), str(self.config_path))
            self._start()
            return "restarted"
        return "unchanged"

    def _start(self) -> None:
        procs.start(self.namespace, self.argv, str(self.pidfile), str(self.config_path))

    def teardown(self) -> bool:
        """Stop our haproxy and remove its files; False if it was not running."""
        stopped = procs.stop(str(self.pidfile), str(self.config_path))
        shutil.rmtree(self.directory, ignore_errors=True)
        return stopped
