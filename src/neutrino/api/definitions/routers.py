"""routers: the l3 router plus ext-gw-mode (enable_snat), extraroute (routes), dvr/l3-ha
(``distributed``/``ha``, admin-only), router_availability_zone and l3-flavors (``flavor_id``).

The member actions (add/remove_router_interface, add/remove_extraroutes) live in
``api/routes/routers.py``; their bodies are not attribute maps and are checked there.
"""

from __future__ import annotations

from typing import Any

from neutrino.api import validators as v
from neutrino.api.attributes import Attr, Resource, standard_attrs
from neutrino.errors import InvalidInput

GATEWAY_KEYS = ("network_id", "external_fixed_ips", "enable_snat")


def to_boolean_or_invalid(value: Any) -> bool:
    """neutron-lib's convert_to_boolean inside a dict attribute: InvalidInput when it fails."""
    try:
        return v.to_boolean(value)
    except v.ConversionError as exc:
        raise InvalidInput(error_message=str(exc)) from None


def convert_gateway_info(value: Any) -> Any:
    """``type:dict_or_nodata``: no data ({}, null) means no gateway; enable_snat to a boolean."""
    if not value:
        return None
    if isinstance(value, dict) and "enable_snat" in value:
        value = {**value, "enable_snat": to_boolean_or_invalid(value["enable_snat"])}
    return value


def fixed_ips(value: Any) -> str | None:
    """neutron-lib's ``type:fixed_ips``."""
    if not isinstance(value, list):
        return f"Invalid data format for fixed IP: '{value}'"
    seen: list[Any] = []
    for item in value:
        if not isinstance(item, dict):
            return f"Invalid data format for fixed IP: '{item}'"
        if "ip_address" in item:
            if item["ip_address"] in seen:
                return f"Duplicate IP address '{item['ip_address']}'"
            if msg := v.ip_address(item["ip_address"]):
                return msg
            seen.append(item["ip_address"])
        if "subnet_id" in item and (msg := v.uuid_(item["subnet_id"])):
            return msg
    return None


def validate_gateway_info(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"'{value}' is not a dictionary"
    if msg := v.verify_dict_keys(["network_id"], value, strict=False):
        return msg
    if unexpected := [k for k in value if k not in GATEWAY_KEYS]:
        return f"Unexpected keys supplied: {', '.join(unexpected)}"
    if msg := v.uuid_(value["network_id"]):
        return msg
    if "external_fixed_ips" in value and (msg := fixed_ips(value["external_fixed_ips"])):
        return msg
    return None


def _bool_or_none(value: Any) -> Any:
    return None if value is None else v.to_boolean(value)


ROUTERS = Resource(
    member="router",
    collection="routers",
    attrs=standard_attrs(
        admin_state_up=Attr(post=True, put=True, default=True, convert=v.to_boolean, validate=v.boolean),
        status=Attr(),
        external_gateway_info=Attr(post=True, put=True, default=None, convert=convert_gateway_info,
                                   validate=validate_gateway_info, filter=False, sort=False),
        routes=Attr(put=True, convert=v.to_canonical_routes, validate=v.hostroutes,
                    filter=False, sort=False),
        distributed=Attr(post=True, put=True, convert=_bool_or_none,
                         validate=lambda x: None if x is None else v.boolean(x)),
        ha=Attr(post=True, put=True, convert=_bool_or_none,
                validate=lambda x: None if x is None else v.boolean(x)),
        availability_zone_hints=Attr(post=True, default=list, validate=v.string_list, filter=False, sort=False),
        availability_zones=Attr(filter=False, sort=False),
        flavor_id=Attr(post=True, default=None, validate=v.uuid_or_none),
    ),
)
