"""Links, addresses and VXLAN flood entries inside a namespace, as idempotent netlink calls.

Mutators return True when they changed the kernel; applying one twice changes nothing.
Creation and removal are refused unless the namespace (or, in our own namespace, the link
name) follows neutrino's naming, so nothing the host owns is ever touched.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from neutrino.kernel import KernelError, LinkConflict, LinkNotFound, NamespaceNotFound, NotOurs, translate
from neutrino.kernel.names import MAX_IFNAME_LEN, is_our_link, is_our_namespace
from neutrino.kernel.netns import iproute, namespace_exists

IFF_UP = 1
FLOOD_MAC = "00:00:00:00:00:00"


@dataclass(frozen=True)
class Link:
    name: str
    index: int
    kind: str
    mtu: int
    mac: str
    up: bool
    master: int | None


def _guard(op: str, ns: str | None, name: str) -> None:
    if len(name) > MAX_IFNAME_LEN:
        raise ValueError(f"interface name {name!r} is longer than {MAX_IFNAME_LEN}")
    if ns is None and not is_our_link(name):
        raise NotOurs(op, name, detail="not a neutrino link name in this process's namespace")
    if ns is not None and not is_our_namespace(ns):
        raise NotOurs(op, f"{ns}/{name}", detail="not a neutrino namespace")


@contextmanager
def _netlink(op: str, ns: str | None, target: str) -> Iterator[IPRoute]:
    with iproute(ns) as ipr:
        try:
            yield ipr
        except NetlinkError as exc:
            raise translate(op, f"{ns or '-'}/{target}", exc.code) from exc


def _find(ipr: IPRoute, name: str) -> Any | None:
    """The link called ``name``, or None: also when it vanished between the lookup by name and
    the read by index (a veth whose peer's namespace is being deleted goes asynchronously)."""
    found = list(ipr.link_lookup(ifname=name))
    if not found:
        return None
    try:
        return list(ipr.get_links(found[0]))[0]
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise


def _get(ipr: IPRoute, ns: str | None, name: str) -> Any:
    msg = _find(ipr, name)
    if msg is None:
        raise LinkNotFound("find link", f"{ns or '-'}/{name}", detail="no such link")
    return msg


def _to_link(msg: Any) -> Link:
    kind = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or ""
    return Link(name=msg.get("ifname"), index=msg["index"], kind=kind, mtu=msg.get("mtu"),
                mac=msg.get("address") or "", up=bool(msg["flags"] & IFF_UP), master=msg.get("master"))


def list_links(ns: str | None) -> list[Link]:
    with _netlink("list links", ns, "*") as ipr:
        return sorted((_to_link(m) for m in ipr.get_links()), key=lambda link: link.name)


def link_exists(ns: str | None, name: str) -> bool:
    if ns is not None and not namespace_exists(ns):
        return False
    with _netlink("find link", ns, name) as ipr:
        return _find(ipr, name) is not None


def _expect_kind(ns: str | None, msg: Any, kind: str) -> None:
    actual = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or ""
    if actual != kind:
        raise LinkConflict("ensure " + kind, f"{ns or '-'}/{msg.get('ifname')}", detail=f"exists as {actual!r}")


def ensure_bridge(ns: str | None, name: str, mtu: int | None = None) -> bool:
    _guard("ensure bridge", ns, name)
    with _netlink("ensure bridge", ns, name) as ipr:
        msg = _find(ipr, name)
        if msg is None:
            ipr.link("add", ifname=name, kind="bridge", **({"mtu": mtu} if mtu else {}))
            return True
        _expect_kind(ns, msg, "bridge")
    return set_mtu(ns, name, mtu) if mtu else False


@contextmanager
def _ns_fd(ns: str | None) -> Iterator[int]:
    fd = os.open("/proc/self/ns/net" if ns is None else f"/run/netns/{ns}", os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


def ensure_veth(ns_a: str | None, name_a: str, ns_b: str | None, name_b: str,
                mac_b: str | None = None, mtu: int | None = None) -> bool:
    """A veth pair with ``name_b`` created directly in ``ns_b`` (moving a link costs ~17 ms)."""
    _guard("ensure veth", ns_a, name_a)
    _guard("ensure veth", ns_b, name_b)
    if ns_b is not None and not namespace_exists(ns_b):
        raise NamespaceNotFound("ensure veth", ns_b, detail="no such namespace")
    a = _lookup(ns_a, name_a)
    b = _lookup(ns_b, name_b)
    if a is None and b is None:
        peer: dict[str, Any] = {"ifname": name_b, **({"address": mac_b} if mac_b else {})}
        peer.update({"mtu": mtu} if mtu else {})
        with _ns_fd(ns_b) as fd, _netlink("ensure veth", ns_a, name_a) as ipr:
            if ns_b != ns_a:
                peer["net_ns_fd"] = fd
            ipr.link("add", ifname=name_a, kind="veth", peer=peer, **({"mtu": mtu} if mtu else {}))
        return True
    if a is None or b is None or a.kind != "veth" or b.kind != "veth":
        raise LinkConflict("ensure veth", f"{ns_a or '-'}/{name_a}", detail=f"half or non-veth pair: {a} / {b}")
    changed = set_mac(ns_b, name_b, mac_b) if mac_b else False
    if mtu:
        changed = set_mtu(ns_a, name_a, mtu) | changed
        changed = set_mtu(ns_b, name_b, mtu) | changed
    return changed


def _lookup(ns: str | None, name: str) -> Link | None:
    with _netlink("find link", ns, name) as ipr:
        msg = _find(ipr, name)
        return _to_link(msg) if msg is not None else None


def ensure_vxlan(ns: str | None, name: str, vni: int, local_ip: str, dev: str,
                 dstport: int = 4789, learning: bool = False) -> bool:
    """A unicast VXLAN device; one with other parameters is recreated (the kernel cannot change them)."""
    _guard("ensure vxlan", ns, name)
    with _netlink("ensure vxlan", ns, name) as ipr:
        dev_index = _get(ipr, ns, dev)["index"]
        want = {"IFLA_VXLAN_ID": vni, "IFLA_VXLAN_LOCAL": local_ip, "IFLA_VXLAN_LINK": dev_index,
                "IFLA_VXLAN_PORT": dstport, "IFLA_VXLAN_LEARNING": int(learning)}
        msg = _find(ipr, name)
        if msg is not None:
            _expect_kind(ns, msg, "vxlan")
            data = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
            if all(data.get(k) == v for k, v in want.items()):
                return False
            ipr.link("del", index=msg["index"])
        ipr.link("add", ifname=name, kind="vxlan", vxlan_id=vni, vxlan_local=local_ip, vxlan_link=dev_index,
                 vxlan_port=dstport, vxlan_learning=int(learning))
        return True


def _set(op: str, ns: str | None, name: str, attr: str, value: Any, **change: Any) -> bool:
    _guard(op, ns, name)
    with _netlink(op, ns, name) as ipr:
        msg = _get(ipr, ns, name)
        if msg.get(attr) == value:
            return False
        ipr.link("set", index=msg["index"], **change)
        return True


def set_master(ns: str | None, link: str, bridge: str) -> bool:
    with _netlink("set master", ns, bridge) as ipr:
        bridge_index = _get(ipr, ns, bridge)["index"]
    return _set("set master", ns, link, "master", bridge_index, master=bridge_index)


def set_up(ns: str | None, link: str) -> bool:
    _guard("set up", ns, link)
    with _netlink("set up", ns, link) as ipr:
        msg = _get(ipr, ns, link)
        if msg["flags"] & IFF_UP:
            return False
        ipr.link("set", index=msg["index"], state="up")
        return True


def set_mtu(ns: str | None, link: str, mtu: int) -> bool:
    return _set("set mtu", ns, link, "mtu", mtu, mtu=mtu)


def set_mac(ns: str | None, link: str, mac: str) -> bool:
    return _set("set mac", ns, link, "address", mac.lower(), address=mac.lower())


def list_addresses(ns: str | None, link: str) -> list[str]:
    """The link's addresses as sorted CIDR strings."""
    with _netlink("list addresses", ns, link) as ipr:
        index = _get(ipr, ns, link)["index"]
        return sorted(f"{a.get('address')}/{a['prefixlen']}" for a in ipr.get_addr(index=index))


def add_address(ns: str | None, link: str, cidr: str) -> bool:
    _guard("add address", ns, link)
    iface = ipaddress.ip_interface(cidr)
    if str(iface) in {str(ipaddress.ip_interface(c)) for c in list_addresses(ns, link)}:
        return False
    with _netlink("add address", ns, link) as ipr:
        index = _get(ipr, ns, link)["index"]
        ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        return True


def _flood_entries(ipr: IPRoute, index: int) -> set[str]:
    return {e.get("NDA_DST") for e in ipr.fdb("dump") if e["ifindex"] == index and e.get("NDA_LLADDR") == FLOOD_MAC}


def fdb_append(ns: str | None, vxlan_link: str, dst_ip: str) -> bool:
    """Add ``dst_ip`` to the VXLAN device's flood list (BUM traffic goes to every listed VTEP)."""
    _guard("fdb append", ns, vxlan_link)
    with _netlink("fdb append", ns, vxlan_link) as ipr:
        index = _get(ipr, ns, vxlan_link)["index"]
        if dst_ip in _flood_entries(ipr, index):
            return False
        ipr.fdb("append", ifindex=index, lladdr=FLOOD_MAC, dst=dst_ip)
        return True


def fdb_remove(ns: str | None, vxlan_link: str, dst_ip: str) -> bool:
    _guard("fdb remove", ns, vxlan_link)
    with _netlink("fdb remove", ns, vxlan_link) as ipr:
        index = _get(ipr, ns, vxlan_link)["index"]
        if dst_ip not in _flood_entries(ipr, index):
            return False
        ipr.fdb("del", ifindex=index, lladdr=FLOOD_MAC, dst=dst_ip)
        return True


def fdb_flood_list(ns: str | None, vxlan_link: str) -> list[str]:
    with _netlink("fdb dump", ns, vxlan_link) as ipr:
        return sorted(_flood_entries(ipr, _get(ipr, ns, vxlan_link)["index"]))


def remove_link(ns: str | None, name: str) -> bool:
    """Delete ``name``; False if it (or its namespace) is already gone. A veth takes its peer along."""
    _guard("remove link", ns, name)
    if ns is not None and not namespace_exists(ns):
        return False
    with _netlink("remove link", ns, name) as ipr:
        msg = _find(ipr, name)
        if msg is None:
            return False
        try:
            ipr.link("del", index=msg["index"])
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:  # removed meanwhile
                raise
            return False
        return True


# Routes, address removal and gratuitous ARP: only ever inside one of our namespaces, never the
# root one (a router's routes are the namespace's own business; the host's routes are not ours).

RT_TABLE_MAIN = 254
RTPROT_KERNEL = 2  # connected routes the kernel adds for an address; not ours to manage


@dataclass(frozen=True)
class Route:
    dst: str  # CIDR; "0.0.0.0/0" for the default route
    gateway: str | None
    dev: str | None
    proto: int


def _guard_ns(op: str, ns: str | None) -> str:
    if ns is None or not is_our_namespace(ns):
        raise NotOurs(op, ns or "-", detail="only inside a neutrino namespace")
    return ns


def remove_address(ns: str | None, link: str, cidr: str) -> bool:
    """Remove ``cidr`` from ``link``; False if it was not there."""
    _guard("remove address", ns, link)
    iface = ipaddress.ip_interface(cidr)
    if str(iface) not in {str(ipaddress.ip_interface(c)) for c in list_addresses(ns, link)}:
        return False
    with _netlink("remove address", ns, link) as ipr:
        index = _get(ipr, ns, link)["index"]
        ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        return True


def list_routes(ns: str | None) -> list[Route]:
    """The IPv4 routes of the main table in ``ns``, connected ones included (proto 2), sorted by dst."""
    name = _guard_ns("list routes", ns)
    with _netlink("list routes", name, "routes") as ipr:
        names = {m["index"]: m.get("ifname") for m in ipr.get_links()}
        found = [Route(dst=f"{r.get('RTA_DST') or '0.0.0.0'}/{r['dst_len']}", gateway=r.get("RTA_GATEWAY"),
                       dev=names.get(r.get("RTA_OIF")), proto=r["proto"])
                 for r in ipr.get_routes(family=socket.AF_INET, table=RT_TABLE_MAIN)]
    return sorted(found, key=lambda r: (r.dst, r.gateway or "", r.dev or ""))


def _route_key(dst: str) -> str:
    return str(ipaddress.ip_network(dst, strict=False))


def ensure_route(ns: str | None, dst: str, gateway: str | None = None, dev: str | None = None) -> bool:
    """The route to ``dst`` goes via ``gateway`` (and/or out of ``dev``); replaced if it differs."""
    name = _guard_ns("ensure route", ns)
    key = _route_key(dst)
    current = [r for r in list_routes(name) if r.dst == key and r.proto != RTPROT_KERNEL]
    if len(current) == 1 and current[0].gateway == gateway and dev in (None, current[0].dev):
        return False
    with _netlink("ensure route", name, key) as ipr:
        spec: dict[str, Any] = {"dst": key, "table": RT_TABLE_MAIN, "proto": "static"}
        if gateway:
            spec["gateway"] = gateway
        if dev:
            spec["oif"] = _get(ipr, name, dev)["index"]
        ipr.route("replace", **spec)
    return True


def remove_route(ns: str | None, dst: str) -> bool:
    """Remove our (non-connected) route to ``dst``; False if there is none."""
    name = _guard_ns("remove route", ns)
    key = _route_key(dst)
    if not any(r.dst == key and r.proto != RTPROT_KERNEL for r in list_routes(name)):
        return False
    net = ipaddress.ip_network(key)
    with _netlink("remove route", name, key) as ipr:
        ipr.route("del", dst=str(net.network_address), dst_len=net.prefixlen, table=RT_TABLE_MAIN)
    return True


def gratuitous_arp(ns: str | None, link: str, ip: str, timeout: float = 5.0) -> None:
    """Announce ``ip`` on ``link`` (unsolicited ARP, so neighbours update their caches at once)."""
    name = _guard_ns("gratuitous arp", ns)
    _guard("gratuitous arp", name, link)
    argv = ["ip", "netns", "exec", name, "busybox", "arping", "-U", "-c", "1", "-w", "1", "-I", link, "-s", ip, ip]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelError("gratuitous arp", f"{name}/{link}", detail=str(exc)) from exc
    if done.returncode not in (0, 1):  # 1: nobody answered, which is normal for an announcement
        raise KernelError("gratuitous arp", f"{name}/{link}", detail=done.stderr.strip() or str(done.returncode))


def disable_tx_checksum(ns: str, dev: str, timeout: float = 5.0) -> bool:
    """Turn TX checksum offload off on ``dev`` in our namespace ``ns``; True if it was on.

    A veth offloads TCP/UDP checksums, so its packets carry partial checksums; the OVS
    userspace datapath forwards them as they are and the receiver drops them (ICMP still
    works, which hides it). Every veth end whose packets enter an OVS netdev bridge, and a
    kernel-VXLAN host's underlay towards OVS hosts, needs this (dataplane-notes gotcha 1).
    Only in a namespace of ours: the machine's own interfaces are never changed.
    """
    if ns is None or not is_our_namespace(ns):
        raise NotOurs("disable tx checksum", str(ns), detail="not a neutrino namespace")
    if not namespace_exists(ns):
        raise NamespaceNotFound("disable tx checksum", ns, detail="no such namespace")
    base = ["ip", "netns", "exec", ns, "ethtool"]
    try:
        shown = subprocess.run([*base, "-k", dev], capture_output=True, text=True, timeout=timeout, check=True).stdout
        if any(line.strip() == "tx-checksumming: off" for line in shown.splitlines()):
            return False
        subprocess.run([*base, "-K", dev, "tx", "off"], capture_output=True, text=True, timeout=timeout, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        raise KernelError("disable tx checksum", f"{ns}/{dev}", detail=str(detail).strip()) from exc
    return True


# Read and detach helpers for the Linux-bridge agent's I/O shell (agent/l2/linuxbridge.py).


def set_down(ns: str | None, link: str) -> bool:
    """Take ``link`` administratively down; False if it already was."""
    _guard("set down", ns, link)
    with _netlink("set down", ns, link) as ipr:
        msg = _get(ipr, ns, link)
        if not msg["flags"] & IFF_UP:
            return False
        ipr.link("set", index=msg["index"], state="down")
        return True


def detach(ns: str | None, link: str) -> bool:
    """Take ``link`` out of its bridge; False if it had no master."""
    _guard("detach", ns, link)
    with _netlink("detach", ns, link) as ipr:
        msg = _get(ipr, ns, link)
        if not msg.get("master"):
            return False
        ipr.link("set", index=msg["index"], master=0)
        return True


def vxlan_params(ns: str | None, name: str) -> tuple[int | None, str | None]:
    """The VXLAN device's (VNI, local IP) as the kernel has them; (None, None) for another kind."""
    with _netlink("read vxlan", ns, name) as ipr:
        msg = _get(ipr, ns, name)
        if (msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or "") != "vxlan":
            return None, None
        data = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
        return data.get("IFLA_VXLAN_ID"), data.get("IFLA_VXLAN_LOCAL")
