"""A write reaches only the hosts it concerns, and what they fetch is only what changed.

Three hosts (a network node and two compute nodes) keep their desired state the way the
agent does (``agent.host_state``): a full ``sync`` first, then, for each change event that
reaches them, a partial ``sync(host, scope)`` merged into what they had. After every kind of
write, each host's copy must equal a full ``sync`` done from scratch: so a host that got no
event had nothing to learn (the reach is complete) and a partial fetch misses nothing (the
scope is complete). And writes on one network never wake the hosts that have nothing on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from neutrino import server
from neutrino.agent.host_state import Pending, merge
from neutrino.bus import CHANGES, Event, InprocBus
from neutrino.config import Config
from neutrino.messages import DHCP_AGENT, L3_AGENT, LINUXBRIDGE_AGENT
from neutrino.services.agent_rpc import AgentRpc
from tests.conftest import Api, lb_agent_conf, make_config

NETWORK_NODE, COMPUTE_B, COMPUTE_C = "net-a", "cmp-b", "cmp-c"
HOSTS = (NETWORK_NODE, COMPUTE_B, COMPUTE_C)


class Hosts:
    """The three hosts' copies of their state, fed by the events that reach each."""

    def __init__(self, api: Api, rpc: AgentRpc, bus: InprocBus) -> None:
        self.api, self.rpc = api, rpc
        self.events: dict[str, list[Event]] = {h: [] for h in HOSTS}
        self.fetched: dict[str, list[str]] = {h: [] for h in HOSTS}
        for host in HOSTS:
            bus.subscribe(CHANGES, self.events[host].append, host=host)
        self.pending = {h: Pending() for h in HOSTS}
        self.state: dict[str, dict[str, Any]] = {}

    def catch_up(self) -> None:
        """Fetch as the agents would until no event is left (a fetch may claim, which tells)."""
        for _ in range(10):
            if self.state and not any(self.events.values()):
                return
            for host in HOSTS:
                for event in self.events[host]:
                    self.pending[host].add(event)
                self.events[host].clear()
                scope = self.pending[host].take()
                if host not in self.state or scope is None:
                    self.state[host] = self.rpc.sync(host)
                    self.fetched[host].append("full")
                elif scope is not False:
                    self.state[host] = merge(self.state[host], self.rpc.sync(host, scope), scope)
                    self.fetched[host].append("partial")
        raise AssertionError("the events never settle")

    def check(self, what: str) -> None:
        self.catch_up()
        for host in HOSTS:
            assert self.state[host] == self.rpc.sync(host), f"{host} after {what}"
        assert not any(self.events.values()), f"a full sync after {what} claimed something late"

    def woken(self, fn: Any) -> set[str]:
        """The hosts a write reaches."""
        self.catch_up()
        fn()
        hit = {h for h in HOSTS if self.events[h]}
        return hit


@pytest.fixture
def hosts(tmp_path: Any) -> Iterator[Hosts]:
    cfg: Config = make_config(tmp_path, DEFAULT={"auth_strategy": "noauth"})
    bus = InprocBus()
    srv = server.build(cfg, bus=bus)
    with TestClient(srv.app, base_url="http://127.0.0.1:9696") as client:
        api = Api(client, srv)
        for i, host in enumerate(HOSTS):
            srv.rpc.report_state(host, LINUXBRIDGE_AGENT, lb_agent_conf(f"172.30.0.{11 + i}"), start_flag=True)
        srv.rpc.report_state(NETWORK_NODE, DHCP_AGENT, {})
        srv.rpc.report_state(NETWORK_NODE, L3_AGENT, {})
        h = Hosts(api, srv.rpc, bus)
        h.catch_up()
        yield h
    srv.db.dispose()


def _vm(api: Api, net: dict[str, Any], host: str, **more: Any) -> dict[str, Any]:
    return api.create("port", network_id=net["id"], device_owner="compute:nova", device_id=f"vm-{host}",
                      **{"binding:host_id": host}, **more)


