"""The Linux-bridge mechanism driver: binds normal ports on local, flat and vxlan segments.

As Neutron's: ``binding:vif_type`` ``bridge`` and ``vif_details`` saying the agent filters the
port (security groups) at layer 2, plus the host bridge the VIF plugs into (``brq<net[:11]>``).
Unlike Neutron's it does not bind vlan segments: this kernel has no 8021q VLAN devices (nor
gretap/geneve), so vlan, gre and geneve networks need Open vSwitch (see DESIGN.md). It also
does not check for a live agent on the host, since agents do not report to the server yet.
"""

from __future__ import annotations

from neutrino.db.models.network import NetworkSegment
from neutrino.kernel.names import bridge_name  # pure naming helper, no I/O
from neutrino.ml2.manager import Binding, Refusal

VIF_TYPE_BRIDGE = "bridge"
SUPPORTED_NETWORK_TYPES = ("local", "flat", "vxlan")
SUPPORTED_VNIC_TYPES = ("normal",)


class LinuxBridgeMechanism:
    name = "linuxbridge"

    def bind_port(self, host: str, vnic_type: str, segments: list[NetworkSegment]) -> Binding | Refusal:
        """Bind to the first segment of a supported type, or say why not."""
        if vnic_type not in SUPPORTED_VNIC_TYPES:
            return Refusal(f"vnic_type {vnic_type!r} is not supported (supported: {', '.join(SUPPORTED_VNIC_TYPES)})")
        for seg in segments:
            if seg.network_type in SUPPORTED_NETWORK_TYPES:
                details = {"port_filter": True, "connectivity": "l2", "bridge_name": bridge_name(seg.network_id)}
                return Binding(VIF_TYPE_BRIDGE, details, segment_id=seg.id)
        types = ", ".join(sorted({seg.network_type for seg in segments})) or "none"
        return Refusal(f"network type {types} is not supported with Linux bridge on this kernel "
                       f"(supported: {', '.join(SUPPORTED_NETWORK_TYPES)}; vlan, gre and geneve need Open vSwitch)")
