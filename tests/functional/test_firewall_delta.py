"""The firewall's incremental transactions end exactly where a whole replacement would.

For each change (a port added, a port removed, a rule added, members changed, a network
added, everything gone), apply the old script whole, then ``firewall.delta(old, new)``, and
compare the kernel's ruleset with a fresh namespace that got ``new`` whole.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from neutrino.agent.l2 import firewall
from neutrino.kernel import netns, nft

G1, G2 = "aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002"
N1, N2 = "bbbbbbbb-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"


def _port(i: int, net: str = N1, groups: tuple[str, ...] = (G1,)) -> dict[str, Any]:
    return {"id": f"{i:08x}-cccc-4000-8000-000000000000", "network_id": net, "mac_address": f"fa:16:3e:00:01:{i:02x}",
            "fixed_ips": [{"ip_address": f"10.0.0.{10 + i}"}], "security_groups": list(groups),
            "port_security_enabled": True}


GROUPS = [
    {"id": G1, "security_group_rules": [
        {"direction": "ingress", "ethertype": "IPv4", "remote_group_id": G1},
        {"direction": "egress", "ethertype": "IPv4"}]},
    {"id": G2, "security_group_rules": [{"direction": "egress", "ethertype": "IPv4"}]},
]


def _render(ports: list[dict[str, Any]], groups: list[dict[str, Any]] | None = None) -> str:
    members = {G1: [p["fixed_ips"][0]["ip_address"] for p in ports if G1 in p["security_groups"]]}
    zones = firewall.assign_zones(sorted(firewall.guarded_network_ids(ports)), {})
    return firewall.render(ports, groups or GROUPS, members, zones=zones)


def _state(ns: str) -> list[dict[str, Any]]:
    def clean(obj: dict[str, Any]) -> dict[str, Any]:
        return {kind: {k: v for k, v in body.items() if k != "handle"} for kind, body in obj.items()}

    objects = [clean(o) for o in nft.read_ruleset(ns)]
    return sorted(objects, key=lambda o: repr(o))


with_rule = copy.deepcopy(GROUPS)
with_rule[0]["security_group_rules"].append({"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                                             "port_range_min": 22, "port_range_max": 22,
                                             "remote_ip_prefix": "192.168.5.0/24"})
BASE = [_port(1), _port(2), _port(3, groups=(G2,))]
CHANGES = {
    "port added": (BASE, [*BASE, _port(4)], None),
    "port removed": (BASE, BASE[:2], None),
    "rule added": (BASE, BASE, with_rule),
    "members changed": (BASE, [BASE[0], BASE[2]], None),
    "network added": (BASE, [*BASE, _port(5, net=N2)], None),
    "all gone": (BASE, [], None),
    "from nothing": ([], BASE, None),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_delta_equals_whole_replacement(ns_prefix: str, change: str) -> None:
    before, after, groups = CHANGES[change]
    old, new = _render(before), _render(after, groups)
    via_delta, whole = f"{ns_prefix}delta", f"{ns_prefix}whole"
    netns.ensure_namespace(via_delta)
    netns.ensure_namespace(whole)
    nft.apply(via_delta, old)
    script = firewall.delta(old, new)
    if change == "port added":
        assert len(script) < len(new) / 2  # the point of it: a port's delta is small
    nft.apply(via_delta, script)
    nft.apply(whole, new)
    assert _state(via_delta) == _state(whole)
    assert firewall.delta(new, new) == ""
