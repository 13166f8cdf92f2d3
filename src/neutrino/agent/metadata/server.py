"""The metadata server: answers instances' metadata requests that haproxy relays over a unix socket.

It trusts two things only, both set by our haproxy (``proxy``): the X-Neutron-Router-ID or
X-Neutron-Network-ID header and the last X-Forwarded-For address (haproxy deleted any the
instance sent, then appended the real one; the last one is taken anyway, so a forged
earlier entry can never win). ``lookup`` turns (router, network, address) into the
instance, as Neutron's metadata agent does with its port query; the answer is laid out
like Nova's metadata API (EC2 ``/latest/meta-data/...`` and ``/openstack/latest/meta_data.json``).

Standard library only: a threading ``UnixStreamServer`` in a daemon thread. A unix socket
needs no address in the agent's namespace (root's 127.0.0.1:9697 is taken on these hosts).

The socket is open to haproxy's group (nobody/nogroup once it dropped root), which dnsmasq
and other daemons of the machine share, and whoever connects writes the headers above. So
each connection is checked by its peer's credentials (:func:`trusted_peer`): root (the agent
itself), or a haproxy process that root started from a root-owned config whose pidfile names
that very process. A process that became nobody cannot ptrace it (a credential change leaves
it non-dumpable) nor write a config or pidfile where root keeps them.
"""

from __future__ import annotations

import grp
import hashlib
import ipaddress
import json
import logging
import os
import socket
import socketserver
import stat
import struct
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from neutrino import tokens
from neutrino.agent.metadata.proxy import FORWARDED_FOR, NETWORK_HEADER, PIDFILE, ROUTER_HEADER
from neutrino.kernel import procs

LOG = logging.getLogger(__name__)

# (router_id, network_id, instance_ip) -> {instance_id, hostname, name, local_ipv4, project_id} or None
Lookup = Callable[[str | None, str | None, str], Mapping[str, Any] | None]

EC2_VERSIONS = ("2009-04-04", "latest")
OPENSTACK_VERSIONS = ("2012-08-10", "latest")
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"

# A directory is a dict of name -> node; a file is (content type, body).
Node = dict[str, Any] | tuple[str, bytes]


def _hostname(info: Mapping[str, Any], address: str | None) -> str | None:
    """The instance's host name if it is a valid DNS name, else Neutron's ``host-10-0-0-5`` for its address.

    The server may hand us a port's free-text name: cloud-init writes this answer to
    /etc/hostname and /etc/hosts, so it must be one DNS name, never two lines.
    """
    return tokens.fqdn(info.get("hostname")) or (f"host-{address.replace('.', '-')}" if address else None)


def _tree(info: Mapping[str, Any]) -> dict[str, Any]:
    """The instance's whole metadata tree, as Nova lays it out (the subset we know).

    Each EC2 text answer is one token (a DNS name, an address, an id without blanks or control
    characters); a value that is not one is left out of the tree (404), never sent as several
    lines. The JSON document carries the same checked values (and the free-text name, JSON-escaped).
    """
    address = tokens.ipv4(info.get("local_ipv4"))
    hostname = _hostname(info, address)
    instance_id = tokens.printable(info.get("instance_id"), forbidden=" ") or None
    project_id = tokens.printable(info.get("project_id"), forbidden=" ") or None
    values = {"hostname": hostname, "instance-id": instance_id, "local-hostname": hostname, "local-ipv4": address}
    meta_data = {key: (TEXT, value.encode()) for key, value in values.items() if value is not None}
    name = info.get("name")
    meta_json = {"uuid": instance_id, "name": name if isinstance(name, str) else None, "hostname": hostname,
                 "project_id": project_id}
    ec2 = {"meta-data": meta_data}
    openstack = {"meta_data.json": (JSON, json.dumps(meta_json, sort_keys=True).encode())}
    return {**dict.fromkeys(EC2_VERSIONS, ec2),
            "openstack": dict.fromkeys(OPENSTACK_VERSIONS, openstack)}


def _listing(path: list[str], directory: dict[str, Any]) -> tuple[str, bytes]:
    # Nova lists versions bare ("latest") and sub-directories below them with a slash ("meta-data/");
    # its root lists the EC2 versions only, "openstack" is found by name.
    versions = len(path) == 0 or path == ["openstack"]
    names = [name + ("/" if isinstance(node, dict) and not versions else "") for name, node in directory.items()
             if path or name != "openstack"]
    return TEXT, "\n".join(names).encode()


def resolve(path: str, info: Mapping[str, Any]) -> tuple[str, bytes] | None:
    """(content type, body) of ``path`` for the instance ``info``; None if there is no such path."""
    parts = [unquote(p) for p in urlsplit(path).path.split("/") if p]
    node: Node = _tree(info)
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return _listing(parts, node) if isinstance(node, dict) else node


