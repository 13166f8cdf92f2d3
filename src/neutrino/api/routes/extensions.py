"""GET /v2.0/extensions: exactly the aliases whose behaviour is implemented, in Neutron's names.

Clients and test suites decide what to exercise from this list, so an alias appears only when
the collection it belongs to is served (``requires``) — never aspirationally.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino.api.controller import json_response
from neutrino.errors import NotFound

UPDATED = "2013-01-01T10:00:00-00:00"

# alias, name, description, collection that must be served for it to be advertised
EXTENSIONS: tuple[tuple[str, str, str, str], ...] = (
    ("agent", "agent", "The agent management extension.", "agents"),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs", "ports"),
    ("availability_zone", "Availability Zone", "The availability zone extension.", "availability_zones"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application", "ports"),
    ("dns-domain-ports", "dns_domain for ports", "Allows the DNS domain to be specified for a network port.",
     "ports"),
    ("dns-integration", "DNS Integration", "Provides integration with DNS.", "ports"),
    ("empty-string-filtering", "Empty String Filtering Extension",
     "Allow filtering by attributes with empty string value", "networks"),
    ("external-net", "Neutron external network", "Adds external network attribute to network resource.",
     "networks"),
    ("extra_dhcp_opt", "Neutron Extra DHCP options",
     "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified "
     "(e.g. tftp-server, server-ip-address, bootfile-name)", "ports"),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router", "routers"),
    ("extraroute-atomic", "Atomically add/remove extra routes",
     "Edit extra routes of a router on server side by atomically adding/removing extra routes", "routers"),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode",
     "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway",
     "routers"),
    ("filter-validation", "Filter parameters validation", "Provides validation on filter parameters.",
     "networks"),
    ("fip-port-details", "Floating IP Port Details Extension",
     "Add port_details attribute to Floating IP resource", "floatingips"),
    ("ip-substring-filtering", "IP address substring filtering",
     "Provides IP address substring filtering when listing ports", "ports"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource.", "networks"),
    ("net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource.",
     "networks"),
    ("network-ip-availability", "Network IP Availability",
     "Provides IP availability data for each network and subnet.", "network-ip-availabilities"),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled.", "networks"),
    ("port-mac-address-regenerate", "Neutron Port MAC address regenerate",
     "Network port MAC address regenerate", "ports"),
    ("port-security", "Port Security", "Provides port security", "ports"),
    ("port-security-groups-filtering", "Port filtering on security groups",
     "Provides security groups filtering when listing ports", "ports"),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled.",
     "networks"),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks", "networks"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project", "quotas"),
    ("quota_details", "Quota details management support",
     "Expose functions for quotas usage statistics per project", "quotas"),
    ("router", "Neutron L3 Router",
     "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external "
     "networks via a NAT gateway.", "routers"),
    ("security-group", "security-group", "The security groups extension.", "security-groups"),
    ("security-groups-normalized-cidr", "Security Group Rules Normalized CIDR",
     "Add new field with normalized remote_ip_prefix cidr in SG rule", "security-group-rules"),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled.", "networks"),
    ("standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes", "networks"),
    ("standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources.", "networks"),
    ("standard-attr-tag", "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, "
     "router, network, policy, subnetpool, port, security_group, floatingip",
     "Enables to set tag on resources with standard attribute.", "networks"),
    ("standard-attr-timestamp", "Resource timestamps",
     "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
     "networks"),
    ("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not",
     "security-groups"),
    ("subnet-external-network", "Subnet belongs to an external network",
     "Informs if the subnet belongs to an external network", "subnets"),
    ("subnet-service-types", "Subnet service types", "Provides ability to set the subnet service_types field",
     "subnets"),
    ("tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation",
     "Allow to tag ports during bulk creation", "ports"),
)


def _doc(alias: str, name: str, description: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": description, "updated": UPDATED, "links": []}


def advertised(collections: set[str]) -> list[dict[str, Any]]:
    return [_doc(a, n, d) for a, n, d, needs in EXTENSIONS if needs in collections]


def routes(collections: set[str]) -> list[BaseRoute]:
    exts = advertised(collections)
    by_alias = {e["alias"]: e for e in exts}

    async def index(_request: Request) -> Response:
        return json_response({"extensions": exts})

    async def show(request: Request) -> Response:
        alias = request.path_params["alias"]
        if alias not in by_alias:
            raise NotFound(f"Extension with alias {alias} does not exist")
        return json_response({"extension": by_alias[alias]})

    return [Route("/v2.0/extensions", index, methods=["GET"]),
            Route("/v2.0/extensions/{alias}", show, methods=["GET"])]
