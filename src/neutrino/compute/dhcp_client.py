"""An instance's DHCP client: busybox udhcpc in the foreground, our own hook script, the lease returned.

``acquire`` runs ``udhcpc -f -q -n`` inside the instance namespace and waits for it: the
client quits right after the lease (no daemon is left; the lease lasts 24 h and the instance
goes away with its namespace) or gives up after ``timeout``. busybox has no default hook, so
``SCRIPT`` is written into the state directory. It applies the lease with ip(8) (address,
MTU from option 26, classless routes from option 121 or else the router from option 3),
writes the nameservers into ``/etc/netns/<ns>/resolv.conf`` and the raw lease as JSON, which
``parse_lease`` turns into a ``Lease``.

The hook writes the per-namespace path explicitly instead of ``/etc/resolv.conf``: inside
``ip netns exec`` the two are the same file (a bind mount), but if the per-namespace file
were ever missing, ``/etc/resolv.conf`` would be the host's.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neutrino import compute
from neutrino.files import write_atomic
from neutrino.kernel import NamespaceNotFound, procs
from neutrino.kernel.netns import namespace_exists

RETRY_SECONDS = 1  # udhcpc -T: integral seconds; a ready server answers the first DISCOVER in milliseconds
GRACE_SECONDS = 3.0  # on top of ``timeout`` before we kill a client that did not give up by itself
DEFAULT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")

SCRIPT = r"""#!/bin/sh
# neutrino's busybox udhcpc hook: apply the lease with ip(8), write the instance's resolv.conf
# ($NEUTRINO_RESOLV_CONF = /etc/netns/<ns>/resolv.conf, never /etc/resolv.conf: should the
# per-namespace file be missing, that one would be the host's) and the lease as JSON
# ($NEUTRINO_LEASE_FILE). The ip commands go through one `ip -force -batch` (one exec instead
# of one per command: a lease takes ~0.1 s, each exec ~5 ms); what fails is reported in "failed".
set -f  # no pathname expansion of the server's values ($dns, $staticroutes are split on purpose)
event="$1"
failed=""
batch=""
add() { batch="$batch$*
"; }
apply() {
  [ -n "$batch" ] || return 0
  out=$(ip -4 -force -batch - 2>&1 <<EOF
$batch
EOF
) || failed="$failed${failed:+; }$(printf '%s' "$out" | tr '\n' ' ')"
  batch=""
}
is_domain() {  # labels of letters, digits and inner dashes, dot-separated, at most 253 characters
  case "$1" in ''|.*|*.|*..*|-*|*-|*.-*|*-.*|*[!A-Za-z0-9.-]*) return 1 ;; esac
  [ ${#1} -le 253 ]
}
is_ipv4() {  # four dot-separated decimal octets, no leading zeros (a resolver may read those as octal)
  case "$1" in *[!0-9.]*|.*|*.|*..*) return 1 ;; *.*.*.*.*) return 1 ;; *.*.*.*) ;; *) return 1 ;; esac
  saved_ifs=$IFS; IFS=.; set -- $1; IFS=$saved_ifs
  for octet; do
    case "$octet" in 0?*) return 1 ;; esac
    [ ${#octet} -le 3 ] && [ "$octet" -le 255 ] || return 1
  done
}
field() {  # "name":"value", escaping \ and " and dropping control characters (forks only if needed)
  case "$2" in
    *[\\\"]*|*[[:cntrl:]]*)
      printf '"%s":"' "$1"
      printf '%s' "$2" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
      printf '"' ;;
    *) printf '"%s":"%s"' "$1" "$2" ;;
  esac
}

case "$event" in
  deconfig)
    add addr flush dev "$interface"
    add link set dev "$interface" up
    apply ;;
  bound|renew)
    [ "$event" = bound ] && add addr flush dev "$interface"
    add addr replace "$ip/${mask:-32}" dev "$interface"
    [ -n "$mtu" ] && add link set dev "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
      # RFC 3442: with classless routes the router option is ignored (Neutron sends 0.0.0.0/0 among them)
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        if [ "$2" = 0.0.0.0 ]; then add route replace "$1" dev "$interface"
        else add route replace "$1" via "$2" dev "$interface"; fi
        shift 2
      done
    else
      for r in $router; do add route replace default via "$r" dev "$interface"; break; done
    fi
    apply
    if [ -n "$NEUTRINO_RESOLV_CONF" ]; then
      # in place (no rename): processes already running in the instance see the bind-mounted file change;
      # a DHCP server's values are written only when each is one domain name / one dotted quad
      { is_domain "$domain" && echo "search $domain"
        for d in $dns; do is_ipv4 "$d" && echo "nameserver $d"; done; } > "$NEUTRINO_RESOLV_CONF" \
        || failed="$failed${failed:+; }cannot write $NEUTRINO_RESOLV_CONF"
    fi
    if [ -n "$NEUTRINO_LEASE_FILE" ]; then
      { printf '{'
        for key in event interface ip mask subnet router mtu dns staticroutes hostname domain lease serverid; do
          eval "value=\${$key}"
          field "$key" "$value"; printf ','
        done
        field failed "$failed"; printf '}\n'; } > "$NEUTRINO_LEASE_FILE.tmp" \
        && mv -f "$NEUTRINO_LEASE_FILE.tmp" "$NEUTRINO_LEASE_FILE"
    fi ;;
