"""ML2 type drivers and MTU arithmetic; configuration loading from TOML and env."""

from __future__ import annotations

from pathlib import Path

import pytest

from neutrino import config
from neutrino.errors import InvalidInput
from neutrino.ml2.manager import Ml2Manager
from neutrino.ml2.types import SegmentSpec, parse_ranges


def test_parse_ranges() -> None:
    assert parse_ranges(["physnet1:100:199", "physnet2"], with_physnet=True) == {
        "physnet1": [(100, 199)], "physnet2": []}
    assert parse_ranges(["1:10", "20:30"], with_physnet=False) == {"": [(1, 10), (20, 30)]}


def test_mtu_per_type_and_path_mtu() -> None:
    cfg = config.load(env={})
    m = Ml2Manager(cfg)
    assert m.mtu(SegmentSpec("vxlan", None, 1)) == 1450
    assert m.mtu(SegmentSpec("gre", None, 1)) == 1458
    assert m.mtu(SegmentSpec("geneve", None, 1)) == 1442
    assert m.mtu(SegmentSpec("vlan", "physnet1", 100)) == 1500
    cfg.DEFAULT.global_physnet_mtu = 9000
    cfg.ml2.path_mtu = 1500
    cfg.ml2.physical_network_mtus = ["physnet1:1400"]
    m = Ml2Manager(cfg)
    assert m.mtu(SegmentSpec("vxlan", None, 1)) == 1450
    assert m.mtu(SegmentSpec("vlan", "physnet1", 100)) == 1400
    assert m.mtu(SegmentSpec("flat", "physnet2", None)) == 9000


def test_validation_messages() -> None:
    m = Ml2Manager(config.load(env={}))
    with pytest.raises(InvalidInput, match="physical_network required"):
        m.driver("vlan").validate(SegmentSpec("vlan", None, 5))
    with pytest.raises(InvalidInput, match="not in the valid range"):
        m.driver("vxlan").validate(SegmentSpec("vxlan", None, 2**24))
    with pytest.raises(InvalidInput, match="unknown for VLAN"):
        m.driver("vlan").validate(SegmentSpec("vlan", "nope", 5))


def test_config_file_and_env(tmp_path: Path) -> None:
    f = tmp_path / "n.toml"
    f.write_text('[DEFAULT]\nbind = "0.0.0.0:1234"\n[ml2]\ntenant_network_types = ["vlan"]\n')
    cfg = config.load(f, env={"NEUTRINO_DATABASE__CONNECTION": "sqlite:////tmp/x.db",
                              "NEUTRINO_QUOTAS__QUOTA_PORT": "7", "NEUTRINO_ML2__VXLAN_VNI_RANGES": "5:6,8:9"})
    assert cfg.DEFAULT.bind == "0.0.0.0:1234" and cfg.ml2.tenant_network_types == ["vlan"]
    assert cfg.db_url == "sqlite:////tmp/x.db" and cfg.quotas.quota_port == 7
    assert cfg.ml2.vxlan_vni_ranges == ["5:6", "8:9"]
    f.write_text("[DEFAULT]\nnope = 1\n")
    with pytest.raises(config.ConfigError, match="unknown option 'nope'"):
        config.load(f, env={})
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load(tmp_path / "missing.toml", env={})


def test_an_unknown_l2_driver_is_a_config_error_naming_the_choices(tmp_path: Path) -> None:
    from neutrino.allinone import host_config

    cfg = config.Config()
    cfg.agent.l2_driver = "ovs; rm -rf /"
    with pytest.raises(config.ConfigError, match="linuxbridge, openvswitch"):
        host_config(cfg)
    cfg.agent.l2_driver = "openvswitch"
    assert host_config(cfg).l2_driver == "openvswitch"
