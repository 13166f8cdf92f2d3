"""The ASGI application: Neutron v2.0 under /v2.0, Keystone v3 under /identity/v3, one port.

Built by :func:`build_app` from explicit parts (config, database, services); nothing global.
Errors anywhere below become ``{"NeutronError": {...}}`` bodies with Neutron's status codes;
an unexpected exception is logged with its traceback and answered 500 (and is a bug).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from neutrino.api import openapi
from neutrino.api.controller import Controller, json_response
from neutrino.api.guard import GuardMiddleware
from neutrino.context import Context
from neutrino.errors import DatabaseUnavailable, HTTPBadRequest, NeutrinoError, NotAuthenticated
from neutrino.services import db_failures

LOG = logging.getLogger(__name__)

Authenticate = Callable[[str], Context]
Cached = Callable[[str], Context | None]
Decide = Callable[[Context], Context]


INTERNAL_ERROR = {"NeutronError": {"type": "HTTPInternalServerError",
                                   "message": "Request Failed: internal server error while processing your request.",
                                   "detail": ""}}


def neutron_error(exc: NeutrinoError) -> Response:
    body = {"NeutronError": {"type": exc.type, "message": exc.msg, "detail": ""}}
    response = json_response(body, exc.status)
    if (retry_after := getattr(exc, "retry_after", None)) is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def database_error(exc: BaseException) -> NeutrinoError | None:
    """What the client is told about a database failure that is not a bug of ours: the server
    is unreachable (503), or it refused a value (too long for its column, not storable): 400."""
    kind = db_failures.classify(exc)
    if kind == "unavailable":
        return DatabaseUnavailable()
    if kind == "invalid":
        return HTTPBadRequest(msg="Invalid input: a value is not valid for the database (too long or "
                                  "not representable)")
    return None


def _http_error(status: int, detail: str) -> Response:
    names = {404: "HTTPNotFound", 405: "HTTPMethodNotAllowed", 400: "HTTPBadRequest"}
    body = {"NeutronError": {"type": names.get(status, "HTTPError"), "message": detail, "detail": ""}}
    return json_response(body, status)


class ErrorMiddleware:
    """Outermost layer: every failure becomes a NeutronError body, never a stack trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        request_id = f"req-{uuid.uuid4()}".encode()

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (b"x-openstack-request-id", request_id)]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except NeutrinoError as exc:
            if not started:
                await neutron_error(exc)(scope, receive, tracking_send)
        except HTTPException as exc:
            if not started:
                await _http_error(exc.status_code, str(exc.detail))(scope, receive, tracking_send)
        except Exception as exc:
            mapped = database_error(exc)
            if mapped is None:  # a 500 is a bug: log it whole, answer briefly
                LOG.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await (neutron_error(mapped) if mapped else json_response(INTERNAL_ERROR, 500))(
                    scope, receive, tracking_send)


class AuthMiddleware:
    """Turns X-Auth-Token into a request context for /v2.0; identity and version docs are open.

    A cached token is resolved on the event loop; a cache miss reads the database, so it goes
    to the thread pool rather than stall every other request.
    """

    def __init__(self, app: ASGIApp, authenticate: Authenticate | None, cached: Cached | None = None,
                 decide: Decide | None = None) -> None:
        self.app = app
        self.authenticate = authenticate
        self.cached = cached
        self.decide = decide  # the policy's say on the context (is it an admin?)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/v2.0") and path not in ("/v2.0", "/v2.0/"):
            headers = dict(scope["headers"])
            scope.setdefault("state", {})
            ctx = await self._context(headers)
            scope["state"]["context"] = self.decide(ctx) if self.decide is not None else ctx
        await self.app(scope, receive, send)

    async def _context(self, headers: dict[bytes, bytes]) -> Context:
        if self.authenticate is None:  # noauth: whoever the headers say, admin by default
            project = headers.get(b"x-project-id", b"").decode("latin-1") or "admin"
            roles = headers.get(b"x-roles", b"admin,member,reader").decode("latin-1").split(",")
            return Context(user_id=headers.get(b"x-user-id", b"").decode("latin-1"), project_id=project,
                           roles=frozenset(r.strip() for r in roles))
        token = headers.get(b"x-auth-token", b"").decode("ascii")  # GuardMiddleware refused anything else
        if not token:
            raise NotAuthenticated()
        ctx = self.cached(token) if self.cached is not None else None
        return ctx if ctx is not None else await run_in_threadpool(self.authenticate, token)


class Changes(Protocol):
    """Where committed writes are told (the server's ``services.reach.Notifier``)."""

    def before(self, resource: str, id: str) -> object:
        """Read, before an update or delete, what it may move (the hosts a port leaves)."""
        ...

    def after(self, resource: str, id: str, action: str, before: object, created: list[str]) -> None:
        """Publish the change; ``created`` are the ids a collection POST made."""
        ...


_WRITES = {"POST": "create", "PUT": "update", "DELETE": "delete"}


