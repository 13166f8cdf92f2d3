"""Host names of everything neutrino creates (the Neutron conventions), and how to recognise them."""

from __future__ import annotations

import ipaddress
import re

# Device names are shared with the server (binding details) and live in a leaf module; they
# are re-exported here so the kernel side keeps one place to import every name from.
from neutrino.naming import ID_LEN as ID_LEN
from neutrino.naming import IFNAMSIZ as IFNAMSIZ
from neutrino.naming import MAX_IFNAME_LEN as MAX_IFNAME_LEN
from neutrino.naming import OVS_INTEGRATION_BRIDGE as OVS_INTEGRATION_BRIDGE
from neutrino.naming import bridge_name as bridge_name
from neutrino.naming import hybrid_bridge_name as hybrid_bridge_name
from neutrino.naming import hybrid_names as hybrid_names
from neutrino.naming import ifname
from neutrino.naming import ns_name as ns_name
from neutrino.naming import qg_name as qg_name
from neutrino.naming import qr_name as qr_name
from neutrino.naming import tap_name as tap_name
from neutrino.naming import vxlan_name as vxlan_name

NODE_PREFIX = "neutrino-"  # the namespace holding one host's bridges (and the root-side external link)
NAMESPACE_PREFIXES: tuple[str, ...] = ("qdhcp-", "qrouter-", "snat-", "fip-", "qlbaas-", "vm-", NODE_PREFIX)
TEST_NAMESPACE_PREFIX = "nt-"  # functional tests; the project's before-stop hook also treats it as ours
ALL_NAMESPACE_PREFIXES: tuple[str, ...] = (*NAMESPACE_PREFIXES, TEST_NAMESPACE_PREFIX)
LINK_PREFIXES: tuple[str, ...] = ("tap", "qr-", "qg-", "ns-", "brq", "qbr", "qvb", "qvo", "vxlan-")

# Strict patterns so that e.g. a hypervisor's "tap0" in the root namespace is never taken for ours.
_ID_LINK = re.compile(r"^(tap|qr-|qg-|ns-|brq|qbr|qvb|qvo)[0-9a-f-]{" + str(ID_LEN) + "}$")
_VXLAN_LINK = re.compile(r"^vxlan-(0|[1-9][0-9]{0,7})$")
_GATEWAY_LINK = re.compile(r"^" + NODE_PREFIX + r"[a-z0-9]{1,6}$")


def qdhcp_ns(network_id: str) -> str:
    return f"qdhcp-{network_id}"


def qrouter_ns(router_id: str) -> str:
    return f"qrouter-{router_id}"


def snat_ns(router_id: str) -> str:
    return f"snat-{router_id}"


def fip_ns(ext_net_id: str) -> str:
    return f"fip-{ext_net_id}"


def qlbaas_ns(lb_id: str) -> str:
    return f"qlbaas-{lb_id}"


def instance_ns(port_id: str) -> str:
    """An instance (a namespace standing in for a VM) is named after its first port."""
    return "vm-" + port_id[:ID_LEN]


def _clean(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def node_ns(host: str) -> str:
    """The namespace that stands in for a host's own network stack (bridges, taps, vxlan)."""
    return NODE_PREFIX + (_clean(host)[:40] or "host")


def gateway_link(physnet: str) -> str:
    """The machine-side end of a host-only physical network: it holds the external gateway IP."""
    return NODE_PREFIX + (_clean(physnet)[:6] or "ext")


def uplink_name(physnet: str) -> str:
    """The node-side end of that veth: the flat network's bridge enslaves it."""
    return "phy-" + (_clean(physnet)[:11] or "ext")


def is_our_namespace(name: str, prefixes: tuple[str, ...] = ALL_NAMESPACE_PREFIXES) -> bool:
    return any(name.startswith(p) and len(name) > len(p) for p in prefixes)


def is_our_link(name: str) -> bool:
    return bool(_ID_LINK.match(name) or _VXLAN_LINK.match(name) or _GATEWAY_LINK.match(name))


def is_ours(name: str) -> bool:
    """True for any namespace or device name that follows one of neutrino's conventions."""
    return is_our_namespace(name) or is_our_link(name)


# Open vSwitch (the openvswitch agent's names): bridges, patch pairs and tunnel ports. Ports
# of an OVS userspace bridge are not kernel links, except the bridges' own internal ports.
OVS_TUNNEL_BRIDGE = "br-tun"
OVS_PATCH_TUN = "patch-tun"  # on br-int, peer of patch-int on br-tun
OVS_PATCH_INT = "patch-int"
OVS_TUNNEL_TYPES = ("vxlan", "gre", "geneve")


def ovs_physical_bridge(physnet: str) -> str:
    """``br-<physnet>``, short enough that ``int-br-<physnet>`` fits IFNAMSIZ."""
    return "br-" + (_clean(physnet)[:8] or "phys")


def ovs_int_patch(bridge: str) -> str:
    """The br-int end of the patch pair to a physical bridge (Neutron's ``int-br-eth1``)."""
    return ifname("int-", bridge)


def ovs_phys_patch(bridge: str) -> str:
    """The physical bridge's end of that pair (Neutron's ``phy-br-eth1``)."""
    return ifname("phy-", bridge)


def ovs_tunnel_port(tunnel_type: str, remote_ip: str) -> str:
    """``vxlan-ac1e0016``: the tunnel type and the remote endpoint's IPv4 address in hex."""
    if tunnel_type not in OVS_TUNNEL_TYPES:
        raise ValueError(f"unknown tunnel type {tunnel_type!r}")
    return f"{tunnel_type}-{int(ipaddress.IPv4Address(remote_ip)):08x}"
