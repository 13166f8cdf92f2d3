"""subnets: core attributes plus subnet_allocation, subnet-service-types, standard-attr-segment,
subnet-dns-publish-fixed-ip (as stored data), subnet-external-network (read-only ``router:external``)."""

from typing import Any

from neutrino.api import validators as v
from neutrino.api.attributes import Attr, Resource, standard_attrs

IPV6_MODES = ("dhcpv6-stateful", "dhcpv6-stateless", "slaac")
SERVICE_TYPE_PREFIXES = ("network:", "neutron:", "compute:")


def _pool(item: dict[str, Any]) -> str | None:
    return v.dict_keys(("start", "end"))(item) or v.ip_address(item["start"]) or v.ip_address(item["end"])


def _canonical_pools(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    return [{k: v.to_canonical_ip(x) for k, x in p.items()} if isinstance(p, dict) else p for p in value]


def _canonical_nameservers(value: Any) -> Any:
    if value is None:
        return []
    return [v.to_canonical_ip(x) for x in value] if isinstance(value, list) else value


def service_types(value: Any) -> str | None:
    """neutron-lib's ``type:list_of_subnet_service_types``: device owners, by their prefixes
    (network:, neutron:, compute:), each one line."""
    if not isinstance(value, list):
        return "Subnet service types must be a list."
    for item in value:
        if not isinstance(item, str):
            return f"Subnet service type {item} is not a string."
        if msg := v.string(255)(item):
            return msg
        if not item.startswith(SERVICE_TYPE_PREFIXES):
            return f"Subnet service type {item} does not correspond to a valid device owner."
    return v.list_of(v.string(255))(value)


SUBNETS = Resource(
    member="subnet",
    collection="subnets",
    attrs=standard_attrs(
        network_id=Attr(post=True, required=True, validate=v.uuid_),
        ip_version=Attr(post=True, required=True, convert=v.to_int, validate=v.values((4, 6))),
        cidr=Attr(post=True, convert=v.to_canonical_cidr, validate=v.subnet_cidr_or_none),
        prefixlen=Attr(post=True, convert=v.to_int, visible=False, filter=False, sort=False),
        subnetpool_id=Attr(post=True, default=None, validate=v.uuid_or_none),
        use_default_subnetpool=Attr(post=True, default=False, convert=v.to_boolean, visible=False,
                                    filter=False, sort=False),
        gateway_ip=Attr(post=True, put=True, convert=v.to_canonical_ip, validate=v.ip_address_or_none),
        allocation_pools=Attr(post=True, put=True, convert=_canonical_pools, validate=v.dict_list(_pool),
                              filter=False, sort=False),
        dns_nameservers=Attr(post=True, put=True, default=list, convert=_canonical_nameservers,
                             validate=v.list_of(v.ip_address), sort=False),
        host_routes=Attr(post=True, put=True, default=list, convert=v.to_canonical_routes, validate=v.hostroutes,
                         filter=False, sort=False),
        enable_dhcp=Attr(post=True, put=True, default=True, convert=v.to_boolean, validate=v.boolean),
        ipv6_ra_mode=Attr(post=True, default=None, validate=lambda x: None if x is None else v.values(IPV6_MODES)(x)),
        ipv6_address_mode=Attr(post=True, default=None,
                               validate=lambda x: None if x is None else v.values(IPV6_MODES)(x)),
        service_types=Attr(post=True, put=True, default=list, convert=lambda x: [] if x is None else x,
                           validate=service_types, sort=False),
        segment_id=Attr(post=True, put=True, default=None, validate=v.uuid_or_none),
        dns_publish_fixed_ip=Attr(post=True, put=True, default=False, convert=v.to_boolean,
                                  validate=v.boolean),
        # neutron-lib: not shown, not settable, but a filter: the network's shared flag.
        shared=Attr(convert=v.to_boolean, visible=False, sort=False),
        **{"router:external": Attr(default=False, convert=v.to_boolean)},
    ),
)
