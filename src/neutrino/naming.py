"""Device names derived from ids (the Neutron conventions), with no I/O and no imports of ours.

A leaf module because both sides need the same names: the server puts a port's bridge into
``binding:vif_details`` and the agents create that bridge. The server's ML2 code must not
import the kernel layer, so the pure functions live here and ``kernel.names`` re-exports them.
"""

from __future__ import annotations

import re

IFNAMSIZ = 16
MAX_IFNAME_LEN = IFNAMSIZ - 1  # the kernel keeps a trailing NUL

ID_LEN = 11  # Neutron's DEVICE_NAME_MAX_LEN - len("tap") for tap/qr-/qg-/ns-/brq names

OVS_INTEGRATION_BRIDGE = "br-int"  # where the openvswitch agent plugs VIFs (binding:vif_details bridge_name)


def ifname(prefix: str, ident: str) -> str:
    """``prefix`` and the first ID_LEN characters of ``ident``: always a valid interface name."""
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


# What a hybrid-plugged port's names may carry of its id: the first ID_LEN characters of a UUID
# as the server makes them. Port ids come from the database, so anything else is refused rather
# than sliced into a name the janitor (``kernel.names.is_our_link``) would not recognise.
_ID_PART = re.compile(r"[0-9a-f-]{" + str(ID_LEN) + "}")


def hybrid_names(port_id: str) -> tuple[str, str, str]:
    """``(qbr, qvb, qvo)`` of a port plugged the hybrid way on Open vSwitch (Neutron's
    iptables_hybrid): the tap's own Linux bridge, where the nftables firewall filters it; the veth
    end on that bridge; and its peer on br-int. ValueError for an id that cannot name them."""
    if not isinstance(port_id, str) or not _ID_PART.fullmatch(port_id[:ID_LEN]):
        raise ValueError(f"port id {port_id!r} cannot name hybrid-plug devices")
    return ifname("qbr", port_id), ifname("qvb", port_id), ifname("qvo", port_id)


def hybrid_bridge_name(port_id: str) -> str:
    """``qbr<port[:11]>``: the per-port Linux bridge of a hybrid-plugged port."""
    return hybrid_names(port_id)[0]


def vxlan_name(vni: int) -> str:
    if not 0 <= vni < 2**24:
        raise ValueError(f"VNI {vni} is outside 0..16777215")
    return f"vxlan-{vni}"
