"""Request input that no handler should ever see: checked once, before routing or the database.

PostgreSQL refuses NUL in any text value (a 500 if it got that far), a deeply nested JSON body
makes every recursive walk (validation, error messages, JSON encoding) hit Python's recursion
limit, and a token header that is not ASCII is no token. Each becomes the 4xx Neutron (or,
under /identity, Keystone) would answer, in one place rather than in every handler.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from neutrino.errors import HTTPBadRequest, MalformedRequestBody, NotAuthenticated
from neutrino.identity.errors import Unauthorized, ValidationError

# Deeper than any body Neutron or Keystone defines (binding:profile is the deepest free-form
# value); far below the ~1000 frames that would raise RecursionError.
MAX_JSON_DEPTH = 32
TOKEN_HEADERS = (b"x-auth-token", b"x-subject-token")
# NUL, and the lone surrogates a JSON "\\ud800" escape can produce: no database stores either.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class BodyError(ValueError):
    """A JSON body that is well-formed but unacceptable; the message is the reason."""


def check_json(data: Any) -> None:
    """Refuse NUL characters and lone surrogates in any key or string, and nesting deeper than
    MAX_JSON_DEPTH.

    Iterative, so the check itself cannot overflow the stack.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if (m := UNSTORABLE.search(value)) is not None:
                what = "NUL characters (\\u0000)" if m.group() == "\x00" else "Lone surrogates (\\ud800-\\udfff)"
                raise BodyError(f"{what} are not allowed in the request body")
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise BodyError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(value, dict):
                stack.extend((k, depth) for k in value)
                stack.extend((x, depth + 1) for x in value.values())
            else:
                stack.extend((x, depth + 1) for x in value)


def check_neutron_body(data: Any) -> Any:
    """``check_json`` for /v2.0 bodies: Neutron's MalformedRequestBody (400)."""
    try:
        check_json(data)
    except BodyError as exc:
        raise MalformedRequestBody(reason=str(exc)) from None
    return data


def _query_has_nul(raw: bytes) -> bool:
    return b"\x00" in unquote_to_bytes(raw)


def request_problem(scope: Scope) -> tuple[int, str] | None:
    """(status, message) when the path, query string or token headers cannot be served."""
    if "\x00" in scope.get("path", ""):
        return 400, "NUL characters (\\u0000) are not allowed in the URL path"
    if _query_has_nul(scope.get("query_string", b"")):
        return 400, "NUL characters (\\u0000) are not allowed in the query string"
    for name, value in scope.get("headers", []):
        if name in TOKEN_HEADERS and not (value.isascii() and value.decode().isprintable()):
            return 401, "The request you have made requires authentication."
    return None


class GuardMiddleware:
    """Answers requests :func:`request_problem` refuses; lets the rest through untouched.

    Under /identity the error is Keystone's shape, elsewhere Neutron's (via the error layer).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = request_problem(scope) if scope["type"] == "http" else None
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, message = problem
        if scope.get("path", "").startswith("/identity"):
            err = Unauthorized() if status == 401 else ValidationError(message)
            await JSONResponse(err.body(), err.code)(scope, receive, send)
            return
        raise NotAuthenticated() if status == 401 else HTTPBadRequest(msg=message)
