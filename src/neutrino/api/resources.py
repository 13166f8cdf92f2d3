"""Which resources the server exposes: (definition, service, extra routes) per collection."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from neutrino.api.attributes import Resource
from neutrino.api.definitions.networks import NETWORKS
from neutrino.api.definitions.ports import PORTS
from neutrino.api.definitions.subnets import SUBNETS
from neutrino.services.deps import Deps
from neutrino.services.networks import NetworkService
from neutrino.services.ports import PortService
from neutrino.services.subnets import SubnetService

Entry = tuple[Resource, Any, list[BaseRoute]]


def build_resources(deps: Deps) -> list[Entry]:
    return [
        (NETWORKS, NetworkService(deps), []),
        (SUBNETS, SubnetService(deps), []),
        (PORTS, PortService(deps), []),
    ]
