"""Parsing ``POST /v3/auth/tokens`` bodies: what is a 400, what is a 401, what is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from neutrino.identity.auth import ProjectScope, parse
from neutrino.identity.errors import Unauthorized, ValidationError


def body(user: dict[str, Any], scope: Any = None, methods: Any = ("password",)) -> dict[str, Any]:
    auth: dict[str, Any] = {"identity": {"methods": list(methods), "password": {"user": user}}}
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


def test_password_by_name_with_domain_name_or_id() -> None:
    for domain in ({"id": "default"}, {"name": "Default"}):
        req = parse(body({"name": "u", "domain": domain, "password": "p"},
                         {"project": {"name": "p", "domain": domain}}))
        assert req.password and req.password.user_name == "u" and req.password.password == "p"
        assert req.scope == ProjectScope(id=None, name="p")


def test_unscoped_forms() -> None:
    assert parse(body({"id": "x", "password": "p"})).scope is None
    req = parse(body({"id": "x", "password": "p"}, "unscoped"))
    assert req.scope is None and req.explicit_unscoped


def test_token_method() -> None:
    req = parse({"auth": {"identity": {"methods": ["token"], "token": {"id": "abc"}}}})
    assert req.token == "abc" and req.password is None and req.methods == ("token",)


@pytest.mark.parametrize("bad", [
    body({"name": "u", "password": "p"}),  # a name needs a domain
    body({"password": "p"}),
    body({"id": "x", "password": "p"}, {"project": {"name": "p"}}),
    body({"id": "x", "password": "p"}, methods=[]),
    {"auth": {"identity": {"methods": ["token"], "token": {}}}},
    {"auth": {"identity": {"methods": ["password"]}}},
])
def test_malformed_is_400(bad: Any) -> None:
    with pytest.raises(ValidationError):
        parse(bad)


@pytest.mark.parametrize("bad", [
    body({"name": "u", "domain": {"id": "other"}, "password": "p"}),
    body({"id": "x", "password": "p"}, {"domain": {"id": "default"}}),
    body({"id": "x", "password": "p"}, {"system": {"all": True}}),
    body({"id": "x", "password": "p"}, methods=["totp"]),
    body({"id": "x"}),
])
def test_unacceptable_is_401(bad: Any) -> None:
    with pytest.raises(Unauthorized):
        parse(bad)
