"""openstacksdk's network proxy against `neutrino server`, through the generated clouds.yaml."""

from __future__ import annotations

import openstack
import pytest
from openstack import exceptions

from tests.server_process import RunningServer


def connect(running: RunningServer, cloud: str) -> openstack.connection.Connection:
    config = openstack.config.OpenStackConfig(config_files=[str(running.clouds)])
    return openstack.connection.Connection(config=config.get_one(cloud))


def test_sdk_network_subnet_port(running: RunningServer) -> None:
    conn = connect(running, "demo")
    net = conn.network.create_network(name="sdk-net")
    assert net.mtu == 1450 and net.is_admin_state_up
    sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.30.0.0/24", name="sdk-sub")
    ports = [conn.network.create_port(network_id=net.id, name=f"p{i}") for i in range(5)]
    assert len({p.fixed_ips[0]["ip_address"] for p in ports}) == 5
    found = conn.network.find_network("sdk-net")
    assert found is not None and found.id == net.id
    assert len(list(conn.network.ports(network_id=net.id))) == 5
    paged = list(conn.network.ports(network_id=net.id, limit=2))
    assert len(paged) == 5
    conn.network.update_port(ports[0], name="renamed")
    assert conn.network.get_port(ports[0].id).name == "renamed"
    with pytest.raises(exceptions.ConflictException):
        conn.network.delete_network(net.id)
    with pytest.raises(exceptions.BadRequestException):
        conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.30.0.128/25")
    with pytest.raises(exceptions.ResourceNotFound):
        conn.network.get_network("00000000-0000-0000-0000-000000000000")
    conn.network.set_tags(net, ["a", "b"])
    assert sorted(conn.network.get_network(net.id).tags) == ["a", "b"]
    for p in ports:
        conn.network.delete_port(p)
    conn.network.delete_subnet(sub)
    conn.network.delete_network(net)


def test_sdk_security_groups_quota_and_routers(running: RunningServer) -> None:
    conn = connect(running, "demo")
    sg = conn.network.create_security_group(name="sdk-sg")
    rule = conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress",
                                                   protocol="tcp", port_range_min=80, port_range_max=80,
                                                   remote_ip_prefix="0.0.0.0/0")
    assert rule.port_range_max == 80
    conn.network.delete_security_group_rule(rule)
    conn.network.delete_security_group(sg)
    admin = connect(running, "admin")
    project_id = conn.current_project_id
    admin.network.update_quota(project_id, networks=42)
    assert admin.network.get_quota(project_id).networks == 42
    if admin.network.find_extension("router") is not None:
        router = conn.network.create_router(name="sdk-r")
        assert conn.network.get_router(router.id).name == "sdk-r"
        conn.network.delete_router(router)
    admin.network.delete_quota(project_id)
