"""The OVS flow renderer (agent/l2/ovs_flows.py): Neutron's table layout from a typed desired state, no root."""

from __future__ import annotations

import random

import pytest

from neutrino.agent.l2 import ovs_flows as of
from neutrino.agent.l2.ovs_flows import HostState, LocalPort, NetworkState, PhysicalBridge, Segment

H2, H3, H4 = "172.30.0.2", "172.30.0.3", "172.30.0.4"
MAC1, MAC2, MAC3, MAC4 = "fa:16:3e:00:00:01", "fa:16:3e:00:00:02", "fa:16:3e:00:00:03", "fa:16:3e:00:00:04"
PATCH_INT, PHY, INT_PHY = 1, 1, 9
COOKIE = f"cookie={of.COOKIE:#x},"


def vx(local_vlan: int = 1, remote: dict[str, frozenset[str]] | None = None, ports: tuple[LocalPort, ...] = ()
       ) -> NetworkState:
    return NetworkState("net-vx", Segment("vxlan", None, 1001), local_vlan, ports,
                        remote if remote is not None else {H2: frozenset({MAC2}), H3: frozenset({MAC3})})


def host(*networks: NetworkState, tunnels: dict[str, dict[str, int]] | None = None) -> HostState:
    return HostState(networks=networks, patch_int_ofport=PATCH_INT,
                     tunnel_ofports=tunnels if tunnels is not None else {
                         "vxlan": {H2: 2, H3: 3, H4: 4}, "gre": {H2: 5}, "geneve": {H2: 6}},
                     physical_bridges={"physnet1": PhysicalBridge("br-physnet1", PHY, INT_PHY)})


def lines(state: HostState, bridge: str) -> list[str]:
    text = of.render(state).text(bridge)
    assert all(line.startswith(COOKIE) for line in text.splitlines())
    return [line[len(COOKIE):] for line in text.splitlines()]


def test_br_tun_is_neutrons_pipeline_with_l2pop() -> None:
    assert lines(host(vx()), "br-tun") == [
        "table=0,priority=1,in_port=1,actions=goto_table:2",
        "table=0,priority=1,in_port=2,actions=goto_table:4",
        "table=0,priority=1,in_port=3,actions=goto_table:4",
        "table=0,priority=1,in_port=4,actions=goto_table:4",
        "table=0,priority=1,in_port=5,actions=goto_table:3",
        "table=0,priority=1,in_port=6,actions=goto_table:6",
        "table=0,priority=0,actions=drop",
        "table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=goto_table:20",
        "table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=goto_table:22",
        "table=3,priority=0,actions=drop",
        "table=4,priority=1,tun_id=0x3e9,actions=push_vlan:0x8100,set_field:4097->vlan_vid,goto_table:10",
        "table=4,priority=0,actions=drop",
        "table=6,priority=0,actions=drop",
        f"table=10,priority=1,actions=learn(table=20,priority=1,hard_timeout=300,cookie={of.LEARNED_COOKIE:#x},"
        "NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],"
        "load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:1",
        "table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:00:02,actions=pop_vlan,set_field:0x3e9->tun_id,output:2",
        "table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:00:03,actions=pop_vlan,set_field:0x3e9->tun_id,output:3",
        "table=20,priority=0,actions=goto_table:22",
        # flood: exactly the hosts with a port on the network (H4 has a tunnel, but no port here)
        "table=22,priority=1,dl_vlan=1,actions=pop_vlan,set_field:0x3e9->tun_id,output:2,output:3",
        "table=22,priority=0,actions=drop",
    ]


def test_each_tunnel_type_maps_its_own_table_and_ports() -> None:
    gre = NetworkState("net-gre", Segment("gre", None, 70000), 2, remote={H2: frozenset({MAC2})})
    gen = NetworkState("net-gen", Segment("geneve", None, 1001), 3, remote={H2: frozenset()})
    text = lines(host(vx(), gre, gen), "br-tun")
    assert "table=3,priority=1,tun_id=0x11170,actions=push_vlan:0x8100,set_field:4098->vlan_vid,goto_table:10" in text
    assert "table=6,priority=1,tun_id=0x3e9,actions=push_vlan:0x8100,set_field:4099->vlan_vid,goto_table:10" in text
    assert "table=22,priority=1,dl_vlan=2,actions=pop_vlan,set_field:0x11170->tun_id,output:5" in text
    # a host known to have a port but no MAC yet still gets the flood, and no unicast flow
    assert "table=22,priority=1,dl_vlan=3,actions=pop_vlan,set_field:0x3e9->tun_id,output:6" in text
    assert not [line for line in text if "dl_vlan=3" in line and "table=20" in line]


