"""The L2 agent's reconcile core, applied to an in-memory kernel: converges, and is idempotent."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import pytest

from neutrino.agent.l2 import state as l2
from neutrino.agent.l2.state import L2State, Link

NET_A = "aaaaaaaaaaaa-0000-0000-0000-000000000001"
NET_B = "bbbbbbbbbbbb-0000-0000-0000-000000000002"
NET_F = "ffffffffffff-0000-0000-0000-000000000003"
NET_V = "cccccccccccc-0000-0000-0000-000000000004"
NETWORKS: dict[str, dict[str, Any]] = {
    NET_A: {"id": NET_A, "provider:network_type": "vxlan", "provider:segmentation_id": 10},
    NET_B: {"id": NET_B, "provider:network_type": "vxlan", "provider:segmentation_id": 20},
    NET_F: {"id": NET_F, "provider:network_type": "flat", "provider:segmentation_id": None},
    NET_V: {"id": NET_V, "provider:network_type": "vlan", "provider:segmentation_id": 100},
}
LOCAL = "172.31.0.1"


def port(n: int, net: str, up: bool = True) -> dict[str, Any]:
    return {"id": f"{n:011x}-port", "network_id": net, "admin_state_up": up}


def tap(n: int) -> str:
    return f"tap{n:011x}"


class FakeKernel:
    """Links as the kernel keeps them: removing a bridge frees its ports, a new vxlan has no FDB."""

    def __init__(self, links: Iterable[Link] = ()) -> None:
        self.links = {link.name: link for link in links}

    def plug(self, *names: str) -> FakeKernel:
        """What compute/DHCP/L3 do: create a tap, unattached and up."""
        for name in names:
            self.links[name] = Link(name, "tap")
        return self

    def state(self) -> L2State:
        return L2State(dict(self.links))

    def _set(self, name: str, **change: Any) -> None:
        self.links[name] = dataclasses.replace(self.links[name], **change)

    def apply(self, actions: list[l2.Action]) -> FakeKernel:
        for a in actions:
            match a:
                case l2.EnsureBridge(name):
                    self.links.setdefault(name, Link(name, "bridge", up=False))
                case l2.EnsureVxlan(name, vni, local_ip):
                    self.links[name] = Link(name, "vxlan", up=False, vni=vni, local_ip=local_ip)
                case l2.AttachLink(name, bridge):
                    assert self.links[bridge].kind == "bridge"
                    self._set(name, master=bridge)
                case l2.DetachLink(name):
                    self._set(name, master=None)
                case l2.SetLinkState(name, up):
                    self._set(name, up=up)
                case l2.FdbAppend(name, ip):
                    self._set(name, flood=self.links[name].flood | {ip})
                case l2.FdbRemove(name, ip):
                    self._set(name, flood=self.links[name].flood - {ip})
                case l2.RemoveLink(name):
                    assert l2.is_ours(name), f"removed {name}, which is not ours"
                    del self.links[name]
                    for other in list(self.links.values()):
                        if other.master == name:
                            self._set(other.name, master=None)
        return self


def converge(kernel: FakeKernel, want: L2State) -> list[l2.Action]:
    """Apply one diff, check the kernel now matches, and that a second pass has nothing to do."""
    actions = l2.diff(want, kernel.state())
    kernel.apply(actions)
    for name, link in want.links.items():
        if name in kernel.links:
            assert kernel.links[name] == link, name
    assert l2.diff(want, kernel.state()) == []
    return actions


def test_converge_from_empty() -> None:
    ports = [port(1, NET_A), port(2, NET_A), port(3, NET_F)]
    want = l2.desired(ports, NETWORKS, LOCAL, {NET_A: ["172.31.0.2", "172.31.0.3", LOCAL]})
    kernel = FakeKernel().plug(tap(1), tap(2), tap(3))
    actions = converge(kernel, want)
    bra, brf = "brq" + NET_A[:11], "brq" + NET_F[:11]
    assert actions[:2] == [l2.EnsureBridge(bra), l2.SetLinkState(bra, True)]
    assert kernel.links["vxlan-10"] == Link("vxlan-10", "vxlan", master=bra, vni=10, local_ip=LOCAL,
                                            flood=frozenset({"172.31.0.2", "172.31.0.3"}))
    assert kernel.links[tap(1)].master == bra and kernel.links[tap(3)].master == brf
    assert set(kernel.links) == {bra, brf, "vxlan-10", tap(1), tap(2), tap(3)}  # flat: no vxlan


def test_unplugged_tap_waits_and_unsupported_networks_are_skipped() -> None:
    want = l2.desired([port(1, NET_A), port(2, NET_V), port(3, "unknown")], NETWORKS, LOCAL, {})
    assert set(want.links) == {"brq" + NET_A[:11], "vxlan-10", tap(1)}
    kernel = FakeKernel()
    converge(kernel, want)
    assert tap(1) not in kernel.links
    kernel.plug(tap(1))
    assert l2.diff(want, kernel.state()) == [l2.AttachLink(tap(1), "brq" + NET_A[:11])]
    converge(kernel, want)


def test_add_and_remove_ports_and_last_port_takes_network_along() -> None:
    kernel = FakeKernel().plug(tap(1), tap(2))
    converge(kernel, l2.desired([port(1, NET_A)], NETWORKS, LOCAL, {NET_A: ["172.31.0.2"]}))
    both = l2.desired([port(1, NET_A), port(2, NET_B)], NETWORKS, LOCAL, {NET_B: ["172.31.0.3"]})
    converge(kernel, both)
    assert kernel.links["vxlan-10"].flood == frozenset() and kernel.links["vxlan-20"].flood == {"172.31.0.3"}
    kernel.links.pop(tap(1))  # the instance went away with its veth
    actions = converge(kernel, l2.desired([port(2, NET_B)], NETWORKS, LOCAL, {NET_B: ["172.31.0.3"]}))
    assert actions == [l2.RemoveLink("vxlan-10"), l2.RemoveLink("brq" + NET_A[:11])]
    # A port that left while its tap lingers is detached, and its bridge goes.
    actions = converge(kernel, l2.desired([], NETWORKS, LOCAL, {}))
    assert actions == [l2.DetachLink(tap(2)), l2.RemoveLink("vxlan-20"), l2.RemoveLink("brq" + NET_B[:11])]
    assert set(kernel.links) == {tap(2)}


def test_remote_vtep_changes() -> None:
    kernel = FakeKernel().plug(tap(1))
    converge(kernel, l2.desired([port(1, NET_A)], NETWORKS, LOCAL, {NET_A: ["172.31.0.2", "172.31.0.3"]}))
    actions = converge(kernel, l2.desired([port(1, NET_A)], NETWORKS, LOCAL, {NET_A: ["172.31.0.3", "172.31.0.4"]}))
    assert actions == [l2.FdbAppend("vxlan-10", "172.31.0.4"), l2.FdbRemove("vxlan-10", "172.31.0.2")]


def test_local_ip_change_recreates_vxlan_with_its_fdb() -> None:
    kernel = FakeKernel().plug(tap(1))
    vteps = {NET_A: ["172.31.0.2"]}
    converge(kernel, l2.desired([port(1, NET_A)], NETWORKS, LOCAL, vteps))
    actions = converge(kernel, l2.desired([port(1, NET_A)], NETWORKS, "172.31.0.9", vteps))
    assert actions == [l2.EnsureVxlan("vxlan-10", 10, "172.31.0.9"), l2.AttachLink("vxlan-10", "brq" + NET_A[:11]),
                       l2.SetLinkState("vxlan-10", True), l2.FdbAppend("vxlan-10", "172.31.0.2")]


def test_admin_down_sets_tap_down_and_back() -> None:
    kernel = FakeKernel().plug(tap(1))
    converge(kernel, l2.desired([port(1, NET_A, up=False)], NETWORKS, LOCAL, {}))
    assert kernel.links[tap(1)].up is False and kernel.links[tap(1)].master == "brq" + NET_A[:11]
    actions = converge(kernel, l2.desired([port(1, NET_A)], NETWORKS, LOCAL, {}))
    assert actions == [l2.SetLinkState(tap(1), True)]


def test_repairs_drift() -> None:
    want = l2.desired([port(1, NET_A)], NETWORKS, LOCAL, {NET_A: ["172.31.0.2"]})
    kernel = FakeKernel().plug(tap(1))
    converge(kernel, want)
    kernel.apply([l2.RemoveLink("brq" + NET_A[:11])])  # somebody deleted the bridge
    kernel.links["vxlan-10"] = dataclasses.replace(kernel.links["vxlan-10"], up=False, flood=frozenset())
    converge(kernel, want)


@pytest.mark.parametrize("foreign", ["eth0", "br-ex", "virbr0", "tap0", "vxlan0", "brqdevice", "docker0"])
def test_never_touches_names_that_are_not_ours(foreign: str) -> None:
    kind = "tap" if foreign.startswith(("tap", "eth")) else "vxlan" if foreign.startswith("vxlan") else "bridge"
    ours_on_foreign = Link(tap(7), "tap", master=foreign)  # a stale tap of ours on a host bridge: left alone
    kernel = FakeKernel([Link(foreign, kind, master="brq" + NET_A[:11]), ours_on_foreign])
    kernel.links["brq" + NET_A[:11]] = Link("brq" + NET_A[:11], "bridge")
    actions = converge(kernel, l2.desired([], NETWORKS, LOCAL, {}))
    assert actions == [l2.RemoveLink("brq" + NET_A[:11])]
    assert kernel.links[foreign].name == foreign and kernel.links[tap(7)] == ours_on_foreign
