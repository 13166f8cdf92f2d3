"""Which resources the server exposes: (definition, service, extra routes) per collection."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from neutrino.api.attributes import Resource
from neutrino.api.definitions.agents import AGENTS
from neutrino.api.definitions.availability_zones import AVAILABILITY_ZONES
from neutrino.api.definitions.floatingips import FLOATINGIPS
from neutrino.api.definitions.ip_availability import NETWORK_IP_AVAILABILITIES
from neutrino.api.definitions.networks import NETWORKS
from neutrino.api.definitions.ports import PORTS
from neutrino.api.definitions.routers import ROUTERS
from neutrino.api.definitions.security_groups import SECURITY_GROUP_RULES, SECURITY_GROUPS
from neutrino.api.definitions.subnets import SUBNETS
from neutrino.api.routes.quotas import quota_routes
from neutrino.api.routes.routers import member_routes as router_member_routes
from neutrino.services.agents import AgentService
from neutrino.services.availability_zones import AvailabilityZoneService
from neutrino.services.deps import Deps
from neutrino.services.floatingips import FloatingIPService
from neutrino.services.ip_availability import NetworkIpAvailabilityService
from neutrino.services.networks import NetworkService
from neutrino.services.ports import PortService
from neutrino.services.routers import RouterService
from neutrino.services.security_groups import SecurityGroupRuleService, SecurityGroupService
from neutrino.services.subnets import SubnetService

Entry = tuple[Resource, Any, list[BaseRoute]]


def build_resources(deps: Deps) -> list[Entry]:
    networks, fips = NetworkService(deps), FloatingIPService(deps)
    networks.before_delete_hooks.append(fips.delete_disassociated)
    return [
        (NETWORKS, networks, []),
        (SUBNETS, SubnetService(deps), []),
        (PORTS, PortService(deps), []),
        (ROUTERS, (routers := RouterService(deps)),
         router_member_routes(routers, deps.cfg.DEFAULT.max_request_body_size)),
        (FLOATINGIPS, fips, []),
        (SECURITY_GROUPS, SecurityGroupService(deps), []),
        (SECURITY_GROUP_RULES, SecurityGroupRuleService(deps), []),
        (NETWORK_IP_AVAILABILITIES, NetworkIpAvailabilityService(deps), []),
        (AGENTS, AgentService(deps), []),
        (AVAILABILITY_ZONES, AvailabilityZoneService(deps), []),
    ]


def build_extra_routes(deps: Deps) -> list[BaseRoute]:
    """Routes that are not a generic collection: /v2.0/quotas."""
    return quota_routes(deps)