esac
exit 0
"""


class NoLease(Exception):
    """No DHCP lease arrived in time (or the client could not run)."""


class LeaseNotApplied(Exception):
    """A lease arrived but the hook could not apply all of it (``failed`` lists the commands)."""


@dataclass(frozen=True)
class Lease:
    ip: str
    prefixlen: int
    router: str | None
    mtu: int | None
    dns: tuple[str, ...]
    routes: tuple[tuple[str, str], ...]  # (destination CIDR, nexthop) from option 121, in order
    hostname: str | None
    domain: str | None

    @property
    def cidr(self) -> str:
        return f"{self.ip}/{self.prefixlen}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; routes in the API's host_routes shape."""
        return {"ip": self.ip, "prefixlen": self.prefixlen, "router": self.router, "mtu": self.mtu,
                "dns": list(self.dns), "routes": [{"destination": d, "nexthop": n} for d, n in self.routes],
                "hostname": self.hostname, "domain": self.domain}


def _prefixlen(mask: str, subnet: str) -> int:
    if mask.isdigit():
        return int(mask)
    if subnet:
        return ipaddress.IPv4Network(f"0.0.0.0/{subnet}").prefixlen
    return 32


def parse_lease(raw: Mapping[str, Any]) -> Lease:
    """The hook's JSON (udhcpc's variables as strings) as a ``Lease``."""

    def text(key: str) -> str:
        return str(raw.get(key) or "").strip()

    if not text("ip"):
        raise ValueError("lease without an address")
    hops = text("staticroutes").split()
    mtu = text("mtu")
    return Lease(ip=text("ip"), prefixlen=_prefixlen(text("mask"), text("subnet")),
                 router=next(iter(text("router").split()), None), mtu=int(mtu) if mtu.isdigit() else None,
                 dns=tuple(text("dns").split()), routes=tuple(zip(hops[0::2], hops[1::2], strict=False)),
                 hostname=text("hostname") or None, domain=text("domain") or None)


def read_lease(path: Path) -> Lease:
    """The lease the hook wrote to ``path``; ``LeaseNotApplied`` if some of it could not be applied."""
    raw = json.loads(path.read_text())
    if raw.get("failed"):
        raise LeaseNotApplied(f"lease {raw.get('ip')} for {raw.get('interface')} not fully applied: {raw['failed']}")
    return parse_lease(raw)


def retry_timing(timeout: float) -> tuple[int, int]:
    """(tries, seconds per try) for udhcpc: short retries, enough of them to cover ``timeout``."""
    return max(1, math.ceil(timeout / RETRY_SECONDS)), RETRY_SECONDS


