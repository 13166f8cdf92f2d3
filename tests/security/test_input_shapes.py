"""Hostile request shapes found by a second reading of issue 7 section 1: every one is a 4xx
with Neutron's NeutronError body on SQLite, PostgreSQL and MariaDB, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, lb_agent_conf
from tests.security.test_input_requests import neutron_4xx

WRONG_TYPES: list[Any] = [[], ["x"], {}, {"a": 1}, 7, 1.5, True, "x" * 37]


@pytest.mark.parametrize("attr", ["security_group_id", "remote_group_id", "remote_address_group_id"])
def test_security_group_rule_ids_of_the_wrong_type_are_400(any_db_api: Api, attr: str) -> None:
    """Neutron types security_group_id as a string of 36; a list or a dict reached the query (500)."""
    api = any_db_api
    sg = api.create("security_group", name="s")
    before = api.get("/v2.0/security-group-rules").json()["security_group_rules"]
    for value in WRONG_TYPES:
        body = {"security_group_id": sg["id"], "direction": "ingress", attr: value}
        err = neutron_4xx(api.post("/v2.0/security-group-rules", json={"security_group_rule": body}), 400)
        assert attr in err["message"], err
    assert api.get("/v2.0/security-group-rules").json()["security_group_rules"] == before


def test_tags_are_unique_and_at_most_fifty_per_resource(api: Api) -> None:
    """Neutron's validate_tags_limit (50) and list_of_unique_strings: without them a project grew
    one row without bound, one ``PUT .../tags/<tag>`` at a time, and every listing carried it."""
    net = api.create("network", name="n")
    url = f"/v2.0/networks/{net['id']}/tags"
    for i in range(50):
        assert api.put(f"{url}/t{i}").status_code == 201
    assert api.put(f"{url}/t7").status_code == 201  # already there: no change, no refusal
    err = neutron_4xx(api.put(f"{url}/t50"), 400)
    assert err["type"] == "BadRequest" and "limit of 50" in err["message"], err
    assert len(api.get(url).json()["tags"]) == 50
    neutron_4xx(api.put(url, json={"tags": [f"u{i}" for i in range(51)]}), 400)
    neutron_4xx(api.put(url, json={"tags": ["a", "a"]}), 400)
    assert len(api.get(url).json()["tags"]) == 50
    neutron_4xx(api.post("/v2.0/networks", json={"network": {"tags": [f"u{i}" for i in range(51)]}}), 400)
    neutron_4xx(api.post("/v2.0/networks", json={"network": {"tags": ["a", "a"]}}), 400)
    assert len(api.get("/v2.0/networks").json()["networks"]) == 1


def test_a_tenants_look_alike_device_owner_is_not_the_networks_dhcp_port(any_db_server: tuple[Api, Any]) -> None:
    """MariaDB's default collation compared 'Network:dhcp' (which the policy lets a tenant set on
    a shared network) equal to 'network:dhcp': the server bound the tenant's port to the DHCP
    host and then served no DHCP at all on that network. Every database compares exactly now."""
    from neutrino.messages import DHCP_AGENT
    from neutrino.messages import LINUXBRIDGE_AGENT as L2_AGENT

    api, srv = any_db_server
    net = api.create("network", name="shared", shared=True)
    api.create("subnet", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    evil = api.as_("tenant-b").create("port", network_id=net["id"], device_owner="Network:dhcp",
                                      device_id=f"DHCP-{net['id']}")
    srv.rpc.report_state("host-a", L2_AGENT, lb_agent_conf("172.30.0.11"), start_flag=True)
    srv.rpc.report_state("host-a", DHCP_AGENT, {})
    served = {d["network"]["id"]: d for d in srv.rpc.sync("host-a")["dhcp"]}
    assert net["id"] in served, "DHCP is served on the shared network"
    dhcp_port = served[net["id"]]["dhcp_port"]
    assert dhcp_port["id"] != evil["id"] and dhcp_port["device_owner"] == "network:dhcp", dhcp_port
    assert api.get(f"/v2.0/ports/{evil['id']}").json()["port"]["binding:host_id"] == ""
    listed = api.get("/v2.0/ports", params={"device_owner": "network:dhcp"}).json()["ports"]
    owners = [p["device_owner"] for p in listed]
    assert owners == ["network:dhcp"], owners


def test_filters_find_what_was_stored_in_canonical_form_whatever_the_spelling(api: Api) -> None:
    """Values are stored canonical (MAC lower-case colon form, IPv6 compressed, DNS names lower
    case); a filter spelled as the input may be spelled found nothing. Neutron converts filter
    values as it converts input."""
    net = api.create("network", name="n")
    sub = api.create("subnet", network_id=net["id"], cidr="fd00:2::/64", ip_version=6, gateway_ip="fd00:2::1")
    port = api.create("port", network_id=net["id"], fixed_ips=[{"ip_address": "FD00:2::0:7"}], dns_name="Web",
                      mac_address="FA-16-3E-00-00-07")
    for query in ({"mac_address": "FA:16:3E:00:00:07"}, {"mac_address": "fa-16-3e-00-00-07"},
                  {"fixed_ips": "ip_address=FD00:2:0::7"}, {"dns_name": "WEB"}):
        found = api.get("/v2.0/ports", params=query).json()["ports"]
        assert [p["id"] for p in found] == [port["id"]], query
    for query in ({"cidr": "FD00:2:0::/64"}, {"gateway_ip": "FD00:2::0001"}):
        found = api.get("/v2.0/subnets", params=query).json()["subnets"]
        assert [s["id"] for s in found] == [sub["id"]], query
    assert api.get("/v2.0/ports", params={"mac_address": "not-a-mac"}).json()["ports"] == []
