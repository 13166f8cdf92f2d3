"""The generic resource controller: one set of handlers drives every collection.

Per request: parse and validate with the resource definition, run the service's function in
one transaction (bulk creates share it), then filter/sort/page/strip the result. Services
implement :class:`Service`; they never see HTTP and never render responses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from neutrino.api import attributes, guard, query
from neutrino.api.attributes import Resource
from neutrino.context import Context
from neutrino.db.engine import Database
from neutrino.errors import (
    HTTPBadRequest,
    MalformedRequestBody,
    NotFound,
    PolicyNotAuthorized,
    RequestTooLarge,
    RevisionNumberConstraintFailed,
)
from neutrino.services import common

Item = dict[str, Any]
Filters = dict[str, list[Any]]


class Service(Protocol):
    """What a resource's service offers the controller; every call runs inside a transaction."""

    special_filters: dict[str, Callable[[Item, list[Any]], bool]]

    def get_all(self, s: Session, ctx: Context, filters: Filters) -> list[Item]: ...

    def get(self, s: Session, ctx: Context, id: str) -> Item: ...

    def create(self, s: Session, ctx: Context, body: Item) -> Item: ...

    def update(self, s: Session, ctx: Context, id: str, body: Item) -> Item: ...

    def delete(self, s: Session, ctx: Context, id: str) -> None: ...

    def row(self, s: Session, ctx: Context, id: str) -> Any:
        """The ORM row the context may see (404 otherwise); used for tags and If-Match."""
        ...


def context_of(request: Request) -> Context:
    return request.state.context  # type: ignore[no-any-return]


async def read_limited(request: Request, max_size: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``max_size``."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_size:
        raise RequestTooLarge()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_size:
            raise RequestTooLarge()
    return body


async def read_json(request: Request, max_size: int) -> Any:
    body = await read_limited(request, max_size)
    try:
        data = orjson.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequestBody(reason=f"Cannot understand JSON: {exc}") from None
    return guard.check_neutron_body(data)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, default=_json_default), status_code=status,
                    media_type="application/json")


def _json_default(value: Any) -> Any:
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def require_writer(ctx: Context, action: str) -> None:
    if not ctx.can_write:
        raise PolicyNotAuthorized(action=f"rule:{action}")


def check_if_match(request: Request, current: int) -> None:
    header = request.headers.get("if-match")
    if not header:
        return
    for part in header.split(","):
        part = part.strip()
        if not part.startswith("revision_number="):
            raise HTTPBadRequest(msg=f"Invalid If-Match header {header!r}: expected revision_number=N")
        try:
            expected = int(part.split("=", 1)[1])
        except ValueError:
            raise HTTPBadRequest(msg=f"Invalid If-Match header {header!r}: expected revision_number=N") from None
        if expected != current:
            raise RevisionNumberConstraintFailed(expected=expected, current=current)