def test_network_with_no_other_host_has_no_flood_flow() -> None:
    text = lines(host(vx(remote={})), "br-tun")
    assert not [line for line in text if line.startswith(("table=20,priority=2", "table=22,priority=1"))]
    assert "table=4,priority=1,tun_id=0x3e9,actions=push_vlan:0x8100,set_field:4097->vlan_vid,goto_table:10" in text


def test_vlan_and_flat_translate_between_local_and_physical_vlan() -> None:
    vlan = NetworkState("net-vlan", Segment("vlan", "physnet1", 101), 7)
    flat = NetworkState("net-flat", Segment("flat", "physnet1"), 8)
    state = host(vlan, flat)
    assert lines(state, "br-physnet1") == [
        "table=0,priority=4,in_port=1,dl_vlan=7,actions=set_field:4197->vlan_vid,NORMAL",
        "table=0,priority=4,in_port=1,dl_vlan=8,actions=pop_vlan,NORMAL",
        "table=0,priority=2,in_port=1,actions=drop",
        "table=0,priority=0,actions=NORMAL",
    ]
    br_int = lines(state, "br-int")
    assert "table=0,priority=3,in_port=9,dl_vlan=101,actions=set_field:4103->vlan_vid,goto_table:60" in br_int
    assert ("table=0,priority=3,in_port=9,vlan_tci=0x0000/0x1fff,actions=push_vlan:0x8100,set_field:4104->vlan_vid,"
            "goto_table:60") in br_int
    assert "table=0,priority=2,in_port=9,actions=drop" in br_int
    # physical networks never reach br-tun
    assert not [line for line in lines(state, "br-tun") if "dl_vlan=7" in line or "dl_vlan=8" in line]


def test_local_network_never_leaves_br_int() -> None:
    local = NetworkState("net-local", Segment("local"), 5, (LocalPort(10, MAC1), LocalPort(11, MAC4)))
    state = host(local)
    rendered = of.render(state)
    assert rendered.problems == []
    for bridge in ("br-tun", "br-physnet1"):
        assert not [line for line in lines(state, bridge) if "dl_vlan=5" in line]
    # its ports are switched by br-int (NORMAL), with their MACs checked
    br_int = lines(state, "br-int")
    assert "table=60,priority=1,actions=NORMAL" in br_int
    assert "table=0,priority=9,in_port=10,actions=set_field:5->reg6,goto_table:25" in br_int
    assert "table=25,priority=2,in_port=11,dl_src=fa:16:3e:00:00:04,actions=goto_table:60" in br_int


def test_br_int_defaults_canary_and_mac_anti_spoofing() -> None:
    ports = (LocalPort(10, "FA:16:3E:00:00:01", allowed_macs=("fa:16:3e:00:00:aa",)),
             LocalPort(11, MAC4, port_security=False))
    assert lines(host(vx(ports=ports)), "br-int") == [
        "table=0,priority=65535,dl_vlan=4095,actions=drop",
        "table=0,priority=9,in_port=10,actions=set_field:1->reg6,goto_table:25",
        "table=0,priority=9,in_port=11,actions=set_field:1->reg6,goto_table:60",
        "table=0,priority=2,in_port=9,actions=drop",
        "table=0,priority=0,actions=goto_table:60",
        "table=23,priority=0,actions=drop",
        "table=25,priority=2,in_port=10,dl_src=fa:16:3e:00:00:01,actions=goto_table:60",
        "table=25,priority=2,in_port=10,dl_src=fa:16:3e:00:00:aa,actions=goto_table:60",
        "table=25,priority=0,actions=drop",
        "table=60,priority=1,actions=NORMAL",
    ]


def test_what_cannot_be_realised_is_reported_and_the_rest_rendered() -> None:
    vlan = NetworkState("net-vlan", Segment("vlan", "physnet2", 101), 7)
    gre = NetworkState("net-gre", Segment("gre", None, 5), 2, remote={H3: frozenset({MAC3}), H2: frozenset({MAC2})})
    rendered = of.render(host(vx(), vlan, gre))
    assert rendered.problems == ["network net-gre: no gre tunnel port to 172.30.0.3",
                                 "network net-vlan: no bridge for physical network physnet2"]
    assert "dl_vlan=2,actions=pop_vlan,set_field:0x5->tun_id,output:5" in rendered.text("br-tun")
    no_tun = HostState(networks=(vx(),))
    rendered = of.render(no_tun)
    assert set(rendered.flows) == {"br-int"}
    assert rendered.problems == ["network net-vx: no tunnel bridge for a vxlan network"]


