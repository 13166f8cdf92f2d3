"""Request-body checks for projects, users and roles, with Keystone's 400 wording.

Unknown fields are dropped rather than refused, as Keystone's schemas allow additional
properties; a known field of the wrong type or a missing required one is a 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neutrino.identity.errors import ValidationError


@dataclass(frozen=True)
class Field:
    kind: str  # "string", "bool" or "tags"
    required: bool = False
    nullable: bool = False
    min_length: int = 0
    max_length: int = 255
    updatable: bool = True


PROJECT = {
    "name": Field("string", required=True, min_length=1, max_length=64),
    "description": Field("string", nullable=True, max_length=255),
    "domain_id": Field("string", nullable=True, max_length=64, updatable=False),
    "enabled": Field("bool"),
    "is_domain": Field("bool", updatable=False),
    "parent_id": Field("string", nullable=True, max_length=64, updatable=False),
    "tags": Field("tags"),
}
USER = {
    "name": Field("string", required=True, min_length=1, max_length=255),
    "password": Field("string", nullable=True, max_length=4096),
    "default_project_id": Field("string", nullable=True, max_length=64),
    "domain_id": Field("string", max_length=64, updatable=False),
    "enabled": Field("bool"),
    "email": Field("string", nullable=True, max_length=255),
    "description": Field("string", nullable=True, max_length=255),
}
ROLE = {
    "name": Field("string", required=True, min_length=1, max_length=255),
    "description": Field("string", nullable=True, max_length=255),
    "domain_id": Field("string", nullable=True, max_length=64, updatable=False),
}


def invalid(field: str, reason: str) -> ValidationError:
    return ValidationError(f"Invalid input for field '{field}': {reason}")


def entity(body: Any, key: str) -> dict[str, Any]:
    """``body[key]`` as a dict, or the 400 Keystone gives for a missing or non-object one."""
    if not isinstance(body, dict) or key not in body:
        raise ValidationError(f"Invalid input for field '{key}': '{key}' is a required property")
    if not isinstance(body[key], dict):
        raise invalid(key, f"{body[key]!r} is not of type 'object'")
    return body[key]  # type: ignore[no-any-return]


def check(data: dict[str, Any], fields: dict[str, Field], *, create: bool, kind: str) -> dict[str, Any]:
    """The known fields of ``data``, checked; ``kind`` names the entity in update refusals."""
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in data:
            if create and spec.required:
                raise invalid(name, f"'{name}' is a required property")
            continue
        value = data[name]
        if not create and not spec.updatable:
            out[name] = value  # checked by the caller against the current value
            continue
        out[name] = _value(name, value, spec)
    if not create and not out:
        raise ValidationError(f"Invalid input for field '{kind}': {{}} does not have enough properties")
    return out


def _value(name: str, value: Any, spec: Field) -> Any:
    if value is None:
        if spec.nullable:
            return None
        raise invalid(name, f"None is not of type '{'boolean' if spec.kind == 'bool' else spec.kind}'")
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise invalid(name, f"{value!r} is not of type 'boolean'")
        return value
    if spec.kind == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise invalid(name, f"{value!r} is not a list of strings")
        for tag in value:
            if not 1 <= len(tag) <= 255 or "/" in tag or "," in tag:
                raise invalid(name, f"{tag!r} is not a valid tag")
        if len(value) > 80:
            raise invalid(name, "too many tags (at most 80)")
        return list(dict.fromkeys(value))
    if not isinstance(value, str):
        raise invalid(name, f"{value!r} is not of type 'string'")
    if len(value) < spec.min_length:
        raise invalid(name, f"{value!r} is too short")
    if len(value) > spec.max_length:
        raise invalid(name, f"{value[:20]!r}... is too long")
    if spec.min_length and not value.strip():
        raise invalid(name, f"{value!r} must contain something other than whitespace")
    return value
