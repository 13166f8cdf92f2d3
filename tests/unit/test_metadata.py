"""Metadata: the haproxy config (checked by haproxy itself) and the server over a real unix socket, no root."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.metadata import proxy, server
from neutrino.agent.metadata.proxy import MetadataProxy, render_config
from neutrino.agent.metadata.server import MetadataServer

ROUTER = "5a5a5a5a-1111-4222-8333-444455556666"
OTHER_ROUTER = "6b6b6b6b-1111-4222-8333-444455556666"
NETWORK = "aaaa1111-0000-4000-8000-00000000000a"
VM1 = {"instance_id": "11111111-aaaa-4bbb-8ccc-000000000001", "hostname": "web-1", "name": "web 1",
       "local_ipv4": "10.30.0.11", "project_id": "p-one"}
VM2 = {"instance_id": "22222222-aaaa-4bbb-8ccc-000000000002", "hostname": "db-2", "name": "db 2",
       "local_ipv4": "10.30.0.12", "project_id": "p-two"}
# The same address behind another router is another instance: the pair (router, ip) is the key.
VM3 = {"instance_id": "33333333-aaaa-4bbb-8ccc-000000000003", "hostname": "twin", "name": "twin",
       "local_ipv4": "10.30.0.11", "project_id": "p-one"}
BY_ROUTER = {(ROUTER, "10.30.0.11"): VM1, (ROUTER, "10.30.0.12"): VM2, (OTHER_ROUTER, "10.30.0.11"): VM3}
BY_NETWORK = {(NETWORK, "10.30.0.12"): VM2}


def lookup(router_id: str | None, network_id: str | None, ip: str) -> Mapping[str, Any] | None:
    if network_id is not None:
        return BY_NETWORK.get((network_id, ip))
    return BY_ROUTER.get((router_id or "", ip))


# --- the proxy's config ----------------------------------------------------------------------------------------


def _config(tmp_path: Path, **kw: Any) -> str:
    return render_config(socket_path=str(tmp_path / "md.sock"), pidfile=str(tmp_path / "haproxy.pid"), **kw)


def test_config_strips_client_headers_before_stamping_the_router() -> None:
    text = render_config(socket_path="/run/neutrino/md.sock", pidfile="/run/neutrino/r/haproxy.pid", router_id=ROUTER)
    lines = [line.strip() for line in text.splitlines()]
    order = [lines.index(rule) for rule in ("http-request del-header X-Neutron-Router-ID",
                                            "http-request del-header X-Neutron-Network-ID",
                                            "http-request del-header X-Forwarded-For",
                                            f"http-request set-header X-Neutron-Router-ID {ROUTER}")]
    assert order == sorted(order)
    for line in ("daemon", "pidfile /run/neutrino/r/haproxy.pid", "maxconn 1024", "mode http", "option forwardfor",
                 "bind 0.0.0.0:9697", "server metadata unix@/run/neutrino/md.sock"):
        assert line in lines, line
    # haproxy drops root once it has bound its port, as Neutron's metadata proxy does.
    assert lines[lines.index("global"):lines.index("defaults")].count("user nobody") == 1
    assert any(line.startswith("group ") and line != "group root" for line in lines)
    assert "X-Neutron-Network-ID " + NETWORK not in text


def test_config_for_a_network_stamps_the_network() -> None:
    text = render_config(socket_path="/s", pidfile="/p", network_id=NETWORK, bind="169.254.169.254:80")
    assert f"http-request set-header X-Neutron-Network-ID {NETWORK}" in text
    assert "set-header X-Neutron-Router-ID" not in text and "bind 169.254.169.254:80" in text


@pytest.mark.parametrize("kw", [{}, {"router_id": ROUTER, "network_id": NETWORK}, {"router_id": "r1\n    bind :80"},
                                {"router_id": "../x"}, {"router_id": ROUTER, "bind": "0.0.0.0:9697 ssl"},
                                {"router_id": ROUTER, "socket_path": "/tmp/a b"}])
def test_config_refuses_ambiguous_or_unsafe_values(kw: dict[str, Any]) -> None:
    kw = {"socket_path": "/s", "pidfile": "/p", **kw}
    with pytest.raises(ValueError):
        render_config(**kw)


@pytest.mark.parametrize("kw", [{"router_id": ROUTER}, {"network_id": NETWORK}])
def test_haproxy_accepts_the_config(tmp_path: Path, kw: dict[str, Any]) -> None:
    haproxy = shutil.which("haproxy") or (proxy.HAPROXY if os.path.exists(proxy.HAPROXY) else None)
    if haproxy is None:
        pytest.skip("haproxy is not installed: cannot check the rendered config with `haproxy -c`")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(_config(tmp_path, **kw))
    done = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ALERT" not in done.stdout + done.stderr


def test_proxy_files_live_under_the_resource_id_and_its_command_line_names_the_config(tmp_path: Path) -> None:
    md = MetadataProxy(tmp_path, "qrouter-" + ROUTER, "/run/md.sock", router_id=ROUTER)
    assert md.config_path == tmp_path / ROUTER / "haproxy.cfg"
    assert md.pidfile == tmp_path / ROUTER / "haproxy.pid"
    assert md.argv == [proxy.HAPROXY, "-f", str(md.config_path)]
    assert f"pidfile {md.pidfile}" in md.render()
    assert md.pid() is None  # nothing started, so nothing is ours
    assert MetadataProxy(tmp_path, "qdhcp-x", "/run/md.sock", network_id=NETWORK).directory == tmp_path / NETWORK
    with pytest.raises(ValueError):
        MetadataProxy(tmp_path, "qrouter-x", "/run/md.sock")


# --- the server's content ----------------------------------------------------------------------------------------


def test_resolve_lays_out_ec2_and_openstack_like_nova() -> None:
    def body(path: str) -> str:
        found = server.resolve(path, VM1)
        assert found is not None, path
        return found[1].decode()

    assert body("/") == "2009-04-04\nlatest"
    assert body("/latest") == body("/latest/") == "meta-data/"
    assert body("/latest/meta-data/") == "hostname\ninstance-id\nlocal-hostname\nlocal-ipv4"
    assert body("/latest/meta-data/instance-id") == VM1["instance_id"]
    assert body("/2009-04-04/meta-data/local-ipv4") == "10.30.0.11"
    assert body("/latest/meta-data/hostname?x=1") == body("/latest/meta-data/local-hostname") == "web-1"
    assert body("/openstack") == body("/openstack/") == "2012-08-10\nlatest"
    assert body("/openstack/latest") == "meta_data.json"
    assert json.loads(body("/openstack/latest/meta_data.json")) == {
        "uuid": VM1["instance_id"], "name": "web 1", "hostname": "web-1", "project_id": "p-one"}
    for missing in ("/nope", "/latest/meta-data/instance-id/more", "/latest/user-data", "/openstack/1999-01-01"):
        assert server.resolve(missing, VM1) is None, missing


def test_the_last_forwarded_address_is_the_caller() -> None:
    assert server.caller_address(["10.30.0.12, 10.30.0.11"]) == "10.30.0.11"
    assert server.caller_address(["10.30.0.12", "10.30.0.11"]) == "10.30.0.11"
    assert server.caller_address(["::ffff:10.30.0.11"]) == "10.30.0.11"
    assert server.caller_address([]) is None
    assert server.caller_address(["10.30.0.11, not-an-ip"]) is None


# --- the server over its unix socket -------------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket: the way haproxy reaches the server."""

    def __init__(self, path: str) -> None:
        super().__init__("metadata")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.path)


