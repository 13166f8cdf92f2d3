"""A small Neutron/Keystone REST client for neutrino's own commands (instances, up, status).

The stdlib only: the commands start in a few milliseconds instead of the second an SDK import
costs, and they need a handful of calls. Credentials come from the clouds.yaml the server
writes; a NeutronError body becomes an :class:`ApiError` carrying Neutron's type and message.
A :data:`Connector` given as ``via`` opens the connections (an isolated lab's API is reachable
only from inside its hosts' namespaces).
"""

from __future__ import annotations

import functools
import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

# Opens the TCP connection to (host, port) with a timeout: where the server is reachable only
# from elsewhere (a lab's host namespace, ``neutrino lab up --isolated``), a socket made there.
Connector = Callable[[str, int, float | None], socket.socket]


class ApiError(Exception):
    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(f"{status} {type_}: {message}")
        self.status = status
        self.type = type_
        self.message = message


class Client:
    """Calls against ``url`` (the server's root); ``headers`` carry the token or noauth identity."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 30.0,
                 project_id: str = "", via: Connector | None = None) -> None:
        self.url = url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.project_id = project_id
        self.via = via

    @classmethod
    def from_clouds(cls, clouds_yaml: Path, cloud: str, timeout: float = 30.0, via: Connector | None = None) -> Client:
        """Authenticate as ``cloud`` of ``clouds_yaml`` (password method, project scope)."""
        data = yaml.safe_load(Path(clouds_yaml).read_text()) or {}
        try:
            auth = data["clouds"][cloud]["auth"]
        except KeyError:
            raise ApiError(0, "NoSuchCloud", f"cloud {cloud!r} is not in {clouds_yaml}") from None
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": auth["username"], "password": auth["password"],
                "domain": {"name": auth.get("user_domain_name", "Default")}}}},
            "scope": {"project": {"name": auth["project_name"],
                                  "domain": {"name": auth.get("project_domain_name", "Default")}}}}}
        auth_url = str(auth["auth_url"]).rstrip("/")
        root = auth_url.rsplit("/identity", 1)[0]
        status, headers, payload = _send("POST", f"{auth_url}/auth/tokens", {}, body, timeout, via)
        if status != 201:
            raise _error(status, payload)
        project = json.loads(payload)["token"]["project"]["id"]
        return cls(root, {"X-Auth-Token": headers["X-Subject-Token"]}, timeout, project_id=project, via=via)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        status, _, payload = _send(method, self.url + path, self.headers, body, self.timeout, self.via)
        if status >= 400:
            raise _error(status, payload)
        return json.loads(payload) if payload else None

    def get(self, path: str, **query: Any) -> Any:
        if query:
            path += "?" + urllib.parse.urlencode(query, doseq=True)
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def find(self, collection: str, name_or_id: str, key: str | None = None) -> dict[str, Any]:
        """One resource by id or unique name, as the openstack CLI resolves it; ``key`` is the
        body's collection name where the URL's differs (``security-groups``)."""
        key = key or collection
        member = key[:-1].replace("_", " ")
        for attr in ("id", "name"):
            found = self.get(f"/v2.0/{collection}", **{attr: name_or_id})[key]
            if len(found) == 1:
                return found[0]  # type: ignore[no-any-return]
            if len(found) > 1:
                raise ApiError(409, "NotUnique", f"more than one {member} is named {name_or_id!r}; use its id")
        raise ApiError(404, "NotFound", f"no {member} with id or name {name_or_id!r}")


class _ConnectionVia(http.client.HTTPConnection):
    def __init__(self, host: str, *, via: Connector, **kw: Any) -> None:
        super().__init__(host, **kw)
        self._via = via

    def connect(self) -> None:
        self.sock = self._via(self.host, self.port or 80, self.timeout)  # type: ignore[arg-type]


class _HandlerVia(urllib.request.HTTPHandler):
    """Plain HTTP whose connections the connector opens."""

    def __init__(self, via: Connector) -> None:
        super().__init__()
        self._via = via

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_ConnectionVia, via=self._via), req)  # type: ignore[arg-type]


def _send(method: str, url: str, headers: dict[str, str], body: Any, timeout: float,
          via: Connector | None = None) -> tuple[int, Any, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={**headers, "Content-Type": "application/json", "Accept": "application/json"})
    opener = urllib.request.build_opener(_HandlerVia(via)) if via is not None else None
    try:
        with (opener.open(req, timeout=timeout) if opener else urllib.request.urlopen(req, timeout=timeout)) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()
    except urllib.error.URLError as exc:
        hint = "is the server running (`neutrino status`)?"
        raise ApiError(0, "ConnectionFailed", f"{url}: {exc.reason}; {hint}") from None


def _error(status: int, payload: bytes) -> ApiError:
    try:
        body = json.loads(payload)
    except ValueError:
        return ApiError(status, "HTTPError", payload.decode(errors="replace")[:200])
    if "NeutronError" in body:
        err = body["NeutronError"]
        return ApiError(status, str(err.get("type")), str(err.get("message")))
    if "error" in body:  # Keystone
        return ApiError(status, str(body["error"].get("title")), str(body["error"].get("message")))
    return ApiError(status, "HTTPError", str(body)[:200])
