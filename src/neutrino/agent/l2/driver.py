"""The seam between the host agent and an L2 dataplane (Linux bridge, Open vSwitch).

The host agent is one reconcile loop; what differs between dataplanes sits behind this
interface, so DHCP, L3, metadata and the agent itself never name a driver's devices:

* ``reconcile``: wire this host's ports to their networks (and the networks to the other
  hosts), report which ports are wired;
* ``plug``: where a DHCP or router port of a network attaches (the host end of its veth);
* ``firewall``: the driver's security-group hook, applied before the ports are wired;
* ``agent_type`` and ``configurations``: what the agent reports, which is what the server's
  mechanism driver binds ports by (tunnel types, bridge or interface mappings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from neutrino.agent.retry import Retries
from neutrino.kernel import KernelError

Dict = dict[str, Any]


class Plug(Protocol):
    """Where one network's service ports (DHCP, router) attach on this host."""

    @property
    def namespace(self) -> str:
        """The namespace that holds the host end of the service port's veth."""
        ...

    def attach(self, dev: str, port: Mapping[str, Any], peer: tuple[str, str] | None = None) -> bool:
        """Make ``dev`` (in ``namespace``) the wire of ``port`` on its network; ``peer`` is the
        (namespace, device) of the veth's other end. True when anything changed."""
        ...


@dataclass
class Wired:
    """What one L2 pass did: the number of changes, and the ports wired as desired now."""

    actions: int = 0
    ports: set[str] = field(default_factory=set)


class L2Incomplete(KernelError):
    """Some of the L2 work failed, the rest was done; ``wired`` holds what is wired all the same."""

    def __init__(self, ns: str | None, failures: dict[str, str], wired: Wired | None = None) -> None:
        super().__init__("apply L2", ns or "host", detail="; ".join(f"{k}: {v}" for k, v in sorted(failures.items())))
        self.failed = failures
        self.wired = wired


class Firewall(Protocol):
    """A driver's security-group hook. Fails closed: a port whose rules are not in place passes
    nothing; a port that cannot be filtered is recorded in ``retries`` under ``port:<id>``."""

    def apply(self, state: Mapping[str, Any], verify: bool) -> bool:
        """Make the host's filters what ``state`` says; True when the kernel changed."""
        ...


class L2Driver(Protocol):
    agent_type: str  # messages.LINUXBRIDGE_AGENT / messages.OVS_AGENT

    def start(self) -> None:
        """Prepare the host (e.g. its own OVS instance); called before the first pass and may be
        called again by a full resync, so it is idempotent."""
        ...

    def configurations(self) -> Dict:
        """The L2 agent's reported configuration (Neutron's keys: tunnel_types, tunneling_ip,
        bridge_mappings / interface_mappings)."""
        ...

    def reconcile(self, state: Mapping[str, Any]) -> Wired:
        """Wire ``state['ports']`` to ``state['networks']``; raises L2Incomplete for partial failures."""
        ...

    def plug(self, network: Mapping[str, Any]) -> Plug:
        """Where this network's DHCP and router ports attach."""
        ...

    def firewall(self, retries: Retries) -> Firewall:
        """The security-group hook; failures go to ``retries`` (the agent reports them)."""
        ...

    def realises(self, network: Mapping[str, Any]) -> bool:
        """Whether this driver can wire a port of ``network`` (its type) on this host."""
        ...