@pytest.fixture
def md_server(tmp_path: Path) -> Iterator[MetadataServer]:
    srv = MetadataServer(str(tmp_path / "run" / "md.sock"), lookup)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def get(srv: MetadataServer, path: str, headers: list[tuple[str, str]], method: str = "GET",
        ) -> tuple[int, str, http.client.HTTPResponse]:
    conn = UnixHTTPConnection(srv.socket_path)
    try:
        conn.putrequest(method, path)
        for name, value in headers:  # putheader, so a header can be sent twice like a forger would
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), resp
    finally:
        conn.close()


def via_router(ip: str, router: str = ROUTER) -> list[tuple[str, str]]:
    return [("X-Neutron-Router-ID", router), ("X-Forwarded-For", ip)]


def test_each_instance_gets_its_own_values(md_server: MetadataServer) -> None:
    for vm in (VM1, VM2):
        headers = via_router(vm["local_ipv4"])
        assert get(md_server, "/latest/meta-data/instance-id", headers)[:2] == (200, vm["instance_id"])
        assert get(md_server, "/latest/meta-data/local-ipv4", headers)[1] == vm["local_ipv4"]
        assert get(md_server, "/latest/meta-data/hostname", headers)[1] == vm["hostname"]
        status, text, resp = get(md_server, "/openstack/latest/meta_data.json", headers)
        assert status == 200 and resp.getheader("Content-Type") == "application/json"
        assert json.loads(text)["uuid"] == vm["instance_id"]
    assert get(md_server, "/latest/meta-data/instance-id", via_router("10.30.0.11", OTHER_ROUTER))[1] == VM3[
        "instance_id"]
    by_net = [("X-Neutron-Network-ID", NETWORK), ("X-Forwarded-For", "10.30.0.12")]
    assert get(md_server, "/latest/meta-data/instance-id", by_net)[1] == VM2["instance_id"]
    status, text, resp = get(md_server, "/latest/meta-data/", via_router("10.30.0.11"))
    assert status == 200 and resp.getheader("Content-Type", "").startswith("text/plain")
    assert "instance-id" in text.splitlines()


