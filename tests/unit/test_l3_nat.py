"""The router NAT render: SNAT on/off, floating IPs before the generic SNAT, internal traffic untouched, determinism."""

from __future__ import annotations

from typing import Any

import pytest

from neutrino.agent.l3 import nat
from neutrino.kernel import nft

GW_PORT = {"id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "network_id": "ext"}
QG = "qg-9a8b7c6d-5e"
IF_A = {"id": "a1", "network_id": "a", "fixed_ips": [{"ip_address": "10.10.1.1", "cidr": "10.10.1.0/24"}]}
IF_B = {"id": "b1", "network_id": "b", "fixed_ips": [{"ip_address": "10.10.2.1", "prefixlen": 24},
                                                     {"ip_address": "2001:db8::1", "prefixlen": 64}]}
FIP = {"floating_ip_address": "198.51.100.20", "fixed_ip_address": "10.10.1.10"}


def _router(enable_snat: bool = True) -> dict[str, Any]:
    return {"id": "r1", "routes": [], "external_gateway_info": {
        "network_id": "ext", "enable_snat": enable_snat,
        "external_fixed_ips": [{"subnet_id": "s", "ip_address": "198.51.100.10"}]}}


def _rules(script: str, chain: str) -> list[str]:
    """The rule lines of one chain (a tiny reader of our own render, enough to ask what it says)."""
    lines = script.splitlines()
    start = lines.index(f"  chain {chain} {{") + 2
    end = lines.index("  }", start)
    return [line.strip() for line in lines[start:end]]


def test_snat_for_internal_subnets_but_not_between_them() -> None:
    script = nat.render(_router(), GW_PORT, [IF_A, IF_B], [])
    inside = "{ 10.10.1.0/24, 10.10.2.0/24 }"
    assert _rules(script, "postrouting") == [
        f'oifname "{QG}" ip saddr {inside} ip daddr != {inside} snat to 198.51.100.10']
    assert _rules(script, "prerouting") == [] and _rules(script, "output") == []
    nft.check_script(script)  # only our own table, no ruleset flush


def test_snat_off_keeps_floating_ips() -> None:
    script = nat.render(_router(enable_snat=False), GW_PORT, [IF_A], [FIP])
    assert _rules(script, "postrouting") == [f'oifname "{QG}" ip saddr 10.10.1.10 snat to 198.51.100.20']
    assert _rules(script, "prerouting") == ["ip daddr 198.51.100.20 dnat to 10.10.1.10"]


def test_floating_ips_come_before_the_generic_snat_and_unassociated_ones_are_left_out() -> None:
    spare = {"floating_ip_address": "198.51.100.21", "fixed_ip_address": None}
    other = {"floating_ip_address": "198.51.100.22", "fixed_ip_address": "10.10.2.10"}
    post = _rules(nat.render(_router(), GW_PORT, [IF_A, IF_B], [other, spare, FIP]), "postrouting")
    assert post[:2] == [f'oifname "{QG}" ip saddr 10.10.1.10 snat to 198.51.100.20',
                        f'oifname "{QG}" ip saddr 10.10.2.10 snat to 198.51.100.22']
    assert post[2].endswith("snat to 198.51.100.10") and len(post) == 3


def test_without_a_gateway_the_table_is_empty() -> None:
    script = nat.render({"id": "r1", "external_gateway_info": None}, None, [IF_A], [FIP])
    assert all(_rules(script, chain) == [] for chain in ("prerouting", "output", "postrouting"))


def test_overlapping_and_duplicate_subnets_are_merged() -> None:
    wide = {"id": "c1", "fixed_ips": [{"ip_address": "10.10.0.1", "cidr": "10.10.0.0/16"}]}
    assert nat.internal_cidrs([IF_A, wide, IF_A]) == ["10.10.0.0/16"]


def test_same_input_same_script_whatever_the_order() -> None:
    fips = [FIP, {"floating_ip_address": "198.51.100.22", "fixed_ip_address": "10.10.2.10"}]
    one = nat.render(_router(), GW_PORT, [IF_A, IF_B], fips)
    two = nat.render(_router(), GW_PORT, [IF_B, IF_A], list(reversed(fips)))
    assert one == two
    assert one.startswith("table ip neutrino-nat {}\ndelete table ip neutrino-nat\n")


def test_metadata_redirects_from_internal_ports_only_and_guards_the_proxy_port() -> None:
    script = nat.render(_router(), GW_PORT, [IF_A], [FIP], metadata_port=9697)
    assert _rules(script, "prerouting") == [
        'iifname "qr-*" ip daddr 169.254.169.254 tcp dport 80 redirect to :9697',
        "ip daddr 198.51.100.20 dnat to 10.10.1.10"]
    assert _rules(script, "output") == ["ip daddr 198.51.100.20 dnat to 10.10.1.10"]  # the router itself: no redirect
    assert "    type filter hook input priority filter; policy accept;" in script.splitlines()
    assert _rules(script, "input") == ["tcp dport 9697 ct status ! dnat drop"]
    nft.check_script(script)


def test_metadata_needs_no_gateway() -> None:
    script = nat.render({"id": "r1", "external_gateway_info": None}, None, [IF_A], [], metadata_port=8775)
    assert _rules(script, "prerouting") == ['iifname "qr-*" ip daddr 169.254.169.254 tcp dport 80 redirect to :8775']
    assert _rules(script, "postrouting") == []


def test_without_metadata_the_script_is_unchanged() -> None:
    args = (_router(), GW_PORT, [IF_A, IF_B], [FIP])
    plain = nat.render(*args)
    assert nat.render(*args, metadata_port=None) == plain
    assert "169.254.169.254" not in plain and "chain input" not in plain
    # With the port: exactly the redirect line and the input chain (appended last) more, nothing else moved.
    input_chain = "  chain input {\n    type filter hook input priority filter; policy accept;\n" \
                  "    tcp dport 9697 ct status ! dnat drop\n  }\n"
    with_md = nat.render(*args, metadata_port=9697)
    assert with_md.count(input_chain) == 1 and with_md.endswith(input_chain + "}\n")
    redirect = '    iifname "qr-*" ip daddr 169.254.169.254 tcp dport 80 redirect to :9697\n'
    assert with_md.replace(input_chain, "").replace(redirect, "") == plain


def test_metadata_port_must_be_a_port() -> None:
    for bad in (0, 65536, -1):
        with pytest.raises(ValueError):
            nat.render(_router(), GW_PORT, [IF_A], [], metadata_port=bad)
