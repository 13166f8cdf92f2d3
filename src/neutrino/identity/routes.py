"""HTTP handlers of the Keystone v3 subset, mounted by the app under ``/identity``.

Every handler renders its own failures as Keystone error bodies (clients look for
``error.code``), answers HEAD without a body, and does database and password work in the
thread pool so the event loop stays free.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from neutrino.api import guard
from neutrino.identity import auth, schema, store
from neutrino.identity.errors import (
    Forbidden,
    KeystoneError,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
    ServiceUnavailable,
    Unauthorized,
    ValidationError,
)
from neutrino.identity.passwords import hash_password, verify_password
from neutrino.identity.tokens import TokenInfo
from neutrino.identity.views import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME
from neutrino.services import db_failures

if TYPE_CHECKING:
    from neutrino.identity.service import Identity

LOG = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), status_code=status,
                    media_type="application/json", headers=headers)


def database_error(exc: Exception) -> KeystoneError | None:
    """Keystone's answer to a database failure that is not a bug: unreachable (503), or a value
    the database refuses (400)."""
    kind = db_failures.classify(exc)
    if kind == "unavailable":
        return ServiceUnavailable()
    if kind == "invalid":
        return ValidationError("Invalid input: a value is not valid for the database.")
    return None


def _truthy(value: str) -> bool:
    """Keystone's reading of boolean query parameters: anything but 0/false is true."""
    return value.strip().lower() not in ("0", "false", "no", "off")


