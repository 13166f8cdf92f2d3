"""Issue 7 §3 and §8 by real traffic: the firewall covers every rule the API accepts, one object
that cannot be realised hurts only itself (and stays closed), stateless groups are stateless.

Each test builds a whole cloud in its own namespaces (tests/functional/cloud.py). Failures
are injected for real: a rule or port value written into the database past the API, a tap
nobody asked for on a network's bridge, a DHCP state directory the agent cannot create.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from neutron_lib import constants as lib

from neutrino.agent.l2 import firewall
from neutrino.compute.manager import Instance
from neutrino.kernel import links, netns, procs
from neutrino.kernel.names import bridge_name, qdhcp_ns
from neutrino.services.security_groups import new_rule
from tests.functional.cloud import OTHER_PROJECT, PROJECT, Cloud, cloud, ip_of, listener, run_in, tcp_ok, wait_for
from tests.functional.traffic import ping

IPV6_ONLY = {"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route"}
PORT_PROTOCOLS = {"tcp", "udp", "sctp", "udplite", "dccp"}

# Wait (argv[3] s) for one raw IP packet of protocol argv[2] from argv[1] (v4 or v6) carrying "neutrino-probe".
RAW_RECV = """import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_RAW, int(sys.argv[2])); s.settimeout(float(sys.argv[3]))
print("ready", flush=True)
try:
    while True:
        data, addr = s.recvfrom(4096)
        if addr[0].split("%")[0] == sys.argv[1] and b"neutrino-probe" in data:
            print("got", flush=True)
            break
except socket.timeout:
    print("none", flush=True)
"""
# Send a few such packets to argv[1]; an IPv6 (link-local) destination goes out of eth0.
RAW_SEND = """import socket, sys, time
if ":" in sys.argv[1]:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, int(sys.argv[2]))
    to = (sys.argv[1], 0, 0, socket.if_nametoindex("eth0"))
else:
    s, to = socket.socket(socket.AF_INET, socket.SOCK_RAW, int(sys.argv[2])), (sys.argv[1], 0)
for _ in range(6):
    s.sendto(b"neutrino-probe", to); time.sleep(0.1)