def test_unknown_instance_or_path_is_404_in_plain_text(md_server: MetadataServer) -> None:
    for path, headers in (("/latest/meta-data/instance-id", via_router("10.30.0.99")),
                          ("/latest/meta-data/instance-id", via_router("10.30.0.12", OTHER_ROUTER)),
                          ("/latest/meta-data/nope", via_router("10.30.0.11"))):
        status, text, resp = get(md_server, path, headers)
        assert status == 404 and text.startswith("404 Not Found")
        assert resp.getheader("Content-Type", "").startswith("text/plain")


def test_requests_that_did_not_come_through_the_proxy_are_400(md_server: MetadataServer) -> None:
    status, text, _ = get(md_server, "/latest/meta-data/instance-id", [("X-Forwarded-For", "10.30.0.11")])
    assert status == 400 and text.startswith("400 Bad Request")
    assert get(md_server, "/latest/meta-data/instance-id", [("X-Neutron-Router-ID", ROUTER)])[0] == 400


def test_a_forged_earlier_forwarded_for_does_not_win(md_server: MetadataServer) -> None:
    # What haproxy would pass on if it kept the client's header: the client's claim first, the real address last.
    in_one = [("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", "10.30.0.12, 10.30.0.11")]
    assert get(md_server, "/latest/meta-data/instance-id", in_one)[1] == VM1["instance_id"]
    in_two = [("X-Neutron-Router-ID", ROUTER), ("X-Forwarded-For", "10.30.0.12"), ("X-Forwarded-For", "10.30.0.11")]
    assert get(md_server, "/latest/meta-data/instance-id", in_two)[1] == VM1["instance_id"]


def test_only_get_and_head(md_server: MetadataServer) -> None:
    status, text, resp = get(md_server, "/latest/meta-data/instance-id", via_router("10.30.0.11"), method="HEAD")
    assert status == 200 and text == "" and resp.getheader("Content-Length") == str(len(VM1["instance_id"]))
    status, _, resp = get(md_server, "/latest/meta-data/instance-id", via_router("10.30.0.11"), method="POST")
    assert status == 405 and resp.getheader("Allow") == "GET, HEAD"


def test_a_failing_lookup_is_a_500_and_the_server_keeps_serving(tmp_path: Path) -> None:
    def broken(router_id: str | None, network_id: str | None, ip: str) -> Mapping[str, Any] | None:
        raise RuntimeError("database gone")

    with MetadataServer(str(tmp_path / "md.sock"), broken) as srv:
        assert get(srv, "/latest/meta-data/instance-id", via_router("10.30.0.11"))[0] == 500
        assert get(srv, "/latest/meta-data/instance-id", via_router("10.30.0.11"))[0] == 500


def test_socket_mode_restart_and_cleanup(tmp_path: Path) -> None:
    path = tmp_path / "md.sock"
    srv = MetadataServer(str(path), lookup)
    srv.start()
    srv.start()  # idempotent
    try:
        assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o660
        with pytest.raises(FileExistsError):  # a second server must not steal a live socket
            MetadataServer(str(path), lookup).start()
    finally:
        srv.stop()
    assert not path.exists()
    srv.stop()  # idempotent

    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # a socket file nobody listens on, as a killed agent leaves it
    stale.close()
    with MetadataServer(str(path), lookup) as again:
        assert get(again, "/latest/meta-data/instance-id", via_router("10.30.0.12"))[1] == VM2["instance_id"]

    path.write_text("not a socket")
    with pytest.raises(FileExistsError):
        MetadataServer(str(path), lookup).start()
    assert path.read_text() == "not a socket"
