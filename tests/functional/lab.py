"""A lab for tests: ``neutrino lab up`` in this process (its servers and agents are processes of
their own, as on separate machines), with a random ``nt-`` name, removed whatever happens.

The handle gives what a test needs: the admin and demo clients (of the first server, and of
any other), the hosts, instances made on a chosen host exactly as ``neutrino lab instance
create`` makes them, and the lab's "outside" namespace to ping floating IPs from.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from neutrino import lab as labmod
from neutrino.client import Client
from neutrino.cmd import lab as labcmd
from neutrino.compute.manager import Instance
from neutrino.lab import Lab, LabError
from tests.functional.traffic import ping


def why_not(lab: Lab) -> str | None:
    """Why a lab cannot be built here (PostgreSQL or RabbitMQ missing), None when it can."""
    try:
        labmod.check_services(lab)
    except LabError as exc:
        return str(exc)
    return None


@dataclass
class LabHandle:
    lab: Lab
    admin: Client
    demo: Client

    @property
    def outside_ns(self) -> str:
        return self.lab.outside_ns

    def client(self, server: int, cloud: str = "demo") -> Client:
        """``cloud``'s client talking to server number ``server`` (0-based) of the lab: its token,
        issued by the first server, is checked by that one against the shared database. In an
        isolated lab its connections are made from inside host-1, as a client on the underlay."""
        signed_in = self.admin if cloud == "admin" else self.demo
        return Client(self.lab.server_url(server), signed_in.headers, project_id=signed_in.project_id,
                      via=labmod.api_connector(self.lab))

    def network(self, name: str, cidr: str) -> tuple[dict[str, Any], dict[str, Any]]:
        net = self.demo.post("/v2.0/networks", {"network": {"name": name}})["network"]
        sub = self.demo.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4,
                                                          "name": f"{name}-subnet"}})["subnet"]
        return net, sub

    def instance(self, host: str, network: str, name: str, timeout: float = 30.0,
                 security_groups: Sequence[str] = ()) -> Instance:
        """An instance on lab host ``host`` (host-1 ... host-N), with its DHCP lease."""
        return labcmd.compute(self.lab, host).create(name, network=network, security_groups=security_groups,
                                                     timeout=timeout)

    def delete(self, host: str, name: str) -> None:
        labcmd.compute(self.lab, host).delete(name)

    def ping(self, inst: Instance | str, dst: str, tries: int = 3) -> bool:
        """From an instance (or a namespace of the lab, such as ``outside_ns``) to ``dst``."""
        return ping(inst if isinstance(inst, str) else inst.namespace, dst, tries=tries)


@contextmanager
def built(state: Path, hosts: int = 3, servers: int = 1, **kw: Any) -> Iterator[LabHandle]:
    """A lab named ``nt-<random>`` in ``state``; skipped when PostgreSQL or RabbitMQ is absent
    (or, with ``own_services=True``, not installed).

    ``down`` runs whatever happened, also after a half-made ``up``: the lab's record is written
    before it makes anything.
    """
    lab = labmod.plan(f"nt-{secrets.token_hex(3)}", state, hosts, servers=servers, **kw)
    reason = why_not(lab)
    if reason:
        pytest.skip(reason)
    try:
        labcmd.up(lab)
        yield LabHandle(lab, labcmd.admin_client(lab), labcmd.admin_client(lab, "demo"))
    finally:
        labcmd.down(lab)