"""


@pytest.fixture
def c(tmp_path: Path, ns_prefix: str) -> Iterator[Cloud]:
    with cloud(tmp_path, ns_prefix) as built:
        yield built


def raw_ok(src_ns: str, src_ip: str, dst_ns: str, dst_ip: str, proto: int) -> bool:
    """Does an IP packet of protocol ``proto`` (vrrp 112, gre 47 ...) get from src to dst (IPv4 or IPv6)?"""
    recv = subprocess.Popen(["ip", "netns", "exec", dst_ns, sys.executable, "-S", "-c", RAW_RECV, src_ip, str(proto),
                             "2.0"], stdout=subprocess.PIPE, text=True)
    try:
        assert recv.stdout is not None and recv.stdout.readline().strip() == "ready"
        sent = run_in(src_ns, sys.executable, "-S", "-c", RAW_SEND, dst_ip, str(proto))
        assert sent.returncode == 0, sent.stderr
        return recv.stdout.readline().strip() == "got"
    finally:
        if recv.poll() is None:
            recv.kill()
        recv.wait(timeout=5)


def group(c: Cloud, name: str, project: str = PROJECT, **attrs: Any) -> dict[str, Any]:
    body = {"security_group": {"name": name, **attrs}}
    return c.client(project).post("/v2.0/security-groups", body)["security_group"]  # type: ignore[no-any-return]


def rule(c: Cloud, group_id: str, project: str = PROJECT, **attrs: Any) -> dict[str, Any]:
    body = {"security_group_rule": {"security_group_id": group_id, "direction": "ingress", "ethertype": "IPv4",
                                    **attrs}}
    return c.client(project).post("/v2.0/security-group-rules", body)["security_group_rule"]  # type: ignore[no-any-return]


def try_rule(c: Cloud, group_id: str, **attrs: Any) -> tuple[int, dict[str, Any]]:
    """POST a rule with the raw HTTP client: (status, body), whatever the answer."""
    import httpx

    body = {"security_group_rule": {"security_group_id": group_id, "direction": "ingress", "ethertype": "IPv4",
                                    **attrs}}
    r = httpx.post(f"{c.url}/v2.0/security-group-rules", json=body,
                   headers={"X-Project-Id": PROJECT, "X-Roles": "member,reader"}, timeout=10)
    return r.status_code, r.json()


def every_kind_of_rule(c: Cloud, group_id: str, remote_group: str) -> int:
    """Every protocol name of neutron-lib and some numbers, both ethertypes and directions, port
    ranges, ICMP type/code, remote groups and prefixes: all confined to prefixes no instance here
    uses, so they must be realised without opening anything the probes below look at."""
    made = 0
    wanted: list[dict[str, Any]] = []
    for name in lib.IP_PROTOCOL_MAP:
        for ethertype, prefix in (("IPv4", "10.99.0.0/24"), ("IPv6", "fd99::/64")):
            if name in IPV6_ONLY and ethertype == "IPv4":
                continue
            for direction in ("ingress", "egress"):
                wanted.append({"protocol": name, "ethertype": ethertype, "direction": direction,
                               "remote_ip_prefix": prefix})
            if name in PORT_PROTOCOLS:
                wanted.append({"protocol": name, "ethertype": ethertype, "remote_ip_prefix": prefix,
                               "port_range_min": 1000, "port_range_max": 2000})
            if name in ("icmp", "ipv6-icmp"):
                wanted.append({"protocol": name, "ethertype": ethertype, "remote_ip_prefix": prefix,
                               "port_range_min": 3, "port_range_max": 1})
    for number in ("2", "4", "33", "50", "51", "112", "132", "136", "200", "255"):
        wanted.append({"protocol": number, "remote_ip_prefix": "10.99.1.0/24"})
        wanted.append({"protocol": number, "ethertype": "IPv6", "remote_ip_prefix": "fd99:1::/64"})
    wanted.append({"protocol": "esp", "remote_group_id": remote_group})
    wanted.append({"protocol": "ah", "ethertype": "IPv6", "remote_group_id": remote_group})
    wanted.append({"protocol": "vrrp", "direction": "egress", "remote_group_id": remote_group})
    for attrs in wanted:
        status, body = try_rule(c, group_id, **attrs)
        # 'icmp'/'icmpv6'/'ipv6-icmp' in IPv6 rules, 'ip'/'hopopt' are the same rule: Neutron says 409
        assert status == 201 or (status == 409 and body["NeutronError"]["type"] == "SecurityGroupRuleExists"), \
            (attrs, status, body)
        made += status == 201
    return made


HOSTILE_RULES: list[dict[str, Any]] = [
    {"protocol": "vrrp\n"}, {"protocol": "tcp accept"}, {"protocol": 256}, {"protocol": -1},
    {"protocol": "vrrp", "port_range_min": 1, "port_range_max": 2}, {"protocol": "icmp", "port_range_min": 300},
    {"protocol": "tcp", "port_range_min": 22, "port_range_max": "22 accept"},
    {"remote_ip_prefix": "10.0.0.0/8 accept"}, {"remote_ip_prefix": "fd00::/64"},
    {"ethertype": "IPv4 accept"}, {"protocol": "ipv6-route"},
]


def test_every_rule_one_tenant_makes_leaves_the_others_filtering_as_it_was(c: Cloud) -> None:
    """Issue 7 §3 test: tenant A makes every kind of rule (and hostile ones); B's filtering on
    the same host is unchanged and B's own changes still reach the host."""
    c.network("netb", "10.72.0.0/24", project=OTHER_PROJECT)
    c.network("neta", "10.71.0.0/24")
    group(c, "other", project=OTHER_PROJECT)
    b = c.compute(OTHER_PROJECT)
    b1, b2, b3 = b.create("b1", network="netb"), b.create("b2", network="netb"), \
        b.create("b3", network="netb", security_groups=["other"])
    everything, probe = group(c, "everything"), group(c, "probe")
    a = c.compute()
    a2 = a.create("a2", network="neta")
    a1 = a.create("a1", network="neta", security_groups=["everything", "probe"])
    assert ping(b2.namespace, ip_of(b1)) and not ping(b3.namespace, ip_of(b1), tries=1)

    c.admin.put(f"/v2.0/quotas/{PROJECT}", {"quota": {"security_group_rule": -1}})  # more than Neutron's 100
    assert every_kind_of_rule(c, everything["id"], probe["id"]) > 100
    for hostile in HOSTILE_RULES:
        status, body = try_rule(c, probe["id"], **hostile)
        assert status == 400 and "NeutronError" in body, (hostile, status, body)
    rule(c, probe["id"], protocol="vrrp", remote_ip_prefix=f"{ip_of(a2)}/32")
    rule(c, probe["id"], protocol="icmp", port_range_min=8, port_range_max=0, remote_ip_prefix=f"{ip_of(a2)}/32")
    # and one that got past the API (written into the database): it alone is left out
    bad = new_rule(project_id=PROJECT, security_group_id=probe["id"], direction="ingress", ethertype="IPv4",
                   protocol="tcp dport 1-65535 accept; #", remote_ip_prefix=None)
    c.srv.db.transaction(lambda s: s.add(bad))
    c.settle()

    # A's rules are enforced as written: vrrp and echo from a2 pass; gre and TCP do not
    assert raw_ok(a2.namespace, ip_of(a2), a1.namespace, ip_of(a1), 112)
    assert not raw_ok(a2.namespace, ip_of(a2), a1.namespace, ip_of(a1), 47)
    assert ping(a2.namespace, ip_of(a1))
    with listener(a1.namespace, 22):
        assert not tcp_ok(a2.namespace, ip_of(a1), 22), "the hostile rule opened nothing"
    rule(c, probe["id"], protocol="gre", remote_ip_prefix=f"{ip_of(a2)}/32")
    c.settle()
    assert raw_ok(a2.namespace, ip_of(a2), a1.namespace, ip_of(a1), 47)
    failures = agent_failures(c, "Linux bridge agent")
    assert list(failures) == [f"rule:{bad.id}"], failures

    # B: unchanged, and B's own new rule reaches the host
    assert ping(b2.namespace, ip_of(b1)) and not ping(b3.namespace, ip_of(b1), tries=1)
    with listener(b1.namespace, 22), listener(b1.namespace, 23):
        assert not tcp_ok(b3.namespace, ip_of(b1), 22)
        default_b = c.client(OTHER_PROJECT).get("/v2.0/security-groups", name="default",
                                                project_id=OTHER_PROJECT)["security_groups"][0]
        rule(c, default_b["id"], project=OTHER_PROJECT, protocol="tcp", port_range_min=22, port_range_max=22,
             remote_ip_prefix=f"{ip_of(b3)}/32")
        c.settle()
        assert wait_for(lambda: tcp_ok(b3.namespace, ip_of(b1), 22), timeout=5)
        assert not tcp_ok(b3.namespace, ip_of(b1), 23)
    assert not raw_ok(b3.namespace, ip_of(b3), b1.namespace, ip_of(b1), 112), "A's vrrp rule is A's alone"


