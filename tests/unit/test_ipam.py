"""IPAM arithmetic: pools, gateways, picking, EUI-64."""

from __future__ import annotations

import netaddr
import pytest

from neutrino.errors import Conflict, InvalidInput
from neutrino.services import ipam


def net(cidr: str) -> netaddr.IPNetwork:
    return netaddr.IPNetwork(cidr)


def test_default_pools_skip_gateway_network_and_broadcast() -> None:
    assert ipam.default_pools(net("10.0.0.0/24"), "10.0.0.1") == [{"start": "10.0.0.2", "end": "10.0.0.254"}]
    assert ipam.default_pools(net("10.0.0.0/24"), "10.0.0.100") == [
        {"start": "10.0.0.1", "end": "10.0.0.99"}, {"start": "10.0.0.101", "end": "10.0.0.254"}]
    assert ipam.default_pools(net("10.0.0.0/24"), None) == [{"start": "10.0.0.1", "end": "10.0.0.254"}]
    assert ipam.default_pools(net("2001:db8::/126"), "2001:db8::1") == [
        {"start": "2001:db8::2", "end": "2001:db8::3"}]
    assert ipam.default_pools(net("10.0.0.0/31"), None) == [{"start": "10.0.0.0", "end": "10.0.0.1"}]


def test_validate_pools() -> None:
    n = net("10.0.0.0/24")
    ok = ipam.validate_pools(n, [{"start": "10.0.0.10", "end": "10.0.0.20"}], "10.0.0.1")
    assert ok == [{"start": "10.0.0.10", "end": "10.0.0.20"}]
    with pytest.raises(ipam.OutOfBoundsAllocationPool):
        ipam.validate_pools(n, [{"start": "10.0.0.10", "end": "10.0.1.20"}], None)
    with pytest.raises(ipam.InvalidAllocationPool):
        ipam.validate_pools(n, [{"start": "10.0.0.30", "end": "10.0.0.20"}], None)
    with pytest.raises(Conflict):
        ipam.validate_pools(n, [{"start": "10.0.0.10", "end": "10.0.0.20"},
                                {"start": "10.0.0.15", "end": "10.0.0.25"}], None)
    with pytest.raises(Conflict):
        ipam.validate_pools(n, [{"start": "10.0.0.1", "end": "10.0.0.20"}], "10.0.0.1")


def test_gateway_checks() -> None:
    ipam.check_gateway(net("10.0.0.0/24"), "10.0.0.254")
    for bad in ("10.0.1.1", "10.0.0.0", "10.0.0.255", "2001:db8::1"):
        with pytest.raises(InvalidInput):
            ipam.check_gateway(net("10.0.0.0/24"), bad)


def test_pick_free_and_size() -> None:
    pools = [{"start": "10.0.0.2", "end": "10.0.0.4"}, {"start": "10.0.0.10", "end": "10.0.0.10"}]
    assert ipam.pick_free(pools, ["10.0.0.2", "10.0.0.3"], 4) == "10.0.0.4"
    assert ipam.pick_free(pools, ["10.0.0.2", "10.0.0.3", "10.0.0.4"], 4) == "10.0.0.10"
    assert ipam.pick_free(pools, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.10"], 4) is None
    assert ipam.pool_size(pools) == 4


def test_eui64_and_overlap() -> None:
    assert ipam.eui64(net("2001:db8::/64"), "fa:16:3e:00:00:01") == "2001:db8::f816:3eff:fe00:1"
    assert ipam.overlaps("10.0.0.0/24", "10.0.0.128/25")
    assert not ipam.overlaps("10.0.0.0/24", "10.0.1.0/24")
    assert not ipam.overlaps("10.0.0.0/8", "2001:db8::/64")