@dataclass
class Controller:
    """HTTP handlers for one resource collection."""

    res: Resource
    svc: Any  # Service
    db: Database
    max_body: int = 1024 * 1024
    max_limit: int = 0

    def _render(self, item: Item, ctx: Context, fields: list[str] | None) -> Item:
        return attributes.render(self.res, item, ctx, fields)

    async def index(self, request: Request) -> Response:
        ctx = context_of(request)
        params = list(request.query_params.multi_items())
        q = query.parse(self.res, params, self.max_limit, ctx.is_admin)
        items = await run_in_threadpool(self.db.read, lambda s: self.svc.get_all(s, ctx, q.filters))
        special = self.svc.special_filters
        items = [i for i in items if query.matches(i, q.filters, special)]
        if q.sorts or q.limit or q.marker:
            items = query.paginate(query.sort_items(items, q.sorts), q)
        body: dict[str, Any] = {self.res.collection: [self._render(i, ctx, q.fields) for i in items]}
        page_links = query.links(str(request.url.replace(query="")), params, items, q)
        if page_links:
            body[f"{self.res.collection}_links"] = page_links
        return json_response(body)

    async def show(self, request: Request) -> Response:
        ctx = context_of(request)
        fields = [f for v in request.query_params.getlist("fields") for f in v.split(",") if f]
        item = await run_in_threadpool(self.db.read, lambda s: self.svc.get(s, ctx, request.path_params["id"]))
        return json_response({self.res.member: self._render(item, ctx, fields)})

    async def create(self, request: Request) -> Response:
        ctx = context_of(request)
        require_writer(ctx, f"create_{self.res.rule}")
        items, bulk = attributes.parse_body(self.res, await read_json(request, self.max_body))
        bodies = [attributes.prepare_create(self.res, i, ctx) for i in items]
        created = await run_in_threadpool(self.db.transaction, lambda s: [self.svc.create(s, ctx, b) for b in bodies])
        if bulk:
            return json_response({self.res.collection: [self._render(i, ctx, None) for i in created]}, 201)
        return json_response({self.res.member: self._render(created[0], ctx, None)}, 201)

    async def update(self, request: Request) -> Response:
        ctx = context_of(request)
        require_writer(ctx, f"update_{self.res.rule}")
        data = await read_json(request, self.max_body)
        if not isinstance(data, dict) or self.res.member not in data:
            raise HTTPBadRequest(msg=f"Unable to find '{self.res.member}' in request body")
        body = attributes.prepare_update(self.res, data[self.res.member], ctx)
        id = request.path_params["id"]

        def run(s: Session) -> Item:
            check_if_match(request, self.svc.row(s, ctx, id).revision_number)
            return self.svc.update(s, ctx, id, body)

        updated = await run_in_threadpool(self.db.transaction, run)
        return json_response({self.res.member: self._render(updated, ctx, None)})

    async def delete(self, request: Request) -> Response:
        ctx = context_of(request)
        require_writer(ctx, f"delete_{self.res.rule}")
        id = request.path_params["id"]

        def run(s: Session) -> None:
            check_if_match(request, self.svc.row(s, ctx, id).revision_number)
            self.svc.delete(s, ctx, id)

        await run_in_threadpool(self.db.transaction, run)
        return Response(status_code=204)

    # ------------------------------------------------------------ tags subresource

    async def _tag_op(self, request: Request, op: Callable[[list[str]], list[str]]) -> list[str]:
        ctx = context_of(request)

        def run(s: Session) -> list[str]:
            row = self.svc.row(s, ctx, request.path_params["id"])
            if row.project_id != ctx.project_id and not ctx.is_admin:
                raise PolicyNotAuthorized(action=f"rule:update_{self.res.rule}:tags")
            return common.set_tags(row, op(list(row.tags or [])))

        return await run_in_threadpool(self.db.transaction, run)

    async def _tags(self, request: Request) -> list[str]:
        ctx = context_of(request)
        row = await run_in_threadpool(self.db.read, lambda s: self.svc.row(s, ctx, request.path_params["id"]))
        return list(row.tags or [])

    async def tags_index(self, request: Request) -> Response:
        return json_response({"tags": await self._tags(request)})

    async def tag_show(self, request: Request) -> Response:
        tags = await self._tags(request)
        if request.path_params["tag"] not in tags:
            raise NotFound(f"Tag {request.path_params['tag']} could not be found.")
        return Response(status_code=204)

    async def tags_replace(self, request: Request) -> Response:
        require_writer(context_of(request), f"update_{self.res.rule}:tags")
        data = await read_json(request, self.max_body)
        if not isinstance(data, dict) or "tags" not in data:
            raise HTTPBadRequest(msg="Invalid input for tags. Reason: body must be {\"tags\": [...]}.")
        reason = attributes.v.tags(data["tags"])
        if reason:
            raise HTTPBadRequest(msg=f"Invalid input for tags. Reason: {reason}.")
        new = list(dict.fromkeys(data["tags"]))
        return json_response({"tags": await self._tag_op(request, lambda _old: new)})

    async def tag_add(self, request: Request) -> Response:
        require_writer(context_of(request), f"update_{self.res.rule}:tags")
        tag = request.path_params["tag"]
        if reason := attributes.v.string(255)(tag):
            raise HTTPBadRequest(msg=f"Invalid input for tag. Reason: {reason}.")
        await self._tag_op(request, lambda old: old if tag in old else old + [tag])
        return Response(status_code=201)

    async def tags_delete_all(self, request: Request) -> Response:
        require_writer(context_of(request), f"update_{self.res.rule}:tags")
        await self._tag_op(request, lambda _old: [])
        return Response(status_code=204)

    async def tag_delete(self, request: Request) -> Response:
        require_writer(context_of(request), f"update_{self.res.rule}:tags")
        tag = request.path_params["tag"]

        def remove(old: list[str]) -> list[str]:
            if tag not in old:
                raise NotFound(f"Tag {tag} could not be found.")
            return [t for t in old if t != tag]

        await self._tag_op(request, remove)
        return Response(status_code=204)