def caller_address(forwarded_for: list[str]) -> str | None:
    """The last X-Forwarded-For address (the one our haproxy appended), normalised; None if absent or bad."""
    addresses = [a.strip() for value in forwarded_for for a in value.split(",") if a.strip()]
    if not addresses:
        return None
    try:
        ip = ipaddress.ip_address(addresses[-1])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _root_owned(path: str) -> bool:
    """A file or directory only root can have written: root's, no group/other write, no symlink."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return st.st_uid == 0 and not stat.S_ISLNK(st.st_mode) and not st.st_mode & 0o022


def trusted_peer(conn: socket.socket) -> bool:
    """Whether the process on the other end of ``conn`` may speak for instances (see the module doc).

    Any uid may run the haproxy binary; what root alone can do is write the config it is started
    from and the pidfile haproxy writes before it drops root. The process must be that haproxy.
    """
    pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                         struct.calcsize("3i")))
    if uid in (0, os.geteuid()):
        return True
    argv = procs.cmdline(pid)
    try:
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return False
    if exe != "haproxy" or argv is None or len(argv) != 3 or argv[1] != "-f" or not os.path.isabs(argv[2]):
        return False
    config = argv[2]
    pidfile = os.path.join(os.path.dirname(config), PIDFILE)
    return (all(_root_owned(p) for p in (config, os.path.dirname(config), pidfile))
            and procs.read_pid(pidfile) == pid)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True  # a stuck client must not keep the agent from exiting

    def __init__(self, path: str, lookup: Lookup, mode: int, group: str | None) -> None:
        self.lookup = lookup
        self.path = path
        self.mode = mode
        self.group = group
        super().__init__(path, _Handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if trusted_peer(request):
            return True
        LOG.warning("metadata socket %s: refused a connection from a process that is not our haproxy", self.path)
        return False

    def server_bind(self) -> None:
        super().server_bind()
        # before listen(): nobody connects under the umask's mode or the wrong group
        if self.group is not None and os.geteuid() == 0:
            os.chown(self.path, -1, grp.getgrnam(self.group).gr_gid)
        os.chmod(self.path, self.mode)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "neutrino-metadata"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _not_allowed(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, TEXT, _error_body(HTTPStatus.METHOD_NOT_ALLOWED), body=True,
                   extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _serve(self, body: bool) -> None:
        router_id = (self.headers.get(ROUTER_HEADER) or "").strip() or None
        network_id = (self.headers.get(NETWORK_HEADER) or "").strip() or None
        address = caller_address(self.headers.get_all(FORWARDED_FOR) or [])
        if (router_id is None and network_id is None) or address is None:
            # Not relayed by our haproxy: a configuration error, not an unknown instance.
            self._error(HTTPStatus.BAD_REQUEST, body)
            return
        try:
            info = self.server.lookup(router_id, network_id, address)
        except Exception:
            LOG.exception("metadata lookup failed for %s via router %s network %s", address, router_id, network_id)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, body)
            return
        found = resolve(self.path, info) if info is not None else None
        if found is None:
            self._error(HTTPStatus.NOT_FOUND, body)
            return
        self._send(HTTPStatus.OK, *found, body=body)

    def _error(self, status: HTTPStatus, body: bool) -> None:
        self._send(status, TEXT, _error_body(status), body=body)

    def _send(self, status: HTTPStatus, content_type: str, payload: bytes, body: bool,
              extra: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def address_string(self) -> str:
        return "unix"  # the peer of a unix socket has no address; http.server would index into ''

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("metadata %s", format % args)


_EXPLANATIONS = {
    HTTPStatus.BAD_REQUEST: "The request did not come through the metadata proxy: it lacks "
                            f"{ROUTER_HEADER} or {NETWORK_HEADER}, or {FORWARDED_FOR}.",
    HTTPStatus.NOT_FOUND: "The resource could not be found.",
}


def _error_body(status: HTTPStatus) -> bytes:
    """Plain text like Neutron's webob errors: the status line first, then why."""
    return f"{status.value} {status.phrase}\n\n{_EXPLANATIONS.get(status, status.description)}\n".encode()


def socket_path(state_dir: str | os.PathLike[str]) -> str:
    """Where the agent with ``state_dir`` serves metadata: ``/run/neutrino/metadata/<hash>.sock``.

    haproxy connects after it dropped root, so every directory above the socket must be
    searchable by anyone, which a state dir (``/root/state``, a tmp dir) need not be; the hash
    of the state dir keeps two agents on one machine apart and the path well under 108 bytes.
    """
    key = hashlib.sha256(os.path.abspath(state_dir).encode()).hexdigest()[:16]
    return str(procs.RUN_DIR / "metadata" / f"{key}.sock")


class MetadataServer:
    """The HTTP server on ``socket_path``; ``mode`` and ``group`` let a haproxy that dropped root connect."""

    def __init__(self, socket_path: str, lookup: Lookup, mode: int = 0o660, group: str | None = None) -> None:
        self.socket_path = socket_path
        self.lookup = lookup
        self.mode = mode
        self.group = group if group is not None else procs.daemon_group()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._inode: int | None = None

    def start(self) -> None:
        """Listen and serve in a daemon thread; a no-op if already serving."""
        if self._server is not None:
            return
        self._clear_stale_socket()
        parent = os.path.dirname(self.socket_path) or "."
        if os.path.dirname(parent) == str(procs.RUN_DIR):
            procs.daemon_dir(os.path.basename(parent))  # searchable all the way down
        else:
            os.makedirs(parent, exist_ok=True)
        self._server = _Server(self.socket_path, self.lookup, self.mode, self.group)
        self._inode = os.stat(self.socket_path).st_ino
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"metadata-server {self.socket_path}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and remove the socket file (if it is still ours); a no-op if not serving."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            if os.stat(self.socket_path).st_ino == self._inode:
                os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        self._server = self._thread = self._inode = None

    def _clear_stale_socket(self) -> None:
        """Remove a socket left by a dead server; refuse a live one or a file that is not a socket."""
        try:
            mode = os.stat(self.socket_path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise FileExistsError(f"{self.socket_path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(self.socket_path)
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(self.socket_path)
                return
        raise FileExistsError(f"another server is listening on {self.socket_path}")

    def __enter__(self) -> MetadataServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
