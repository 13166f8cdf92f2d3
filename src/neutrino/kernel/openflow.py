"""The few OpenFlow messages neutrino sends itself: read and set the ports' config of one bridge.

``ovs-ofctl mod-port`` changes one port per process (fork, exec, handshake: ~10-20 ms), so a
host whose guarded ports all need ``no-flood`` again (a restarted ovs-vswitchd, an agent's
full resync of a thousand ports) spent seconds on it. Here one connection to the bridge's
management socket (``<bridge>.mgmt``, the one ovs-ofctl uses) carries a FEATURES_REQUEST, one
PORT_MOD per port and a BARRIER_REQUEST, and the barrier's reply says every change before it
was applied (or an ERROR names the one that was not).

OpenFlow 1.0 only, as ``ovs-ofctl -O OpenFlow10 mod-port`` speaks it: NO_FLOOD is a port config
bit there (1.3 dropped it, though OVS still keeps it), and its FEATURES_REPLY lists each port's
hardware address, which a PORT_MOD must repeat. The bridge must allow OpenFlow10 (neutrino's do).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from neutrino.kernel import KernelError, TimedOut

VERSION = 0x01
HELLO, ERROR, ECHO_REQUEST, ECHO_REPLY = 0, 1, 2, 3
FEATURES_REQUEST, FEATURES_REPLY, PORT_MOD, BARRIER_REQUEST, BARRIER_REPLY = 5, 6, 15, 18, 19
NO_FLOOD = 1 << 4  # OFPPC_NO_FLOOD
MAX_PORT = 0xFF00  # OFPP_MAX: numbers above are reserved (LOCAL, CONTROLLER, ...)
_HEADER = struct.Struct("!BBHI")
_FEATURES = struct.Struct("!QIB3xII")
_PHY_PORT = struct.Struct("!H6s16sIIIIII")
_PORT_MOD = struct.Struct("!H6sIII4x")
_ERROR = struct.Struct("!HH")


@dataclass(frozen=True)
class PortConfig:
    ofport: int
    name: str
    hw_addr: bytes
    config: int

    @property
    def no_flood(self) -> bool:
        return bool(self.config & NO_FLOOD)


class Connection:
    """One OpenFlow 1.0 session on a bridge's management socket (a unix socket path)."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._buf = b""
        self._xid = 0
        try:
            self._sock.connect(path)
            self._send(HELLO)
            self._expect(HELLO, None)
        except TimeoutError:
            self.close()
            raise TimedOut("openflow", path, detail="no answer from ovs-vswitchd") from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, kind: int, body: bytes = b"") -> int:
        self._xid += 1
        self._sock.sendall(_HEADER.pack(VERSION, kind, _HEADER.size + len(body), self._xid) + body)
        return self._xid

    def _recv(self) -> tuple[int, int, bytes]:
        """The next message: (type, xid, body)."""
        while True:
            if len(self._buf) >= _HEADER.size:
                version, kind, length, xid = _HEADER.unpack_from(self._buf)
                if length < _HEADER.size:
                    raise KernelError("openflow", self.path, detail=f"bad message length {length}")
                if len(self._buf) >= length:
                    body, self._buf = self._buf[_HEADER.size:length], self._buf[length:]
                    if kind == ECHO_REQUEST:  # keep-alive: answer it and read on
                        self._sock.sendall(_HEADER.pack(VERSION, ECHO_REPLY, length, xid) + body)
                        continue
                    return kind, xid, body
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise TimedOut("openflow", self.path, detail="no answer from ovs-vswitchd") from None
            if not chunk:
                raise KernelError("openflow", self.path, detail="ovs-vswitchd closed the connection "
                                                                "(does the bridge allow OpenFlow10?)")
            self._buf += chunk

    def _expect(self, kind: int, xid: int | None) -> bytes:
        """The body of the reply ``kind`` (to ``xid``); an ERROR to it raises. Other messages
        (port status changes, replies to nothing we wait for) are skipped."""
        while True:
            got, got_xid, body = self._recv()
            if got == ERROR and (xid is None or got_xid == xid):
                raise KernelError("openflow", self.path, detail=_error(body))
            if got == kind and (xid is None or got_xid == xid):
                return body

    def ports(self) -> dict[int, PortConfig]:
        """The bridge's ports (not its LOCAL port) by OpenFlow port number."""
        body = self._expect(FEATURES_REPLY, self._send(FEATURES_REQUEST))
        out = {}
        for offset in range(_FEATURES.size, len(body) - _PHY_PORT.size + 1, _PHY_PORT.size):
            port_no, hw_addr, name, config, *_ = _PHY_PORT.unpack_from(body, offset)
            if port_no < MAX_PORT:
                out[port_no] = PortConfig(port_no, name.rstrip(b"\0").decode(errors="replace"), hw_addr, config)
        return out

    def set_config(self, ports: Mapping[int, PortConfig], changes: Mapping[int, tuple[int, int]]) -> None:
        """For each ofport, set the config bits in ``mask`` to ``value`` ((value, mask) pairs);
        returns once ovs-vswitchd has applied all of them (a barrier), or raises with the first
        it refused. Every ofport must be in ``ports`` (its hardware address goes in the message)."""
        sent: dict[int, int] = {}
        for ofport, (value, mask) in sorted(changes.items()):
            port = ports.get(ofport)
            if port is None:
                raise KernelError("openflow", self.path, detail=f"no port {ofport} on the bridge")
            sent[self._send(PORT_MOD, _PORT_MOD.pack(ofport, port.hw_addr, value & mask, mask, 0))] = ofport
        barrier = self._send(BARRIER_REQUEST)
        while True:
            kind, xid, body = self._recv()
            if kind == ERROR and xid in sent:
                raise KernelError("openflow", self.path, detail=f"port {sent[xid]}: {_error(body)}")
            if kind == ERROR and xid == barrier:
                raise KernelError("openflow", self.path, detail=_error(body))
            if kind == BARRIER_REPLY and xid == barrier:
                return


def _error(body: bytes) -> str:
    if len(body) < _ERROR.size:
        return "error without type"
    kind, code = _ERROR.unpack_from(body)
    return f"OpenFlow error type {kind} code {code}"


def ports(path: str, timeout: float) -> dict[int, PortConfig]:
    """The ports of the bridge behind management socket ``path``, with their config."""
    with Connection(path, timeout) as conn:
        return conn.ports()


def set_no_flood(path: str, changes: Mapping[int, bool], timeout: float) -> None:
    """``{ofport: flood}``: NORMAL floods to the port (True) or not (False); one session for all."""
    if not changes:
        return
    with Connection(path, timeout) as conn:
        conn.set_config(conn.ports(), {p: (0 if flood else NO_FLOOD, NO_FLOOD) for p, flood in changes.items()})
