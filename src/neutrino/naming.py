"""Device names derived from ids (the Neutron conventions), with no I/O and no imports of ours.

A leaf module because both sides need the same names: the server puts a port's bridge into
``binding:vif_details`` and the agents create that bridge. The server's ML2 code must not
import the kernel layer, so the pure functions live here and ``kernel.names`` re-exports them.
"""

from __future__ import annotations

IFNAMSIZ = 16
MAX_IFNAME_LEN = IFNAMSIZ - 1  # the kernel keeps a trailing NUL

ID_LEN = 11  # Neutron's DEVICE_NAME_MAX_LEN - len("tap") for tap/qr-/qg-/ns-/brq names


def ifname(prefix: str, ident: str) -> str:
    name = prefix + ident[:ID_LEN]
    assert len(name) <= MAX_IFNAME_LEN, name
    return name


def tap_name(port_id: str) -> str:
    return ifname("tap", port_id)


def qr_name(port_id: str) -> str:
    return ifname("qr-", port_id)


def qg_name(port_id: str) -> str:
    return ifname("qg-", port_id)


def ns_name(port_id: str) -> str:
    """The DHCP port's device inside qdhcp-<network>."""
    return ifname("ns-", port_id)


def bridge_name(network_id: str) -> str:
    return ifname("brq", network_id)


def vxlan_name(vni: int) -> str:
    if not 0 <= vni < 2**24:
        raise ValueError(f"VNI {vni} is outside 0..16777215")
    return f"vxlan-{vni}"
