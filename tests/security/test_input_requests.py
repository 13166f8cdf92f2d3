"""No request gives a 500, on SQLite, PostgreSQL or MariaDB: NUL bytes in bodies, filters and
path ids (PostgreSQL refuses NUL in text), JSON nested ~1000 levels (RecursionError), a token
header that is not ASCII, ids longer than their column. Each is a 4xx with Neutron's
NeutronError body, or Keystone's error body under /identity."""

from __future__ import annotations

import json
import socket
from typing import Any

from tests.conftest import Api, LiveServer, free_port

DEEP = "[" * 1000 + "]" * 1000


def neutron_4xx(r: Any, status: int | None = None) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    if status is not None:
        assert r.status_code == status, r.text
    err = r.json()["NeutronError"]
    assert set(err) == {"type", "message", "detail"}, err
    return err  # type: ignore[no-any-return]


def keystone_4xx(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == status and err["title"] and err["message"], err
    return err  # type: ignore[no-any-return]


def test_nul_bytes_anywhere_in_a_v2_request_are_400(any_db_api: Api) -> None:
    api = any_db_api
    net = api.create("network", name="n")
    neutron_4xx(api.post("/v2.0/networks", json={"network": {"name": "a\x00b"}}), 400)
    neutron_4xx(api.post("/v2.0/networks", json={"network": {"name": "n", "tags": ["t\x00"]}}), 400)
    neutron_4xx(api.put(f"/v2.0/networks/{net['id']}", json={"network": {"description": "\x00"}}), 400)
    body = {"port": {"network_id": net["id"], "binding:profile": {"k": "v\x00"}}}  # free-form dict
    neutron_4xx(api.post("/v2.0/ports", json=body), 400)
    neutron_4xx(api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "a\x00": 1}}), 400)
    for query in ("name=a%00b", "id=%00", "tags=a%00", "marker=%00&limit=1", "fields=na%00me", "a%00=b"):
        neutron_4xx(api.get(f"/v2.0/networks?{query}"), 400)
    neutron_4xx(api.get("/v2.0/networks/a%00b"), 400)
    neutron_4xx(api.put("/v2.0/networks/a%00b", json={"network": {"name": "x"}}), 400)
    neutron_4xx(api.delete("/v2.0/networks/%00"), 400)
    neutron_4xx(api.put(f"/v2.0/networks/{net['id']}/tags/a%00b"), 400)
    neutron_4xx(api.put(f"/v2.0/routers/{'%00'}/add_router_interface", json={"subnet_id": "x"}), 400)
    assert api.get(f"/v2.0/networks/{net['id']}").json()["network"]["name"] == "n"


def test_nul_bytes_in_identity_requests_are_keystone_400(any_db_api: Api) -> None:
    """Even the unauthenticated token request (it used to reach PostgreSQL and answer 500)."""
    c = any_db_api.client
    for user in ({"name": "ad\x00min", "domain": {"id": "default"}, "password": "x"},
                 {"id": "\x00", "password": "x"},
                 {"name": "admin", "domain": {"name": "Def\x00ault"}, "password": "p\x00"}):
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}
        keystone_4xx(c.post("/identity/v3/auth/tokens", json=body), 400)
    lone_surrogate = (b'{"auth": {"identity": {"methods": ["password"], "password": {"user": '
                      b'{"name": "ad\\ud800min", "domain": {"id": "default"}, "password": "x"}}}}}')
    keystone_4xx(c.post("/identity/v3/auth/tokens", content=lone_surrogate,
                        headers={"Content-Type": "application/json"}), 400)
    keystone_4xx(c.get("/identity/v3/users/a%00b"), 400)
    keystone_4xx(c.get("/identity/v3/projects?name=%00"), 400)


def test_json_nested_1000_levels_is_400_not_a_recursion_error(any_db_api: Api) -> None:
    api = any_db_api
    headers = {**api.headers, "Content-Type": "application/json"}
    for path, key in (("/v2.0/networks", "network"), ("/v2.0/ports", "port")):
        r = api.client.post(path, content=f'{{"{key}": {{"name": {DEEP}}}}}', headers=headers)
        assert neutron_4xx(r, 400)["type"] == "MalformedRequestBody"
    r = api.client.post("/identity/v3/auth/tokens", content=f'{{"auth": {DEEP}}}',
                        headers={"Content-Type": "application/json"})
    keystone_4xx(r, 400)


def raw_get(port: int, path: str, token: bytes) -> tuple[int, dict[str, Any]]:
    """A GET sent byte for byte (HTTP clients refuse to send such a header themselves)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Auth-Token: " + token
                     + b"\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_non_ascii_token_over_http_is_401(cfg: Any) -> None:
    """With token auth on: /v2.0 answers Neutron's 401, /identity Keystone's (it used to be a
    500 from decoding the header)."""
    from neutrino import server

    port = free_port()
    cfg.DEFAULT.auth_strategy = "keystone"
    cfg.DEFAULT.bind = f"127.0.0.1:{port}"
    srv = server.build(cfg)
    try:
        with LiveServer(srv.app, port):
            for token in ("tök".encode("latin-1"), "tök".encode(), b"a\x01b"):
                status, body = raw_get(port, "/v2.0/networks", token)
                assert status == 401 and body["NeutronError"]["type"] == "HTTPUnauthorized", body
                status, body = raw_get(port, "/identity/v3/auth/projects", token)
                assert status == 401 and body["error"]["code"] == 401, body
    finally:
        srv.db.dispose()


def test_ids_longer_than_their_column_are_4xx(any_db_api: Api) -> None:
    api = any_db_api
    net = api.create("network", name="n")
    long = "a" * 300
    for method, path, body in (
        ("GET", f"/v2.0/networks/{long}", None),
        ("PUT", f"/v2.0/networks/{long}", {"network": {"name": "x"}}),
        ("DELETE", f"/v2.0/ports/{long}", None),
        ("GET", f"/v2.0/networks?id={long}", None),
        ("POST", "/v2.0/security-group-rules", {"security_group_rule": {
            "security_group_id": long, "direction": "ingress"}}),
        ("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "device_id": "d" * 256}}),
        ("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "security_groups": [long]}}),
        ("PUT", f"/v2.0/routers/{long}/add_router_interface", {"subnet_id": long}),
        ("POST", "/v2.0/floatingips", {"floatingip": {"floating_network_id": long}}),
    ):
        r = api.request(method, path, json=body)
        if r.status_code != 200:
            neutron_4xx(r)
    keystone_4xx(api.client.get(f"/identity/v3/users/{long}"), 401)  # no token: 401 before the lookup
    neutron_4xx(api.put(f"/v2.0/quotas/{long}", json={"quota": {"network": 5}}), 400)  # column: 255
    neutron_4xx(api.as_("p" * 300).post("/v2.0/networks", json={"network": {}}))  # noauth's project header