def test_every_kind_of_write_leaves_each_host_with_what_a_full_sync_gives(hosts: Hosts) -> None:
    api, check = hosts.api, hosts.check
    ext = api.create("network", name="public", **{"router:external": True})
    api.create("subnet", network_id=ext["id"], cidr="203.0.113.0/24", ip_version=4, enable_dhcp=False)
    check("external network")
    net = api.create("network", name="n1")
    check("network create")
    sub = api.create("subnet", network_id=net["id"], cidr="10.1.0.0/24", ip_version=4)
    check("subnet create (DHCP claimed)")
    web = api.create("security_group", name="web")
    db = api.create("security_group", name="db")
    check("groups")
    api.create("security_group_rule", security_group_id=db["id"], direction="ingress", protocol="tcp",
               port_range_min=5432, port_range_max=5432, remote_group_id=web["id"])
    check("rule naming a remote group")
    vm_b = _vm(api, net, COMPUTE_B, security_groups=[web["id"]])
    check("port on cmp-b")
    vm_c = _vm(api, net, COMPUTE_C, security_groups=[db["id"]])
    check("port on cmp-c")
    router = api.create("router", name="r", external_gateway_info={"network_id": ext["id"]})
    check("router with gateway")
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]})
    check("router interface")
    fip = api.create("floatingip", floating_network_id=ext["id"], port_id=vm_b["id"])
    check("floating ip")
    api.put(f"/v2.0/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}})
    check("floating ip disassociated")
    api.put(f"/v2.0/floatingips/{fip['id']}", json={"floatingip": {"port_id": vm_c["id"]}})
    check("floating ip on another port")
    api.put(f"/v2.0/ports/{vm_b['id']}", json={"port": {"allowed_address_pairs": [{"ip_address": "10.1.0.200"}]}})
    check("address pair (remote group members)")
    api.put(f"/v2.0/ports/{vm_b['id']}", json={"port": {"security_groups": [web["id"], db["id"]]}})
    check("port groups changed")
    rule = api.create("security_group_rule", security_group_id=web["id"], direction="ingress", protocol="icmp")
    check("rule added")
    api.delete(f"/v2.0/security-group-rules/{rule['id']}")
    check("rule deleted")
    api.put(f"/v2.0/security-groups/{web['id']}", json={"security_group": {"name": "www"}})
    check("group renamed")
    api.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"dns_nameservers": ["10.1.0.53"]}})
    check("subnet updated")
    api.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": 1400}})
    check("network updated")
    api.put(f"/v2.0/ports/{vm_b['id']}", json={"port": {"binding:host_id": COMPUTE_C}})
    check("port moved from cmp-b to cmp-c")
    api.put(f"/v2.0/ports/{vm_b['id']}", json={"port": {"binding:host_id": COMPUTE_B}})
    check("port moved back")
    net2 = api.create("network", name="n2")
    sub2 = api.create("subnet", network_id=net2["id"], cidr="10.2.0.0/24", ip_version=4)
    _vm(api, net2, COMPUTE_C)
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub2["id"]})
    check("second network on the router")
    api.put(f"/v2.0/routers/{router['id']}/remove_router_interface", json={"subnet_id": sub2["id"]})
    check("interface removed")
    api.put(f"/v2.0/routers/{router['id']}", json={"router": {"routes": [
        {"destination": "10.9.0.0/24", "nexthop": "10.1.0.9"}]}})
    check("extra route")
    api.put(f"/v2.0/ports/{vm_c['id']}/tags/red")
    check("tag on a port")
    api.delete(f"/v2.0/floatingips/{fip['id']}")
    check("floating ip deleted")
    api.delete(f"/v2.0/ports/{vm_c['id']}")
    check("port deleted")
    api.put(f"/v2.0/routers/{router['id']}/remove_router_interface", json={"subnet_id": sub["id"]})
    api.delete(f"/v2.0/routers/{router['id']}")
    check("router deleted")
    api.delete(f"/v2.0/ports/{vm_b['id']}")
    api.delete(f"/v2.0/security-groups/{db['id']}")
    check("group deleted")
    assert all("partial" in hosts.fetched[h] for h in HOSTS)


def test_a_write_wakes_only_the_hosts_with_something_on_it(hosts: Hosts) -> None:
    api = hosts.api
    net_b = api.create("network", name="on-b")
    api.create("subnet", network_id=net_b["id"], cidr="10.1.0.0/24", ip_version=4, enable_dhcp=False)
    net_c = api.create("network", name="on-c")
    api.create("subnet", network_id=net_c["id"], cidr="10.2.0.0/24", ip_version=4, enable_dhcp=False)
    _vm(api, net_b, COMPUTE_B, security_groups=[])
    _vm(api, net_c, COMPUTE_C, security_groups=[])
    assert hosts.woken(lambda: _vm(api, net_b, COMPUTE_B, security_groups=[])) == {COMPUTE_B}
    assert hosts.woken(lambda: _vm(api, net_c, COMPUTE_C, security_groups=[])) == {COMPUTE_C}
    # in the default group, whose rules name itself as remote group: its members everywhere learn it
    assert hosts.woken(lambda: _vm(api, net_c, COMPUTE_C)) == {COMPUTE_C}
    assert hosts.woken(lambda: _vm(api, net_b, COMPUTE_B)) == {COMPUTE_B, COMPUTE_C}
    assert hosts.woken(lambda: api.create("network", name="empty")) == set()
    # a new DHCP subnet wakes the host the scheduler picks for it, which claims it
    assert hosts.woken(lambda: api.create("subnet", network_id=net_c["id"], cidr="10.3.0.0/24",
                                          ip_version=4)) == {COMPUTE_C, NETWORK_NODE}
    # a port joining cmp-b's network from cmp-c tells both (the remote MACs change)
    assert hosts.woken(lambda: _vm(api, net_b, COMPUTE_C, security_groups=[])) == {COMPUTE_B, COMPUTE_C}
    assert hosts.events[COMPUTE_B][-1].first == {COMPUTE_C}  # the port's own host is told first
    hosts.check("the writes above")
    # a write whose reach is not known (an agent set down) wakes every host, which fetch everything
    agent = api.get("/v2.0/agents", params={"host": COMPUTE_B}).json()["agents"][0]
    assert hosts.woken(lambda: api.put(f"/v2.0/agents/{agent['id']}", json={"agent": {"description": "x"}})
                       ) == set(HOSTS)
    assert all(e.hosts is None and not e.partial for h in HOSTS for e in hosts.events[h])
    codes: list[int] = []
    bad = {"port": {"network_id": net_b["id"], "fixed_ips": [{"ip_address": "x"}]}}
    assert hosts.woken(lambda: codes.append(api.post("/v2.0/ports", json=bad).status_code)) == set()
    assert codes == [400]  # a failed write tells nobody


def test_a_hostile_host_name_cannot_bind_to_other_hosts_events() -> None:
    from neutrino.amqp import host_key

    keys = {host_key(h) for h in ("#", "*", "a.b", "a", "host.#", "x" * 255)}
    assert len(keys) == 6 and all(k.startswith("host.") and k.count(".") == 1 for k in keys)
