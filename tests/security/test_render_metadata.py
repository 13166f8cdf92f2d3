"""Metadata: the haproxy config and the answers to instances, fed hostile values through the API and around it.

Issue 7 section 2 (haproxy, metadata answers) and section 6 (haproxy drops root): whatever
id it gets, the proxy's config passes ``haproxy -c`` with exactly one ``set-header`` line
naming exactly that id (or the id is refused), and runs as nobody; every EC2 text answer is
one token on one line, whatever a tenant put in the port's name, dns_name or device_id.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neutrino import tokens
from neutrino.agent.metadata import proxy, server
from neutrino.services.agent_rpc import AgentRpc
from tests.conftest import Api
from tests.security.render_support import (
    PROPERTY,
    created,
    haproxy_check,
    hostile,
    stack_fixture,  # noqa: F401  (the module's server, as the fixture ``stack``)
)

SOCKET = "/run/neutrino/metadata/0123456789abcdef.sock"
TEXT_KEYS = ("hostname", "instance-id", "local-hostname", "local-ipv4")


def _check_config(config: str, header: str, ident: str) -> None:
    haproxy_check(config)
    lines = [line.strip() for line in config.splitlines()]
    assert [line for line in lines if line.startswith("http-request set-header")] == [
        f"http-request set-header {header} {ident}"]
    assert "user nobody" in lines[:lines.index("defaults")]  # haproxy drops root, as Neutron's does
    assert len(lines) == len(proxy.render_config(socket_path=SOCKET, pidfile="/p", router_id="r").splitlines())


@PROPERTY
@given(name=hostile("r1"), ident=hostile("3c3c3c3c-1111-4222-8333-444455556666"),
       kind=st.sampled_from(["router_id", "network_id"]))
def test_the_proxy_config_names_exactly_its_router(stack: tuple[Api, AgentRpc], name: str, ident: str,
                                                   kind: str) -> None:
    api, _ = stack
    router = created(api.post("/v2.0/routers", json={"router": {"name": name}}), "router")
    if router is not None:
        try:
            md = proxy.MetadataProxy(proxy.Path("/var/lib/x"), "nt-x-qrouter", SOCKET, router_id=router["id"])
            _check_config(md.render(), proxy.ROUTER_HEADER, router["id"])
        finally:
            api.delete(f"/v2.0/routers/{router['id']}")
    # An id no API made: refused, or rendered as exactly itself.
    try:
        config = proxy.render_config(socket_path=SOCKET, pidfile="/run/p.pid", **{kind: ident})
    except ValueError:
        return
    _check_config(config, proxy.ROUTER_HEADER if kind == "router_id" else proxy.NETWORK_HEADER, ident)


@pytest.fixture(scope="module")
def network(stack: tuple[Api, AgentRpc]) -> dict[str, Any]:
    api, _ = stack
    net = api.create("network", name="md", shared=True)
    api.create("subnet", network_id=net["id"], cidr="10.40.0.0/24", ip_version=4)
    return net


def _check_answers(info: dict[str, Any]) -> None:
    answers = {key: server.resolve(f"/latest/meta-data/{key}", info) for key in TEXT_KEYS}
    listing = server.resolve("/latest/meta-data/", info)
    assert listing is not None
    assert listing[1].decode().splitlines() == [key for key in TEXT_KEYS if answers[key] is not None]
    for key, found in answers.items():
        if found is None:
            continue
        text = found[1].decode()
        assert text and text.isascii() and text.isprintable() and " " not in text, (key, text)
    # A host name always (a DNS name, else host-<address>) when the address is one.
    hostname = answers["hostname"]
    if tokens.ipv4(info.get("local_ipv4")):
        assert hostname is not None
    for key in ("hostname", "local-hostname"):
        found = answers[key]
        assert found == hostname and (found is None or tokens.fqdn(found[1].decode()) == found[1].decode())
    meta = server.resolve("/openstack/latest/meta_data.json", info)
    assert meta is not None
    assert json.loads(meta[1])["hostname"] == (hostname[1].decode() if hostname else None)


@PROPERTY
@given(name=hostile("vm1"), dns_name=hostile("web1"), device_id=hostile("1c1c1c1c-0000-4000-8000-000000000001"),
       extra=st.fixed_dictionaries({"hostname": hostile("web"), "instance_id": hostile("i-1"),
                                    "local_ipv4": hostile("10.40.0.9"), "name": hostile("n")}))
def test_metadata_answers_are_one_token_each(stack: tuple[Api, AgentRpc], network: dict[str, Any], name: str,
                                            dns_name: str, device_id: str, extra: dict[str, Any]) -> None:
    api, rpc = stack
    tenant = api.as_("tenant-b")
    ports = []
    for body in ({"name": name}, {"dns_name": dns_name}, {"device_id": device_id}):
        port = created(tenant.post("/v2.0/ports", json={"port": {
            "network_id": network["id"], "device_owner": "compute:nova", **body}}), "port")
        if port is not None:
            ports.append(port)
    try:
        for port in ports:
            info = rpc.metadata_lookup(None, network["id"], port["fixed_ips"][0]["ip_address"])
            assert info is not None
            _check_answers(dict(info))
        _check_answers(extra)  # values no server produced
    finally:
        for port in ports:
            tenant.delete(f"/v2.0/ports/{port['id']}")