def udhcpc_argv(iface: str, script: Path, pidfile: Path, timeout: float) -> list[str]:
    """busybox udhcpc in the foreground (-f), quitting after the lease (-q) or when none comes (-n)."""
    tries, seconds = retry_timing(timeout)
    return ["busybox", "udhcpc", "-f", "-q", "-n", "-i", iface, "-s", str(script), "-p", str(pidfile),
            "-t", str(tries), "-T", str(seconds), "-O", "mtu", "-O", "staticroutes"]


def pidfile_path(instance_ns: str, iface: str = "eth0") -> Path:
    return compute.run_dir(instance_ns) / f"udhcpc-{_checked_iface(iface)}.pid"


def _checked_iface(iface: str) -> str:
    if not _IFNAME.match(iface):
        raise ValueError(f"not an interface name: {iface!r}")
    return iface


def write_script(state_dir: Path) -> Path:
    """``SCRIPT`` as an executable file in ``state_dir`` (replaced atomically when it differs)."""
    path = Path(state_dir) / "udhcpc.script"
    write_atomic(path, SCRIPT, mode=0o755)
    return path


def _hint(instance_ns: str, iface: str, timeout: float, detail: str) -> str:
    return (f"no DHCP lease for {instance_ns}/{iface} within {timeout:g} s ({detail}). Check that the DHCP agent "
            f"serves the network (dnsmasq running in its qdhcp namespace, the port's MAC in its hosts file), "
            f"that the subnet has enable_dhcp, and that the instance's tap is up on the network's bridge")


def acquire(instance_ns: str, state_dir: Path, iface: str = "eth0", timeout: float = 10.0) -> Lease:
    """Get a lease on ``iface`` inside ``instance_ns``, apply it, and return it; ``NoLease`` if none comes."""
    ns = compute.checked_ns(instance_ns)
    if not namespace_exists(ns):
        raise NamespaceNotFound("acquire lease", ns, detail="no such namespace")
    state_dir = Path(state_dir)
    script = write_script(state_dir)
    lease_file = state_dir / f"{ns}-{_checked_iface(iface)}.lease.json"
    lease_file.unlink(missing_ok=True)
    resolv = compute.resolv_conf(ns)
    compute.ensure_resolv_conf(ns)
    pidfile = pidfile_path(ns, iface)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    stop(ns, iface)  # a client left by an interrupted caller would fight this one
    argv = ["ip", "netns", "exec", ns, *udhcpc_argv(iface, script, pidfile, timeout)]
    env = {"PATH": os.environ.get("PATH") or DEFAULT_PATH, "NEUTRINO_LEASE_FILE": str(lease_file),
           "NEUTRINO_RESOLV_CONF": str(resolv)}
    try:
        # `ip netns exec` execs udhcpc, so a timeout kills exactly the client we started
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + GRACE_SECONDS,
                              stdin=subprocess.DEVNULL, env=env)
    except subprocess.TimeoutExpired as exc:
        raise NoLease(_hint(ns, iface, timeout, "the client did not give up by itself and was killed")) from exc
    except OSError as exc:
        raise NoLease(_hint(ns, iface, timeout, f"cannot run udhcpc: {exc}")) from exc
    finally:
        stop(ns, iface)  # only removes a stale pidfile once the client has exited
        _remove_if_empty(pidfile.parent)  # the pidfile matters only while a client runs
    if done.returncode != 0 or not lease_file.is_file():
        tail = " | ".join(done.stderr.strip().splitlines()[-3:]) or f"exit {done.returncode}"
        raise NoLease(_hint(ns, iface, timeout, f"udhcpc: {tail}"))
    return read_lease(lease_file)


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:  # another client of this instance still runs, or it is gone already
        pass


def stop(instance_ns: str, iface: str | None = None) -> bool:
    """Stop the instance's DHCP client(s) we started (found by pidfile, checked by command line)."""
    directory = compute.run_dir(instance_ns)
    pidfiles: Sequence[Path] = ([pidfile_path(instance_ns, iface)] if iface
                                else sorted(directory.glob("udhcpc-*.pid")) if directory.is_dir() else [])
    stopped = False
    for pidfile in pidfiles:
        stopped = procs.stop(str(pidfile), str(pidfile)) | stopped
    return stopped