def created_ids(body: bytes) -> list[str]:
    """The ids in a create's answer: ``{"port": {...}}`` or bulk ``{"ports": [...]}``."""
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    found = []
    for value in doc.values() if isinstance(doc, dict) else ():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                found.append(item["id"])
    return found


class ChangeMiddleware:
    """After every successful /v2.0 write, tell ``changes`` (the bus) what changed.

    One place for every write, the router interface and extra-route actions included, so no
    service can forget to wake the agents. The resource is the collection of the path and the
    id the segment after it (for a collection POST, the ids in the answer); an update or delete
    is also shown to ``changes`` before it runs, so the hosts it moves things away from are told.
    """

    def __init__(self, app: ASGIApp, changes: Changes | None) -> None:
        self.app = app
        self.changes = changes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "")
        path: str = scope.get("path", "")
        changes = self.changes
        if changes is None or scope["type"] != "http" or method not in _WRITES or not path.startswith("/v2.0/"):
            await self.app(scope, receive, send)
            return
        parts = [p for p in path.split("/") if p][1:]
        resource, id = (parts[0] if parts else ""), (parts[1] if len(parts) > 1 else "")
        action = parts[2].replace("-", "_") if len(parts) > 2 else _WRITES[method]
        before = await run_in_threadpool(changes.before, resource, id) if id and method != "POST" else None
        status = 0
        body: list[bytes] = []

        async def watching_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not id and 200 <= status < 300:
                body.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, watching_send)
        if 200 <= status < 300:
            created = created_ids(b"".join(body)) if body else []
            await run_in_threadpool(changes.after, resource, id, action, before, created)


def version_document(base_url: str) -> dict[str, Any]:
    return {"versions": [{"id": "v2.0", "status": "CURRENT",
                          "links": [{"href": f"{base_url}/v2.0/", "rel": "self"}]}]}


def resource_routes(controllers: list[Controller]) -> list[BaseRoute]:
    """The standard routes of each collection, plus its /tags subresource."""
    routes: list[BaseRoute] = []
    for c in controllers:
        coll = f"/v2.0/{c.res.url_path}"
        routes += [
            Route(coll, c.index, methods=["GET"]),
            Route(coll, c.create, methods=["POST"]),
            Route(coll + "/{id}", c.show, methods=["GET"]),
            Route(coll + "/{id}", c.update, methods=["PUT"]),
            Route(coll + "/{id}", c.delete, methods=["DELETE"]),
        ]
        if "tags" in c.res.attrs:
            routes += [
                Route(coll + "/{id}/tags", c.tags_index, methods=["GET"]),
                Route(coll + "/{id}/tags", c.tags_replace, methods=["PUT"]),
                Route(coll + "/{id}/tags", c.tags_delete_all, methods=["DELETE"]),
                Route(coll + "/{id}/tags/{tag}", c.tag_show, methods=["GET"]),
                Route(coll + "/{id}/tags/{tag}", c.tag_add, methods=["PUT"]),
                Route(coll + "/{id}/tags/{tag}", c.tag_delete, methods=["DELETE"]),
            ]
    return routes


def build_app(
    base_url: str,
    routes: list[BaseRoute],
    identity_routes: list[BaseRoute],
    authenticate: Authenticate | None,
    cached: Cached | None = None,
    thread_pool_size: int = 4,
    changes: Changes | None = None,
    decide: Decide | None = None,
) -> Starlette:
    """Assemble the ASGI app; ``routes`` are /v2.0 routes, ``identity_routes`` go under /identity."""

    async def root(_request: Request) -> Response:
        return json_response(version_document(base_url))

    async def v2_root(_request: Request) -> Response:
        colls = sorted({r.path.split("/")[2] for r in routes if isinstance(r, Route) and r.path.count("/") == 2})
        return json_response({"resources": [
            {"name": c[:-1], "collection": c,
             "links": [{"href": f"{base_url}/v2.0/{c}", "rel": "self"}]} for c in colls]})

    all_routes: list[BaseRoute] = [
        Route("/", root, methods=["GET"]),
        Route("/v2.0", v2_root, methods=["GET"]),
        Route("/v2.0/", v2_root, methods=["GET"]),
        Route("/openapi.json", openapi.endpoint(base_url, routes), methods=["GET"]),
        *routes,
        # "/identity" itself (the catalog URL) answers directly rather than redirect to "/identity/"
        *[Route("/identity", r.endpoint, methods=["GET"]) for r in identity_routes
          if isinstance(r, Route) and r.path == "/"],
        Mount("/identity", routes=identity_routes),
    ]

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _http_error(exc.status_code, str(exc.detail))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = thread_pool_size
        yield

    return Starlette(
        routes=all_routes,
        lifespan=lifespan,
        middleware=[Middleware(ErrorMiddleware), Middleware(GuardMiddleware),
                    Middleware(AuthMiddleware, authenticate=authenticate, cached=cached, decide=decide),
                    Middleware(ChangeMiddleware, changes=changes)],
        exception_handlers={HTTPException: http_error},
    )
