"""Special routes: quota management (Neutron's quotasv2), and dash-named collections.

Quotas are not a generic collection: they are keyed by project, have member actions
(``/default``, ``/details``) and a collection action (``/tenant``), and only admins change them.

    GET    /v2.0/quotas                         non-default limits, per project (get_quota: admin, manager)
    POST   /v2.0/quotas                         501 HTTPNotImplemented, as in Neutron
    GET    /v2.0/quotas/tenant | /project       who is asking
    GET    /v2.0/quotas/{project_id}            {"quota": {"network": 100, ...}}
    PUT    /v2.0/quotas/{project_id}            admin; {"quota": {"network": 5}}, check_limit/force
    DELETE /v2.0/quotas/{project_id}            admin; back to the defaults (404 if there were none)
    GET    /v2.0/quotas/{project_id}/default    the configured defaults
    GET    /v2.0/quotas/{project_id}/details    {"quota": {"network": {"limit", "used", "reserved"}}}
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino.api import validators as v
from neutrino.api.controller import context_of, json_response, read_json
from neutrino.context import Context
from neutrino.errors import BadRequest, HTTPBadRequest, InvalidInput, NeutrinoError
from neutrino.policy import Policy
from neutrino.services.deps import Deps
from neutrino.services.quotas import MAX_LIMIT, QuotaService


class HTTPNotImplemented(NeutrinoError):
    status = 501
    message = "POST requests are not supported on this resource."
    type_name = "HTTPNotImplemented"


class QuotaMissingTenant(BadRequest):
    message = "Tenant-id was missing from quota request."
    type_name = "QuotaMissingTenant"


def _may_read(policy: Policy, ctx: Context, project_id: str) -> None:
    """A project reads its own quota; another project's needs ``get_quota`` (Neutron's show)."""
    if project_id != ctx.project_id:
        policy.authorize(ctx, "get_quota", {"project_id": project_id})


def _parse_update(data: Any, resources: tuple[str, ...]) -> tuple[dict[str, int], bool]:
    """The body of PUT: known resources only, integers -1..2^31-1; check_limit unless force."""
    if not isinstance(data, dict) or "quota" not in data:
        raise HTTPBadRequest(msg="Unable to find 'quota' in request body")
    body = data["quota"]
    if not isinstance(body, dict):
        raise HTTPBadRequest(msg=f"Invalid input for quota. Reason: '{body}' is not a dictionary.")
    body = dict(body)
    flags = {}
    for flag in ("check_limit", "force"):
        if flag in body:
            try:
                flags[flag] = v.to_boolean(body.pop(flag))
            except v.ConversionError as exc:
                raise HTTPBadRequest(msg=f"Invalid input for {flag}. Reason: {exc}.") from None
    unknown = [k for k in body if k not in resources]
    if unknown:
        raise HTTPBadRequest(msg=f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    values: dict[str, int] = {}
    check = v.integer_range(-1, MAX_LIMIT)
    for name, raw in body.items():
        try:
            value = v.to_int(raw)
        except v.ConversionError as exc:
            raise InvalidInput(error_message=str(exc)) from None
        if reason := check(value):
            raise HTTPBadRequest(msg=f"Invalid input for {name}. Reason: {reason}.")
        values[name] = value
    check_limit = flags.get("check_limit", True) and not flags.get("force", False)
    return values, check_limit


def quota_routes(deps: Deps) -> list[BaseRoute]:
    svc = QuotaService(deps)
    work = deps.work
    policy = deps.policy
    max_body = deps.cfg.DEFAULT.max_request_body_size

    async def index(request: Request) -> Response:
        ctx = context_of(request)
        # Neutron's index asks ``get_quota`` of the caller's own project first (403 for a plain
        # member or reader), then lists every project's; here only those ``get_quota`` allows
        # (a project manager: its own), so the list never shows what a show would refuse
        policy.authorize(ctx, "get_quota", {"project_id": ctx.project_id})
        quotas = await run_in_threadpool(work.read, lambda s: svc.all_projects(s, None))
        allowed = policy.allowed(ctx, "get_quota", [{"project_id": q["project_id"]} for q in quotas])
        return json_response({"quotas": [q for q, ok in zip(quotas, allowed, strict=True) if ok]})

    async def create(_request: Request) -> Response:
        raise HTTPNotImplemented()

    async def tenant(request: Request) -> Response:
        ctx = context_of(request)
        if not ctx.project_id:
            raise QuotaMissingTenant()
        return json_response({"tenant": {"tenant_id": ctx.project_id}})

    async def project(request: Request) -> Response:
        ctx = context_of(request)
        if not ctx.project_id:
            raise QuotaMissingTenant(message="Project-id was missing from quota request.")
        return json_response({"project": {"project_id": ctx.project_id}})

    async def show(request: Request) -> Response:
        ctx, pid = context_of(request), request.path_params["project_id"]
        _may_read(policy, ctx, pid)
        return json_response({"quota": await run_in_threadpool(work.read, lambda s: svc.limits(s, pid))})

    async def default(request: Request) -> Response:
        ctx, pid = context_of(request), request.path_params["project_id"]
        _may_read(policy, ctx, pid)
        return json_response({"quota": svc.defaults()})

    async def details(request: Request) -> Response:
        ctx, pid = context_of(request), request.path_params["project_id"]
        _may_read(policy, ctx, pid)
        return json_response({"quota": await run_in_threadpool(work.read, lambda s: svc.details(s, pid))})

    async def update(request: Request) -> Response:
        ctx, pid = context_of(request), request.path_params["project_id"]
        policy.authorize(ctx, "update_quota", {"project_id": pid})
        if reason := v.string(255)(pid):  # stored as the quota's project id, on every database alike
            raise HTTPBadRequest(msg=f"Invalid input for project_id. Reason: {reason}.")
        values, check_limit = _parse_update(await read_json(request, max_body), svc.resources)
        limits = await run_in_threadpool(work.write, lambda s, vs: svc.update(s, pid, vs, check_limit), values)
        return json_response({"quota": limits})

    async def remove(request: Request) -> Response:
        ctx, pid = context_of(request), request.path_params["project_id"]
        policy.authorize(ctx, "delete_quota", {"project_id": pid})
        await run_in_threadpool(work.write, lambda s: svc.reset(s, pid))
        return Response(status_code=204)

    return [
        Route("/v2.0/quotas", index, methods=["GET"]),
        Route("/v2.0/quotas", create, methods=["POST"]),
        Route("/v2.0/quotas/tenant", tenant, methods=["GET"]),
        Route("/v2.0/quotas/project", project, methods=["GET"]),
        Route("/v2.0/quotas/{project_id}", show, methods=["GET"]),
        Route("/v2.0/quotas/{project_id}", update, methods=["PUT"]),
        Route("/v2.0/quotas/{project_id}", remove, methods=["DELETE"]),
        Route("/v2.0/quotas/{project_id}/default", default, methods=["GET"]),
        Route("/v2.0/quotas/{project_id}/details", details, methods=["GET"]),
    ]

