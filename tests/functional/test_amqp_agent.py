"""The agent as its own process on RabbitMQ: killed with SIGKILL, restarted, it converges.

The server runs here (over HTTP, answering agent calls from the AMQP queue); `neutrino agent`
runs as a separate process with the AMQP transport, exactly as on another host. Skipped with
the reason when no RabbitMQ answers on 127.0.0.1:5672.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino import server
from neutrino.amqp import AmqpBus, RpcClient
from neutrino.bus import CHANGES, Event
from neutrino.client import Client
from neutrino.compute.manager import Compute
from neutrino.kernel import janitor
from tests.conftest import LiveServer, free_port, make_config
from tests.functional.cloud import ip_of, wait_for
from tests.functional.traffic import ping

AMQP_URL = os.environ.get("NEUTRINO_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
NEUTRINO = str(Path(sys.executable).with_name("neutrino"))


def _rabbit_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _rabbit_reachable(), reason="no RabbitMQ on 127.0.0.1:5672")


class AgentProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([NEUTRINO, "agent"], env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def setup(tmp_path: Path, ns_prefix: str) -> Iterator[tuple[Client, Compute, AgentProcess, str]]:
    exchange = f"neutrino-test-{secrets.token_hex(4)}"
    node_ns, host = f"{ns_prefix}node", "amqp-host"
    cfg = make_config(tmp_path, DEFAULT={"auth_strategy": "noauth", "transport_url": AMQP_URL,
                                         "control_exchange": exchange})
    port = free_port()
    cfg.DEFAULT.bind = f"127.0.0.1:{port}"
    srv = server.build(cfg)
    stop_rpc = server.serve_agent_calls(srv, cfg)
    assert stop_rpc is not None
    env = {**os.environ, "NEUTRINO_DEFAULT__TRANSPORT_URL": AMQP_URL, "NEUTRINO_DEFAULT__CONTROL_EXCHANGE": exchange,
           "NEUTRINO_DEFAULT__STATE_DIR": str(tmp_path / "agent"), "NEUTRINO_AGENT__HOST": host,
           "NEUTRINO_AGENT__NODE_NAMESPACE": node_ns, "NEUTRINO_AGENT__NAMESPACE_PREFIX": ns_prefix,
           "NEUTRINO_AGENT__REPORT_INTERVAL": "1", "NEUTRINO_PUBLIC__PHYSICAL_NETWORK": ""}
    agent = AgentProcess(env, tmp_path / "agent.log")
    try:
        with LiveServer(srv.app, port) as live:
            admin = Client(live.url, {"X-Project-Id": "admin", "X-Roles": "admin,member,reader"})
            user = Client(live.url, {"X-Project-Id": "p1", "X-Roles": "member,reader"}, project_id="p1")
            agent.start()
            assert wait_for(lambda: {a["agent_type"] for a in admin.get("/v2.0/agents", host=host)["agents"]
                                     if a["alive"]} >= {"Linux bridge agent", "DHCP agent"}, timeout=30), \
                agent.log.read_text()
            yield user, Compute(user, admin, host, node_ns, tmp_path, ns_prefix=ns_prefix), agent, node_ns
    finally:
        agent.stop()
        stop_rpc()
        srv.db.dispose()
        janitor.cleanup(prefixes=(ns_prefix,), root_links=False)


def test_agent_process_over_rabbitmq_survives_sigkill(setup: tuple[Client, Compute, AgentProcess, str]) -> None:
    user, compute, agent, _ = setup
    net = user.post("/v2.0/networks", {"network": {"name": "n1"}})["network"]
    user.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.7.0.0/24", "ip_version": 4}})
    vm1, vm2 = compute.create("vm1", network="n1"), compute.create("vm2", network="n1")
    assert ping(vm1.namespace, ip_of(vm2))
    agent.kill()  # SIGKILL: no clean-up of any kind
    # While it is down: take vm2's port down. Nothing happens in the kernel yet.
    user.put(f"/v2.0/ports/{vm2.port_id}", {"port": {"admin_state_up": False}})
    time.sleep(1)
    assert ping(vm1.namespace, ip_of(vm2), tries=1)
    agent.start()
    assert wait_for(lambda: user.get(f"/v2.0/ports/{vm2.port_id}")["port"]["status"] == "DOWN", timeout=30)
    assert wait_for(lambda: not ping(vm1.namespace, ip_of(vm2), tries=1), timeout=10)
    # And it keeps following changes through the bus after the restart.
    user.put(f"/v2.0/ports/{vm2.port_id}", {"port": {"admin_state_up": True}})
    assert wait_for(lambda: ping(vm1.namespace, ip_of(vm2), tries=1), timeout=15)


def test_rpc_calls_fail_clearly_without_a_server() -> None:
    client = RpcClient(AMQP_URL, prefix=f"neutrino-test-{secrets.token_hex(4)}", timeout=1.5)
    try:
        with pytest.raises(Exception, match="no answer from the server"):
            client.sync("nobody")
    finally:
        client.close()


def test_events_reach_only_their_hosts_over_rabbitmq() -> None:
    """One message per host concerned, routed by host: a host hears its own events and the
    broadcasts, never another host's; a host name cannot steer its binding onto others."""
    bus = AmqpBus(AMQP_URL, prefix=f"neutrino-test-{secrets.token_hex(4)}")
    heard: dict[str, list[Event]] = {h: [] for h in ("a", "b", "#", "everything")}
    stops = [bus.subscribe(CHANGES, heard[h].append, host=None if h == "everything" else h) for h in heard]
    try:
        time.sleep(1.0)  # the queues are bound
        bus.publish(CHANGES, Event("ports", "p1", "create", hosts=frozenset({"a"}), networks=frozenset({"n1"})))
        bus.publish(CHANGES, Event("agents", "x", "update"))  # reach unknown: every host
        bus.publish(CHANGES, Event("networks", "n2", "create", hosts=frozenset()))  # nobody
        assert wait_for(lambda: len(heard["everything"]) == 2 and len(heard["b"]) == 1, timeout=10)
        time.sleep(0.5)
        assert [(e.id, e.networks) for e in heard["a"]] == [("p1", {"n1"}), ("x", frozenset())]
        assert [e.id for e in heard["b"]] == [e.id for e in heard["#"]] == ["x"]
        assert bus.sent_messages == 2
    finally:
        for stop in stops:
            stop()
        bus.close()