class Endpoints:
    """The handlers, bound to one :class:`Identity`."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.views = identity.views
        self._routes: list[BaseRoute] = []

    # --- plumbing ----------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Handler, list[str]]] = [
            ("/", self.versions, ["GET"]),
            ("/v3", self.version, ["GET"]),
            ("/v3/", self.version, ["GET"]),
            ("/v3/auth/tokens", self.issue_token, ["POST"]),
            ("/v3/auth/tokens", self.check_token, ["GET"]),
            ("/v3/auth/tokens", self.revoke_token, ["DELETE"]),
            ("/v3/auth/projects", self.auth_projects, ["GET"]),
            ("/v3/auth/domains", self.auth_domains, ["GET"]),
            ("/v3/auth/system", self.auth_system, ["GET"]),
            ("/v3/auth/catalog", self.auth_catalog, ["GET"]),
            ("/v3/domains", self.list_domains, ["GET"]),
            ("/v3/domains/{id}", self.get_domain, ["GET"]),
            ("/v3/projects", self.list_projects, ["GET"]),
            ("/v3/projects", self.create_project, ["POST"]),
            ("/v3/projects/{id}", self.get_project, ["GET"]),
            ("/v3/projects/{id}", self.update_project, ["PATCH"]),
            ("/v3/projects/{id}", self.delete_project, ["DELETE"]),
            ("/v3/projects/{project}/users/{user}/roles", self.list_grants, ["GET"]),
            ("/v3/projects/{project}/users/{user}/roles/{role}", self.grant, ["PUT"]),
            ("/v3/projects/{project}/users/{user}/roles/{role}", self.check_grant, ["GET"]),
            ("/v3/projects/{project}/users/{user}/roles/{role}", self.revoke_grant, ["DELETE"]),
            ("/v3/users", self.list_users, ["GET"]),
            ("/v3/users", self.create_user, ["POST"]),
            ("/v3/users/{id}", self.get_user, ["GET"]),
            ("/v3/users/{id}", self.update_user, ["PATCH"]),
            ("/v3/users/{id}", self.delete_user, ["DELETE"]),
            ("/v3/users/{id}/projects", self.user_projects, ["GET"]),
            ("/v3/users/{id}/password", self.change_password, ["POST"]),
            ("/v3/roles", self.list_roles, ["GET"]),
            ("/v3/roles", self.create_role, ["POST"]),
            ("/v3/roles/{id}", self.get_role, ["GET"]),
            ("/v3/roles/{id}", self.update_role, ["PATCH"]),
            ("/v3/roles/{id}", self.delete_role, ["DELETE"]),
            ("/v3/role_assignments", self.list_assignments, ["GET"]),
            ("/v3/services", self.list_services, ["GET"]),
            ("/v3/services/{id}", self.get_service, ["GET"]),
            ("/v3/endpoints", self.list_endpoints, ["GET"]),
            ("/v3/endpoints/{id}", self.get_endpoint, ["GET"]),
            ("/v3/regions", self.list_regions, ["GET"]),
            ("/v3/regions/{id}", self.get_region, ["GET"]),
        ]
        self._routes = [Route(path, self._wrap(fn), methods=methods) for path, fn, methods in table]
        # Last: unknown paths and wrong methods get Keystone bodies, not the app's Neutron ones.
        return [*self._routes, Route("/{path:path}", self._wrap(self.fallback), methods=ALL_METHODS)]

    def _wrap(self, fn: Handler) -> Handler:
        async def handler(request: Request) -> Response:
            try:
                response = await fn(request)
            except KeystoneError as exc:
                response = json_response(exc.body(), exc.code)
                if exc.code == 401:
                    response.headers["WWW-Authenticate"] = f'Keystone uri="{self.views.root}"'
            except Exception as exc:
                err = database_error(exc)
                if err is None:  # a bug: log it whole, answer in Keystone's shape
                    LOG.exception("identity: unhandled error on %s %s", request.method, request.url.path)
                    err = KeystoneError()
                response = json_response(err.body(), err.code)
                if isinstance(err, ServiceUnavailable):
                    response.headers["Retry-After"] = str(ServiceUnavailable.retry_after)
            if request.method == "HEAD" and response.body:
                response = Response(status_code=response.status_code, headers={
                    k: v for k, v in response.headers.items() if k.lower() != "content-length"})
            response.headers["x-openstack-request-id"] = f"req-{uuid.uuid4()}"
            response.headers["Vary"] = "X-Auth-Token"
            return response

        return handler

    async def fallback(self, request: Request) -> Response:
        if any(r.matches(request.scope)[0] == Match.PARTIAL for r in self._routes):
            raise MethodNotAllowed()
        raise NotFound()

    async def _body(self, request: Request) -> Any:
        limit = self.identity.cfg.DEFAULT.max_request_body_size
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise RequestTooLarge()
        try:
            data = json.loads(raw)
            guard.check_json(data)
        except guard.BodyError as exc:
            raise ValidationError(f"Invalid input for field/attribute: {exc}.") from None
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ValidationError("The request body could not be parsed as JSON.") from None
        return data

    async def _caller(self, request: Request) -> TokenInfo:
        token = request.headers.get("x-auth-token", "")
        info = self.identity.cache.get(token) if token else None
        if info is None and token:
            info = await run_in_threadpool(self.identity.validate, token)
        if info is None:
            raise Unauthorized()
        return info

    async def _admin(self, request: Request, action: str) -> TokenInfo:
        info = await self._caller(request)
        if not info.is_admin:
            raise Forbidden.action(action)
        return info

    async def _read(self, fn: Callable[[Any], Any]) -> Any:
        return await run_in_threadpool(self.identity.read, fn)

    async def _write(self, fn: Callable[[Any], Any]) -> Any:
        return await run_in_threadpool(self.identity.write, fn)

    def _list(self, request: Request, key: str, items: list[Any], path: str) -> Response:
        return json_response(self.views.collection(key, items, path, request.url.query))

    @staticmethod
    def _other_domain(request: Request) -> bool:
        """A ``domain_id`` filter naming anything but the one domain matches nothing."""
        domain = request.query_params.get("domain_id")
        return domain is not None and domain != DEFAULT_DOMAIN_ID

    @staticmethod
    def _enabled(request: Request) -> bool | None:
        value = request.query_params.get("enabled")
        return None if value is None else _truthy(value)

    # --- discovery ---------------------------------------------------------------------------

    async def versions(self, request: Request) -> Response:
        return json_response({"versions": {"values": [self.views.version()]}}, 300)

    async def version(self, request: Request) -> Response:
        return json_response({"version": self.views.version()})

    # --- tokens ------------------------------------------------------------------------------

    async def issue_token(self, request: Request) -> Response:
        req = auth.parse(await self._body(request))
        raw, info = await run_in_threadpool(self.identity.issue, req)
        body = self.views.token(info, catalog="nocatalog" not in request.query_params)
        return json_response(body, 201, headers={"X-Subject-Token": raw})

    async def _subject(self, request: Request, action: str) -> tuple[str, TokenInfo]:
        caller = await self._caller(request)
        subject = request.headers.get("x-subject-token", "")
        info = await run_in_threadpool(self.identity.validate, subject) if subject else None
        if info is None:
            raise NotFound("Failed to validate token")
        if not caller.is_admin and caller.user_id != info.user_id:
            raise Forbidden.action(action)
        return subject, info

    async def check_token(self, request: Request) -> Response:
        subject, info = await self._subject(request, "validate_token")
        body = self.views.token(info, catalog="nocatalog" not in request.query_params)
        return json_response(body, 200, headers={"X-Subject-Token": subject})

    async def revoke_token(self, request: Request) -> Response:
        subject, _ = await self._subject(request, "revoke_token")
        await run_in_threadpool(self.identity.revoke, subject)
        return Response(status_code=204)

    async def auth_projects(self, request: Request) -> Response:
        caller = await self._caller(request)
        rows = await self._read(lambda s: store.projects_of_user(s, caller.user_id))
        return self._list(request, "projects", [self.views.project(p) for p in rows], "auth/projects")

    async def auth_domains(self, request: Request) -> Response:
        await self._caller(request)  # no domain-level roles exist here
        return self._list(request, "domains", [], "auth/domains")

    async def auth_system(self, request: Request) -> Response:
        await self._caller(request)
        return self._list(request, "system", [], "auth/system")

    async def auth_catalog(self, request: Request) -> Response:
        caller = await self._caller(request)
        if caller.project_id is None:
            raise Forbidden("A project-scoped token is required to produce a service catalog.")
        return self._list(request, "catalog", self.views.catalog(), "auth/catalog")

    # --- domains -----------------------------------------------------------------------------

    async def list_domains(self, request: Request) -> Response:
        await self._caller(request)
        name = request.query_params.get("name")
        enabled = self._enabled(request)
        match = name in (None, DEFAULT_DOMAIN_NAME) and enabled in (None, True)
        return self._list(request, "domains", [self.views.domain()] if match else [], "domains")

    async def get_domain(self, request: Request) -> Response:
        await self._caller(request)
        domain_id = request.path_params["id"]
        if domain_id != DEFAULT_DOMAIN_ID:
            raise NotFound.entity("domain", domain_id)
        return json_response({"domain": self.views.domain()})

    # --- projects ----------------------------------------------------------------------------

    async def list_projects(self, request: Request) -> Response:
        await self._admin(request, "list_projects")
        q = request.query_params
        rows = []
        if not self._other_domain(request) and not _truthy(q.get("is_domain", "false")):
            enabled = self._enabled(request)
            rows = await self._read(lambda s: store.list_projects(s, q.get("name"), enabled))
        return self._list(request, "projects", [self.views.project(p) for p in rows], "projects")

    async def create_project(self, request: Request) -> Response:
        await self._admin(request, "create_project")
        data = schema.check(schema.entity(await self._body(request), "project"), schema.PROJECT,
                            create=True, kind="project")
        row = await self._write(lambda s: store.create_project(s, data))
        return json_response({"project": self.views.project(row)}, 201)

    async def get_project(self, request: Request) -> Response:
        caller = await self._caller(request)
        project_id = request.path_params["id"]
        if not caller.is_admin and caller.project_id != project_id:
            raise Forbidden.action("get_project")
        row = await self._read(lambda s: store.get_project(s, project_id))
        return json_response({"project": self.views.project(row)})

    async def update_project(self, request: Request) -> Response:
        await self._admin(request, "update_project")
        data = schema.check(schema.entity(await self._body(request), "project"), schema.PROJECT,
                            create=False, kind="project")
        row = await self._write(lambda s: store.update_project(s, request.path_params["id"], data))
        return json_response({"project": self.views.project(row)})

    async def delete_project(self, request: Request) -> Response:
        await self._admin(request, "delete_project")
        await self._write(lambda s: store.delete_project(s, request.path_params["id"]))
        return Response(status_code=204)

    # --- role grants on projects -------------------------------------------------------------

    def _grant_ids(self, request: Request) -> tuple[str, str, str]:
        p = request.path_params
        return p["project"], p["user"], p.get("role", "")

    async def list_grants(self, request: Request) -> Response:
        await self._admin(request, "list_grants")
        project, user, _ = self._grant_ids(request)
        rows = await self._read(lambda s: store.roles_of(s, project, user))
        return self._list(request, "roles", [self.views.role(r) for r in rows],
                          f"projects/{project}/users/{user}/roles")

    async def grant(self, request: Request) -> Response:
        await self._admin(request, "create_grant")
        ids = self._grant_ids(request)
        await self._write(lambda s: store.grant(s, *ids))
        return Response(status_code=204)

    async def check_grant(self, request: Request) -> Response:
        await self._admin(request, "check_grant")
        project, user, role = self._grant_ids(request)
        if not await self._read(lambda s: store.has_grant(s, project, user, role)):
            raise NotFound(f"Could not find role assignment with role: {role}, user or group: "
                           f"{user}, project, domain, or system: {project}.")
        return Response(status_code=204)

    async def revoke_grant(self, request: Request) -> Response:
        await self._admin(request, "revoke_grant")
        ids = self._grant_ids(request)
        await self._write(lambda s: store.revoke(s, *ids))
        return Response(status_code=204)

    async def list_assignments(self, request: Request) -> Response:
        await self._admin(request, "list_role_assignments")
        q = request.query_params
        names = _truthy(q["include_names"]) if "include_names" in q else False
        rows = []
        # Only user grants on projects exist: group, domain and system filters match nothing.
        if not any(k in q for k in ("group.id", "scope.domain.id", "scope.system")):
            rows = await self._read(lambda s: store.assignments(
                s, q.get("user.id"), q.get("scope.project.id"), q.get("role.id")))
        items = [self.views.assignment(u, p, r, names) for u, p, r in rows]
        return self._list(request, "role_assignments", items, "role_assignments")

    # --- users -------------------------------------------------------------------------------

    async def list_users(self, request: Request) -> Response:
        await self._admin(request, "list_users")
        rows = []
        if not self._other_domain(request):
            name, enabled = request.query_params.get("name"), self._enabled(request)
            rows = await self._read(lambda s: store.list_users(s, name, enabled))
        return self._list(request, "users", [self.views.user(u) for u in rows], "users")

    async def create_user(self, request: Request) -> Response:
        await self._admin(request, "create_user")
        data = schema.check(schema.entity(await self._body(request), "user"), schema.USER,
                            create=True, kind="user")
        password = data.get("password")
        hashed = await run_in_threadpool(hash_password, password) if password else ""
        row = await self._write(lambda s: store.create_user(s, data, hashed))
        return json_response({"user": self.views.user(row)}, 201)

    async def get_user(self, request: Request) -> Response:
        caller = await self._caller(request)
        user_id = request.path_params["id"]
        if not caller.is_admin and caller.user_id != user_id:
            raise Forbidden.action("get_user")
        row = await self._read(lambda s: store.get_user(s, user_id))
        return json_response({"user": self.views.user(row)})

    async def update_user(self, request: Request) -> Response:
        await self._admin(request, "update_user")
        data = schema.check(schema.entity(await self._body(request), "user"), schema.USER,
                            create=False, kind="user")
        password = data.get("password")
        hashed = await run_in_threadpool(hash_password, password) if password else None
        row = await self._write(lambda s: store.update_user(s, request.path_params["id"], data, hashed))
        return json_response({"user": self.views.user(row)})

    async def delete_user(self, request: Request) -> Response:
        await self._admin(request, "delete_user")
        await self._write(lambda s: store.delete_user(s, request.path_params["id"]))
        return Response(status_code=204)

    async def user_projects(self, request: Request) -> Response:
        caller = await self._caller(request)
        user_id = request.path_params["id"]
        if not caller.is_admin and caller.user_id != user_id:
            raise Forbidden.action("list_user_projects")
        rows = await self._read(lambda s: store.projects_of_user(s, store.get_user(s, user_id).id))
        return self._list(request, "projects", [self.views.project(p) for p in rows],
                          f"users/{user_id}/projects")

    async def change_password(self, request: Request) -> Response:
        """Self-service, proven by the old password (no token needed, as in Keystone)."""
        user_id = request.path_params["id"]
        data = schema.entity(await self._body(request), "user")
        new, old = data.get("password"), data.get("original_password")
        if not isinstance(new, str) or not new or not isinstance(old, str):
            raise ValidationError("Invalid input for field 'user': 'password' and "
                                  "'original_password' must be non-empty strings")
        stored = await self._read(lambda s: store.password_hash_of(s, user_id))
        if not await run_in_threadpool(verify_password, old, stored):
            raise Unauthorized("The original password is incorrect.")
        hashed = await run_in_threadpool(hash_password, new)
        await self._write(lambda s: store.update_user(s, user_id, {}, hashed))
        return Response(status_code=204)

    # --- roles -------------------------------------------------------------------------------

    async def list_roles(self, request: Request) -> Response:
        await self._admin(request, "list_roles")
        rows = []
        if request.query_params.get("domain_id") is None:  # no domain-specific roles here
            rows = await self._read(lambda s: store.list_roles(s, request.query_params.get("name")))
        return self._list(request, "roles", [self.views.role(r) for r in rows], "roles")

    async def create_role(self, request: Request) -> Response:
        await self._admin(request, "create_role")
        data = schema.check(schema.entity(await self._body(request), "role"), schema.ROLE,
                            create=True, kind="role")
        row = await self._write(lambda s: store.create_role(s, data))
        return json_response({"role": self.views.role(row)}, 201)

    async def get_role(self, request: Request) -> Response:
        await self._admin(request, "get_role")
        row = await self._read(lambda s: store.get_role(s, request.path_params["id"]))
        return json_response({"role": self.views.role(row)})

    async def update_role(self, request: Request) -> Response:
        await self._admin(request, "update_role")
        data = schema.check(schema.entity(await self._body(request), "role"), schema.ROLE,
                            create=False, kind="role")
        row = await self._write(lambda s: store.update_role(s, request.path_params["id"], data))
        return json_response({"role": self.views.role(row)})

    async def delete_role(self, request: Request) -> Response:
        await self._admin(request, "delete_role")
        await self._write(lambda s: store.delete_role(s, request.path_params["id"]))
        return Response(status_code=204)

    # --- catalog as entities (read-only: the catalog is fixed by configuration) -----------------

    async def _catalog_list(self, request: Request, key: str, items: list[Any]) -> Response:
        """Filters are the entities' own fields (``?service_id=``, ``?interface=``, ``?type=``)."""
        await self._caller(request)
        q = request.query_params
        items = [i for i in items if all(str(i[k]) == q[k] for k in q if k in i)]
        return self._list(request, key, items, key)

    async def _catalog_get(self, request: Request, key: str, items: list[Any]) -> Response:
        await self._caller(request)
        wanted = request.path_params["id"]
        for item in items:
            if item["id"] == wanted:
                return json_response({key[:-1]: item})
        raise NotFound.entity(key[:-1], wanted)

    async def list_services(self, request: Request) -> Response:
        return await self._catalog_list(request, "services", self.views.services())

    async def get_service(self, request: Request) -> Response:
        return await self._catalog_get(request, "services", self.views.services())

    async def list_endpoints(self, request: Request) -> Response:
        return await self._catalog_list(request, "endpoints", self.views.endpoints())

    async def get_endpoint(self, request: Request) -> Response:
        return await self._catalog_get(request, "endpoints", self.views.endpoints())

    async def list_regions(self, request: Request) -> Response:
        return await self._catalog_list(request, "regions", self.views.regions())

    async def get_region(self, request: Request) -> Response:
        return await self._catalog_get(request, "regions", self.views.regions())
