"""A rule removed cuts the flows it admitted (issue 7 §3, second reading).

``ct state established accept`` comes first, so without more a connection admitted by a rule
lives on after the rule is deleted (or the port leaves the group, or a remote group loses the
member): the tenant revokes access and the attacker keeps it. Neutron deletes the conntrack
entries the removed rule admitted; so must we.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.cloud import Cloud, cloud, ip_of, listener
from tests.functional.test_firewall_tenants import group, rule

# Hold one TCP connection to argv[1]:argv[2]; for each line on stdin send it, print the echo or "lost".
HOLD = """import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
print("connected", flush=True)
for line in sys.stdin:
    try:
        s.sendall(line.encode()); print("echo" if s.recv(100) else "lost", flush=True)
    except OSError:
        print("lost", flush=True)
"""


@pytest.fixture
def c(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    with cloud(tmp_path, ns_prefix) as built:
        yield built


def _echo(client: subprocess.Popen[str]) -> bool:
    assert client.stdin is not None and client.stdout is not None
    client.stdin.write("hi\n")
    client.stdin.flush()
    return client.stdout.readline().strip() == "echo"


@pytest.mark.parametrize("revoke", ["delete the rule", "remove the member from the remote group"])
def test_a_revoked_rule_cuts_the_connection_it_admitted(c: Cloud, revoke: str) -> None:
    c.network("net1", "10.88.0.0/24")
    web, clients = group(c, "web"), group(c, "clients")
    by_group = revoke.startswith("remove")
    made = rule(c, web["id"], protocol="tcp", port_range_min=8080, port_range_max=8080,
                **({"remote_group_id": clients["id"]} if by_group else {"remote_ip_prefix": "10.88.0.0/24"}))
    compute = c.compute()
    server = compute.create("server", network="net1", security_groups=["web"])
    peer = compute.create("peer", network="net1", security_groups=["clients"])
    with listener(server.namespace, 8080):
        client = subprocess.Popen(["ip", "netns", "exec", peer.namespace, sys.executable, "-S", "-c", HOLD,
                                   ip_of(server), "8080"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert client.stdout is not None and client.stdout.readline().strip() == "connected"
            assert _echo(client)
            if by_group:
                # egress as before (the default group's): only the remote group's set shrinks
                default = c.client().find("security-groups", "default", key="security_groups")
                c.client().put(f"/v2.0/ports/{peer.port_id}", {"port": {"security_groups": [default["id"]]}})
            else:
                c.client().delete(f"/v2.0/security-group-rules/{made['id']}")
            c.settle()
            assert not _echo(client), f"{revoke}: the connection it admitted lives on"
        finally:
            client.kill()
            client.wait(timeout=5)
