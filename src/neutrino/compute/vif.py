"""An instance's NIC: its namespace, ``eth0`` as a veth whose ``tap`` end sits on the host's bridge.

The veth is created with each end directly in its namespace (moving a link costs ~17 ms).
IPv6 is off inside the instance (no DHCPv6 yet, and it cuts RS/MLD/DAD noise), and the
instance gets its own resolv.conf so it never uses the host's resolver. Both calls are
idempotent and return whether they changed anything.
"""

from __future__ import annotations

from collections.abc import Sequence

from neutrino import compute
from neutrino.compute import dhcp_client
from neutrino.kernel import links, netns

INSTANCE_IFACE = "eth0"
IPV6_OFF = ("net.ipv6.conf.default.disable_ipv6", "net.ipv6.conf.all.disable_ipv6")


def plug(instance_ns: str, host_ns: str | None, tap: str, mac: str, bridge: str | None,
         checksum_offload: bool = True) -> bool:
    """Ensure the instance namespace with ``eth0`` (``mac``) and its peer ``tap`` in ``host_ns``, both up.

    ``tap`` joins ``bridge`` when one is given and exists in ``host_ns`` (None: this process's
    namespace); otherwise it is left for the L2 agent to attach. Without ``checksum_offload``
    (a port on an OVS userspace datapath, which forwards partial checksums as they are) eth0
    computes its TCP/UDP checksums itself.
    """
    ns = compute.checked_ns(instance_ns)
    changed = netns.ensure_namespace(ns)
    # before eth0 exists, so it never gets a link-local address
    changed = netns.set_sysctls(ns, dict.fromkeys(IPV6_OFF, 1)) | changed
    changed = compute.ensure_resolv_conf(ns) | changed
    changed = links.ensure_veth(host_ns, tap, ns, INSTANCE_IFACE, mac_b=mac.lower()) | changed
    if bridge and links.link_exists(host_ns, bridge):
        changed = links.set_master(host_ns, tap, bridge) | changed
    changed = links.set_up(host_ns, tap) | changed
    changed = links.set_up(ns, INSTANCE_IFACE) | changed
    if not checksum_offload:
        changed = links.disable_tx_checksum(ns, INSTANCE_IFACE) | changed
    return changed


def unplug(instance_ns: str, host_ns: str | None, tap: str) -> bool:
    """Stop its DHCP client, remove the veth, the namespace and ``/etc/netns/<ns>``; False if all were gone."""
    ns = compute.checked_ns(instance_ns)
    changed = dhcp_client.stop(ns)
    # the tap takes eth0 along now; left to the namespace, the kernel would remove them later
    changed = links.remove_link(host_ns, tap) | changed
    changed = netns.remove_namespace(ns) | changed
    changed = compute.remove_host_files(ns) | changed
    return changed


def exec_argv(instance_ns: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` inside the instance (with its own resolv.conf bind-mounted)."""
    if not argv:
        raise ValueError("nothing to run")
    return ["ip", "netns", "exec", compute.checked_ns(instance_ns), *argv]