def test_rendering_is_deterministic_whatever_the_input_order() -> None:
    nets = [vx(ports=(LocalPort(10, MAC1), LocalPort(12, MAC4))),
            NetworkState("net-gre", Segment("gre", None, 5), 2, (LocalPort(11, MAC2),),
                         {H3: frozenset({MAC3, "fa:16:3e:00:00:09"}), H2: frozenset({MAC2})}),
            NetworkState("net-vlan", Segment("vlan", "physnet1", 101), 7)]
    state = host(*nets, tunnels={"vxlan": {H2: 2, H3: 3}, "gre": {H3: 7, H2: 5}})
    expected = {b: of.render(state).text(b) for b in ("br-int", "br-tun", "br-physnet1")}
    for seed in range(5):
        random.Random(seed).shuffle(nets)
        shuffled = host(*nets, tunnels={"gre": {H2: 5, H3: 7}, "vxlan": {H3: 3, H2: 2}})
        assert {b: of.render(shuffled).text(b) for b in expected} == expected


@pytest.mark.parametrize("make", [
    lambda: LocalPort(10, "fa:16:3e:00:00:01,actions=NORMAL"),
    lambda: LocalPort(10, "01:00:5e:00:00:01"),  # multicast is no port's MAC
    lambda: LocalPort(0, MAC1),
    lambda: LocalPort(True, MAC1),  # type: ignore[arg-type]
    lambda: Segment("vxlan", None, 2**24),
    lambda: Segment("vlan", "physnet1", 0),
    lambda: Segment("vlan", None, 5),
    lambda: Segment("flat", "physnet1", 5),
    lambda: Segment("local", None, 5),
    lambda: Segment("stt", None, 5),
    lambda: NetworkState("n", Segment("local"), 4095),
    lambda: NetworkState("n", Segment("vlan", "p", 3), 2, remote={H2: frozenset()}),
    lambda: NetworkState("n", Segment("vxlan", None, 3), 2, remote={"172.30.0.2,output:1": frozenset()}),
    lambda: PhysicalBridge("br-x,in_port=1", 1, 2),
    lambda: PhysicalBridge("br-x\n", 1, 2),  # a trailing newline would start another flow line
    lambda: LocalPort(3, "fa:16:3e:00:00:01\n"),
    lambda: HostState((), tunnel_ofports={"stt": {H2: 1}}),
])
def test_values_that_could_make_other_tokens_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_networks_that_would_be_bridged_together_are_refused() -> None:
    a = NetworkState("a", Segment("vxlan", None, 5), 1)
    with pytest.raises(ValueError, match="local VLAN"):
        HostState((a, NetworkState("b", Segment("gre", None, 5), 1)))
    with pytest.raises(ValueError, match="segment"):
        HostState((a, NetworkState("b", Segment("vxlan", None, 5), 2)))
    with pytest.raises(ValueError, match="ofport"):
        HostState((NetworkState("a", Segment("local"), 1, (LocalPort(3, MAC1),)),
                   NetworkState("b", Segment("local"), 2, (LocalPort(3, MAC2),))))
    with pytest.raises(ValueError, match="twice"):
        HostState((a, a))


def test_local_vlans_stay_stable_and_new_ones_take_the_lowest_free() -> None:
    first = of.assign_local_vlans(["c", "a", "b"], {})
    assert first == {"a": 1, "b": 2, "c": 3}
    # "b" goes, "d" comes: the others keep their tags, "d" reuses the freed one
    assert of.assign_local_vlans(["a", "c", "d"], first) == {"a": 1, "c": 3, "d": 2}
    # tags read back after an agent restart are kept, broken or duplicated ones replaced
    assert of.assign_local_vlans(["x", "y", "z"], {"x": 42, "y": 42, "z": 0}) == {"x": 42, "y": 1, "z": 2}
    with pytest.raises(of.LocalVlansExhausted):
        of.assign_local_vlans([f"n{i}" for i in range(4095)], {})


def test_wanted_tunnels_are_the_hosts_of_tunnel_networks() -> None:
    gre = NetworkState("g", Segment("gre", None, 5), 2, remote={H4: frozenset()})
    vlan = NetworkState("v", Segment("vlan", "physnet1", 5), 3)
    assert of.wanted_tunnels([vx(), gre, vlan]) == {("vxlan", H2), ("vxlan", H3), ("gre", H4)}
