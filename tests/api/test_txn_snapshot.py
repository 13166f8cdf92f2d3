"""Reads see one snapshot: concurrent writes never turn a list into a 500 or tear an agent's
desired state (issue 7, section 4).

Two server processes share one PostgreSQL or MariaDB database, as API workers or replicas do:
a ``neutrino server`` started as the README says takes a stream of creates and deletes (ports
with addresses and security groups, their networks, subnets and groups); the server in the
test process answers lists and agent syncs meanwhile. A list that reads the
ports, then their addresses, then their groups in separate statements must not see a port
from before a commit and its addresses from after it.

MariaDB runs with its sessions defaulting to READ COMMITTED, as operators configure it
(``transaction-isolation = READ-COMMITTED`` is common under Galera): the server must not rely
on the server's default isolation level for a consistent read.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from neutrino.messages import LINUXBRIDGE_AGENT as L2_AGENT
from neutrino.services.agent_rpc import AgentRpc
from tests.conftest import Config, lb_agent_conf
from tests.server_process import here_and_there

ADMIN = {"X-Project-Id": "admin", "X-Roles": "admin,member,reader"}
HOST = "host-snap"
LISTS = ("ports", "networks", "subnets", "routers", "security-groups")
ROUNDS = 30  # writer rounds (9 writes each) that every test reads through, at least
READ_COMMITTED = "init_command=SET+SESSION+TRANSACTION+ISOLATION+LEVEL+READ+COMMITTED"


@pytest.fixture
def pair(cfg: Config, db_url: str, tmp_path: Path) -> Iterator[tuple[str, str, AgentRpc]]:
    """(writer's URL, reader's URL, reader's agent RPC) of two server processes on one database."""
    url = db_url + (f"?{READ_COMMITTED}" if db_url.startswith("mysql") else "")
    with here_and_there(cfg, url, tmp_path / "writer") as (reader_srv, reader, writer):
        yield writer.url, reader.url, reader_srv.rpc


class Churn:
    """Writers on one server: each round makes a group, a network, a subnet and a port bound
    to HOST in that group (with a second, plain port beside it), then removes them all."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.rounds = itertools.count()
        self.done = 0  # rounds completed

    def busy(self, minimum: int) -> bool:
        """True until the writers have completed ``minimum`` rounds (or failed)."""
        return self.done < minimum and not self.errors

    def run(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, headers=ADMIN, timeout=60) as c:
            while not self.stop.is_set():
                n = next(self.rounds) % 200
                try:
                    self._round(c, worker, n)
                    self.done += 1
                except AssertionError as exc:
                    self.errors.append(str(exc))
                    return

    @staticmethod
    def _round(c: httpx.Client, worker: int, n: int) -> None:
        def made(r: httpx.Response, member: str) -> Any:
            assert r.status_code == 201, r.text
            return r.json()[member]

        def gone(r: httpx.Response) -> None:
            assert r.status_code == 204, r.text

        sg = made(c.post("/v2.0/security-groups", json={"security_group": {"name": f"g{worker}"}}), "security_group")
        net = made(c.post("/v2.0/networks", json={"network": {"name": f"n{worker}"}}), "network")
        cidr = f"10.{100 + worker}.{n}.0/24"
        sub = made(c.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                             "cidr": cidr}}), "subnet")
        bound = made(c.post("/v2.0/ports", json={"port": {
            "network_id": net["id"], "security_groups": [sg["id"]], "binding:host_id": HOST,
            "device_owner": "compute:nova", "fixed_ips": [{"subnet_id": sub["id"]}]}}), "port")
        plain = made(c.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}), "port")
        for path in (f"/v2.0/ports/{bound['id']}", f"/v2.0/ports/{plain['id']}",
                     f"/v2.0/security-groups/{sg['id']}", f"/v2.0/networks/{net['id']}"):
            gone(c.delete(path))


@pytest.fixture
def churn(pair: tuple[str, str, AgentRpc]) -> Iterator[Churn]:
    writers = Churn(pair[0])
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(writers.run, worker) for worker in range(2)]
        try:
            yield writers
        finally:
            writers.stop.set()
            for future in futures:
                future.result()
    assert not writers.errors, writers.errors[:3]


def test_lists_under_concurrent_writes_never_fail(pair: tuple[str, str, AgentRpc], churn: Churn) -> None:
    _, reader, _ = pair
    with httpx.Client(base_url=reader, headers=ADMIN, timeout=60) as c:
        router = c.post("/v2.0/routers", json={"router": {"name": "r"}})
        assert router.status_code == 201, router.text

        def read(first: int) -> list[tuple[str, int, str]]:
            out = []
            for i in itertools.count(first, 2):
                if i >= 400 and not churn.busy(ROUNDS):
                    return out
                path = f"/v2.0/{LISTS[i % len(LISTS)]}"
                r = c.get(path)
                out.append((path, r.status_code, r.text[:300] if r.status_code != 200 else ""))
            return out

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = [a for part in pool.map(read, range(2)) for a in part]
    assert churn.done >= ROUNDS, churn.errors[:3]
    failed = [a for a in answers if a[1] != 200]
    assert failed == [], f"{len(failed)} of {len(answers)} lists failed: {failed[:3]}"


def test_agent_sync_under_concurrent_writes_is_self_consistent(pair: tuple[str, str, AgentRpc],
                                                               churn: Churn) -> None:
    _, _, rpc = pair
    rpc.report_state(HOST, L2_AGENT, lb_agent_conf("172.30.9.1"), start_flag=True)
    torn: list[str] = []
    with_ports = 0
    syncs = 0
    while syncs < 150 or churn.busy(ROUNDS):
        snap = rpc.sync(HOST)
        syncs += 1
        groups = {g["id"] for g in snap["security_groups"]}
        with_ports += bool(snap["ports"])
        for port in snap["ports"]:
            net = port["network_id"]
            subnets = {s["id"] for s in snap["subnets"].get(net, [])}
            if net not in snap["networks"]:
                torn.append(f"port {port['id']}: network {net} missing")
            torn += [f"port {port['id']}: subnet {ip['subnet_id']} missing"
                     for ip in port["fixed_ips"] if ip["subnet_id"] not in subnets]
            torn += [f"port {port['id']}: group {g} missing" for g in port["security_groups"] if g not in groups]
    assert churn.done >= ROUNDS, churn.errors[:3]
    assert torn == [], torn[:5]
    assert with_ports > 10, "hardly any snapshot held a port: the test proved nothing"
