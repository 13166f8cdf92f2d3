"""What a lab and a host run, decided before anything touches the kernel: roles, names, database."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from neutrino import config, lab_services
from neutrino.agent.host import HostAgent
from neutrino.allinone import host_config
from neutrino.config import ConfigError
from neutrino.lab import (
    Lab,
    LabError,
    agents,
    check_services,
    expected_agents,
    parse_roles,
    plan,
    servers,
    write_config,
)
from neutrino.messages import DHCP_AGENT, L3_AGENT, LINUXBRIDGE_AGENT, METADATA_AGENT


class ReportingRpc:
    """The agent's seam to the server, keeping only what the agent reported."""

    def __init__(self) -> None:
        self.reported: list[str] = []

    def sync(self, host: str) -> dict[str, Any]:
        raise AssertionError("not in this test")

    def report_state(self, host: str, agent_type: str, configurations: Mapping[str, Any],
                     start_flag: bool = False) -> None:
        self.reported.append(agent_type)

    def update_port_status(self, statuses: Mapping[str, str], host: str | None = None) -> list[str]:
        return []

    def metadata_lookup(self, router_id: str | None, network_id: str | None, ip: str) -> dict[str, Any] | None:
        return None


def _host(tmp_path: Path, **env: str) -> Any:
    return host_config(config.load(env={"NEUTRINO_DEFAULT__STATE_DIR": str(tmp_path), **env}))


def test_a_compute_host_reports_only_its_l2_agent(tmp_path: Path) -> None:
    rpc = ReportingRpc()
    HostAgent(_host(tmp_path, NEUTRINO_AGENT__ROLES="l2"), rpc)._report()
    assert rpc.reported == [LINUXBRIDGE_AGENT]
    everything = ReportingRpc()
    HostAgent(_host(tmp_path), everything)._report()
    assert sorted(everything.reported) == sorted([LINUXBRIDGE_AGENT, DHCP_AGENT, L3_AGENT, METADATA_AGENT])


def test_roles_are_checked_when_read(tmp_path: Path) -> None:
    assert _host(tmp_path, NEUTRINO_AGENT__ROLES="l2,dhcp").roles == ("l2", "dhcp")
    with pytest.raises(ConfigError, match="l2 always"):
        _host(tmp_path, NEUTRINO_AGENT__ROLES="dhcp")
    with pytest.raises(ConfigError, match="unknown: dchp"):
        _host(tmp_path, NEUTRINO_AGENT__ROLES="l2,dchp")


def test_host_1_is_the_network_node_and_the_others_compute_nodes(tmp_path: Path) -> None:
    lab = plan("neutrino-lab", tmp_path, 3, roles=parse_roles(["host-3=l2,dhcp"]))
    assert [(h.name, h.namespace, h.underlay_ip, h.roles) for h in lab.hosts] == [
        ("host-1", "neutrino-lab-host-1", "172.30.0.11", ["l2", "dhcp", "l3", "metadata"]),
        ("host-2", "neutrino-lab-host-2", "172.30.0.12", ["l2"]),
        ("host-3", "neutrino-lab-host-3", "172.30.0.13", ["l2", "dhcp"])]
    assert expected_agents(lab, lab.hosts[1]) == {LINUXBRIDGE_AGENT}
    assert lab.db_url == "postgresql+psycopg://postgres@127.0.0.1:5432/neutrino_lab_lab" and lab.db_server
    assert len(set(lab.server_ports)) == 1 and lab.control_exchange.startswith("neutrino-lab-")
    given = plan("neutrino-lab", tmp_path, 1, db="mysql+pymysql://u:p@db/neutrino")
    assert given.db_url == "mysql+pymysql://u:p@db/neutrino" and given.db_server == ""  # never dropped


@pytest.mark.parametrize("name", ["lab", "neutrino-", "neutrino-Lab", "neutrino-a-host-1", "nt-" + "x" * 40,
                                  "neutrino-a/b"])
def test_lab_names_are_neutrino_namespace_prefixes(tmp_path: Path, name: str) -> None:
    with pytest.raises(LabError):
        plan(name, tmp_path, 1)


