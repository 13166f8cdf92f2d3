"""Keystone's error classes and body (``{"error": {"code", "title", "message"}}``).

Kept apart from :mod:`neutrino.errors` because clients parse Keystone failures by this shape,
not Neutron's; the identity routes render these themselves.
"""

from __future__ import annotations


class KeystoneError(Exception):
    code = 500
    title = "Internal Server Error"
    default = "An unexpected error prevented the server from fulfilling your request."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default
        super().__init__(self.message)

    def body(self) -> dict[str, dict[str, object]]:
        return {"error": {"code": self.code, "title": self.title, "message": self.message}}


class ValidationError(KeystoneError):
    code = 400
    title = "Bad Request"
    default = (
        "The request you have made is malformed or otherwise incorrect. "
        "The client is assumed to be in error."
    )


class Unauthorized(KeystoneError):
    code = 401
    title = "Unauthorized"
    default = "The request you have made requires authentication."


class Forbidden(KeystoneError):
    code = 403
    title = "Forbidden"
    default = "You are not authorized to perform the requested action."

    @classmethod
    def action(cls, action: str) -> Forbidden:
        return cls(f"You are not authorized to perform the requested action: identity:{action}.")


class NotFound(KeystoneError):
    code = 404
    title = "Not Found"
    default = "The resource could not be found."

    @classmethod
    def entity(cls, kind: str, id: str) -> NotFound:
        return cls(f"Could not find {kind}: {id}.")


class MethodNotAllowed(KeystoneError):
    code = 405
    title = "Method Not Allowed"
    default = "The method is not allowed for the requested URL."


class Conflict(KeystoneError):
    code = 409
    title = "Conflict"

    @classmethod
    def duplicate(cls, kind: str, field: str, value: str) -> Conflict:
        return cls(
            f"Conflict occurred attempting to store {kind} - Duplicate entry found with "
            f"{field} {value}."
        )


class RequestTooLarge(KeystoneError):
    code = 413
    title = "Request Entity Too Large"
    default = "Request is too large."


class ServiceUnavailable(KeystoneError):
    """The database cannot be reached; the response carries Retry-After."""

    code = 503
    title = "Service Unavailable"
    default = "The service is temporarily unavailable. Please try again later."
    retry_after = 5
