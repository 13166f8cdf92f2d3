"""The router's nftables NAT: hostile addresses never reach the script; the rest still renders, one rule each.

Issue 7 section 2 (nftables): a router's view from the agent sync (through the API, with
hostile floating IPs asked for), plus entries no validator would pass (what the renderer must
refuse on its own), renders to a script ``nft -c`` accepts, with exactly one DNAT and one SNAT
per well-formed floating IP and nothing for the others; one bad floating IP costs only itself.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neutrino import tokens
from neutrino.agent.l3 import nat
from neutrino.services.agent_rpc import AgentRpc
from tests.conftest import Api
from tests.security.render_support import (
    HOST,
    PROPERTY,
    created,
    hostile,
    nft_check,
    stack_fixture,  # noqa: F401  (the module's server, as the fixture ``stack``)
)

ADDRESS = st.one_of(st.sampled_from(["10.0.0.5", "10.0.0.6"]), hostile("10.0.0.7", "198.51.100.30"), st.none(),
                    st.integers())
HOSTILE_FIP = st.fixed_dictionaries({"floating_ip_address": ADDRESS, "fixed_ip_address": ADDRESS})
HOSTILE_IF = st.fixed_dictionaries({"id": hostile("a1"), "fixed_ips": st.lists(st.fixed_dictionaries(
    {"ip_address": ADDRESS, "cidr": st.one_of(st.just("10.9.0.0/24"), hostile("10.9.0.0/24"))}), max_size=2)})


@pytest.fixture(scope="module")
def router(stack: tuple[Api, AgentRpc]) -> dict[str, Any]:
    """A router with a gateway on an external network and one interface, as an admin makes it."""
    api, _ = stack
    public = api.create("network", name="public", **{"router:external": True})
    api.create("subnet", network_id=public["id"], cidr="198.51.100.0/24", ip_version=4)
    net = api.create("network", name="inside")
    sub = api.create("subnet", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    r = api.create("router", name="r", external_gateway_info={"network_id": public["id"]})
    assert api.put(f"/v2.0/routers/{r['id']}/add_router_interface", json={"subnet_id": sub["id"]}).status_code == 200
    return {"router": r, "public": public, "inside": net}


def _view(rpc: AgentRpc, router_id: str) -> dict[str, Any]:
    return next(r for r in rpc.sync(HOST)["routers"] if r["router"]["id"] == router_id)


def _rules(script: str, chain: str) -> list[str]:
    lines = script.splitlines()
    start = lines.index(f"  chain {chain} {{") + 2
    return [line.strip() for line in lines[start:lines.index("  }", start)]]


@PROPERTY
@given(fip_address=hostile("198.51.100.20", "198.51.100.21"), fixed=hostile("10.0.0.5"),
       extra_fips=st.lists(HOSTILE_FIP, max_size=3), extra_ifs=st.lists(HOSTILE_IF, max_size=2))
def test_hostile_addresses_never_reach_the_nat_script(stack: tuple[Api, AgentRpc], router: dict[str, Any],
                                                      fip_address: str, fixed: str, extra_fips: list[dict[str, Any]],
                                                      extra_ifs: list[dict[str, Any]]) -> None:
    api, rpc = stack
    port = api.create("port", network_id=router["inside"]["id"])
    fips = [api.create("floatingip", floating_network_id=router["public"]["id"], port_id=port["id"])]
    asked = {"floating_network_id": router["public"]["id"], "floating_ip_address": fip_address}
    fips.append(created(api.post("/v2.0/floatingips", json={"floatingip": asked}), "floatingip"))
    bad_port = created(api.post("/v2.0/ports", json={"port": {"network_id": router["inside"]["id"],
                                                              "fixed_ips": [{"ip_address": fixed}]}}), "port")
    try:
        view = _view(rpc, router["router"]["id"])
        floating = [*view["floating_ips"], *extra_fips]
        script = nat.render(view["router"], view["gateway_port"], [*view["interfaces"], *extra_ifs], floating,
                            metadata_port=9697)
        nft_check(script)
        wanted = {(fip, fixed) for f in floating if (fip := tokens.ipv4(f.get("floating_ip_address")))
                  and (fixed := tokens.ipv4(f.get("fixed_ip_address")))}
        assert (fips[0]["floating_ip_address"], port["fixed_ips"][0]["ip_address"]) in wanted
        assert sorted(_rules(script, "output")) == sorted(f"ip daddr {fip} dnat to {fixed}" for fip, fixed in wanted)
        snat = [rule for rule in _rules(script, "postrouting") if " snat to " in rule and "{" not in rule]
        assert len(snat) == len(wanted)
        assert len([rule for rule in _rules(script, "postrouting") if "{" in rule]) == 1  # the router's own SNAT
    finally:
        for fip in fips:
            if fip is not None:
                api.delete(f"/v2.0/floatingips/{fip['id']}")
        for each in (port, bad_port):
            if each is not None:
                api.delete(f"/v2.0/ports/{each['id']}")
