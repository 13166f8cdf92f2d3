"""Wiring: config -> database -> identity -> services -> controllers -> ASGI app.

The one place that builds long-lived objects and hands them to each other, so no module reads
configuration or opens the database on import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from neutrino.api import app as api_app
from neutrino.api import query
from neutrino.api.controller import Controller
from neutrino.api.resources import build_extra_routes, build_resources
from neutrino.api.routes import extensions
from neutrino.bus import CHANGES, Bus, Event, make_bus
from neutrino.config import Config
from neutrino.db import migrate
from neutrino.db.engine import Database
from neutrino.identity import Identity
from neutrino.services.agent_rpc import AgentRpc
from neutrino.services.deps import Deps
from neutrino.services.reach import Notifier


@dataclass
class Server:
    app: Starlette
    db: Database
    identity: Identity
    deps: Deps
    bus: Bus
    rpc: AgentRpc
    new_passwords: dict[str, str] = field(default_factory=dict)


def build(cfg: Config, bus: Bus | None = None) -> Server:
    db = Database(cfg.db_url)
    migrate.upgrade(db)
    identity = Identity(db, cfg)
    passwords = identity.bootstrap()
    deps = Deps(cfg=cfg, db=db)
    bus = bus if bus is not None else make_bus(cfg.DEFAULT.transport_url, cfg.DEFAULT.control_exchange)

    def publish(event: Event) -> None:
        bus.publish(CHANGES, event)
    rpc = AgentRpc(deps, publish)
    changes = Notifier(db, rpc.reacher, publish, listened=lambda: bool(getattr(bus, "listened", True)))
    controllers: list[Controller] = []
    extra: list[BaseRoute] = build_extra_routes(deps)
    for res, svc, routes in build_resources(deps):
        controllers.append(Controller(res, svc, deps.work, deps.policy, max_body=cfg.DEFAULT.max_request_body_size,
                                      max_limit=query.pagination_max_limit(cfg.DEFAULT.pagination_max_limit)))
        extra += routes
    routes = extra + api_app.resource_routes(controllers)
    served = {r.path.split("/")[2] for r in routes if isinstance(r, Route) and r.path.startswith("/v2.0/")}
    routes += extensions.routes(served)
    noauth = cfg.DEFAULT.auth_strategy == "noauth"
    app = api_app.build_app(cfg.public_url, routes, identity.routes(),
                            None if noauth else identity.authenticate, None if noauth else identity.cached,
                            cfg.DEFAULT.thread_pool_size, changes=changes, decide=deps.policy.decide_admin)
    return Server(app=app, db=db, identity=identity, deps=deps, bus=bus, rpc=rpc,
                  new_passwords=passwords)


def serve_agent_calls(srv: Server, cfg: Config) -> Callable[[], None] | None:
    """With an AMQP transport, answer agents' calls from this process; returns the stopper."""
    if not cfg.DEFAULT.transport_url.startswith("amqp://"):
        return None
    from neutrino.amqp import RpcServer

    rpc = RpcServer(cfg.DEFAULT.transport_url, srv.rpc, cfg.DEFAULT.control_exchange)
    rpc.start()
    return rpc.stop


def write_clouds_yaml(path: Path, cfg: Config, passwords: dict[str, str]) -> None:
    """clouds.yaml with clouds ``admin`` and ``demo``, as the openstack CLI and SDK read it."""
    ident = cfg.identity
    users = {"admin": (ident.admin_user, ident.admin_project), "demo": (ident.demo_user, ident.demo_project)}
    clouds = {}
    for cloud, (user, project) in users.items():
        clouds[cloud] = {
            "auth": {
                "auth_url": f"{cfg.public_url}/identity/v3",
                "username": user,
                "password": passwords[user],
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": ident.region,
            "interface": "public",
            "identity_api_version": 3,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"clouds": clouds}, sort_keys=False))
    path.chmod(0o600)
