"""subnets: core attributes plus subnet_allocation, subnet-service-types, standard-attr-segment,
subnet-dns-publish-fixed-ip (as stored data)."""

from typing import Any

from neutrino.api import validators as v
from neutrino.api.attributes import Attr, Resource, standard_attrs

IPV6_MODES = ("dhcpv6-stateful", "dhcpv6-stateless", "slaac")


def _host_route(item: dict[str, Any]) -> str | None:
    return (v.dict_keys(("destination", "nexthop"))(item)
            or v.subnet_cidr(item["destination"]) or v.ip_address(item["nexthop"]))


def _pool(item: dict[str, Any]) -> str | None:
    return v.dict_keys(("start", "end"))(item) or v.ip_address(item["start"]) or v.ip_address(item["end"])


SUBNETS = Resource(
    member="subnet",
    collection="subnets",
    attrs=standard_attrs(
        network_id=Attr(post=True, required=True, validate=v.uuid_),
        ip_version=Attr(post=True, required=True, convert=v.to_int, validate=v.values((4, 6))),
        cidr=Attr(post=True, validate=v.subnet_cidr_or_none),
        prefixlen=Attr(post=True, convert=v.to_int, visible=False, filter=False, sort=False),
        subnetpool_id=Attr(post=True, default=None, validate=v.uuid_or_none),
        use_default_subnetpool=Attr(post=True, default=False, convert=v.to_boolean, visible=False,
                                    filter=False, sort=False),
        gateway_ip=Attr(post=True, put=True, validate=v.ip_address_or_none),
        allocation_pools=Attr(post=True, put=True, validate=v.dict_list(_pool), filter=False, sort=False),
        dns_nameservers=Attr(post=True, put=True, default=list, validate=v.list_of(v.ip_address),
                             sort=False),
        host_routes=Attr(post=True, put=True, default=list, validate=v.dict_list(_host_route),
                         filter=False, sort=False),
        enable_dhcp=Attr(post=True, put=True, default=True, convert=v.to_boolean, validate=v.boolean),
        ipv6_ra_mode=Attr(post=True, default=None, validate=lambda x: None if x is None else v.values(IPV6_MODES)(x)),
        ipv6_address_mode=Attr(post=True, default=None,
                               validate=lambda x: None if x is None else v.values(IPV6_MODES)(x)),
        service_types=Attr(post=True, put=True, default=list, validate=v.string_list, sort=False),
        segment_id=Attr(post=True, put=True, default=None, validate=v.uuid_or_none),
        dns_publish_fixed_ip=Attr(post=True, put=True, default=False, convert=v.to_boolean,
                                  validate=v.boolean),
    ),
)