def agent_failures(c: Cloud, agent_type: str) -> dict[str, str]:
    agents = c.admin.get("/v2.0/agents", agent_type=agent_type)["agents"]
    mine = [a for a in agents if a["host"] == c.agent.cfg.host]
    assert len(mine) == 1, agents
    return mine[0]["configurations"].get("failures", {})  # type: ignore[no-any-return]


def port_status(c: Cloud, port_id: str) -> str:
    return str(c.admin.get(f"/v2.0/ports/{port_id}")["port"]["status"])


def test_an_unknown_tap_and_an_unfilterable_port_pass_nothing(c: Cloud, ns_prefix: str) -> None:
    """Fail closed: a tap with no filter of its own is dropped both ways; a port whose filter
    cannot be written is cut off, reported ERROR and in the agent's failures, and comes back
    when fixed; the network's DHCP port and the other instances are not disturbed."""
    net, vm1, vm2, dhcp_ip = two_instances(c, "10.73.0.0/24")

    # a tap nobody asked for, on the network's bridge, with an address of the subnet
    rogue_ns = f"{ns_prefix}rogue"
    subprocess.run(["ip", "netns", "add", rogue_ns], check=True, timeout=10)
    try:
        links.ensure_veth(c.node_ns, "tapdeadbeef-00", rogue_ns, "eth0", mac_b="fa:16:3e:de:ad:00")
        links.set_master(c.node_ns, "tapdeadbeef-00", bridge_name(net["id"]))
        links.set_up(c.node_ns, "tapdeadbeef-00")
        links.add_address(rogue_ns, "eth0", "10.73.0.250/24")
        links.set_up(rogue_ns, "eth0")
        assert not ping(rogue_ns, dhcp_ip, tries=2), "an unknown tap sends nothing"
        assert not ping(rogue_ns, ip_of(vm2), tries=1)
        assert ping(vm1.namespace, dhcp_ip), "the network's own DHCP port stays trusted"
    finally:
        subprocess.run(["ip", "netns", "delete", rogue_ns], timeout=10)

    an_unfilterable_port_passes_nothing(c, vm1, vm2, dhcp_ip, "Linux bridge agent")


