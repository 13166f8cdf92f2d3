"""ports: core attributes plus binding, port-security, security-group, allowed-address-pairs,
extra_dhcp_opt, dns-integration, dns-domain-ports and port-mac-address-regenerate."""

from typing import Any

from neutrino.api import dhcp_options
from neutrino.api import validators as v
from neutrino.api.attributes import Attr, Resource, standard_attrs
from neutrino.errors import BadRequest

VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder",
              "smart-nic", "vdpa", "remote-managed")


def _fixed_ip(item: dict[str, Any]) -> str | None:
    if msg := v.dict_keys((), ("subnet_id", "ip_address"))(item):
        return msg
    if "subnet_id" in item and (msg := v.uuid_(item["subnet_id"])):
        return msg
    if "ip_address" in item and (msg := v.ip_address(item["ip_address"])):
        return msg
    if not item:
        return "fixed_ips entry without subnet_id or ip_address"
    return None


def _address_pair(item: dict[str, Any]) -> str | None:
    if "ip_address" not in item:
        return "Allowed address pairs must contain ip_address"
    if msg := v.dict_keys(("ip_address",), ("mac_address",))(item):
        return msg
    if msg := v.ip_or_cidr(item["ip_address"]):
        return msg
    if "mac_address" in item and item["mac_address"] is not None and (msg := v.mac_address(item["mac_address"])):
        return msg
    return None


def _canonical_addresses(value: Any) -> Any:
    """ip_address entries (fixed IPs, address pairs) in canonical form: IPv6 compressed, lower
    case, so one address has one spelling wherever it is compared or rendered."""
    if not isinstance(value, list):
        return value
    out = []
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("ip_address"), str):
            item = {**item, "ip_address": v.to_canonical_cidr(v.to_canonical_ip(item["ip_address"]))}
        mac = item.get("mac_address") if isinstance(item, dict) else None
        if isinstance(mac, str) and v.MAC_RE.fullmatch(mac):
            item = {**item, "mac_address": v.to_mac(mac)}
        out.append(item)
    return out


MAX_ALLOWED_ADDRESS_PAIRS = 10  # neutron.conf's max_allowed_address_pair


class AllowedAddressPairExhausted(BadRequest):
    message = "The number of allowed address pair exceeds the maximum {quota}."
    type_name = "AllowedAddressPairExhausted"


def _address_pairs_in(value: Any) -> Any:
    """Each pair becomes firewall rules on the host, so their number is bounded as in Neutron."""
    if isinstance(value, list) and len(value) > MAX_ALLOWED_ADDRESS_PAIRS:
        raise AllowedAddressPairExhausted(quota=MAX_ALLOWED_ADDRESS_PAIRS)
    return _canonical_addresses(value)


PORTS = Resource(
    member="port",
    collection="ports",
    attrs=standard_attrs(
        network_id=Attr(post=True, required=True, validate=v.uuid_),
        admin_state_up=Attr(post=True, put=True, default=True, convert=v.to_boolean, validate=v.boolean),
        mac_address=Attr(post=True, put=True, convert=lambda x: None if x is None else v.to_mac(x),
                         validate=lambda x: None if x is None else v.mac_address(x), convert_filter=v.to_mac_if_valid),
        fixed_ips=Attr(post=True, put=True, convert=_canonical_addresses, validate=v.dict_list(_fixed_ip),
                       sort=False),
        device_id=Attr(post=True, put=True, default="", validate=v.string(255)),
        device_owner=Attr(post=True, put=True, default="", validate=v.string(255)),
        status=Attr(),
        security_groups=Attr(post=True, put=True, validate=v.uuid_list, sort=False),
        port_security_enabled=Attr(post=True, put=True, convert=v.to_boolean, validate=v.boolean),
        allowed_address_pairs=Attr(post=True, put=True, default=list, convert=_address_pairs_in,
                                   validate=v.dict_list(_address_pair), filter=False, sort=False),
        extra_dhcp_opts=Attr(post=True, put=True, default=list, convert=dhcp_options.canonical,
                             validate=dhcp_options.extra_dhcp_opts, filter=False, sort=False),
        dns_name=Attr(post=True, put=True, default="", convert=v.to_lower, validate=v.dns_name),
        dns_domain=Attr(post=True, put=True, default="", convert=v.to_lower, validate=v.dns_domain),
        dns_assignment=Attr(filter=False, sort=False),
        ip_allocation=Attr(filter=False, sort=False),
        propagate_uplink_status=Attr(filter=False, sort=False, visible=False),
        **{
            "binding:host_id": Attr(post=True, put=True, default="", validate=v.string(255)),
            "binding:vif_type": Attr(),
            "binding:vif_details": Attr(filter=False, sort=False),
            "binding:vnic_type": Attr(post=True, put=True, default="normal", validate=v.values(VNIC_TYPES)),
            "binding:profile": Attr(post=True, put=True, default=dict, validate=v.any_dict,
                                    filter=False, sort=False),
        },
    ),
)
