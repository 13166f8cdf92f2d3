"""A port's extra_dhcp_opts: the API stores what the DHCP agent renders, and dnsmasq reads it.

Second reading of issue 7 sections 1 and 2. The API accepted IPv4 options the renderer then
left out without a word (``mtu=abc``, ``domain-search`` with a space, codes dnsmasq sets
itself such as 53), and both let through values dnsmasq's type guessing refuses ("bad IPv4
address": ``vendor-class=1.2.3``, ``sip-server=1.5``; "dhcp-option too long": a long
``domain-search``); a None value was stored and shown, and an update replaced the whole list
where Neutron merges per option.
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.dhcp import render
from neutrino.api import dhcp_options
from neutrino.services.agent_rpc import AgentRpc
from tests.conftest import Api
from tests.security.render_support import (
    HOST,
    dnsmasq_check,
    stack_fixture,  # noqa: F401  (the module's server, as the fixture ``stack``)
)

NAMES = sorted(dhcp_options.DHCP4_NAMES) + [str(code) for code in range(1, 255)]
# Values of every shape dnsmasq tells apart (numbers, addresses, hex, names, lists), the edges
# of each option type, and the largest the API takes.
VALUES = [
    "", "0", "1", "255", "256", "65535", "65536", "4294967295", "4294967296", "-1", "1.5", "0x12", "12b",
    "1.2.3", "1.2.3.4.5", "1,2", "0/0", ",0", "0.", "10.0.0.1", "10.0.0.1,10.0.0.2", "10.0.0.1/24",
    ",".join(["10.0.0.1"] * 23), "ab:cd", "ab:cd:zz", "aa:" * 84 + "aa", "a", "a,b", "a.example", "1.example",
    "example.com,example.org", ",".join(["a"] * 127), ",".join(["abc"] * 60), "x" * 63, "x" * 64, "x" * 255,
    "a b", "http://x/", "a=b", "a\\", "\\x", "$", "*", "-", "pxelinux.0", "\u00e9", "a#b",
]


def accepted(name: str, value: str) -> bool:
    return dhcp_options.extra_dhcp_opt({"opt_name": name, "opt_value": value}) is None


def rendered(name: str, value: str) -> list[str]:
    port = {"id": "p1", "extra_dhcp_opts": [{"opt_name": name, "opt_value": value}]}
    return render._port_opts(port)


def test_the_api_accepts_an_ipv4_option_exactly_when_the_renderer_writes_it() -> None:
    """(The renderer also writes a blank router or routes option given by number, 3 and 121,
    which Neutron's API refuses: it allows blanks for the two names only.)"""
    disagree = [(n, val, accepted(n, val)) for n, val in itertools.product(NAMES, VALUES)
                if accepted(n, val) != bool(rendered(n, val)) and (n, val) not in (("3", ""), ("121", ""))]
    assert not disagree, disagree[:20]


def test_every_option_the_api_accepts_is_one_line_dnsmasq_reads() -> None:
    """All accepted (name, value) pairs, the largest included, in one file: ``dnsmasq --test``
    stops at the first line it refuses, so one run checks them all."""
    lines = []
    for i, (n, val) in enumerate(itertools.product(NAMES, VALUES)):
        if accepted(n, val):
            opts = render._port_opts({"id": f"p{i}", "extra_dhcp_opts": [{"opt_name": n, "opt_value": val}]})
            assert len(opts) == 1 and "\n" not in opts[0], (n, val, opts)
            lines.append(f"dhcp-option={opts[0]}")
    assert len(lines) > 1000
    with tempfile.TemporaryDirectory(prefix="nt-render-") as tmp:
        conf = Path(tmp) / "dnsmasq.conf"
        conf.write_text("".join(line + "\n" for line in lines))
        done = subprocess.run(["dnsmasq", "--test", f"--conf-file={conf}"], capture_output=True, text=True,
                              timeout=30)
    assert done.returncode == 0, done.stderr


def _opts(port: dict[str, Any]) -> set[tuple[str, Any, int]]:
    return {(o["opt_name"], o["opt_value"], o["ip_version"]) for o in port["extra_dhcp_opts"]}


def test_null_and_blank_values_and_updates_follow_neutron(api: Api) -> None:
    net = api.create("network", name="n")
    port = api.create("port", network_id=net["id"], extra_dhcp_opts=[
        {"opt_name": "mtu", "opt_value": None}, {"opt_name": "router", "opt_value": ""},
        {"opt_name": "dns-server", "opt_value": "10.0.0.53"}, {"opt_name": "ntp-server", "opt_value": None}])
    assert _opts(port) == {("router", "", 4), ("dns-server", "10.0.0.53", 4)}  # None: nothing stored
    url = f"/v2.0/ports/{port['id']}"
    r = api.put(url, json={"port": {"extra_dhcp_opts": [{"opt_name": "router", "opt_value": None},
                                                          {"opt_name": "mtu", "opt_value": "1400"}]}})
    assert r.status_code == 200, r.text
    assert _opts(r.json()["port"]) == {("dns-server", "10.0.0.53", 4), ("mtu", "1400", 4)}  # merged
    for nothing in ([], None):
        r = api.put(url, json={"port": {"extra_dhcp_opts": nothing}})
        assert _opts(r.json()["port"]) == {("dns-server", "10.0.0.53", 4), ("mtu", "1400", 4)}  # changes nothing
    r = api.put(url, json={"port": {"extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": "1450"}]}})
    assert _opts(r.json()["port"]) == {("dns-server", "10.0.0.53", 4), ("mtu", "1450", 4)}
    assert _opts(api.get(url).json()["port"]) == {("dns-server", "10.0.0.53", 4), ("mtu", "1450", 4)}