def two_instances(c: Cloud, cidr: str) -> tuple[dict[str, Any], Instance, Instance, str]:
    """A network with two instances in the default group, which reach each other and DHCP:
    (the network, the instances, the DHCP port's address)."""
    net, _ = c.network("net1", cidr)
    compute = c.compute()
    vm1, vm2 = compute.create("vm1", network="net1"), compute.create("vm2", network="net1")
    dhcp = c.admin.get("/v2.0/ports", network_id=net["id"], device_owner="network:dhcp")["ports"][0]
    dhcp_ip = str(dhcp["fixed_ips"][0]["ip_address"])
    assert ping(vm1.namespace, dhcp_ip) and ping(vm2.namespace, dhcp_ip) and ping(vm1.namespace, ip_of(vm2))
    return net, vm1, vm2, dhcp_ip


def an_unfilterable_port_passes_nothing(c: Cloud, vm1: Instance, vm2: Instance, dhcp_ip: str, agent: str) -> None:
    """``vm2``'s filter cannot be written (a MAC that got past the API into the database): it is
    cut off, ERROR and in the ``agent``'s failures; ``vm1`` is not disturbed; fixed, it comes back."""
    real_mac = c.admin.get(f"/v2.0/ports/{vm2.port_id}")["port"]["mac_address"]

    c.set_port_mac(vm2.port_id, "fa:16:3e:00:00:01 accept")
    c.agent.settle()
    assert wait_for(lambda: port_status(c, vm2.port_id) == "ERROR", timeout=10)
    assert f"port:{vm2.port_id}" in agent_failures(c, agent)
    assert not ping(vm2.namespace, dhcp_ip, tries=2), "its filter is not in place: it passes nothing"
    assert not ping(vm1.namespace, ip_of(vm2), tries=1)
    assert ping(vm1.namespace, dhcp_ip), "the other port on the same network is not disturbed"
    c.set_port_mac(vm2.port_id, real_mac)
    c.agent.settle()
    assert wait_for(lambda: port_status(c, vm2.port_id) == "ACTIVE", timeout=10)
    assert wait_for(lambda: ping(vm1.namespace, ip_of(vm2), tries=1), timeout=10)
    assert agent_failures(c, agent) == {}


def test_a_stateless_group_passes_a_reply_only_where_a_rule_allows_it(c: Cloud) -> None:
    """Issue 7 §8 stateful-security-group: stateful=false is enforced without conntrack."""
    c.network("net1", "10.74.0.0/24")
    bare = group(c, "bare", stateful=False)  # egress anywhere (the group's default rules), no ingress
    open_ = group(c, "open")
    rule(c, open_["id"])  # any IPv4 in
    compute = c.compute()
    peer = compute.create("peer", network="net1", security_groups=["open"])
    s1 = compute.create("s1", network="net1", security_groups=["bare"])
    assert c.admin.get(f"/v2.0/security-groups/{bare['id']}")["security_group"]["stateful"] is False
    # s1's echo request leaves (egress rule); the reply is not a rule's business statefully, but is here
    assert not ping(s1.namespace, ip_of(peer), tries=2), "a stateless port got a reply no rule allows"
    with listener(peer.namespace, 8080):
        assert not tcp_ok(s1.namespace, ip_of(peer), 8080)
    rule(c, bare["id"], protocol="icmp", port_range_min=0, port_range_max=0, remote_ip_prefix=f"{ip_of(peer)}/32")
    c.settle()
    assert wait_for(lambda: ping(s1.namespace, ip_of(peer), tries=1), timeout=5)
    with listener(peer.namespace, 8080):
        assert not tcp_ok(s1.namespace, ip_of(peer), 8080), "only the return direction a rule names"
        rule(c, bare["id"], protocol="tcp", port_range_min=1024, port_range_max=65535,
             remote_ip_prefix=f"{ip_of(peer)}/32")
        c.settle()
        assert wait_for(lambda: tcp_ok(s1.namespace, ip_of(peer), 8080), timeout=5)
    # and a stateful port on the same host still gets its replies without any ingress rule
    full = compute.create("full", network="net1", security_groups=["default"])
    assert ping(full.namespace, ip_of(peer))


