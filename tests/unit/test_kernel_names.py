"""Host naming conventions and the janitor's choice of what to remove (no root needed)."""

from __future__ import annotations

import uuid

import pytest

from neutrino.kernel import janitor, names

PORT = "3f2c9a1e-7b4d-4c2e-9f1a-0123456789ab"
NET = "9d8e7f60-1a2b-4c3d-8e9f-abcdefabcdef"


def test_device_names_follow_neutron() -> None:
    assert names.tap_name(PORT) == "tap3f2c9a1e-7b"
    assert names.qr_name(PORT) == "qr-3f2c9a1e-7b"
    assert names.qg_name(PORT) == "qg-3f2c9a1e-7b"
    assert names.ns_name(PORT) == "ns-3f2c9a1e-7b"
    assert names.bridge_name(NET) == "brq9d8e7f60-1a"
    assert names.vxlan_name(1001) == "vxlan-1001"


def test_hybrid_plug_names_follow_neutron_and_refuse_what_is_not_an_id() -> None:
    assert names.hybrid_names(PORT) == ("qbr3f2c9a1e-7b", "qvb3f2c9a1e-7b", "qvo3f2c9a1e-7b")
    assert names.hybrid_bridge_name(PORT) == "qbr3f2c9a1e-7b"
    for hostile in ("", "3f2c9a1e", "3F2C9A1E-7B4D", "3f2c9a1e 7b4d", "3f2c9a1e/7b4d", "../../3f2c9a", "3f2c9a1e-7\n",
                    "qvo3f2c9a1e-7b", "3f2c9a1e-7\x00b"):
        with pytest.raises(ValueError):
            names.hybrid_names(hostile)


def test_namespace_names() -> None:
    assert names.qdhcp_ns(NET) == f"qdhcp-{NET}"
    assert names.qrouter_ns(NET) == f"qrouter-{NET}"
    assert names.snat_ns(NET) == f"snat-{NET}"
    assert names.fip_ns(NET) == f"fip-{NET}"
    assert names.qlbaas_ns(NET) == f"qlbaas-{NET}"
    assert names.instance_ns(PORT) == "vm-3f2c9a1e-7b"


@pytest.mark.parametrize("make", [names.tap_name, names.qr_name, names.qg_name, names.ns_name, names.bridge_name,
                                  names.hybrid_bridge_name, lambda p: names.hybrid_names(p)[1],
                                  lambda p: names.hybrid_names(p)[2]])
def test_device_names_fit_ifnamsiz(make: object) -> None:
    for _ in range(50):
        name = make(str(uuid.uuid4()))  # type: ignore[operator]
        assert len(name) <= names.MAX_IFNAME_LEN < names.IFNAMSIZ
        assert names.is_our_link(name)


def test_vxlan_names_fit_and_range_is_checked() -> None:
    assert len(names.vxlan_name(2**24 - 1)) <= names.MAX_IFNAME_LEN
    with pytest.raises(ValueError):
        names.vxlan_name(2**24)
    with pytest.raises(ValueError):
        names.vxlan_name(-1)


@pytest.mark.parametrize("name", [
    f"qdhcp-{NET}", f"qrouter-{NET}", f"snat-{NET}", f"fip-{NET}", f"qlbaas-{NET}", "vm-3f2c9a1e-7b",
    "nt-abc123-host-1", "tap3f2c9a1e-7b", "qr-3f2c9a1e-7b", "qg-3f2c9a1e-7b", "ns-3f2c9a1e-7b",
    "brq9d8e7f60-1a", "vxlan-1001", "vxlan-0", "qbr3f2c9a1e-7b", "qvb3f2c9a1e-7b", "qvo3f2c9a1e-7b",
])
def test_is_ours_recognises_every_prefix(name: str) -> None:
    assert names.is_ours(name)


@pytest.mark.parametrize("name", [
    "eth0", "lo", "ifb0", "docker0", "tap0", "tapfoo", "vxlan0", "vxlan-", "vxlan-01", "vxlan-123456789",
    "br-ex", "qdhcp-", "nt-", "vm-", "virbr0", "brq", "", "lab-cn1", "vethXYZ", "qbr0", "qvo1", "qvbeth0",
])
def test_is_ours_rejects_the_hosts_names(name: str) -> None:
    assert not names.is_ours(name)


def test_janitor_selects_only_our_namespaces() -> None:
    present = ["lab-cn1", f"qdhcp-{NET}", "nt-aa11bb-host-1", "nt-cc22dd-x", "other", "vm-3f2c9a1e-7b", "qdhcp-"]
    assert janitor.select_namespaces(present) == sorted(
        [f"qdhcp-{NET}", "nt-aa11bb-host-1", "nt-cc22dd-x", "vm-3f2c9a1e-7b"])
    assert janitor.select_namespaces(present, prefixes=("nt-aa11bb-",)) == ["nt-aa11bb-host-1"]


def test_janitor_never_widens_beyond_our_prefixes() -> None:
    present = ["eth0", "lab-cn1", "nt-aa11bb-host-1", "other"]
    assert janitor.select_namespaces(present, prefixes=("",)) == []
    assert janitor.select_namespaces(present, prefixes=("l", "o")) == []
    assert janitor.select_namespaces(present, prefixes=("l", "nt-")) == ["nt-aa11bb-host-1"]


def test_janitor_selects_only_our_links() -> None:
    present = ["lo", "eth0", "ifb0", "ifb1", "tap0", "tap3f2c9a1e-7b", "brq9d8e7f60-1a", "vxlan-7", "br-ex",
               "qbr3f2c9a1e-7b", "qvb3f2c9a1e-7b", "qvo3f2c9a1e-7b", "qbr0"]
    assert janitor.select_links(present) == ["brq9d8e7f60-1a", "qbr3f2c9a1e-7b", "qvb3f2c9a1e-7b", "qvo3f2c9a1e-7b",
                                             "tap3f2c9a1e-7b", "vxlan-7"]
