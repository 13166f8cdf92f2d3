"""security-groups and security-group-rules: the security-group extension plus stateful-security-group,
security-groups-shared-filtering, security-groups-normalized-cidr, security-groups-remote-address-group,
security-groups-rules-belongs-to-default-sg and standard-attr-description.

The URL paths have dashes (``/v2.0/security-groups``) while the JSON keys have underscores
(``{"security_groups": [...]}``); ``collection`` is the JSON key, resources.py adds the dashed URL.
"""

from typing import Any

from neutrino.api import validators as v
from neutrino.api.attributes import Attr, Resource, standard_attrs
from neutrino.services import security_groups as sg

DIRECTIONS = ("ingress", "egress")
UUID_FIELD_SIZE = 36  # neutron-lib's db constants


def _direction(value: Any) -> str | None:
    return None if value in DIRECTIONS else f"'{value}' is not in {list(DIRECTIONS)}"


SECURITY_GROUPS = Resource(
    member="security_group",
    collection="security_groups",
    path="security-groups",
    attrs=standard_attrs(
        name=Attr(post=True, put=True, default="", convert=sg.convert_name_not_default, validate=v.string(255)),
        stateful=Attr(post=True, put=True, default=True, convert=v.to_boolean, validate=v.boolean),
        shared=Attr(convert_filter=v.to_boolean),
        security_group_rules=Attr(filter=False, sort=False),
    ),
)

SECURITY_GROUP_RULES = Resource(
    member="security_group_rule",
    collection="security_group_rules",
    path="security-group-rules",
    attrs={
        "id": Attr(validate=v.uuid_),
        "project_id": Attr(post=True, validate=v.string(255)),
        "tenant_id": Attr(post=True, validate=v.string(255)),
        # Neutron's type:string of UUID_FIELD_SIZE; the remote ids (unvalidated in Neutron) get the
        # same, so that only a string of an id's size ever reaches a query (a list was a 500).
        "security_group_id": Attr(post=True, required=True, validate=v.string(UUID_FIELD_SIZE)),
        "direction": Attr(post=True, required=True, validate=_direction),
        "ethertype": Attr(post=True, default="IPv4", convert=sg.convert_ethertype),
        "protocol": Attr(post=True, default=None, convert=sg.convert_protocol),
        "port_range_min": Attr(post=True, default=None, convert=sg.convert_port, convert_filter=v.to_int),
        "port_range_max": Attr(post=True, default=None, convert=sg.convert_port, convert_filter=v.to_int),
        "remote_ip_prefix": Attr(post=True, default=None, convert=sg.convert_ip_prefix),
        "remote_group_id": Attr(post=True, default=None, validate=v.string_or_none(UUID_FIELD_SIZE)),
        "remote_address_group_id": Attr(post=True, default=None, validate=v.string_or_none(UUID_FIELD_SIZE)),
        "normalized_cidr": Attr(),
        "belongs_to_default_sg": Attr(convert_filter=v.to_boolean, sort=False),
        "description": Attr(post=True, put=True, default="", validate=v.string(255, multiline=True)),
        "created_at": Attr(),
        "updated_at": Attr(),
        "revision_number": Attr(convert_filter=v.to_int),
    },
)
