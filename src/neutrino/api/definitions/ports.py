"""ports: core attributes plus binding, port-security, security-group, allowed-address-pairs,
extra_dhcp_opt, dns-integration, dns-domain-ports and port-mac-address-regenerate."""

from typing import Any

from neutrino.api import validators as v
from neutrino.api.attributes import Attr, Resource, standard_attrs

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


def _dhcp_opt(item: dict[str, Any]) -> str | None:
    if msg := v.dict_keys(("opt_name", "opt_value"), ("ip_version",))(item):
        return msg
    if msg := v.string(255)(item["opt_name"]):
        return msg
    if item["opt_value"] is not None and (msg := v.string(255)(item["opt_value"])):
        return msg
    if "ip_version" in item and item["ip_version"] not in (4, 6, None):
        return f"'{item['ip_version']}' is not in [4, 6]"
    return None


PORTS = Resource(
    member="port",
    collection="ports",
    attrs=standard_attrs(
        network_id=Attr(post=True, required=True, validate=v.uuid_),
        admin_state_up=Attr(post=True, put=True, default=True, convert=v.to_boolean, validate=v.boolean),
        mac_address=Attr(post=True, put=True, convert=lambda x: None if x is None else v.to_mac(x),
                         validate=lambda x: None if x is None else v.mac_address(x)),
        fixed_ips=Attr(post=True, put=True, validate=v.dict_list(_fixed_ip), sort=False),
        device_id=Attr(post=True, put=True, default="", validate=v.string(255)),
        device_owner=Attr(post=True, put=True, default="", validate=v.string(255)),
        status=Attr(),
        security_groups=Attr(post=True, put=True, validate=v.uuid_list, sort=False),
        port_security_enabled=Attr(post=True, put=True, convert=v.to_boolean, validate=v.boolean),
        allowed_address_pairs=Attr(post=True, put=True, default=list, validate=v.dict_list(_address_pair),
                                   filter=False, sort=False),
        extra_dhcp_opts=Attr(post=True, put=True, default=list, validate=v.dict_list(_dhcp_opt),
                             filter=False, sort=False),
        dns_name=Attr(post=True, put=True, default="", validate=v.dns_name),
        dns_domain=Attr(post=True, put=True, default="", validate=v.dns_name),
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
