"""floatingips: the l3 floating IP plus fip-port-details (``port_details``),
expose-port-forwarding-in-fip (``port_forwardings``, always empty) and dns-integration's
``dns_name``/``dns_domain``. Floating IPs have no ``name``; ``qos_policy_id`` is not offered.

Setting ``floating_ip_address`` is admin-only (Neutron's create_floatingip:floating_ip_address);
``subnet_id`` is input-only.
"""

from __future__ import annotations

from neutrino.api import validators as v
from neutrino.api.attributes import Attr, Resource, standard_attrs

_attrs = standard_attrs(
    floating_ip_address=Attr(post=True, default=None, validate=v.ip_address_or_none),
    subnet_id=Attr(post=True, default=None, validate=v.uuid_or_none, visible=False, filter=False, sort=False),
    floating_network_id=Attr(post=True, required=True, validate=v.uuid_),
    router_id=Attr(),
    port_id=Attr(post=True, put=True, default=None, validate=v.uuid_or_none, sort=False),
    fixed_ip_address=Attr(post=True, put=True, default=None, validate=v.ip_address_or_none),
    status=Attr(),
    port_details=Attr(filter=False, sort=False),
    port_forwardings=Attr(filter=False, sort=False),
    dns_name=Attr(post=True, default="", convert=v.to_lower, validate=v.fip_dns_name),
    dns_domain=Attr(post=True, default="", convert=v.to_lower, validate=v.dns_domain),
)
del _attrs["name"]

FLOATINGIPS = Resource(member="floatingip", collection="floatingips", attrs=_attrs)
