"""``[agent] firewall_driver``: which security-group driver runs with which L2 driver, refused clearly otherwise."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from neutrino.agent.host import HostConfig, make_driver
from neutrino.agent.l2.ovs import OvsDriver
from neutrino.allinone import host_config
from neutrino.config import ConfigError, firewall_driver
from tests.conftest import make_config


def test_each_l2_driver_has_its_own_firewall_by_default() -> None:
    assert firewall_driver("linuxbridge", "") == "nftables"
    assert firewall_driver("openvswitch", "") == "openvswitch"
    assert firewall_driver("openvswitch", "openvswitch") == "openvswitch"


def test_nftables_on_open_vswitch_plugs_the_hybrid_way(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, agent={"l2_driver": "openvswitch", "firewall_driver": "nftables",
                                       "node_namespace": "nt-cfgtest-node"})
    hc = host_config(cfg)
    assert hc.firewall_driver == "nftables"
    driver = make_driver(hc)
    assert isinstance(driver, OvsDriver) and driver.hybrid
    assert driver.configurations()["ovs_hybrid_plug"] is True
    assert driver.configurations()["firewall_driver"] == "nftables"
    assert not make_driver(replace(hc, firewall_driver="")).hybrid  # conntrack flows stay the default


def test_an_unknown_or_mismatched_firewall_driver_is_refused(tmp_path: Path) -> None:
    for chosen in ("iptables_hybrid", "noop", "NFTABLES"):
        cfg = make_config(tmp_path, agent={"l2_driver": "openvswitch", "firewall_driver": chosen})
        with pytest.raises(ConfigError, match="does not work with l2_driver = openvswitch"):
            host_config(cfg)
    with pytest.raises(ConfigError, match="does not work with l2_driver = linuxbridge"):
        firewall_driver("linuxbridge", "openvswitch")
    with pytest.raises(ConfigError, match="unknown 'ovn'"):
        firewall_driver("ovn", "")


def test_the_agent_gets_the_chosen_driver(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, agent={"l2_driver": "openvswitch", "node_namespace": "nt-cfgtest-node"})
    assert host_config(cfg).firewall_driver == ""  # the L2 driver's own
    cfg.agent.firewall_driver = "openvswitch"
    hc = host_config(cfg)
    assert hc.firewall_driver == "openvswitch"
    assert isinstance(make_driver(hc), OvsDriver)
    assert not make_driver(hc).hybrid
    with pytest.raises(ValueError, match="does not work with the openvswitch driver"):
        make_driver(HostConfig("h", "nt-cfgtest-node", tmp_path, l2_driver="openvswitch", firewall_driver="iptables"))
    with pytest.raises(ValueError, match="does not work with the linuxbridge driver"):
        make_driver(HostConfig("h", "nt-cfgtest-node", tmp_path, firewall_driver="openvswitch"))