def test_a_dhcp_server_that_cannot_start_hurts_only_its_network(c: Cloud, caplog: pytest.LogCaptureFixture) -> None:
    """One object fails, the rest converges; the failure is reported, retried with back-off and
    logged a few times, not per pass; once its cause is gone it recovers by itself."""
    caplog.set_level(logging.WARNING, logger="neutrino.agent.retry")
    api = c.client()
    broken = api.post("/v2.0/networks", {"network": {"name": "broken"}})["network"]
    # dnsmasq's files live in /run/neutrino/dhcp/<its namespace>: a plain file there blocks them
    blocker = procs.run_path("dhcp", c.agent.cfg.ns_prefix + qdhcp_ns(broken["id"]))
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory: dnsmasq's files cannot go here\n")
    api.post("/v2.0/subnets", {"subnet": {"network_id": broken["id"], "cidr": "10.75.0.0/24", "ip_version": 4}})
    c.network("fine", "10.76.0.0/24")
    vm = c.compute().create("vm1", network="fine")  # waits for its DHCP lease on the other network
    assert ip_of(vm).startswith("10.76.0.")
    assert wait_for(lambda: f"dhcp:{broken['id']}" in agent_failures(c, "DHCP agent"), timeout=10)
    assert agent_failures(c, "Linux bridge agent") == {}
    for _ in range(10):  # many passes: the broken server is not retried (nor logged) on every one
        c.agent.settle()
    logged = [r for r in caplog.records if r.name == "neutrino.agent.retry" and broken["id"] in r.getMessage()]
    assert 1 <= len(logged) <= 3, [r.getMessage() for r in logged]
    blocker.unlink()
    # no API change: the back-off alone brings it back
    assert wait_for(lambda: agent_failures(c, "DHCP agent") == {}, timeout=20)
    vm2 = c.compute().create("vm2", network="broken")
    assert ip_of(vm2).startswith("10.75.0.")


