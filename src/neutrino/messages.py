"""What host agents and the server say to each other: the one contract both sides import.

A remote agent imports this module and nothing of the server's (services, db, api): the
calls, their arguments and answers are plain JSON described here, and every call carries
``VERSION``. The server answers any call of the same major version (a minor bump only adds
optional keys, which an older peer ignores) and refuses another major version with a message
that says which side to upgrade, instead of misreading the payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypedDict

VERSION = "1.2"  # 1.1: sync gives remote_macs; 1.2: sync takes a scope

# Agent types as Neutron names them (``openstack network agent list`` shows these).
LINUXBRIDGE_AGENT = "Linux bridge agent"
OVS_AGENT = "Open vSwitch agent"
DHCP_AGENT = "DHCP agent"
L3_AGENT = "L3 agent"
METADATA_AGENT = "Metadata agent"
L2_AGENT_TYPES = (LINUXBRIDGE_AGENT, OVS_AGENT)
BINARIES = {LINUXBRIDGE_AGENT: "neutrino-linuxbridge-agent", OVS_AGENT: "neutrino-openvswitch-agent",
            DHCP_AGENT: "neutrino-dhcp-agent", L3_AGENT: "neutrino-l3-agent",
            METADATA_AGENT: "neutrino-metadata-agent"}
TOPICS = {LINUXBRIDGE_AGENT: "N/A", OVS_AGENT: "N/A", DHCP_AGENT: "dhcp_agent", L3_AGENT: "l3_agent",
          METADATA_AGENT: "N/A"}

PORT_STATUSES = ("ACTIVE", "DOWN", "BUILD", "ERROR")
RPC_METHODS = ("sync", "report_state", "update_port_status", "metadata_lookup")

Dict = dict[str, Any]


class IncompatibleVersion(Exception):
    """The peer speaks another major version of this contract."""


def check_version(version: object) -> None:
    """Accept any ``1.x``; a missing version is an agent from before versioning (1.0)."""
    theirs = str(version or "1.0")
    if theirs.split(".", 1)[0] != VERSION.split(".", 1)[0]:
        raise IncompatibleVersion(f"agent protocol {theirs} is not compatible with this side's {VERSION}; "
                                  "run the same neutrino release on the server and the agents")


def request(method: str, **kwargs: Any) -> Dict:
    """One call as it travels (AMQP body)."""
    if method not in RPC_METHODS:
        raise ValueError(f"unknown agent call {method!r}")
    return {"version": VERSION, "method": method, "kwargs": kwargs}


def parse_request(body: object) -> tuple[str, Dict]:
    """(method, kwargs) of a call, or ValueError/IncompatibleVersion saying why it is not one."""
    if not isinstance(body, dict):
        raise ValueError("an agent call is a JSON object")
    check_version(body.get("version"))
    method, kwargs = body.get("method"), body.get("kwargs", {})
    if method not in RPC_METHODS:
        raise ValueError(f"unknown agent call {method!r}")
    if not isinstance(kwargs, dict):
        raise ValueError("kwargs of an agent call is a JSON object")
    return str(method), kwargs


class DhcpView(TypedDict):
    """A network this host serves DHCP for."""

    network: Dict
    subnets: list[Dict]
    ports: list[Dict]
    dhcp_port: Dict | None


class RouterView(TypedDict):
    """A router this host realises."""

    router: Dict
    interfaces: list[Dict]
    gateway_port: Dict | None
    floating_ips: list[Dict]


class SyncScope(TypedDict, total=False):
    """What a partial ``sync`` describes: the ids a change event named (``bus.Event``)."""

    networks: list[str]
    routers: list[str]
    groups: list[str]


class HostState(TypedDict):
    """``sync(host)``: everything one host should realise, as one snapshot.

    ``remote_vteps`` maps a network id to the tunnel endpoints of the other hosts with a port
    on it, ``remote_macs`` (1.1) each of those endpoints to the MACs of its ports there;
    ``members`` maps a security group id to its members' addresses. A partial answer (``sync``
    with a scope) has the same shape, holding only the scope's networks (their ports, subnets,
    DHCP, remote hosts), routers and security groups (with their members).
    """

    host: str
    ports: list[Dict]
    networks: dict[str, Dict]
    subnets: dict[str, list[Dict]]
    dhcp: list[DhcpView]
    routers: list[RouterView]
    security_groups: list[Dict]
    members: dict[str, list[str]]
    remote_vteps: dict[str, list[str]]
    remote_macs: dict[str, dict[str, list[str]]]


class Rpc(Protocol):
    """The server calls an agent makes (``services.agent_rpc.AgentRpc`` in-process, ``amqp.RpcClient``
    remotely)."""

    def sync(self, host: str, scope: SyncScope | None = None) -> Dict:
        """The host's desired state; with ``scope``, only those parts (``agent.host_state.merge``)."""
        ...

    def report_state(self, host: str, agent_type: str, configurations: Mapping[str, Any],
                     start_flag: bool = False) -> None: ...

    def update_port_status(self, statuses: Mapping[str, str], host: str | None = None) -> list[str]: ...

    def metadata_lookup(self, router_id: str | None, network_id: str | None, ip: str) -> Dict | None: ...
