"""A port's dns_name: the name the API shows (dns_assignment) is the name its DHCP server serves.

Second reading of issue 7 sections 1 and 2. The API took any PQDN or FQDN up to 255
characters and showed ``<dns_name>.<domain>`` as the fqdn: for an FQDN that was
``web.example.org..openstacklocal.``, for a long PQDN a name over DNS's limit, for a dotted
PQDN a name the DHCP renderer did not use (it wrote ``host-10-0-0-5`` instead, silently).
Now Neutron's rules hold (neutron-lib's _validate_dns_name_with_dns_domain, with the port's
domain), an FQDN is its own fqdn, and the renderer serves every name the API shows.
"""

from __future__ import annotations

from typing import Any

from neutrino.agent.dhcp import render
from neutrino.services.agent_rpc import AgentRpc
from tests.conftest import Api
from tests.security.render_support import (
    HOST,
    dnsmasq_check,
    stack_fixture,  # noqa: F401  (the module's server, as the fixture ``stack``)
)

LONGEST_LABEL = "a" * 63
# The longest PQDN that fits with ".openstacklocal": 253 - 15 characters.
LONGEST_PQDN = ".".join([LONGEST_LABEL] * 3) + "." + "b" * (253 - 15 - 3 * 64)


def _assignment(port: dict[str, Any]) -> dict[str, str]:
    (entry,) = port["dns_assignment"]
    return entry  # type: ignore[no-any-return]


def test_every_dns_name_the_api_shows_is_the_name_dhcp_serves(stack: tuple[Api, AgentRpc]) -> None:
    api, rpc = stack
    net = api.create("network", name="dns")
    api.create("subnet", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    names = ["web", "web.lab", "Web.Lab", "web.openstacklocal.", LONGEST_PQDN, "x" * 63]
    ports = [api.create("port", network_id=net["id"], dns_name=name) for name in names]
    ports.append(api.create("port", network_id=net["id"], dns_name="db", dns_domain="corp.example."))
    expected = {"web": "web.openstacklocal.", "web.lab": "web.lab.openstacklocal.",
                "web.openstacklocal.": "web.openstacklocal.", LONGEST_PQDN: LONGEST_PQDN + ".openstacklocal."}
    for port in ports:
        if port["dns_name"] in expected:
            assert _assignment(port)["fqdn"] == expected[port["dns_name"]], port["dns_assignment"]
    entry = next(d for d in rpc.sync(HOST)["dhcp"] if d["network"]["id"] == net["id"])
    files = render.render_files(entry["network"], entry["subnets"], entry["ports"], entry["dhcp_port"])
    dnsmasq_check(files)
    hosts = {line.split(",")[0]: line.split(",")[-2] for line in files.hosts.splitlines()}
    addn = {line.split("\t")[0]: line.split("\t")[1].split(" ") for line in files.addn_hosts.splitlines()}
    for port in ports:
        shown = _assignment(port)
        assert hosts[port["mac_address"]] == shown["fqdn"].rstrip("."), (shown, files.hosts)
        assert addn[shown["ip_address"]] == [shown["fqdn"].rstrip("."), shown["hostname"].rstrip(".")]


def test_dns_names_that_make_no_dns_name_are_400(api: Api) -> None:
    net = api.create("network", name="n")
    for body in ({"dns_name": "web.example.org."},  # an FQDN outside the port's domain
                 {"dns_name": "openstacklocal."},  # no label left of the domain
                 {"dns_name": LONGEST_PQDN + "b"},  # with the domain, over 253 characters
                 {"dns_name": "web", "dns_domain": ".".join([LONGEST_LABEL] * 3) + "." + "c" * 60 + "."}):
        r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], **body}})
        assert r.status_code == 400 and r.json()["NeutronError"]["type"] == "InvalidInput", (body, r.text)
    port = api.create("port", network_id=net["id"], dns_name=LONGEST_PQDN)
    r = api.put(f"/v2.0/ports/{port['id']}", json={"port": {"dns_domain": "much.longer.example."}})
    assert r.status_code == 400, r.text  # the stored name no longer fits with the new domain
    assert api.get(f"/v2.0/ports/{port['id']}").json()["port"]["dns_domain"] == ""


def test_dns_domains_are_fqdns_as_in_neutron(api: Api) -> None:
    """neutron-lib's type:dns_domain_name: a relative domain ('corp') made the port's names relative."""
    net = api.create("network", name="n")
    for relative in ("corp", "corp.example"):
        r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "dns_domain": relative}})
        assert r.status_code == 400 and "is not a FQDN" in r.text, r.text
        r = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"dns_domain": relative}})
        assert r.status_code == 400 and "is not a FQDN" in r.text, r.text
    api.create("subnet", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    port = api.create("port", network_id=net["id"], dns_name="web", dns_domain="corp.example.")
    assert _assignment(port)["fqdn"] == "web.corp.example."


def test_floating_ip_dns_names_are_relative_as_in_neutron(api: Api) -> None:
    """neutron-lib's type:fip_dns_host_name: an FQDN, or a name with no room for a domain, is 400."""
    ext = api.create("network", name="ext", **{"router:external": True})
    api.create("subnet", network_id=ext["id"], cidr="198.51.100.0/24", ip_version=4)
    for name in ("web.example.", "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 63):
        r = api.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": ext["id"], "dns_name": name}})
        assert r.status_code == 400, r.text
    fip = api.create("floatingip", floating_network_id=ext["id"], dns_name="Web", dns_domain="example.org.")
    assert (fip["dns_name"], fip["dns_domain"]) == ("web", "example.org.")
