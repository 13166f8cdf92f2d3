"""dnsmasq's hosts, opts and addn-hosts files: hostile values from the API render to their own lines or not at all.

Issue 7 section 2 (dnsmasq): whatever the API lets through (today or after its validators
tighten), each port renders to exactly one hosts line and one addn-hosts line, each of its
DHCP options to at most one line tagged to that port (section 1: options reach only their
port), each subnet to its own tagged lines, and ``dnsmasq --test`` accepts all of it.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections import Counter
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from neutrino import tokens
from neutrino.agent.dhcp import render
from neutrino.services.agent_rpc import AgentRpc
from tests.conftest import Api
from tests.security.render_support import (
    HOST,
    PROPERTY,
    addn_hosts_entries,
    created,
    dnsmasq_check,
    hostile,
    stack_fixture,  # noqa: F401  (the module's server, as the fixture ``stack``)
)

SUBNET_OPTIONS = {"option:router", "option:dns-server", "option:classless-static-route", "249", "option:mtu"}
OPT_NAMES = st.one_of(st.sampled_from(["router", "dns-server", "bootfile-name", "mtu", "42", "domain-search",
                                       "classless-static-route", "ntp-server"]),
                      hostile("router", "dns-server", "3", "bootfile-name"))
OPT_VALUES = st.one_of(st.none(), hostile("10.0.0.9", "pxelinux.0", "1500", "a.example", "10.0.0.9,10.0.0.8"))


def check_files(files: render.Rendered, entry: dict[str, Any]) -> None:
    """The three files parse and hold one entry per object (see the module docstring)."""
    subnets = render.dhcp_subnets(entry["subnets"])
    dnsmasq_check(files, render.render_args(render.Paths("/p", "/h", "/a", "/o"), "ns-x", subnets))
    # Who may own a line: the first port with each well-formed MAC, if its id is well-formed too.
    owners: dict[str, dict[str, Any]] = {}
    for port in entry["ports"]:
        mac = tokens.mac(port["mac_address"])
        if mac and mac not in owners:
            owners[mac] = port
    owners = {mac: p for mac, p in owners.items() if tokens.resource_id(p["id"])}
    served = {s["id"]: tokens.ipv4_network(s["cidr"]) for s in subnets}
    hosts = files.hosts.split("\n")
    assert hosts.pop() == ""  # every line ends with a newline, nothing after the last
    tagged: set[str] = set()
    per_port: Counter[str] = Counter()
    for line in hosts:
        fields = line.split(",")
        assert len(fields) in (3, 4) and fields[0] in owners, line
        assert tokens.fqdn(fields[-2]) == fields[-2] and tokens.ipv4(fields[-1]) == fields[-1], line
        owner = owners[fields[0]]
        assert fields[-1] in [f["ip_address"] for f in owner["fixed_ips"]], line
        per_port[owner["id"]] += 1
        if len(fields) == 4:
            assert fields[1] == f"set:port-{owner['id']}", line
            tagged.add(owner["id"])
    for port in owners.values():  # one line per address of each port on a served subnet
        addresses = [ip for f in port["fixed_ips"] if (ip := tokens.ipv4(f["ip_address"]))
                     and (net := served.get(f["subnet_id"])) and ipaddress.IPv4Address(ip) in net]
        assert per_port[port["id"]] == len(addresses), (port, files.hosts)
    ports = {p["id"]: p for p in owners.values()}
    addn = addn_hosts_entries(files.addn_hosts)
    assert sorted(ip for ip, _ in addn) == sorted(line.split(",")[-1] for line in hosts)
    for _, names in addn:
        assert len(names) == 2 and tokens.fqdn(names[0]) and tokens.hostname(names[1]), names
    seen: Counter[tuple[str, str]] = Counter()
    for line in files.opts.split("\n")[:-1]:
        assert line.isascii() and line.isprintable(), line
        tag, _, rest = line.partition(",")
        option = rest.split(",")[0]
        if tag.startswith("tag:subnet-"):
            assert tag[len("tag:subnet-"):] in {s["id"] for s in subnets} and option in SUBNET_OPTIONS, line
        else:  # a port's own option: only for a port whose hosts line sets that tag
            port_id = tag[len("tag:port-"):]
            assert tag.startswith("tag:port-") and port_id in tagged, line
            names = [str(o["opt_name"]) for o in ports[port_id]["extra_dhcp_opts"]]
            assert option.removeprefix("option:") in names, line
        seen[(tag, option)] += 1
    assert all(count == 1 for (tag, _), count in seen.items() if tag.startswith("tag:subnet-")), seen


def _sync_entry(rpc: AgentRpc, network_id: str) -> dict[str, Any]:
    return next(d for d in rpc.sync(HOST)["dhcp"] if d["network"]["id"] == network_id)


@PROPERTY
@given(opt_name=OPT_NAMES, opt_value=OPT_VALUES, dns_name=hostile("web1", "db"), mac=hostile("fa:16:3e:aa:bb:cc"),
       route=hostile("172.16.0.0/16", "10.20.0.0/24"), nameserver=hostile("10.0.0.53", "8.8.8.8"))
def test_hostile_values_from_the_api_render_to_their_own_lines(stack: tuple[Api, AgentRpc], opt_name: str,
                                                               opt_value: str | None, dns_name: str, mac: str,
                                                               route: str, nameserver: str) -> None:
    api, rpc = stack
    net = api.create("network", name="shared", shared=True)
    try:
        subnet = {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4,
                  "host_routes": [{"destination": route, "nexthop": "10.0.0.254"}], "dns_nameservers": [nameserver]}
        if created(api.post("/v2.0/subnets", json={"subnet": subnet}), "subnet") is None:
            api.create("subnet", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
        tenant = api.as_("tenant-b")
        opts = [{"opt_name": opt_name, "opt_value": opt_value}, {"opt_name": "router", "opt_value": "10.0.0.99"}]
        created(tenant.post("/v2.0/ports", json={"port": {"network_id": net["id"], "extra_dhcp_opts": opts}}), "port")
        created(tenant.post("/v2.0/ports", json={"port": {"network_id": net["id"], "dns_name": dns_name}}), "port")
        created(api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "mac_address": mac}}), "port")
        victim = api.as_("tenant-a").create("port", network_id=net["id"])
        entry = _sync_entry(rpc, net["id"])
        files = render.render_files(entry["network"], entry["subnets"], entry["ports"], entry["dhcp_port"])
        check_files(files, entry)
        # The victim's line carries no tag: no port's option can reach it.
        assert any(line.startswith(victim["mac_address"] + ",host-") for line in files.hosts.splitlines())
    finally:
        for port in api.get("/v2.0/ports", params={"network_id": net["id"]}).json()["ports"]:
            api.delete(f"/v2.0/ports/{port['id']}")
        assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204


_IDS = st.one_of(st.builds(lambda: str(uuid.uuid4())), hostile(str(uuid.UUID(int=7))))
_HOSTILE_PORT = st.fixed_dictionaries({
    "id": _IDS, "mac_address": st.one_of(st.sampled_from(["fa:16:3e:00:00:07", "FA:16:3E:00:00:08"]),
                                         hostile("fa:16:3e:00:00:09")),
    "fixed_ips": st.lists(st.fixed_dictionaries({"subnet_id": st.just("s1"),
                                                 "ip_address": st.one_of(st.just("10.0.0.7"), hostile("10.0.0.8"))}),
                          max_size=2),
    "dns_assignment": st.lists(st.fixed_dictionaries({"ip_address": st.just("10.0.0.7"),
                                                      "hostname": hostile("web"), "fqdn": hostile("web.example.")}),
                               max_size=1),
    "extra_dhcp_opts": st.lists(st.fixed_dictionaries({"opt_name": OPT_NAMES, "opt_value": OPT_VALUES}), max_size=3),
})


@PROPERTY
@given(ports=st.lists(_HOSTILE_PORT, min_size=1, max_size=4), gateway=hostile("10.0.0.1"),
       cidr=st.one_of(st.just("10.0.0.0/24"), hostile("10.0.0.0/24")), mtu=st.one_of(st.integers(), hostile("1450")))
def test_the_renderer_alone_refuses_what_validation_missed(ports: list[dict[str, Any]], gateway: str, cidr: str,
                                                           mtu: Any) -> None:
    """The same checks with values no API produced: the renderer does not rely on the validators."""
    subnets = [{"id": "s1", "cidr": cidr, "ip_version": 4, "enable_dhcp": True, "gateway_ip": gateway,
                "dns_nameservers": [gateway], "host_routes": [{"destination": cidr, "nexthop": gateway}]}]
    dhcp_port = {"id": "d1", "mac_address": "fa:16:3e:00:00:02", "fixed_ips": [{"subnet_id": "s1",
                                                                                 "ip_address": "10.0.0.2"}]}
    entry = {"network": {"id": "n1", "mtu": mtu}, "subnets": subnets, "ports": [dhcp_port, *ports],
             "dhcp_port": dhcp_port}
    files = render.render_files(entry["network"], subnets, entry["ports"], dhcp_port)
    check_files(files, entry)
