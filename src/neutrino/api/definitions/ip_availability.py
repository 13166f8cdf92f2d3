"""network-ip-availabilities: the network-ip-availability extension (admin only).

URL ``/v2.0/network-ip-availabilities``, JSON key ``network_ip_availabilities``; ``ip_version``
is a filter only (it selects the subnets counted), as in neutron-lib's definition.
"""

from neutrino.api.attributes import Attr, Resource

NETWORK_IP_AVAILABILITIES = Resource(
    member="network_ip_availability",
    collection="network_ip_availabilities",
    path="network-ip-availabilities",
    attrs={
        "network_id": Attr(),
        "network_name": Attr(),
        "project_id": Attr(),
        "tenant_id": Attr(),
        "total_ips": Attr(filter=False),
        "used_ips": Attr(filter=False),
        "subnet_ip_availability": Attr(filter=False, sort=False),
    },
    extra_filters=("ip_version",),
)
