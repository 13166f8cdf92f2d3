"""The attribute engine: declarative resource definitions applied to requests and responses.

A definition (``api/definitions/*.py``) is data: for each attribute whether it may be set on
create (``post``) or update (``put``), its default, converter and validator, whether clients
see it, may filter and sort on it, and whether only admins may set or see it — the same
switches as neutron-lib's attribute maps. This module turns bodies into validated dicts and
dicts into responses; services never see an unvalidated value. Who may set or see an
attribute is not decided here but by the policy engine (``create_network:shared``,
``get_port:binding:host_id``...), see :mod:`neutrino.policy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neutrino.api import validators as v
from neutrino.context import Context
from neutrino.errors import HTTPBadRequest


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Attr:
    post: bool = False
    put: bool = False
    default: Any = UNSET  # UNSET: optional, the service decides
    required: bool = False
    convert: Callable[[Any], Any] | None = None
    validate: Callable[[Any], str | None] | None = None
    visible: bool = True
    filter: bool = True
    sort: bool = True
    convert_filter: Callable[[Any], Any] | None = None  # for query-string values

    def default_value(self) -> Any:
        d = self.default
        return d() if callable(d) else d


@dataclass(frozen=True)
class Resource:
    member: str  # "network"
    collection: str  # "networks"
    attrs: dict[str, Attr]
    extra_filters: tuple[str, ...] = ()  # filter keys that are not attributes (tags-any...)
    policy_name: str = ""  # "network" for rule names like create_network:shared
    path: str = ""  # URL segment when it differs from the body key ("security-groups")

    @property
    def rule(self) -> str:
        return self.policy_name or self.member

    @property
    def url_path(self) -> str:
        return self.path or self.collection


def _bad(msg: str) -> HTTPBadRequest:
    return HTTPBadRequest(msg=msg)


def _convert_and_validate(name: str, attr: Attr, value: Any) -> Any:
    if attr.convert is not None:
        try:
            value = attr.convert(value)
        except v.ConversionError as exc:
            raise _bad(f"Invalid input for {name}. Reason: {exc}.") from None
    if attr.validate is not None and (reason := attr.validate(value)):
        raise _bad(f"Invalid input for {name}. Reason: {reason}.")
    return value


def _check_project(body: dict[str, Any], ctx: Context) -> None:
    """project_id and tenant_id are one attribute; only admins (or whom the policy's
    ``context_can_set_project_id`` names) may name another project (neutron-lib's wording)."""
    pid, tid = body.pop("project_id", UNSET), body.pop("tenant_id", UNSET)
    if pid is not UNSET and tid is not UNSET and pid != tid:
        raise _bad("'project_id' and 'tenant_id' do not match")
    given = pid if pid is not UNSET else tid
    if given is UNSET:  # the caller's own project, checked alike (noauth takes it from a header)
        given = ctx.project_id
    if not isinstance(given, str) or not given or len(given) > 255 or v.has_control(given):
        raise _bad(f"Invalid input for project_id. Reason: '{v.shown(given)}' is not a valid string.")
    if given != ctx.project_id and not ctx.can_set_project_id:
        raise _bad("Specifying 'project_id' other than the authenticated project in request is not allowed "
                   "for the current user.")
    body["project_id"] = given


def prepare_create(res: Resource, body: Any, ctx: Context) -> dict[str, Any]:
    """Validate one create body; fill defaults; enforce allow_post."""
    if not isinstance(body, dict):
        raise _bad(f"Invalid input for {res.member}. Reason: '{body}' is not a dictionary.")
    body = dict(body)
    if "project_id" in res.attrs:
        _check_project(body, ctx)
        given_project = body.pop("project_id")
    unknown = [k for k in body if k not in res.attrs]
    if unknown:
        raise _bad(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    out: dict[str, Any] = {}
    for name, attr in res.attrs.items():
        if name in ("project_id", "tenant_id"):
            continue
        if name in body:
            if not attr.post:
                raise _bad(f"Attribute '{name}' not allowed in POST")
            out[name] = _convert_and_validate(name, attr, body[name])
        elif attr.post:
            if attr.required:
                raise _bad(f"Failed to parse request. Required attribute '{name}' not specified")
            if attr.default is not UNSET:
                out[name] = attr.default_value()
    if "project_id" in res.attrs:
        out["project_id"] = given_project
    return out


def prepare_update(res: Resource, body: Any) -> dict[str, Any]:
    """Validate one update body: only allow_put attributes, converted and validated."""
    if not isinstance(body, dict):
        raise _bad(f"Invalid input for {res.member}. Reason: '{body}' is not a dictionary.")
    out: dict[str, Any] = {}
    for name, value in body.items():
        attr = res.attrs.get(name)
        if attr is None:
            raise _bad(f"Unrecognized attribute(s) '{name}'")
        if not attr.put:
            raise _bad(f"Cannot update read-only attribute {name}")
        out[name] = _convert_and_validate(name, attr, value)
    return out


def render(res: Resource, item: dict[str, Any], hidden: set[str], fields: list[str] | None) -> dict[str, Any]:
    """The response view of one item: visible attributes but those the policy ``hidden``."""
    out: dict[str, Any] = {}
    for name, attr in res.attrs.items():
        if not attr.visible or name in hidden:
            continue
        if fields and name not in fields:
            continue
        if name == "tenant_id":
            out[name] = item.get("project_id")
        elif name in item:
            out[name] = item[name]
    return out


def parse_body(res: Resource, data: Any) -> tuple[list[Any], bool]:
    """Unwrap ``{"network": {...}}`` or a bulk ``{"networks": [...]}``; returns (items, bulk)."""
    if not isinstance(data, dict):
        raise _bad("Body contains invalid data")
    if res.collection in data and isinstance(data[res.collection], list):
        items = data[res.collection]
        if not items:
            raise _bad("Resources required")
        return [_bulk_item(res, i) for i in items], True
    if res.member not in data:
        raise _bad(f"Unable to find '{res.member}' in request body")
    return [data[res.member]], False


def _bulk_item(res: Resource, item: Any) -> Any:
    """One bulk item, bare or wrapped in its singular name, as Neutron takes both (and a mix).

    An item wrapped in another resource's name is left as it is: its key then fails as an
    unrecognised attribute, as in Neutron.
    """
    if not isinstance(item, dict) or res.member not in item:
        return item
    if not isinstance(item[res.member], dict):
        raise _bad(f"Object '{res.member}' contains invalid data")
    return item[res.member]


def standard_attrs(**overrides: Attr) -> dict[str, Attr]:
    """id, project/tenant, name, description, tags, timestamps, revision (standard-attr-*)."""
    attrs = {
        "id": Attr(validate=v.uuid_, sort=True),
        "project_id": Attr(post=True, validate=v.string(255)),
        "tenant_id": Attr(post=True, validate=v.string(255)),
        "name": Attr(post=True, put=True, default="", validate=v.string(255)),
        "description": Attr(post=True, put=True, default="", validate=v.string(255, multiline=True)),
        "tags": Attr(post=True, default=list, validate=v.tags, filter=False, sort=False),
        "created_at": Attr(),
        "updated_at": Attr(),
        "revision_number": Attr(convert_filter=v.to_int),
    }
    attrs.update(overrides)
    return attrs


TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
