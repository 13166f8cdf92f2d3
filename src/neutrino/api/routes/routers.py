"""The router member actions (PUT /v2.0/routers/{id}/<action>), as Neutron's l3 and
extraroute-atomic extensions define them.

``add_router_interface`` / ``remove_router_interface`` take ``{"subnet_id": ...}`` or
``{"port_id": ...}`` (unwrapped) and answer the interface info; ``add_extraroutes`` /
``remove_extraroutes`` take ``{"router": {"routes": [...]}}`` and answer the router.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino.api import attributes
from neutrino.api import validators as v
from neutrino.api.controller import (
    authorize_change,
    context_of,
    hidden_attrs,
    json_response,
    read_json,
    scoped,
)
from neutrino.api.definitions.routers import ROUTERS
from neutrino.errors import HTTPBadRequest
from neutrino.services.routers import RouterService


def _routes_body(data: Any) -> list[Any]:
    if not isinstance(data, dict) or not isinstance(data.get("router"), dict):
        raise HTTPBadRequest(msg="Unable to find 'router' in request body")
    router = data["router"]
    if set(router) != {"routes"}:
        unknown = [k for k in router if k != "routes"]
        if unknown:
            raise HTTPBadRequest(msg=f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        raise HTTPBadRequest(msg="Failed to parse request. Required attribute 'routes' not specified")
    routes = [] if router["routes"] is None else router["routes"]
    if reason := v.hostroutes(routes):
        raise HTTPBadRequest(msg=f"Invalid input for routes. Reason: {reason}.")
    return v.to_canonical_routes(routes)  # type: ignore[no-any-return]


def member_routes(svc: RouterService, max_body: int) -> list[BaseRoute]:
    policy, work = svc.deps.policy, svc.deps.work

    async def interface(request: Request, add: bool) -> Response:
        ctx = scoped(policy, context_of(request), ROUTERS)
        action = "add_router_interface" if add else "remove_router_interface"
        info = await read_json(request, max_body)
        router_id = request.path_params["id"]
        fn = svc.add_interface if add else svc.remove_interface

        def run(s: Session, body: Any) -> Any:
            authorize_change(policy, s, ctx, ROUTERS, svc, router_id, action)
            return fn(s, ctx, router_id, body)

        return json_response(await run_in_threadpool(work.write, run, info))

    async def extraroutes(request: Request, add: bool) -> Response:
        ctx = scoped(policy, context_of(request), ROUTERS)
        routes = _routes_body(await read_json(request, max_body))
        router_id = request.path_params["id"]

        def run(s: Session, routes: Any) -> Any:
            authorize_change(policy, s, ctx, ROUTERS, svc, router_id,
                             "add_extraroutes" if add else "remove_extraroutes")
            return svc.change_routes(s, ctx, router_id, routes, add)

        item = await run_in_threadpool(work.write, run, routes)
        hidden = hidden_attrs(policy, ctx, ROUTERS, item)
        return json_response({"router": attributes.render(ROUTERS, item, hidden, None)})

    async def add_interface(request: Request) -> Response:
        return await interface(request, True)

    async def remove_interface(request: Request) -> Response:
        return await interface(request, False)

    async def add_extraroutes(request: Request) -> Response:
        return await extraroutes(request, True)

    async def remove_extraroutes(request: Request) -> Response:
        return await extraroutes(request, False)

    base = "/v2.0/routers/{id}"
    return [
        Route(f"{base}/add_router_interface", add_interface, methods=["PUT"]),
        Route(f"{base}/remove_router_interface", remove_interface, methods=["PUT"]),
        Route(f"{base}/add_extraroutes", add_extraroutes, methods=["PUT"]),
        Route(f"{base}/remove_extraroutes", remove_extraroutes, methods=["PUT"]),
    ]