def test_a_missing_database_server_or_rabbitmq_is_named_at_once(tmp_path: Path) -> None:
    no_db = plan("neutrino-lab", tmp_path, 1, db_server="postgresql+psycopg://postgres@127.0.0.1:1/postgres")
    with pytest.raises(LabError, match=r"PostgreSQL does not answer on 127.0.0.1:1; start it with .*services.sh"):
        check_services(no_db)
    with socket.create_server(("127.0.0.1", 0)) as mariadb:  # something answers where the database is
        no_bus = plan("neutrino-lab", tmp_path, 1, db=f"mysql+pymysql://root@127.0.0.1:{mariadb.getsockname()[1]}/x",
                      transport_url="amqp://guest:guest@127.0.0.1:1//")
        with pytest.raises(LabError, match="RabbitMQ does not answer on 127.0.0.1:1"):
            check_services(no_bus)


def test_a_lab_with_its_own_services_points_every_process_at_them(tmp_path: Path) -> None:
    lab = plan("nt-own", tmp_path, 1, own_services=True, settings={"agent": {"resync_interval": 2.5}})
    assert lab.own is not None
    ports = {lab.own.rabbitmq_port, lab.own.rabbitmq_dist_port, lab.own.postgresql_port}
    assert len(ports) == 3 and 5432 not in ports and 5672 not in ports  # never the machine's
    assert lab.db_server == f"postgresql+psycopg://postgres@127.0.0.1:{lab.own.postgresql_port}/postgres"
    assert lab.db_url.startswith(lab.db_server.rsplit("/", 1)[0])
    assert lab.transport_url == f"amqp://guest:guest@127.0.0.1:{lab.own.rabbitmq_port}//"
    lab.save()
    assert Lab.load(lab.state_dir) == lab  # `down` and `service` find the same ports and directories
    cfg = config.load(write_config(lab), env={})
    assert cfg.agent.resync_interval == 2.5 and cfg.agent.l2_driver == "linuxbridge"  # merged, not repeated
    assert cfg.DEFAULT.transport_url == lab.transport_url and cfg.database.connection == lab.db_url
    with pytest.raises(LabError, match="not both"):
        plan("nt-own", tmp_path, 1, own_services=True, transport_url="amqp://guest:guest@127.0.0.1:1//")


def test_an_isolated_lab_puts_each_role_on_its_host_at_the_usual_ports(tmp_path: Path) -> None:
    lab = plan("nt-iso", tmp_path, 3, servers=2, isolated=True)
    assert lab.isolated and lab.own is not None  # --isolated implies the lab's own services
    assert (lab.own.rabbitmq_port, lab.own.postgresql_port) == (5672, 5432)  # host-1 is a machine of its own
    assert lab.db_url == "postgresql+psycopg://postgres@172.30.0.11:5432/neutrino_lab_nt_iso"
    assert lab.transport_url == "amqp://guest:guest@172.30.0.11:5672//"
    assert [lab.server_url(k) for k in (0, 1)] == ["http://172.30.0.11:9696", "http://172.30.0.12:9696"]
    assert lab.client_namespace == "nt-iso-host-1"
    started = {p.name: (p.namespace, p.argv[:2]) for p in [*servers(lab), *agents(lab),
                                                           lab_services.rabbitmq(lab)]}
    assert {name: ns for name, (ns, _) in started.items()} == {
        "server-1": "nt-iso-host-1", "server-2": "nt-iso-host-2", "agent-host-1": "nt-iso-host-1",
        "agent-host-2": "nt-iso-host-2", "agent-host-3": "nt-iso-host-3", "rabbitmq": "nt-iso-host-1"}
    assert servers(lab)[1].argv[servers(lab)[1].argv.index("--bind") + 1] == "172.30.0.12:9696"
    # only the agents (they guard the kernel) are handed the machine's namespace
    assert [p.name for p in [*servers(lab), *agents(lab)] if p.manages_kernel] == [
        "agent-host-1", "agent-host-2", "agent-host-3"]
    lab.save()
    assert Lab.load(lab.state_dir) == lab
    with pytest.raises(LabError, match="one server a host"):
        plan("nt-iso", tmp_path, 1, servers=2, isolated=True)


def test_a_lab_in_the_machine_s_namespace_starts_its_processes_there(tmp_path: Path) -> None:
    lab = plan("nt-mach", tmp_path, 2, servers=2)
    assert not lab.isolated and lab.client_namespace is None
    assert {p.namespace for p in [*servers(lab), *agents(lab)]} == {""}
    assert lab.server_url(1) == f"http://127.0.0.1:{lab.server_ports[1]}"