def test_a_port_whose_rules_nft_refuses_is_cut_off_alone(c: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """nft itself refuses one port's rules (a defect injected into that port's spoof chain, the
    kernel is real): the agent finds the port by ``nft -c``, applies everyone else, keeps that
    port closed and ERROR, and retries it on its back-off: fixed, it comes back by itself."""
    net, _ = c.network("net1", "10.77.0.0/24")
    compute = c.compute()
    vm1, vm2 = compute.create("vm1", network="net1"), compute.create("vm2", network="net1")
    dhcp_ip = c.admin.get("/v2.0/ports", network_id=net["id"],
                          device_owner="network:dhcp")["ports"][0]["fixed_ips"][0]["ip_address"]
    real = firewall._spoof_rules

    def broken(port: Any) -> list[str]:
        rules = real(port)
        return [*rules[:-1], "meta l4proto 999 accept", rules[-1]] if port["id"] == vm2.port_id else rules

    monkeypatch.setattr(firewall, "_spoof_rules", broken)
    c.client().put(f"/v2.0/ports/{vm1.port_id}", {"port": {"description": "a change, so the host re-renders"}})
    assert wait_for(lambda: port_status(c, vm2.port_id) == "ERROR", timeout=10)
    failures = agent_failures(c, "Linux bridge agent")
    assert list(failures) == [f"port:{vm2.port_id}"] and "nft refused" in failures[f"port:{vm2.port_id}"]
    assert not ping(vm2.namespace, dhcp_ip, tries=2)
    assert ping(vm1.namespace, dhcp_ip), "everyone else's rules were applied"
    assert port_status(c, vm1.port_id) == "ACTIVE"
    monkeypatch.setattr(firewall, "_spoof_rules", real)
    assert wait_for(lambda: port_status(c, vm2.port_id) == "ACTIVE", timeout=15), "retried on its back-off"
    assert wait_for(lambda: ping(vm2.namespace, dhcp_ip, tries=1), timeout=5)
    assert agent_failures(c, "Linux bridge agent") == {}


def test_a_failing_pass_backs_off_and_logs_rarely(c: Cloud, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The server's answer fails (here: the sync call raises): the agent retries the whole pass
    after 1, 2, 4 ... s and logs the same failure once, instead of twice a second forever."""
    caplog.set_level(logging.WARNING)
    calls: list[float] = []
    real = c.agent.rpc.sync

    def away(host: str) -> dict[str, Any]:
        calls.append(time.monotonic())
        raise ConnectionError("server away")

    monkeypatch.setattr(c.agent.rpc, "sync", away)
    c.agent.wake()
    time.sleep(6.5)
    monkeypatch.setattr(c.agent.rpc, "sync", real)
    gaps = [round(b - a, 1) for a, b in zip(calls, calls[1:], strict=False)]
    assert 2 <= len(calls) <= 4 and all(later >= earlier for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps
    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], ConnectionError)]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    c.settle(timeout=20)  # back by itself once the server answers


def link_local(ns: str) -> str:
    """Turn IPv6 on for the instance's eth0 (instances run with it off) and return its fe80:: address."""
    assert run_in(ns, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0").returncode == 0

    def address() -> str | None:
        out = run_in(ns, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link").stdout.split()
        return out[out.index("inet6") + 1].split("/")[0] if "inet6" in out and "tentative" not in out else None
    assert wait_for(lambda: address() is not None, timeout=10)
    found = address()
    assert found is not None
    return found


def test_ipv6_rules_are_enforced_by_ipv6_traffic(c: Cloud) -> None:
    """IPv6 ethertype rules by real IPv6 packets (link-local, the only IPv6 instances have):
    vrrp and a number allowed from a prefix pass, gre does not until a rule names it."""
    c.network("net1", "10.78.0.0/24")
    v6 = group(c, "v6")
    rule(c, v6["id"], ethertype="IPv6", protocol="vrrp", remote_ip_prefix="fe80::/64")
    rule(c, v6["id"], ethertype="IPv6", protocol="200", remote_ip_prefix="fe80::/64")
    rule(c, v6["id"], ethertype="IPv4", protocol="gre")  # the other ethertype opens nothing for IPv6
    compute = c.compute()
    sender = compute.create("v6a", network="net1")
    target = compute.create("v6b", network="net1", security_groups=["v6"])
    src, dst = link_local(sender.namespace), link_local(target.namespace)
    assert raw_ok(sender.namespace, src, target.namespace, dst, 112)
    assert raw_ok(sender.namespace, src, target.namespace, dst, 200)
    assert not raw_ok(sender.namespace, src, target.namespace, dst, 47)
    rule(c, v6["id"], ethertype="IPv6", protocol="gre", remote_ip_prefix="fe80::/64")
    c.settle()
    assert raw_ok(sender.namespace, src, target.namespace, dst, 47)


def test_a_router_whose_namespace_cannot_be_entered_hurts_only_itself(c: Cloud) -> None:
    """A router namespace operation fails for real (its name in /run/netns is a plain file the
    kernel cannot enter): the other router and everything else converge, the L3 agent reports
    the failed router, and once the cause is gone the back-off alone brings it up."""
    subs = [c.network(f"net{i}", f"10.79.{i}.0/24")[1] for i in range(1, 5)]
    compute = c.compute()
    vms = [compute.create(f"vm{i}", network=f"net{i}") for i in range(1, 5)]
    c.agent.stop()
    broken = _router(c, subs[0], subs[1])
    _router(c, subs[2], subs[3])
    blocker = Path(netns.NETNS_RUN_DIR) / f"{c.ns_prefix}qrouter-{broken['id']}"
    blocker.write_text("not a network namespace\n")
    try:
        agent = type(c.agent)(c.agent.cfg, c.agent.rpc, c.agent.bus)
        agent.start()
        c.agent = agent
        assert wait_for(lambda: ping(vms[2].namespace, ip_of(vms[3]), tries=1), timeout=20), "the other router works"
        assert wait_for(lambda: f"router:{broken['id']}" in agent_failures(c, "L3 agent"), timeout=10)
        assert not ping(vms[0].namespace, ip_of(vms[1]), tries=1)
        assert agent_failures(c, "DHCP agent") == {} and agent_failures(c, "Linux bridge agent") == {}
    finally:
        blocker.unlink()
    assert wait_for(lambda: agent_failures(c, "L3 agent") == {}, timeout=20), "retried on its back-off"
    assert wait_for(lambda: ping(vms[0].namespace, ip_of(vms[1]), tries=1), timeout=10)


def _router(c: Cloud, *subnets: dict[str, Any]) -> dict[str, Any]:
    api = c.client()
    router = api.post("/v2.0/routers", {"router": {"name": "r"}})["router"]
    for sub in subnets:
        api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    return router  # type: ignore[no-any-return]
