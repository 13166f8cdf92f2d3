"""The errors clients see: class names are the ``NeutronError.type`` values Neutron sends.

    NeutrinoError (500)
    ├── BadRequest (400)        InvalidInput, HTTPBadRequest, ...
    ├── NotAuthenticated (401)
    ├── PolicyNotAuthorized (403)
    ├── NotFound (404)          NetworkNotFound, PortNotFound, ...
    ├── Conflict (409)          InUse, IpAddressAlreadyAllocated, OverQuota, ...
    ├── RequestTooLarge (413)
    └── ServiceUnavailable (503) NoNetworkAvailable, DatabaseUnavailable (with Retry-After)

Each subclass carries Neutron's message template; ``type`` defaults to the class name.
"""

from __future__ import annotations

from typing import Any


class NeutrinoError(Exception):
    status = 500
    message = "An unknown exception occurred."
    type_name: str | None = None

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.msg = message if message is not None else self.message.format(**kwargs)
        super().__init__(self.msg)

    @property
    def type(self) -> str:
        return self.type_name or type(self).__name__


class BadRequest(NeutrinoError):
    status = 400
    message = "Bad {resource} request: {msg}."
    type_name = "BadRequest"


class HTTPBadRequest(BadRequest):
    """Neutron's generic validation failure (webob's class name)."""

    message = "{msg}"
    type_name = "HTTPBadRequest"


class InvalidInput(BadRequest):
    message = "Invalid input for operation: {error_message}."
    type_name = "InvalidInput"


class MalformedRequestBody(BadRequest):
    message = "Malformed request body: {reason}."
    type_name = "MalformedRequestBody"


class NotAuthenticated(NeutrinoError):
    status = 401
    message = "The request you have made requires authentication."
    type_name = "HTTPUnauthorized"


class PolicyNotAuthorized(NeutrinoError):
    status = 403
    message = "{rule} is disallowed by policy"  # oslo.policy's wording, the rule as evaluated
    type_name = "PolicyNotAuthorized"


class NotFound(NeutrinoError):
    status = 404
    message = "An unknown exception occurred."
    type_name = "NotFound"


class ResourceNotFound(NotFound):
    """<Resource> <id> could not be found; ``type`` is e.g. NetworkNotFound."""

    message = "{label} {id} could not be found."

    def __init__(self, resource: str, id: str) -> None:
        label = _LABELS.get(resource, resource.replace("_", " ").title().replace(" ", ""))
        super().__init__(label=_MESSAGE_LABELS.get(resource, label), id=id)
        self._type = f"{label}NotFound"

    @property
    def type(self) -> str:
        return self._type


class MarkerNotFound(NotFound):
    message = "Marker {marker} could not be found."
    type_name = "MarkerNotFound"


class Conflict(NeutrinoError):
    status = 409
    message = "A conflict occurred: {msg}"
    type_name = "Conflict"


class InUse(Conflict):
    message = "The resource is in use."
    type_name = "InUse"


class NetworkInUse(InUse):
    """neutron-lib's: the reason names the ports in use where the caller knows them."""

    message = "Unable to complete operation on network {net_id}. {reason}."
    type_name = "NetworkInUse"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("reason", "There are one or more ports still in use on the network")
        super().__init__(message, **kwargs)


class SubnetInUse(InUse):
    message = (
        "Unable to complete operation on subnet {subnet_id}: {reason}."
    )
    type_name = "SubnetInUse"


class PortInUse(InUse):
    message = (
        "Unable to complete operation on port {port_id} for network {net_id}. "
        "Port already has an attached device {device_id}."
    )
    type_name = "PortInUse"


class MacAddressInUse(InUse):
    message = (
        "Unable to complete operation for network {net_id}. "
        "The mac address {mac} is in use."
    )
    type_name = "MacAddressInUse"


class IpAddressInUse(InUse):
    message = (
        "Unable to complete operation for network {net_id}. "
        "The IP address {ip_address} is in use."
    )
    type_name = "IpAddressInUse"


class IpAddressAlreadyAllocated(Conflict):
    message = "IP address {ip} already allocated in subnet {subnet_id}"
    type_name = "IpAddressAlreadyAllocated"


class IpAddressGenerationFailure(Conflict):
    message = "No more IP addresses available on network {net_id}."
    type_name = "IpAddressGenerationFailure"


class IpAddressGenerationFailureNoMatchingSubnet(IpAddressGenerationFailure):
    message = ("No valid service subnet for the given device owner, network {network_id}, "
               "service type {service_type}.")
    type_name = "IpAddressGenerationFailureNoMatchingSubnet"


class OverQuota(Conflict):
    message = "Quota exceeded for resources: {overs}."
    type_name = "OverQuota"


class RevisionNumberConstraintFailed(NeutrinoError):
    status = 412
    message = "Constrained to {expected}, but current revision is {current}"
    type_name = "RevisionNumberConstraintFailed"


class MethodNotAllowed(NeutrinoError):
    """A collection that cannot be written (agents, availability zones, IP availability)."""

    status = 405
    message = "The method is not allowed for this resource."
    type_name = "HTTPMethodNotAllowed"


class RequestTooLarge(NeutrinoError):
    status = 413
    message = "Request is too large."
    type_name = "HTTPRequestEntityTooLarge"


class ServiceUnavailable(NeutrinoError):
    status = 503
    message = "The service is unavailable: {msg}"
    type_name = "ServiceUnavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached: 503 and a Retry-After, as webob's HTTPServiceUnavailable."""

    message = "The server is currently unavailable. Please try again at a later time."
    type_name = "HTTPServiceUnavailable"
    retry_after = 5  # seconds; a restarted database is usually back within this


class NoNetworkAvailable(ServiceUnavailable):
    message = "Unable to create the network. No tenant network is available for allocation."
    type_name = "NoNetworkAvailable"


class TransientDatabaseError(Exception):
    """A retriable DB conflict (unique violation on allocation, serialization failure)."""


_LABELS = {
    "network": "Network",
    "subnet": "Subnet",
    "port": "Port",
    "router": "Router",
    "floatingip": "FloatingIP",
    "security_group": "SecurityGroup",
    "security_group_rule": "SecurityGroupRule",
    "agent": "Agent",
    "availability_zone": "AvailabilityZone",
    "extension": "Extension",
}
_MESSAGE_LABELS = {
    "floatingip": "Floating IP",
    "security_group": "Security group",
    "security_group_rule": "Security group rule",
    "availability_zone": "AvailabilityZone",
}
