"""The generic resource controller: one set of handlers drives every collection.

Per request: parse and validate with the resource definition, ask the policy engine (with the
object's attributes, inside the transaction that then runs the service's function; bulk
creates share it), then strip the result. A list reads one page in SQL where the service
describes its rows (``listing``, see :mod:`neutrino.services.listing`), the policy still
deciding each row. Services implement
:class:`Service`; they never see HTTP and never render responses. Whether a caller may do
something is decided here, by :class:`neutrino.policy.Policy`, and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from neutrino.api import attributes, guard, query
from neutrino.api.attributes import UNSET, Resource
from neutrino.context import Context
from neutrino.errors import (
    BadRequest,
    HTTPBadRequest,
    MalformedRequestBody,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
    ResourceNotFound,
    RevisionNumberConstraintFailed,
)
from neutrino.policy import Policy, targets
from neutrino.policy import sql as policy_sql
from neutrino.services import common, listing, security_groups
from neutrino.services.unit_of_work import UnitOfWork

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
        """The ORM row the context may see (404 otherwise); the tag writes change its tags."""
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


def check_if_match(request: Request, item: Item) -> None:
    """412 unless the item's revision is the one If-Match names. ``item`` is the object the
    policy check already loaded; agents carry no revision number and count as 0."""
    current = item.get("revision_number", 0)
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


def _not_found(resource: str, id: str) -> NotFound:
    """The 404 Neutron gives for an object the caller may not see, named as the services name it."""
    if resource == "security_group":
        return security_groups.SecurityGroupNotFound(id=id)
    if resource == "network_ip_availability":
        return ResourceNotFound("network", id)
    return ResourceNotFound(resource, id)


# an object of no project: a rule that allows it does not depend on the object's owner
_FOREIGN = "\x00"
_FOREIGN_TARGET = {"project_id": _FOREIGN, "tenant_id": _FOREIGN, "network:project_id": _FOREIGN,
                   "security_group:project_id": _FOREIGN, "ext_parent:project_id": _FOREIGN}


def scoped(policy: Policy, ctx: Context, res: Resource) -> Context:
    """``ctx`` with ``all_projects`` set when ``get_<res>`` allows another project's object
    (admin, service role, an operator's rule), so that the services' project-narrowed queries
    never hide what the policy would show."""
    if ctx.is_admin or not policy.check(ctx, f"get_{res.rule}", _FOREIGN_TARGET):
        return ctx
    return dataclasses.replace(ctx, all_projects=True)


def visible_target(policy: Policy, s: Session, ctx: Context, res: Resource, svc: Any, id: str) -> tuple[Item, Item]:
    """The item and its policy target; 404 when ``get_<res>`` does not let the caller see it."""
    item = svc.get(s, ctx, id)
    target = targets.one(s, res.member, item)
    if not policy.check(ctx, f"get_{res.rule}", target):
        raise _not_found(res.member, id)
    return item, target


def authorize_change(policy: Policy, s: Session, ctx: Context, res: Resource, svc: Any, id: str,
                     action: str, body: Item | None = None) -> Item:
    """update/delete/member actions: 404 for what the caller may not see, 403 for what it sees
    but may not change (Neutron's policy hook); the target is the object with the change applied."""
    item, target = visible_target(policy, s, ctx, res, svc, id)
    if body:
        target = {**target, **body}
    policy.authorize(ctx, action, target, body)
    return item


def hidden_attrs(policy: Policy, ctx: Context, res: Resource, sample: Item) -> set[str]:
    """The attributes a response leaves out for this caller (``get_<res>:<attr>`` refuses them);
    tenant_id goes with project_id."""
    names = [n for n, a in res.attrs.items() if a.visible]
    hidden = policy.hidden(ctx, res.rule, names, sample)
    if "project_id" in hidden:
        hidden.add("tenant_id")
    return hidden


@dataclass
class Controller:
    """HTTP handlers for one resource collection."""

    res: Resource
    svc: Any  # Service
    work: UnitOfWork
    policy: Policy
    max_body: int = 1024 * 1024
    max_limit: int = 0

    # ------------------------------------------------------------ policy

    def _action(self, verb: str) -> str:
        if verb in getattr(self.svc, "unsupported", ()):
            raise MethodNotAllowed()  # Neutron has no such route: no policy question to ask
        return f"{verb}_{self.res.rule}"

    def _explicit(self, body: Item) -> Item:
        """The attributes a create sets on purpose: those not at their default (Neutron's
        ``_is_attribute_explicitly_set``), which their ``create_<res>:<attr>`` rules then judge."""
        out = {}
        for name, value in body.items():
            attr = self.res.attrs.get(name)
            if name in ("project_id", "tenant_id") or attr is None:
                continue
            if attr.default is UNSET or value != attr.default_value():
                out[name] = value
        return out

    def _visible(self, s: Session, ctx: Context, items: list[Item]) -> list[Item]:
        """The items ``get_<res>`` lets the caller see (Neutron hides the others from lists)."""
        allowed = self.policy.allowed(ctx, self._action("get"), targets.build(s, self.res.member, items))
        return [i for i, ok in zip(items, allowed, strict=True) if ok]

    def _get_visible(self, s: Session, ctx: Context, id: str) -> tuple[Item, Item]:
        return visible_target(self.policy, s, ctx, self.res, self.svc, id)

    def _authorize_change(self, s: Session, ctx: Context, verb: str, id: str,
                          body: Item | None = None, action: str | None = None) -> Item:
        return authorize_change(self.policy, s, ctx, self.res, self.svc, id, action or self._action(verb), body)

    def _hidden(self, ctx: Context, sample: Item) -> set[str]:
        return hidden_attrs(self.policy, ctx, self.res, sample)

    def _render(self, item: Item, hidden: set[str], fields: list[str] | None) -> Item:
        return attributes.render(self.res, item, hidden, fields)

    # ------------------------------------------------------------ handlers

    def _context(self, request: Request) -> Context:
        return scoped(self.policy, context_of(request), self.res)

    async def index(self, request: Request) -> Response:
        ctx = self._context(request)
        params = list(request.query_params.multi_items())
        q = query.parse(self.res, params, self.max_limit, self._hidden(ctx, {"project_id": ctx.project_id}))
        if (before := getattr(self.svc, "before_list", None)) is not None:
            await run_in_threadpool(before, ctx, q.filters)
        items = await run_in_threadpool(self.work.read, lambda s: self._list(s, ctx, q))
        hidden = self._hidden(ctx, items[0]) if items else set()
        body: dict[str, Any] = {self.res.collection: [self._render(i, hidden, q.fields) for i in items]}
        page_links = query.links(str(request.url.replace(query="")), params, items, q)
        if page_links:
            body[f"{self.res.collection}_links"] = page_links
        return json_response(body)

    def _list(self, s: Session, ctx: Context, q: query.ListQuery) -> list[Item]:
        """One page: read in SQL where the service says how (``listing``), else filtered,
        sorted and paged here over every row the service returns."""
        special = self.svc.special_filters
        src: listing.Source | None = getattr(self.svc, "listing", None)
        if src is None:
            items = [i for i in self._visible(s, ctx, self.svc.get_all(s, ctx, q.filters))
                     if query.matches(i, q.filters, special)]
            return query.paginate(query.sort_items(items, q.sorts), q) if q.sorts or q.limit or q.marker else items

        def accept(items: list[Item]) -> list[bool]:
            allowed = self.policy.allowed(ctx, self._action("get"), targets.build(s, self.res.member, items))
            return [ok and query.matches(i, q.filters, special) for i, ok in zip(items, allowed, strict=True)]

        where = [policy_sql.where(self.policy.condition(ctx, self._action("get"), src.resolve)),
                 *listing.filter_clauses(src, q.filters)]
        page = listing.read(s, src, listing.Page(where, q.sorts, q.limit, q.marker, q.page_reverse), accept)
        if page is None:  # a sort key SQL cannot order by: every matching row, sorted here
            items = listing.read(s, src, listing.Page(where, []), accept) or []
            page = query.paginate(query.sort_items(items, q.sorts), q)
        return page

    async def show(self, request: Request) -> Response:
        ctx = self._context(request)
        fields = [f for v in request.query_params.getlist("fields") for f in v.split(",") if f]
        item, _ = await run_in_threadpool(
            self.work.read, lambda s: self._get_visible(s, ctx, request.path_params["id"]))
        return json_response({self.res.member: self._render(item, self._hidden(ctx, item), fields)})

    async def create(self, request: Request) -> Response:
        ctx = context_of(request)
        action = self._action("create")
        items, bulk = attributes.parse_body(self.res, await read_json(request, self.max_body))
        bodies = [attributes.prepare_create(self.res, i, ctx) for i in items]

        def run(s: Session, bodies: list[Item]) -> list[Item]:
            for body, target in zip(bodies, targets.build(s, self.res.member, bodies), strict=True):
                for parent, parent_id, parent_target in targets.parents(self.res.member, body, target):
                    if parent_target is None or not self.policy.check(ctx, f"get_{parent}", parent_target):
                        raise _not_found(parent, parent_id)
                self.policy.authorize(ctx, action, target, self._explicit(body))
            return [self.svc.create(s, ctx, b) for b in bodies]

        created = await run_in_threadpool(self.work.write, run, bodies)
        hidden = self._hidden(ctx, created[0])
        if bulk:
            return json_response({self.res.collection: [self._render(i, hidden, None) for i in created]}, 201)
        return json_response({self.res.member: self._render(created[0], hidden, None)}, 201)

    async def update(self, request: Request) -> Response:
        ctx = self._context(request)
        self._action("update")  # 405 before the body is looked at
        data = await read_json(request, self.max_body)
        if not isinstance(data, dict) or self.res.member not in data:
            raise HTTPBadRequest(msg=f"Unable to find '{self.res.member}' in request body")
        body = attributes.prepare_update(self.res, data[self.res.member])
        id = request.path_params["id"]

        def run(s: Session, body: Item) -> Item:
            check_if_match(request, self._authorize_change(s, ctx, "update", id, body))
            return self.svc.update(s, ctx, id, body)

        updated = await run_in_threadpool(self.work.write, run, body)
        return json_response({self.res.member: self._render(updated, self._hidden(ctx, updated), None)})

    async def delete(self, request: Request) -> Response:
        ctx = self._context(request)
        id = request.path_params["id"]

        def authorized(s: Session) -> None:
            check_if_match(request, self._authorize_change(s, ctx, "delete", id))

        if (before := getattr(self.svc, "before_delete", None)) is not None:
            def prepare(s: Session) -> None:
                """Neutron's BEFORE_DELETE callbacks commit on their own, before the delete itself."""
                authorized(s)
                before(s, ctx, id)
            await run_in_threadpool(self.work.write, prepare)

        def run(s: Session) -> None:
            authorized(s)
            self.svc.delete(s, ctx, id)

        await run_in_threadpool(self.work.write, run)
        return Response(status_code=204)

    # ------------------------------------------------------------ tags subresource

    def _tag_action(self, verb: str) -> str:
        """``update_network:tags`` where Neutron has such a rule, else the resource's own rule."""
        action = f"{verb}_{self.res.rule}:tags"
        return action if self.policy.known(action) else self._action(verb)

    async def _tag_op(self, request: Request, verb: str, op: Callable[[list[str]], list[str]]) -> list[str]:
        ctx = self._context(request)
        id = request.path_params["id"]

        def run(s: Session) -> list[str]:
            self._authorize_change(s, ctx, verb, id, action=self._tag_action(verb))
            row = self.svc.row(s, ctx, id)
            return common.set_tags(row, op(list(row.tags or [])))

        return await run_in_threadpool(self.work.write, run)

    async def _tags(self, request: Request) -> list[str]:
        ctx = self._context(request)
        id = request.path_params["id"]

        def run(s: Session) -> list[str]:
            item, target = self._get_visible(s, ctx, id)
            if not self.policy.check(ctx, self._tag_action("get"), target):
                raise _not_found(self.res.member, id)
            return list(item["tags"])

        return await run_in_threadpool(self.work.read, run)

    async def tags_index(self, request: Request) -> Response:
        return json_response({"tags": await self._tags(request)})

    async def tag_show(self, request: Request) -> Response:
        tags = await self._tags(request)
        if request.path_params["tag"] not in tags:
            raise NotFound(f"Tag {request.path_params['tag']} could not be found.")
        return Response(status_code=204)

    async def tags_replace(self, request: Request) -> Response:
        data = await read_json(request, self.max_body)
        if not isinstance(data, dict) or "tags" not in data:
            raise HTTPBadRequest(msg="Invalid input for tags. Reason: body must be {\"tags\": [...]}.")
        reason = attributes.v.string_list(data["tags"])
        if reason:
            raise HTTPBadRequest(msg=f"Invalid input for tags. Reason: {reason}.")
        new = list(data["tags"])
        return json_response({"tags": await self._tag_op(request, "update", lambda _old: self._counted(new))})

    def _counted(self, tags: list[str]) -> list[str]:
        """``tags`` unless they exceed Neutron's per-resource limit (checked, as Neutron does,
        once the caller is known to be allowed to change them)."""
        if reason := attributes.v.too_many_tags(tags):
            raise BadRequest(resource=self.res.collection, msg=reason)
        return tags

    def _with_tag(self, old: list[str], tag: str) -> list[str]:
        return old if tag in old else self._counted([*old, tag])

    async def tag_add(self, request: Request) -> Response:
        tag = request.path_params["tag"]
        if reason := attributes.v.string(255)(tag):
            raise HTTPBadRequest(msg=f"Invalid input for tag. Reason: {reason}.")
        await self._tag_op(request, "update", lambda old: self._with_tag(old, tag))
        return Response(status_code=201)

    async def tags_delete_all(self, request: Request) -> Response:
        await self._tag_op(request, "delete", lambda _old: [])
        return Response(status_code=204)

    async def tag_delete(self, request: Request) -> Response:
        tag = request.path_params["tag"]

        def remove(old: list[str]) -> list[str]:
            if tag not in old:
                raise NotFound(f"Tag {tag} could not be found.")
            return [t for t in old if t != tag]

        await self._tag_op(request, "delete", remove)
        return Response(status_code=204)
