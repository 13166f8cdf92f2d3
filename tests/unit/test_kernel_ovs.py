"""kernel/ovs.py without root: what it refuses to write into OVSDB, and the OVS names."""

from __future__ import annotations

import pytest

from neutrino.kernel import NotOurs, names, ovs


@pytest.mark.parametrize("bad", [
    {"name": "tap x"}, {"name": "tap;rm"}, {"name": "a" * 16}, {"name": "tapx", "type": "dpdk"},
    {"name": "tapx", "tag": 4096}, {"name": "tapx", "options": {"remote_ip": "1.2.3.4,key=1"}},
    {"name": "tapx", "external_ids": {"iface-id": 'x" -- destroy'}},
    {"name": "tapx", "external_ids": {"bad key": "v"}},
])
def test_port_spec_refuses_what_is_not_a_plain_token(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ovs.PortSpec(**bad)  # type: ignore[arg-type]


def test_port_helpers_build_neutron_shaped_rows() -> None:
    assert ovs.tunnel_port("gre-0a000002", "gre", "10.0.0.2", "10.0.0.1").options == {
        "remote_ip": "10.0.0.2", "local_ip": "10.0.0.1", "key": "flow"}
    assert ovs.patch_port("patch-int", "patch-tun") == ovs.PortSpec("patch-int", "patch", options={"peer": "patch-tun"})
    port = ovs.instance_port("tap1234", 3, "port-id", "FA:16:3E:00:00:01")
    assert (port.tag, port.external_ids["attached-mac"], port.external_ids["iface-id"]) == (
        3, "fa:16:3e:00:00:01", "port-id")
    with pytest.raises(ValueError):
        ovs.tunnel_port("x", "stt", "10.0.0.2", "10.0.0.1")


def test_instance_only_for_our_namespaces(tmp_path: object) -> None:
    with pytest.raises(NotOurs):
        ovs.OvsInstance("default", "/tmp/x")
    inst = ovs.OvsInstance("nt-abc-h1", "/tmp/nt-ovs-x/h1")
    assert inst.db_url == "unix:/tmp/nt-ovs-x/h1/db.sock"
    assert inst.mgmt("br-int") == "unix:/tmp/nt-ovs-x/h1/br-int.mgmt"
    with pytest.raises(ValueError):
        inst.mgmt("../etc")


def test_cookie_is_read_exactly() -> None:
    assert ovs._cookie("-table=20 priority=1,dl_dst=fa:16:3e:00:00:01 cookie=0x10 actions=drop") == 0x10
    assert ovs._cookie("+priority=1 cookie=0x1 actions=drop") == 1
    assert ovs._cookie("+priority=1 actions=drop") == 0


def test_ovs_names_follow_neutron_and_fit_ifnamsiz() -> None:
    assert names.ovs_tunnel_port("vxlan", "172.30.0.22") == "vxlan-ac1e0016"
    assert names.ovs_tunnel_port("geneve", "10.0.0.1") == "geneve-0a000001"
    assert names.ovs_physical_bridge("physnet1") == "br-physnet1"
    assert names.ovs_int_patch("br-physnet1") == "int-br-physnet1"
    assert names.ovs_phys_patch("br-physnet1") == "phy-br-physnet1"
    assert len(names.ovs_int_patch(names.ovs_physical_bridge("a-very-long-physnet-name"))) <= names.MAX_IFNAME_LEN
    with pytest.raises(ValueError):
        names.ovs_tunnel_port("stt", "10.0.0.1")
