"""The host side every agent shares: the node namespace and host-only physical networks.

A host's bridges, taps and vxlan devices live in a namespace of their own (``neutrino-<host>``),
never in the machine's namespace: the machine's firewall (a Docker FORWARD drop, say) then
never sees bridged instance traffic, and nothing we create can collide with its interfaces.
The one thing the machine gets is, per host-only physical network, the end of a veth holding
the external subnet's gateway address (as DevStack's br-ex does), so a user on the machine
reaches floating IPs. That link is created with forwarding off: the machine never routes
instance traffic anywhere else, whatever its global ``ip_forward`` says.
"""

from __future__ import annotations

from pathlib import Path

from neutrino.kernel import NotOurs, links, netns
from neutrino.kernel.names import gateway_link, is_our_link, uplink_name


def ensure_node(namespace: str) -> bool:
    """The node namespace with ``lo`` up (the all-in-one VXLAN endpoint sits on lo)."""
    changed = netns.ensure_namespace(namespace)
    return links.set_up(namespace, "lo") | changed


def _root_sysctl(link: str, key: str, value: int) -> bool:
    """Set a per-interface sysctl on one of *our* links in the machine's namespace."""
    if not is_our_link(link):
        raise NotOurs("sysctl", link, detail="only neutrino's own links in the machine's namespace")
    path = Path("/proc/sys/net") / key.replace("{link}", link)
    if path.read_text().strip() == str(value):
        return False
    path.write_text(str(value))
    return True


def ensure_host_only_uplink(namespace: str, physnet: str, gateway_cidr: str | None) -> str:
    """A veth from the machine (``neutrino-<physnet>``, holding ``gateway_cidr``) into the node.

    Returns the node-side interface name, to be mapped to ``physnet`` for flat networks.
    """
    outer, inner = gateway_link(physnet), uplink_name(physnet)
    links.ensure_veth(None, outer, namespace, inner)
    _root_sysctl(outer, "ipv4/conf/{link}/forwarding", 0)
    _root_sysctl(outer, "ipv6/conf/{link}/disable_ipv6", 1)
    links.set_up(namespace, inner)
    if gateway_cidr:
        links.add_address(None, outer, gateway_cidr)
    links.set_up(None, outer)
    return inner
