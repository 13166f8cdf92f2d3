"""The next free address or segmentation id is found without reading what is taken.

A /8 with thousands of addresses taken, a 16M VXLAN range (and a VLAN range) with thousands of
ids taken: after the pool's free runs exist (built once, from the allocations), one more port
or network reads a handful of rows, counted at the database driver. Before, allocation read
every address or id in use (and walked the range in Python), so these tests fail on that.
The addresses and ids handed out stay the lowest free ones, a freed one comes back first, and
one asked for by value is skipped by the automatic ones.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from neutrino.db.models.network import Network, NetworkSegment, SegmentAllocation
from tests.api.rowcount import RowCounter
from tests.api.test_list_pages import address, bulk_ports, network_with_subnet
from tests.conftest import Api, make_config

TAKEN = 3000


@contextlib.contextmanager
def _serve(tmp_path: Path, **ml2: Any) -> Iterator[tuple[Api, Any]]:
    from neutrino import server

    cfg = make_config(tmp_path, DEFAULT={"auth_strategy": "noauth"}, ml2=ml2,
                      quotas={"quota_port": -1, "quota_network": -1})
    srv = server.build(cfg)
    with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
        yield Api(client), srv
    srv.db.dispose()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Api, Any]]:
    with _serve(tmp_path) as pair:
        yield pair


def test_next_address_of_a_slash8_reads_a_few_rows(served: tuple[Api, Any]) -> None:
    api, srv = served
    net, sub = network_with_subnet(api, "10.0.0.0/8")
    bulk_ports(srv, net, sub, TAKEN)  # 10.0.0.2 onwards, behind the bookkeeping's back

    def port(**kw: Any) -> dict[str, Any]:
        return api.create("port", network_id=net["id"], **kw)

    first = port()  # the subnet's free runs are built here, from its allocations
    assert first["fixed_ips"][0]["ip_address"] == address(TAKEN)
    counter = RowCounter().attach(srv.db)
    second, rows = counter.during(port)
    assert second["fixed_ips"][0]["ip_address"] == address(TAKEN + 1)
    assert rows < 40, f"the next address of a /8 with {TAKEN} taken read {rows} rows"

    # asked for by value: the automatic ones go round it
    port(fixed_ips=[{"ip_address": address(TAKEN + 2)}])
    assert port()["fixed_ips"][0]["ip_address"] == address(TAKEN + 3)
    # a freed address is the next one again (lowest first, as before)
    assert api.delete(f"/v2.0/ports/{first['id']}").status_code == 204
    again, rows = counter.during(port)
    assert again["fixed_ips"][0]["ip_address"] == address(TAKEN)
    assert rows < 40
    # an address given up by an update is free again too
    r = api.put(f"/v2.0/ports/{again['id']}", json={"port": {"fixed_ips": [{"ip_address": "10.9.9.9"}]}})
    assert r.status_code == 200, r.text
    assert port()["fixed_ips"][0]["ip_address"] == address(TAKEN)
    # new pools: the runs follow them
    r = api.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"allocation_pools": [
        {"start": "10.200.0.10", "end": "10.200.0.12"}]}})
    assert r.status_code == 200, r.text
    assert [port()["fixed_ips"][0]["ip_address"] for _ in range(3)] == ["10.200.0.10", "10.200.0.11", "10.200.0.12"]
    r = api.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == "IpAddressGenerationFailure", r.text


def _bulk_segments(srv: Any, net_type: str, physnet: str, ids: range) -> None:
    def write(s: Any) -> None:
        segments = {}
        for seg_id in ids:
            net = Network(id=str(uuid.uuid4()), project_id="admin", name=f"bulk{seg_id}")
            seg = segments[seg_id] = NetworkSegment(id=str(uuid.uuid4()), network_type=net_type,
                                                    physical_network=physnet or None, segmentation_id=seg_id)
            net.segments.append(seg)
            s.add(net)
        s.flush()
        s.add_all([SegmentAllocation(network_type=net_type, physical_network=physnet, segmentation_id=seg_id,
                                     segment_id=seg.id) for seg_id, seg in segments.items()])
    srv.db.transaction(write)


@pytest.mark.parametrize("net_type, physnet, ranges, first", [
    ("vxlan", "", {"vxlan_vni_ranges": ["1:16777215"]}, 1),
    ("vlan", "physnet1", {"network_vlan_ranges": ["physnet1:100:4094"]}, 100),
])
def test_next_segment_id_reads_a_few_rows(tmp_path: Path, net_type: str, physnet: str,
                                          ranges: dict[str, list[str]], first: int) -> None:
    with _serve(tmp_path, tenant_network_types=[net_type], **ranges) as (api, srv):
        _bulk_segments(srv, net_type, physnet, range(first, first + TAKEN))
        made = api.create("network", name="first")  # the free runs are built here
        assert made["provider:segmentation_id"] == first + TAKEN
        counter = RowCounter().attach(srv.db)
        second, rows = counter.during(lambda: api.create("network", name="second"))
        assert second["provider:segmentation_id"] == first + TAKEN + 1
        assert rows < 40, f"the next {net_type} id with {TAKEN} taken read {rows} rows"
        # a provider network takes an id of the tenant range: the tenant networks go round it
        provider = {"provider:network_type": net_type, "provider:segmentation_id": first + TAKEN + 2}
        if physnet:
            provider["provider:physical_network"] = physnet
        api.create("network", **provider)
        assert api.create("network")["provider:segmentation_id"] == first + TAKEN + 3
        # a freed id is the next one again
        assert api.delete(f"/v2.0/networks/{made['id']}").status_code == 204
        again, rows = counter.during(lambda: api.create("network"))
        assert again["provider:segmentation_id"] == first + TAKEN
        assert rows < 40
