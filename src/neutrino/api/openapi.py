"""The OpenAPI 3.0 description of the API, generated from the resource definitions.

Nothing here is written per resource: every collection the registry exposes gets its list,
create (single and bulk), show, update, delete and ``/tags`` operations, with request schemas
derived from each attribute's converter and validator (the same functions that check real
requests, so the document cannot drift from the server). Extra routes (router actions,
quotas...) are listed by path and method with a permissive body. Served at ``GET
/openapi.json`` without authentication; clients and fuzzers (schemathesis) read it there.

Types come from the validators by introspection: ``v.string(255)`` is a string of at most 255
characters, ``v.integer_range(68, None)`` an integer >= 68, ``v.values((4, 6))`` an enum, and
so on. Validators written as lambdas in a definition cannot be read that way; the few that
exist are in :data:`ATTRIBUTE_SCHEMAS`, keyed by "member.attribute" or attribute name; an
attribute nothing can be told about gets ``{}`` (any value), which is honest if not helpful.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from neutrino.api import validators as v
from neutrino.api.attributes import TAG_FILTERS, UNSET, Attr, Resource
from neutrino.api.controller import Controller, json_response
from neutrino.api.query import CONTROL_KEYS

Schema = dict[str, Any]
Entry = tuple[Resource, Any, list[BaseRoute]]

OPENAPI_VERSION = "3.0.3"
ERROR_STATUSES = ("400", "401", "403", "404", "409", "412", "413", "503")
ERROR_DESCRIPTIONS = {
    "400": "Bad request: the body or a parameter is invalid",
    "401": "Authentication required: missing, expired or invalid token",
    "403": "Forbidden by policy",
    "404": "Not found",
    "409": "Conflict (in use, duplicate, over quota...)",
    "412": "If-Match revision_number precondition failed",
    "413": "Request body too large",
    "503": "Service unavailable (e.g. no segment left to allocate)",
}

# ------------------------------------------------------------------ value schemas

UUID: Schema = {"type": "string", "format": "uuid", "example": "7e2c3b5a-1f0d-4c6e-9a8b-2d4f6e8a0c1e"}
IPV4: Schema = {"type": "string", "format": "ipv4", "example": "10.0.0.10"}
IPV6: Schema = {"type": "string", "format": "ipv6", "example": "fd00::10"}
IP: Schema = {"anyOf": [IPV4, IPV6]}
CIDR: Schema = {"type": "string", "format": "cidr", "maxLength": 49,  # a network: host bits zero
                "example": "10.0.0.0/24"}
IP_OR_CIDR: Schema = {"anyOf": [IPV4, IPV6, CIDR]}
# A unicast MAC (first octet even), one separator throughout.
MAC: Schema = {"type": "string", "example": "fa:16:3e:00:00:01",
               "pattern": "^[0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}$"
                          "|^[0-9a-fA-F][02468aceACE](-[0-9a-fA-F]{2}){5}$"}
_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
DNS_NAME: Schema = {"type": "string", "maxLength": 255, "pattern": rf"^({_LABEL}(\.{_LABEL})*\.?)?$",
                    "example": "host1.example.org."}
STRING_255: Schema = {"type": "string", "maxLength": 255}
IPV6_MODES = ["dhcpv6-stateful", "dhcpv6-stateless", "slaac"]


def nullable(schema: Schema) -> Schema:
    if not schema:
        return schema
    if set(schema) == {"anyOf"}:
        return {"anyOf": schema["anyOf"], "nullable": True}
    if "anyOf" in schema or "allOf" in schema or "$ref" in schema:
        return {"anyOf": [schema], "nullable": True}
    out = dict(schema)
    out["nullable"] = True
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def obj(properties: dict[str, Schema], required: Sequence[str] = (), *, strict: bool = True) -> Schema:
    out: Schema = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    if strict:
        out["additionalProperties"] = False
    return out


def array(items: Schema, *, unique: bool = False) -> Schema:
    out: Schema = {"type": "array", "items": items}
    if unique:
        out["uniqueItems"] = True
    return out


FIXED_IP: Schema = {**obj({"subnet_id": UUID, "ip_address": IP}), "minProperties": 1}
PROJECT_ID: Schema = {"type": "string", "minLength": 1, "maxLength": 255}
HOST_ROUTE: Schema = obj({"destination": CIDR, "nexthop": IP}, ["destination", "nexthop"])
NULLABLE_BOOL: Schema = {"type": "boolean", "nullable": True}
PORT_NUMBER: Schema = {"type": "integer", "minimum": 0, "maximum": 65535, "nullable": True}

# Attributes whose validators are lambdas, item checks or service-specific converters that the
# introspection cannot read. Keys are "member.attribute" (first) or the attribute name alone.
ATTRIBUTE_SCHEMAS: dict[str, Schema] = {
    "project_id": PROJECT_ID,  # must equal tenant_id when both are given
    "tenant_id": PROJECT_ID,
    "ipv6_ra_mode": nullable({"type": "string", "enum": IPV6_MODES}),
    "ipv6_address_mode": nullable({"type": "string", "enum": IPV6_MODES}),
    "mac_address": nullable(MAC),
    "fixed_ips": array(FIXED_IP),
    "allocation_pools": array(obj({"start": IP, "end": IP}, ["start", "end"])),
    "host_routes": array(HOST_ROUTE),
    "allowed_address_pairs": array(obj({"ip_address": IP_OR_CIDR, "mac_address": nullable(MAC)},
                                       ["ip_address"])),
    "extra_dhcp_opts": array(obj({"opt_name": STRING_255, "opt_value": nullable(STRING_255),
                                  "ip_version": nullable({"type": "integer", "enum": [4, 6]})},
                                 ["opt_name", "opt_value"])),
    "remote_ip_prefix": nullable(IP_OR_CIDR),
    "protocol": nullable({"anyOf": [{"type": "string", "maxLength": 40},
                                    {"type": "integer", "minimum": 0, "maximum": 255}]}),
    "security_group_rule.security_group_id": UUID,
    "security_group_rule.direction": {"type": "string", "enum": ["ingress", "egress"]},
    "security_group_rule.ethertype": {"type": "string", "enum": ["IPv4", "IPv6"]},
    "security_group_rule.port_range_min": PORT_NUMBER,
    "security_group_rule.port_range_max": PORT_NUMBER,
    "security_group_rule.remote_group_id": nullable(UUID),
    "security_group_rule.remote_address_group_id": nullable(UUID),
    "router.external_gateway_info": nullable(obj(
        {"network_id": UUID, "enable_snat": {"type": "boolean"}, "external_fixed_ips": array(FIXED_IP)},
        ["network_id"])),
    "router.routes": array(HOST_ROUTE, unique=True),
    "subnet.service_types": array({"type": "string", "maxLength": 255, "pattern": "^(network|neutron|compute):"},
                                  unique=True),
    "router.distributed": NULLABLE_BOOL,
    "router.ha": NULLABLE_BOOL,
}

_SIMPLE: dict[Callable[..., Any], Schema] = {
    v.uuid_: UUID,
    v.uuid_or_none: nullable(UUID),
    v.uuid_list: array(UUID, unique=True),
    v.boolean: {"type": "boolean"},
    v.ip_address: IP,
    v.ip_address_or_none: nullable(IP),
    v.subnet_cidr: CIDR,
    v.subnet_cidr_or_none: nullable(CIDR),
    v.ip_or_cidr: IP_OR_CIDR,
    v.mac_address: MAC,
    v.dns_name: DNS_NAME,
    v.any_dict: {"type": "object"},
    v.string_list: array(STRING_255, unique=True),
    v.tags: array(STRING_255),
}

_CONVERTERS: dict[Callable[..., Any], Schema] = {
    v.to_boolean: {"type": "boolean"},
    v.to_int: {"type": "integer"},
    v.to_int_or_none: nullable({"type": "integer"}),
    v.to_mac: MAC,
    v.to_list: {"type": "array"},
}


def _closure(fn: Any) -> dict[str, Any]:
    code, cells = getattr(fn, "__code__", None), getattr(fn, "__closure__", None) or ()
    if code is None:
        return {}
    out = {}
    for name, cell in zip(code.co_freevars, cells, strict=False):
        try:
            out[name] = cell.cell_contents
        except ValueError:  # an empty cell
            pass
    return out


def _enum_type(values: Iterable[Any]) -> Schema:
    vals = list(values)
    types = {type(x) for x in vals if x is not None}
    if types == {bool}:
        return {"type": "boolean", "enum": vals}
    if types and all(t is int for t in types):
        return {"type": "integer", "enum": vals}
    if types == {str}:
        return {"type": "string", "enum": vals}
    return {"enum": vals}


def _dict_item(check: Any) -> Schema:
    """The object an item check of ``dict_list`` accepts, when it is a plain ``dict_keys``."""
    if getattr(check, "__qualname__", "").startswith("dict_keys."):
        c = _closure(check)
        req, opt = tuple(c.get("required", ())), tuple(c.get("optional", ()))
        return obj({k: {} for k in (*req, *opt)}, req)
    return {"type": "object"}


def validator_schema(fn: Any) -> Schema | None:
    """The JSON schema of the values ``fn`` accepts; None when it cannot be told."""
    if fn is None:
        return None
    if fn in _SIMPLE:
        return _SIMPLE[fn]
    qual = getattr(fn, "__qualname__", "")
    c = _closure(fn)
    if qual.startswith("string.") and "max_len" in c:
        return {"type": "string", **({"maxLength": c["max_len"]} if c["max_len"] is not None else {})}
    if qual.startswith("string_or_none.") and "inner" in c:
        inner = validator_schema(c["inner"])
        return nullable(inner) if inner else None
    if qual.startswith("integer_range.") and "lo" in c:
        out: Schema = {"type": "integer"}
        if c["lo"] is not None:
            out["minimum"] = c["lo"]
        if c.get("hi") is not None:
            out["maximum"] = c["hi"]
        return out
    if qual.startswith("values.") and "allowed" in c:
        return _enum_type(c["allowed"])
    if qual.startswith("list_of.") and "inner" in c:
        return array(validator_schema(c["inner"]) or {}, unique=bool(c.get("unique")))
    if qual.startswith("dict_list.") and "item_check" in c:
        return array(_dict_item(c["item_check"]))
    if qual.startswith("all_of.") and "checks" in c:
        parts = [s for s in (validator_schema(x) for x in c["checks"]) if s]
        if not parts:
            return None
        merged: Schema = {}
        for p in parts:
            merged.update(p)
        return merged
    return None


def attribute_schema(member: str, name: str, attr: Attr) -> Schema:
    """What a client may send for ``name``: explicit table, else validator, else converter."""
    explicit = ATTRIBUTE_SCHEMAS.get(f"{member}.{name}", ATTRIBUTE_SCHEMAS.get(name))
    if explicit is not None:
        schema = dict(explicit)
    else:
        schema = dict(validator_schema(attr.validate) or {})
        conv = _CONVERTERS.get(attr.convert) if attr.convert is not None else None
        if conv is not None:
            if not schema:
                schema = dict(conv)
            elif "type" not in schema and "anyOf" not in schema:
                schema = {**conv, **schema}
            elif conv.get("nullable") and schema.get("type") == conv.get("type"):
                schema = nullable(schema)
    default = attr.default
    if default is not UNSET and not callable(default) and schema:
        schema["default"] = default
    return schema


def response_schema(member: str, name: str, attr: Attr) -> Schema:
    """What the server returns for ``name``: the type only, and possibly null."""
    schema = attribute_schema(member, name, attr) if (attr.post or attr.put) else {}
    t = schema.get("type")
    if name in ("created_at", "updated_at"):
        return {"type": "string", "format": "date-time", "nullable": True}
    if name == "revision_number":
        return {"type": "integer"}
    if name in ("id", "project_id", "tenant_id", "status"):
        return {"type": "string"}
    if t in ("string", "integer", "boolean", "object"):
        return {"type": t, "nullable": True}
    if t == "array":
        return {"type": "array", "items": {}}
    return {}


# ------------------------------------------------------------------ operations


def _ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json_body(schema: Schema, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _json_response(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: str) -> dict[str, Schema]:
    return {s: _ref("responses", f"Error{s}") for s in statuses}


def _query(name: str, schema: Schema, description: str = "", *, repeat: bool = False) -> Schema:
    p: Schema = {"name": name, "in": "query", "required": False,
                 "schema": array(schema) if repeat else schema}
    if repeat:
        p.update(style="form", explode=True)
    if description:
        p["description"] = description
    return p


def _path(name: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


IF_MATCH = {"name": "If-Match", "in": "header", "required": False,
            "description": "Compare-and-swap on the resource: revision_number=N",
            "schema": {"type": "string", "pattern": r"^revision_number=[0-9]{1,9}$"}}


def _filter_schema(attr: Attr) -> Schema:
    if attr.convert is v.to_boolean:
        return {"type": "boolean"}
    if attr.convert in (v.to_int, v.to_int_or_none) or attr.convert_filter is v.to_int:
        return {"type": "integer"}
    return {"type": "string"}


def _pascal(name: str) -> str:
    return "".join(p.capitalize() for p in re.split(r"[^a-zA-Z0-9]+", name) if p)


def _resource_components(res: Resource, schemas: dict[str, Schema]) -> None:
    pascal = _pascal(res.member)
    visible = {n: a for n, a in res.attrs.items() if a.visible}
    props = {n: response_schema(res.member, n, a) for n, a in visible.items()}
    schemas[pascal] = {"type": "object", "properties": props}
    post = {n: a for n, a in res.attrs.items() if a.post}
    schemas[f"{pascal}Create"] = obj({n: attribute_schema(res.member, n, a) for n, a in post.items()},
                                     [n for n, a in post.items() if a.required])
    put = {n: a for n, a in res.attrs.items() if a.put}
    schemas[f"{pascal}Update"] = obj({n: attribute_schema(res.member, n, a) for n, a in put.items()})


def _list_params(res: Resource) -> list[Schema]:
    visible = [n for n, a in res.attrs.items() if a.visible]
    sortable = [n for n, a in res.attrs.items() if a.visible and a.sort]
    params = [
        _query("fields", {"type": "string", "enum": visible}, "Attributes to return", repeat=True),
        _query("sort_key", {"type": "string", "enum": sortable}, "Sort by these attributes", repeat=True),
        _query("sort_dir", {"type": "string", "enum": ["asc", "desc"]}, "One per sort_key", repeat=True),
        _query("limit", {"type": "integer", "minimum": 0}, "Page size"),
        _query("marker", UUID, "Last id of the previous page"),
        _query("page_reverse", {"type": "boolean"}, "Page backwards from the marker"),
    ]
    for name, attr in res.attrs.items():
        if attr.filter and name not in CONTROL_KEYS:
            params.append(_query(name, _filter_schema(attr), f"Filter on {name}", repeat=True))
    if "tags" in res.attrs:
        for key in TAG_FILTERS:
            params.append(_query(key, {"type": "string"}, "Comma-separated tags", repeat=True))
    for key in res.extra_filters:
        params.append(_query(key, {"type": "string"}, f"Filter on {key}", repeat=True))
    return params


def _url_path(res: Resource) -> str:
    """The URL segment of a collection (security-groups) where it differs from the JSON key."""
    return str(getattr(res, "url_path", None) or res.collection)


def _resource_paths(res: Resource, paths: dict[str, Schema], base: str | None = None) -> None:
    """The standard operations of ``res`` at ``base`` (``/v2.0/<collection>`` unless an alias)."""
    coll, member, pascal = res.collection, res.member, _pascal(res.member)
    url = _url_path(res)
    base = base or f"/v2.0/{url}"
    if base in paths:
        return
    segment = base.rsplit("/", 1)[-1]
    # operationIds are unique: a second URL for the same resource gets its own.
    sfx = "" if segment == url else f"_at_{_slug(segment)}"
    tag = [coll]
    item = _ref("schemas", pascal)
    single = obj({member: _ref("schemas", f"{pascal}Create")}, [member])
    # A bulk item may be bare or wrapped in its singular name, as in Neutron.
    bulk_item = {"oneOf": [_ref("schemas", f"{pascal}Create"), single]}
    bulk = obj({coll: {"type": "array", "minItems": 1, "items": bulk_item}}, [coll])
    list_body = {"type": "object", "required": [coll],
                 "properties": {coll: array(item), f"{coll}_links": array({"type": "object"})}}
    paths[base] = {
        "get": {"operationId": f"list_{coll}{sfx}", "tags": tag, "summary": f"List {coll}",
                "parameters": _list_params(res),
                "responses": {"200": _json_response(f"The {coll}", list_body), **_errors("400", "401", "403", "404")}},
        "post": {"operationId": f"create_{member}{sfx}", "tags": tag, "summary": f"Create a {member} (or many)",
                 "requestBody": _json_body({"oneOf": [single, bulk]}),
                 "responses": {"201": _json_response(f"The new {member} (or {coll})", {
                     "type": "object", "properties": {member: item, coll: array(item)}}),
                     **_errors("400", "401", "403", "404", "409", "413", "503")}},
    }
    id_param = _path("id")
    member_body = {"type": "object", "required": [member], "properties": {member: item}}
    paths[base + "/{id}"] = {
        "parameters": [id_param],
        "get": {"operationId": f"show_{member}{sfx}", "tags": tag, "summary": f"Show a {member}",
                "parameters": [_query("fields", {"type": "string"}, "Attributes to return", repeat=True)],
                "responses": {"200": _json_response(f"The {member}", member_body), **_errors("401", "403", "404")}},
        "put": {"operationId": f"update_{member}{sfx}", "tags": tag, "summary": f"Update a {member}",
                "parameters": [IF_MATCH],
                "requestBody": _json_body(obj({member: _ref("schemas", f"{pascal}Update")}, [member])),
                "responses": {"200": _json_response(f"The updated {member}", member_body),
                              **_errors("400", "401", "403", "404", "409", "412", "413")}},
        "delete": {"operationId": f"delete_{member}{sfx}", "tags": tag, "summary": f"Delete a {member}",
                   "parameters": [IF_MATCH],
                   "responses": {"204": {"description": "Deleted"},
                                 **_errors("400", "401", "403", "404", "409", "412")}},
    }
    if "tags" not in res.attrs:
        return
    tags_body = obj({"tags": array(STRING_255)}, ["tags"])
    paths[base + "/{id}/tags"] = {
        "parameters": [id_param],
        "get": {"operationId": f"list_{member}_tags{sfx}", "tags": tag,
                "responses": {"200": _json_response("The tags", tags_body), **_errors("401", "403", "404")}},
        "put": {"operationId": f"replace_{member}_tags{sfx}", "tags": tag, "requestBody": _json_body(tags_body),
                "responses": {"200": _json_response("The new tags", tags_body),
                              **_errors("400", "401", "403", "404", "413")}},
        "delete": {"operationId": f"delete_{member}_tags{sfx}", "tags": tag,
                   "responses": {"204": {"description": "All tags removed"}, **_errors("401", "403", "404")}},
    }
    tag_param = _path("tag", STRING_255)
    paths[base + "/{id}/tags/{tag}"] = {
        "parameters": [id_param, tag_param],
        "get": {"operationId": f"check_{member}_tag{sfx}", "tags": tag,
                "responses": {"204": {"description": "The tag is set"}, **_errors("401", "403", "404")}},
        "put": {"operationId": f"add_{member}_tag{sfx}", "tags": tag,
                "responses": {"201": {"description": "Tag added"}, **_errors("400", "401", "403", "404")}},
        "delete": {"operationId": f"delete_{member}_tag{sfx}", "tags": tag,
                   "responses": {"204": {"description": "Tag removed"}, **_errors("401", "403", "404")}},
    }


_PARAM_RE = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _flatten(routes: Iterable[BaseRoute], prefix: str = "") -> Iterable[tuple[str, Route]]:
    for r in routes:
        if isinstance(r, Route):
            yield prefix + r.path, r
        elif isinstance(r, Mount):
            yield from _flatten(r.routes or [], prefix + r.path)


def _add_routes(routes: Iterable[BaseRoute], paths: dict[str, Schema]) -> None:
    """Routes the app serves: a controller's collection route gives the standard operations at
    its path (aliases like /v2.0/security-groups); any other route (router actions, quotas...)
    is listed by path and method with a permissive body. Paths already described win."""
    flat = list(_flatten(routes))
    for raw, route in flat:
        owner = getattr(route.endpoint, "__self__", None)
        if isinstance(owner, Controller) and getattr(route.endpoint, "__name__", "") == "index":
            _resource_paths(owner.res, paths, _PARAM_RE.sub(r"{\1}", raw))
    for raw, route in flat:
        if isinstance(getattr(route.endpoint, "__self__", None), Controller):
            continue
        path = _PARAM_RE.sub(r"{\1}", raw)
        if not path.startswith("/v2.0/"):
            continue  # the version documents and identity are described separately
        names = _PARAM_RE.findall(raw)
        entry = paths.setdefault(path, {})
        coll = path.split("/")[2]
        for method in sorted(m.lower() for m in (route.methods or {"GET"}) if m != "HEAD"):
            if method in entry:
                continue
            op: Schema = {"operationId": f"{method}_{_slug(path)}", "tags": [coll],
                          "responses": {"200": _json_response("OK", {}), "201": _json_response("Created", {}),
                                        "204": {"description": "No content"},
                                        **_errors("400", "401", "403", "404", "409", "413")}}
            if names:
                op["parameters"] = [_path(n) for n in names]
            if method in ("post", "put", "patch"):
                op["requestBody"] = _json_body({"type": "object"}, required=False)
            entry[method] = op
        if not entry:
            del paths[path]


def _slug(path: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "_", path).strip("_")


def _identity_paths(paths: dict[str, Schema]) -> None:
    auth = {"type": "object", "required": ["identity"],
            "properties": {"identity": {"type": "object"}, "scope": {"type": "object"}}}
    paths["/identity/v3/auth/tokens"] = {"post": {
        "operationId": "identity_issue_token", "tags": ["identity"], "security": [],
        "summary": "Keystone v3: issue a token (X-Subject-Token header)",
        "requestBody": _json_body(obj({"auth": auth}, ["auth"], strict=False)),
        "responses": {
            "201": _json_response("A token; its id is in the X-Subject-Token header", {"type": "object"}),
            "400": _json_response("Invalid request", {"type": "object"}),
            "401": _json_response("Bad credentials", {"type": "object"}),
        }}}


def build_openapi(resources: Iterable[Entry], base_url: str, extra_routes: Iterable[BaseRoute] = ()) -> dict[str, Any]:
    """The OpenAPI 3.0 document for the registry's (Resource, service, extra routes) entries.

    ``extra_routes`` are more routes the app serves (the whole route table works: controller
    routes are recognised, see :func:`_add_routes`).
    """
    entries = list(resources)
    extra = list(extra_routes)
    paths: dict[str, Schema] = {
        "/": {"get": {"operationId": "list_versions", "tags": ["versions"], "security": [],
                      "responses": {"200": _json_response("API versions", {"type": "object"})}}},
        "/v2.0": {"get": {"operationId": "list_resources", "tags": ["versions"],
                          "responses": {"200": _json_response("Collections of v2.0", {"type": "object"}),
                                        **_errors("401")}}},
    }
    for res, _svc, _routes in entries:
        _resource_paths(res, paths)
    _add_routes([r for _res, _svc, routes in entries for r in routes] + extra, paths)
    _identity_paths(paths)
    schemas: dict[str, Schema] = {
        "NeutronError": obj({"NeutronError": obj(
            {"type": {"type": "string"}, "message": {"type": "string"}, "detail": {"type": "string"}},
            ["type", "message", "detail"], strict=False)}, ["NeutronError"], strict=False),
    }
    for res in _resources(entries, extra):
        _resource_components(res, schemas)
    responses = {f"Error{s}": _json_response(ERROR_DESCRIPTIONS[s], _ref("schemas", "NeutronError"))
                 for s in ERROR_STATUSES}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Neutrino: OpenStack Networking (Neutron) API v2.0", "version": "2.0",
                 "description": "Generated from the server's resource definitions."},
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "tags": [{"name": t} for t in sorted({t for p in paths.values() for op in p.values()
                                               if isinstance(op, dict) for t in op.get("tags", [])})],
        "security": [{"keystone": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": responses,
            "securitySchemes": {"keystone": {"type": "apiKey", "in": "header", "name": "X-Auth-Token",
                                             "description": "A Keystone token from POST /identity/v3/auth/tokens"}},
        },
    }


def _resources(entries: list[Entry], extra: list[BaseRoute]) -> list[Resource]:
    """Every resource definition: the registry's, and those behind controller routes."""
    out: dict[str, Resource] = {}
    for res, _svc, _routes in entries:
        out.setdefault(res.member, res)
    for _raw, route in _flatten([r for _res, _svc, routes in entries for r in routes] + extra):
        owner = getattr(route.endpoint, "__self__", None)
        if isinstance(owner, Controller):
            out.setdefault(owner.res.member, owner.res)
    return list(out.values())


def endpoint(base_url: str, routes: Sequence[BaseRoute]) -> Callable[[Request], Any]:
    """The ``GET /openapi.json`` handler over the app's /v2.0 route table; built on first use."""
    cache: list[dict[str, Any]] = []

    async def openapi_json(_request: Request) -> Response:
        if not cache:
            cache.append(build_openapi([], base_url, routes))
        return json_response(cache[0])

    return openapi_json
