"""networks: core attributes plus provider, external-net, net-mtu(-writable), port-security,
dns-integration, availability_zone, l2_adjacency and auto-allocated-topology's is_default."""

from neutrino.api import validators as v
from neutrino.api.attributes import Attr, Resource, standard_attrs

NETWORKS = Resource(
    member="network",
    collection="networks",
    attrs=standard_attrs(
        admin_state_up=Attr(post=True, put=True, default=True, convert=v.to_boolean, validate=v.boolean),
        status=Attr(),
        subnets=Attr(sort=False),
        shared=Attr(post=True, put=True, default=False, convert=v.to_boolean, validate=v.boolean),
        mtu=Attr(post=True, put=True, convert=v.to_int, validate=v.integer_range(68, None)),
        **{
            "router:external": Attr(post=True, put=True, default=False, convert=v.to_boolean,
                                    validate=v.boolean),
            "provider:network_type": Attr(post=True, validate=v.string(255)),
            "provider:physical_network": Attr(post=True, validate=v.string_or_none(64)),
            "provider:segmentation_id": Attr(post=True, convert=v.to_int_or_none),
        },
        port_security_enabled=Attr(post=True, put=True, default=True, convert=v.to_boolean,
                                   validate=v.boolean),
        dns_domain=Attr(post=True, put=True, default="", convert=v.to_lower, validate=v.dns_domain),
        availability_zone_hints=Attr(post=True, default=list, validate=v.string_list, filter=False, sort=False),
        availability_zones=Attr(filter=False, sort=False),
        ipv4_address_scope=Attr(filter=False, sort=False),
        ipv6_address_scope=Attr(filter=False, sort=False),
        l2_adjacency=Attr(filter=False, sort=False),
        is_default=Attr(post=True, put=True, default=False, convert=v.to_boolean, validate=v.boolean),
    ),
)
