"""The kernel layer: the only code that touches the OS, and the errors it raises.

    KernelError                 a netlink/syscall failure we did not expect (carries errno)
    ├── NotOurs                 refused: the name lacks a project prefix, or it is the root namespace
    ├── NamespaceNotFound       the network namespace does not exist
    ├── LinkNotFound            the link does not exist in that namespace
    └── LinkConflict            a link of that name exists but is something else

Every function takes primitives (names, strings, ints), is idempotent, and mutators return
whether they changed anything. ``ns=None`` means the namespace this process runs in.
"""

from __future__ import annotations

import errno as errno_mod


class KernelError(Exception):
    """A kernel operation failed; ``op`` says what we tried, ``errno`` why (0 if not a syscall)."""

    def __init__(self, op: str, target: str, errno: int = 0, detail: str = "") -> None:
        self.op = op
        self.target = target
        self.errno = errno
        reason = detail or (errno_mod.errorcode.get(errno, str(errno)) if errno else "failed")
        super().__init__(f"{op} {target}: {reason}")


class TimedOut(KernelError):
    """A daemon or tool did not answer in time (busy or hung): nothing was refused."""


class NotOurs(KernelError):
    """Refused: neutrino only creates or removes names with its own prefixes."""


class NamespaceNotFound(KernelError):
    """The network namespace does not exist."""


class LinkNotFound(KernelError):
    """The link does not exist in that namespace."""


class LinkConflict(KernelError):
    """A link with that name exists but has another kind, peer or configuration we cannot change."""


def translate(op: str, target: str, code: int) -> KernelError:
    """Map an errno from netlink or a syscall to our exception."""
    if code in (errno_mod.ENODEV, errno_mod.ENOENT):
        return LinkNotFound(op, target, code)
    if code == errno_mod.EEXIST:
        return LinkConflict(op, target, code)
    return KernelError(op, target, code)