@pytest.mark.parametrize("opts", [
    [{"opt_name": "mtu", "opt_value": "1400"}, {"opt_name": "mtu", "opt_value": "1500"}],
    [{"opt_name": "mtu", "opt_value": "1400"}, {"opt_name": "mtu", "opt_value": None, "ip_version": "4"}],
    [{"opt_name": "53", "opt_value": "5"}],  # dnsmasq sets the message type itself
    [{"opt_name": "vendor-class", "opt_value": "1.2.3"}],
    [{"opt_name": "sip-server", "opt_value": "1.5"}],
    [{"opt_name": "domain-search", "opt_value": ",".join(["abc"] * 60)}],
    [{"opt_name": "mtu", "opt_value": "abc"}],
    [{"opt_name": "bootfile-name", "opt_value": "a b"}],
])
def test_options_dnsmasq_would_not_take_are_400(api: Api, opts: list[dict[str, Any]]) -> None:
    net = api.create("network", name="n")
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "extra_dhcp_opts": opts}})
    assert r.status_code == 400 and "extra_dhcp_opts" in r.json()["NeutronError"]["message"], r.text


def test_largest_options_through_the_api_render_one_line_each(stack: tuple[Api, AgentRpc]) -> None:
    """Section 2 with the largest values the API takes, end to end: API, agent sync, files, dnsmasq;
    every option the API shows for the port is exactly one line (a None value is no option)."""
    api, rpc = stack
    net = api.create("network", name="big")
    api.create("subnet", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    largest = {"root-path": "x" * 255, "dns-server": ",".join(["10.0.0.1"] * 23),
               "domain-search": ",".join(["a" * 61 + ".example"] * 3), "vendor-class": "aa:" * 84 + "aa",
               "sip-server": "x" * 63 + ".example", "200": "y" * 255, "T1": "4294967295", "router": ""}
    unset = {"opt_name": "ntp-server", "opt_value": None}
    opts = [{"opt_name": n, "opt_value": val} for n, val in largest.items()] + [unset]
    port = api.create("port", network_id=net["id"], extra_dhcp_opts=opts)
    entry = next(d for d in rpc.sync(HOST)["dhcp"] if d["network"]["id"] == net["id"])
    files = render.render_files(entry["network"], entry["subnets"], entry["ports"], entry["dhcp_port"])
    dnsmasq_check(files)
    mine = [line for line in files.opts.splitlines() if line.startswith(f"tag:port-{port['id']},")]
    assert len(mine) == len(largest) == len(port["extra_dhcp_opts"]), (mine, port["extra_dhcp_opts"])
    for name, value in largest.items():
        token = name if name.isdigit() else f"option:{name}"
        assert f"tag:port-{port['id']},{token}" + (f",{value}" if value else "") in mine


def test_many_subnets_with_many_routes_still_give_each_subnet_its_routes_and_gateway(
        stack: tuple[Api, AgentRpc]) -> None:
    """Option 121 (and 249) holds 255 bytes: 12 subnets of 20 host routes each made lines dnsmasq
    refuses ("dhcp-option too long"), and then a subnet's clients got no routes and no default
    route at all. The routes that fit are kept, in order, and the default route always."""
    api, rpc = stack
    net = api.create("network", name="routes")
    for i in range(12):
        routes = [{"destination": f"172.16.{j}.{i}/32", "nexthop": f"10.{i}.0.9"} for j in range(20)]
        api.create("subnet", network_id=net["id"], cidr=f"10.{i}.0.0/24", ip_version=4, host_routes=routes)
    entry = next(d for d in rpc.sync(HOST)["dhcp"] if d["network"]["id"] == net["id"])
    files = render.render_files(entry["network"], entry["subnets"], entry["ports"], entry["dhcp_port"])
    dnsmasq_check(files)
    routes = [line for line in files.opts.splitlines() if "option:classless-static-route," in line]
    assert len(routes) == 12
    for line in routes:
        subnet = next(s for s in entry["subnets"] if line.startswith(f"tag:subnet-{s['id']},"))
        assert line.endswith(f",0.0.0.0/0,{subnet['gateway_ip']}"), line
        assert f"172.16.0.{subnet['cidr'].split('.')[1]}/32" in line, line  # the first host route is kept
