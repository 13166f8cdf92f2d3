"""The OpenAPI document: valid OpenAPI 3.0, complete for the registry, and named like Neutron.

Validity is checked against the OpenAPI 3.0 JSON schema that schemathesis ships (the
openapi-spec-validator package is not installed), plus the structural rules a JSON schema
cannot express: references resolve, operationIds are unique, path parameters are declared.

Attribute names are compared with neutron-lib's definitions: for the core modules of every
collection we serve, and for every extension alias ``GET /v2.0/extensions`` advertises, each
attribute neutron-lib makes visible must be in our definition (and visible).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections import Counter
from types import ModuleType
from typing import Any

import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_30_VALIDATOR

from neutrino.api import validators as v
from neutrino.api.attributes import Attr, Resource
from neutrino.api.openapi import attribute_schema, build_openapi, validator_schema
from neutrino.api.resources import build_resources
from neutrino.config import Config
from tests.conftest import Api

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@pytest.fixture
def registry(cfg: Config) -> Any:
    from neutrino import server

    srv = server.build(cfg)
    yield build_resources(srv.deps)
    srv.db.dispose()


@pytest.fixture
def doc(api: Api) -> dict[str, Any]:
    r = api.client.get("/openapi.json")  # no auth headers at all
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()  # type: ignore[no-any-return]


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, m, op) for path, item in doc["paths"].items() for m, op in item.items() if m in METHODS]


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolvable $ref {ref}"
        node = node[part]
    return node


def walk_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [
            r for v_ in node.values() for r in walk_refs(v_)]
    if isinstance(node, list):
        return [r for v_ in node for r in walk_refs(v_)]
    return []


# ------------------------------------------------------------------ validity


def test_served_without_auth_in_keystone_mode(tmp_path: Any) -> None:
    from starlette.testclient import TestClient

    from neutrino import server
    from tests.conftest import make_config

    srv = server.build(make_config(tmp_path, DEFAULT={"auth_strategy": "keystone"}))
    with TestClient(srv.app) as client:
        assert client.get("/v2.0/networks").status_code == 401
        r = client.get("/openapi.json")
        assert r.status_code == 200 and r.json()["openapi"].startswith("3.0")
    srv.db.dispose()


def test_document_is_valid_openapi_3_0(doc: dict[str, Any]) -> None:
    errors = [f"{e.instance_path}: {e.message}" for e in OPENAPI_30_VALIDATOR.iter_errors(doc)]
    assert not errors, "\n".join(errors[:20])
    assert re.match(r"^3\.0\.\d$", doc["openapi"])
    assert doc["servers"][0]["url"] == "http://127.0.0.1:9696"


def test_references_resolve_and_ids_are_unique(doc: dict[str, Any]) -> None:
    for ref in walk_refs(doc):
        resolve(doc, ref)
    ids = Counter(op["operationId"] for _p, _m, op in operations(doc))
    assert not [i for i, n in ids.items() if n > 1], ids.most_common(5)


def test_path_parameters_are_declared(doc: dict[str, Any]) -> None:
    for path, method, op in operations(doc):
        declared = {p["name"] for p in doc["paths"][path].get("parameters", []) + op.get("parameters", [])
                    if "$ref" not in p and p["in"] == "path"}
        assert declared == set(re.findall(r"\{([^}]+)\}", path)), (method, path, declared)
        for p in op.get("parameters", []):
            assert "$ref" in p or p["in"] != "path" or p["required"] is True


def test_every_operation_documents_errors_as_neutron_error(doc: dict[str, Any]) -> None:
    error = doc["components"]["schemas"]["NeutronError"]
    assert error["required"] == ["NeutronError"]
    assert set(error["properties"]["NeutronError"]["properties"]) == {"type", "message", "detail"}
    for status in ("400", "401", "403", "404", "409", "412", "413", "503"):
        body = doc["components"]["responses"][f"Error{status}"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/NeutronError"}
    for path, method, op in operations(doc):
        if path.startswith("/v2.0/"):
            assert "401" in op["responses"] and "403" in op["responses"], (method, path)
            assert any(s.startswith("2") for s in op["responses"]), (method, path)


# ------------------------------------------------------------------ completeness


def test_lists_every_collection_of_the_registry(doc: dict[str, Any], registry: Any) -> None:
    missing = []
    for res, _svc, _routes in registry:
        base = f"/v2.0/{res.url_path}"
        want = {base: {"get", "post"}, base + "/{id}": {"get", "put", "delete"}}
        if "tags" in res.attrs:
            want |= {base + "/{id}/tags": {"get", "put", "delete"}, base + "/{id}/tags/{tag}": {"get", "put", "delete"}}
        for path, methods in want.items():
            have = set(doc["paths"].get(path, {})) & set(METHODS)
            if not methods <= have:
                missing.append(f"{sorted(methods - have)} {path}")
    assert not missing, "collections missing from /openapi.json:\n" + "\n".join(missing)


def test_extra_routes_are_listed(doc: dict[str, Any], registry: Any, cfg: Config) -> None:
    from starlette.routing import Route

    from neutrino import server
    from neutrino.api import resources

    routes = [r for _res, _svc, rs in registry for r in rs]
    build_extra = getattr(resources, "build_extra_routes", None)  # /v2.0/quotas and friends
    if build_extra is not None:
        srv = server.build(cfg)
        routes += build_extra(srv.deps)
        srv.db.dispose()
    assert routes, "expected router actions or quotas among the extra routes"
    missing = []
    if True:
        for route in routes:
            if not isinstance(route, Route):
                continue
            path = re.sub(r"\{([^}:]+)(:[^}]*)?\}", r"{\1}", route.path)
            for method in route.methods or ():
                if method != "HEAD" and method.lower() not in doc["paths"].get(path, {}):
                    missing.append(f"{method} {path}")
    assert not missing, "extra routes missing from /openapi.json:\n" + "\n".join(missing)
    assert "post" in doc["paths"]["/identity/v3/auth/tokens"]
    assert doc["paths"]["/identity/v3/auth/tokens"]["post"]["security"] == []


def test_schemas_cover_every_attribute(doc: dict[str, Any], registry: Any) -> None:
    schemas = doc["components"]["schemas"]
    for res, _svc, _routes in registry:
        name = "".join(p.capitalize() for p in res.member.split("_"))
        assert set(schemas[name]["properties"]) == {n for n, a in res.attrs.items() if a.visible}, res.member
        create = schemas[f"{name}Create"]
        assert set(create["properties"]) == {n for n, a in res.attrs.items() if a.post}, res.member
        assert set(create.get("required", [])) == {n for n, a in res.attrs.items() if a.post and a.required}
        assert create["additionalProperties"] is False  # unknown attributes are a 400
        assert set(schemas[f"{name}Update"]["properties"]) == {n for n, a in res.attrs.items() if a.put}


def test_list_parameters(doc: dict[str, Any], registry: Any) -> None:
    for res, _svc, _routes in registry:
        params = {p["name"]: p for p in doc["paths"][f"/v2.0/{res.url_path}"]["get"]["parameters"]}
        for control in ("fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"):
            assert control in params, (res.collection, control)
        filterable = {n for n, a in res.attrs.items() if a.filter and a.visible}
        assert filterable <= set(params), (res.collection, filterable - set(params))
        sortable = {n for n, a in res.attrs.items() if a.sort and a.visible}
        assert set(params["sort_key"]["schema"]["items"]["enum"]) == sortable


def test_build_openapi_from_the_registry_matches_the_served_document(doc: dict[str, Any], registry: Any) -> None:
    built = build_openapi(registry, "http://127.0.0.1:9696")
    assert not list(OPENAPI_30_VALIDATOR.iter_errors(built))
    assert set(built["paths"]) <= set(doc["paths"])
    for path in built["paths"]:
        assert built["paths"][path] == doc["paths"][path], path


def test_bodies_are_bulk_or_single(doc: dict[str, Any]) -> None:
    body = doc["paths"]["/v2.0/networks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    single, bulk = body["oneOf"]
    assert single["required"] == ["network"] and bulk["required"] == ["networks"]
    bare, wrapped = bulk["properties"]["networks"]["items"]["oneOf"]
    assert bare == {"$ref": "#/components/schemas/NetworkCreate"}
    assert wrapped["required"] == ["network"]
    assert wrapped["properties"]["network"] == {"$ref": "#/components/schemas/NetworkCreate"}


# ------------------------------------------------------------------ types


@pytest.mark.parametrize(("attr", "expected"), [
    (Attr(validate=v.uuid_), {"type": "string", "format": "uuid"}),
    (Attr(validate=v.boolean, convert=v.to_boolean), {"type": "boolean"}),
    (Attr(convert=v.to_int), {"type": "integer"}),
    (Attr(convert=v.to_int, validate=v.integer_range(68, None)), {"type": "integer", "minimum": 68}),
    (Attr(validate=v.string(255)), {"type": "string", "maxLength": 255}),
    (Attr(validate=v.string_or_none(64)), {"type": "string", "maxLength": 64, "nullable": True}),
    (Attr(convert=v.to_int, validate=v.values((4, 6))), {"type": "integer", "enum": [4, 6]}),
    (Attr(validate=v.string_list), {"type": "array", "uniqueItems": True}),
    (Attr(validate=v.uuid_or_none), {"type": "string", "format": "uuid", "nullable": True}),
    (Attr(validate=v.subnet_cidr_or_none), {"type": "string", "format": "cidr", "nullable": True}),
    (Attr(validate=v.any_dict), {"type": "object"}),
    (Attr(validate=v.list_of(v.ip_address)), {"type": "array"}),
])
def test_types_come_from_validators_and_converters(attr: Attr, expected: dict[str, Any]) -> None:
    schema = attribute_schema("thing", "some_attribute", attr)
    assert {k: schema[k] for k in expected if k in schema} == expected, schema


def test_unknown_validators_give_a_permissive_schema() -> None:
    assert validator_schema(lambda x: None) is None
    assert attribute_schema("thing", "x", Attr(validate=lambda x: None)) == {}


def test_document_types_match_the_definitions(doc: dict[str, Any]) -> None:
    props = doc["components"]["schemas"]["NetworkCreate"]["properties"]
    assert props["admin_state_up"]["type"] == "boolean"
    assert props["mtu"] == {"type": "integer", "minimum": 68}
    assert props["name"]["maxLength"] == 255
    subnet = doc["components"]["schemas"]["SubnetCreate"]
    assert subnet["properties"]["network_id"]["format"] == "uuid"
    assert subnet["properties"]["ip_version"]["enum"] == [4, 6]
    assert set(subnet["required"]) == {"network_id", "ip_version"}
    port = doc["components"]["schemas"]["PortCreate"]["properties"]
    assert port["fixed_ips"]["type"] == "array" and port["fixed_ips"]["items"]["type"] == "object"
    assert port["mac_address"]["nullable"] is True and "pattern" in port["mac_address"]


# ------------------------------------------------------------------ neutron-lib names


def _neutron_lib_modules() -> dict[str, ModuleType]:
    import neutron_lib.api.definitions as defs

    out = {}
    for info in pkgutil.iter_modules(defs.__path__):
        try:
            out[info.name] = importlib.import_module(f"neutron_lib.api.definitions.{info.name}")
        except Exception:  # noqa: BLE001 - a module needing optional deps is not ours to judge
            continue
    return out


# The modules that define each core collection (the extensions come from /v2.0/extensions).
CORE_MODULES = {
    "networks": ["network"],
    "subnets": ["subnet"],
    "ports": ["port"],
    "routers": ["l3"],
    "floatingips": ["l3"],
    "agents": ["agent"],
    "availability_zones": ["availability_zone"],
    "network_ip_availabilities": ["network_ip_availability"],
}

# Extensions whose attributes our definitions carry (their docstrings say so) even when the
# alias is not (yet) advertised: their names are checked too.
CLAIMED_MODULES = [
    "provider_net", "external_net", "portbindings", "port_security", "allowedaddresspairs", "extra_dhcp_opt",
    "dns", "dns_domain_ports", "network_mtu", "network_mtu_writable", "network_availability_zone",
    "l2_adjacency", "auto_allocated_topology", "address_scope", "ip_allocation", "port_mac_address_regenerate",
    "subnet_service_types", "subnet_dns_publish_fixed_ip", "segment", "l3_ext_gw_mode", "extraroute", "dvr",
    "l3_ext_ha_mode", "router_availability_zone", "l3_flavors", "fip_port_details",
    "expose_port_forwarding_in_fip", "stateful_security_group", "security_groups_shared_filtering",
    "security_groups_normalized_cidr", "security_groups_remote_address_group",
    "security_groups_rules_belongs_to_default_sg", "agent_resources_synced",
]

# Attributes neutron-lib makes visible that we legitimately do not have: (collection, attribute) -> why.
# Empty today: every attribute of the modules checked exists. (uplink_status_propagation and
# qos are not checked at all: neither alias is advertised nor claimed.)
NOT_IMPLEMENTED: dict[tuple[str, str], str] = {}


def test_attribute_names_match_neutron_lib(registry: Any, api: Api) -> None:
    modules = _neutron_lib_modules()
    ours: dict[str, Resource] = {res.collection: res for res, _svc, _routes in registry}
    sources = _neutron_lib_sources(registry, api)
    assert ("network", "networks") in sources and ("port", "ports") in sources
    assert set(CLAIMED_MODULES) <= set(modules), set(CLAIMED_MODULES) - set(modules)
    missing, hidden = [], []
    for name, coll in sources:
        for attr, spec in modules[name].RESOURCE_ATTRIBUTE_MAP[coll].items():
            if not isinstance(spec, dict) or not spec.get("is_visible") or (coll, attr) in NOT_IMPLEMENTED:
                continue
            if attr not in ours[coll].attrs:
                missing.append(f"{coll}.{attr} (neutron_lib.api.definitions.{name})")
            elif not ours[coll].attrs[attr].visible:
                hidden.append(f"{coll}.{attr} (neutron_lib.api.definitions.{name})")
    assert not missing, "attributes neutron-lib defines that our definitions lack:\n  " + "\n  ".join(missing)
    assert not hidden, "attributes neutron-lib shows that our definitions hide:\n  " + "\n  ".join(hidden)


def _neutron_lib_sources(registry: Any, api: Api) -> list[tuple[str, str]]:
    """(module, collection) pairs of the attribute maps that describe our collections."""
    modules = _neutron_lib_modules()
    ours = {res.collection for res, _svc, _routes in registry}
    aliases = {e["alias"] for e in api.get("/v2.0/extensions").json()["extensions"]}
    sources = [(m, coll) for coll, ms in CORE_MODULES.items() if coll in ours for m in ms]
    for name, mod in modules.items():
        if getattr(mod, "ALIAS", None) in aliases or name in CLAIMED_MODULES:
            sources += [(name, coll) for coll in (getattr(mod, "RESOURCE_ATTRIBUTE_MAP", None) or {}) if coll in ours]
    return sorted(set(sources))


# Attributes neutron-lib marks is_filter that we do not filter on: (collection, attribute) -> why.
NOT_FILTERABLE: dict[tuple[str, str], str] = {
    ("ports", "ip_allocation"): "always \"immediate\" here (no deferred allocation) and not stored: no SQL "
                                "column to filter on yet",
}


def test_filterability_matches_neutron_lib(registry: Any, api: Api) -> None:
    """What neutron-lib marks ``is_filter`` (shown or not: a subnet's ``shared``) is a filter here."""
    modules = _neutron_lib_modules()
    ours: dict[str, Resource] = {res.collection: res for res, _svc, _routes in registry}
    missing = []
    for name, coll in _neutron_lib_sources(registry, api):
        for attr, spec in modules[name].RESOURCE_ATTRIBUTE_MAP[coll].items():
            if not isinstance(spec, dict) or not spec.get("is_filter") or (coll, attr) in NOT_FILTERABLE:
                continue
            mine = ours[coll].attrs.get(attr)
            if attr in ours[coll].extra_filters:
                continue
            if mine is None or not mine.filter:
                missing.append(f"{coll}.{attr} (neutron_lib.api.definitions.{name})")
    assert not missing, "filters neutron-lib defines that we refuse:\n  " + "\n  ".join(missing)


def test_writability_matches_neutron_lib_core(registry: Any) -> None:
    """allow_post/allow_put of the core attributes agree with neutron-lib (names are not enough:
    clients rely on what they may set)."""
    modules = _neutron_lib_modules()
    ours = {res.collection: res for res, _svc, _routes in registry}
    wrong = []
    for coll, names in CORE_MODULES.items():
        if coll not in ours:
            continue
        for name in names:
            for attr, spec in modules[name].RESOURCE_ATTRIBUTE_MAP[coll].items():
                mine = ours[coll].attrs.get(attr)
                if mine is None or not isinstance(spec, dict):
                    continue
                if bool(spec.get("allow_post")) != mine.post or bool(spec.get("allow_put")) != mine.put:
                    wrong.append(f"{coll}.{attr}: neutron-lib post={spec.get('allow_post')} "
                                 f"put={spec.get('allow_put')}, ours post={mine.post} put={mine.put}")
    assert not wrong, "\n".join(wrong)
