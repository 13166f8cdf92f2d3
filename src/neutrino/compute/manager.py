"""Instances as Nova would make them, minus the VM: port, binding, VIF plug, DHCP from inside.

``create`` does what Nova does for a VM's NIC: the user's port (``compute:nova``, the
instance's id as ``device_id``), then, with admin rights, ``binding:host_id`` = this host, so
the mechanism driver decides where the VIF goes (``binding:vif_details``). The VIF is a veth
whose instance end carries the port's MAC; the L2 agent wires the host end and reports the
port ACTIVE (Nova's vif-plugged wait), and only then does a real DHCP client inside the
namespace ask dnsmasq for its address, gateway, MTU and routes. Nothing is configured on the
instance from here. Instances are recorded as JSON in ``<state_dir>/instances``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from neutrino.client import ApiError, Client
from neutrino.compute import dhcp_client, vif
from neutrino.kernel.names import instance_ns, tap_name

LOG = logging.getLogger(__name__)
DEVICE_OWNER = "compute:nova"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class InstanceError(Exception):
    """A failure the user can act on; the message says what to do."""


@dataclass
class Instance:
    name: str
    id: str
    port_id: str
    network_id: str
    namespace: str
    created_port: bool
    lease: dict[str, Any] = field(default_factory=dict)


class Compute:
    def __init__(self, user: Client, admin: Client, host: str, node_ns: str, state_dir: Path,
                 ns_prefix: str = "") -> None:
        self.user = user
        self.admin = admin
        self.host = host
        self.node_ns = node_ns
        self.dir = Path(state_dir) / "instances"
        self.ns_prefix = ns_prefix

    # ------------------------------------------------------------ records

    def _record(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def get(self, name: str) -> Instance:
        try:
            return Instance(**json.loads(self._record(name).read_text()))
        except FileNotFoundError:
            raise InstanceError(f"no instance named {name!r} (see `neutrino instance list`)") from None

    def instances(self) -> list[Instance]:
        if not self.dir.exists():
            return []
        return [self.get(p.stem) for p in sorted(self.dir.glob("*.json"))]

    def _save(self, inst: Instance) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self._record(inst.name).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(inst), indent=2))
        tmp.replace(self._record(inst.name))

    # ------------------------------------------------------------ create / delete

    def create(self, name: str, network: str | None = None, port: str | None = None,
               security_groups: Sequence[str] = (), timeout: float = 30.0) -> Instance:
        if not NAME.match(name):
            raise InstanceError(f"invalid instance name {name!r}: use letters, digits, '.', '_' or '-'")
        if self._record(name).exists():
            raise InstanceError(f"instance {name!r} already exists")
        if not network and not port:
            raise InstanceError("give --network NET or --port PORT")
        instance_id = str(uuid.uuid4())
        created, body = self._port(name, instance_id, network, port, security_groups)
        inst = Instance(name, instance_id, body["id"], body["network_id"],
                        self.ns_prefix + instance_ns(body["id"]), created)
        try:
            bound = self.admin.put(f"/v2.0/ports/{inst.port_id}", {"port": {"binding:host_id": self.host}})["port"]
            if bound["binding:vif_type"] in ("binding_failed", "unbound"):
                reason = bound["binding:vif_details"].get("reason") or "no mechanism driver could bind it"
                raise InstanceError(f"port {inst.port_id} failed to bind on host {self.host}: {reason}")
            ovs = bound["binding:vif_type"] == "ovs"  # the OVS agent adds the tap to br-int itself
            bridge = None if ovs else bound["binding:vif_details"].get("bridge_name")
            vif.plug(inst.namespace, self.node_ns, tap_name(inst.port_id), bound["mac_address"], bridge,
                     checksum_offload=not ovs)
            self._save(inst)
            self._wait_active(inst.port_id, timeout)
            lease = dhcp_client.acquire(inst.namespace, self.dir / inst.name, timeout=timeout)
        except BaseException:
            try:
                self._undo(inst)
            except Exception:  # keep the original error; say what is left to clean up
                LOG.exception("could not roll back instance %s (port %s); `neutrino instance delete %s` retries",
                              inst.name, inst.port_id, inst.name)
            raise
        inst.lease = lease.to_dict()
        self._save(inst)
        return inst

    def _port(self, name: str, instance_id: str, network: str | None, port: str | None,
              security_groups: Sequence[str]) -> tuple[bool, dict[str, Any]]:
        sgs = [self.user.find("security-groups", g, key="security_groups")["id"] for g in security_groups]
        owner: dict[str, Any] = {"device_owner": DEVICE_OWNER, "device_id": instance_id}
        if sgs:
            owner["security_groups"] = sgs
        if port:
            existing = self.user.find("ports", port)
            if existing["device_id"] or existing["device_owner"]:
                raise InstanceError(f"port {existing['id']} is in use by {existing['device_owner']} "
                                    f"{existing['device_id']}")
            return False, self.user.put(f"/v2.0/ports/{existing['id']}", {"port": owner})["port"]
        net = self.user.find("networks", str(network))
        return True, self.user.post("/v2.0/ports", {"port": {"network_id": net["id"], "name": name, **owner}})["port"]

    def _wait_active(self, port_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = self.user.get(f"/v2.0/ports/{port_id}", fields="status")["port"]["status"]
            if status == "ACTIVE":
                return
            if time.monotonic() > deadline:
                raise InstanceError(f"port {port_id} is still {status} after {timeout:.0f} s: is the L2 agent "
                                    "running (`neutrino status`)?")
            time.sleep(0.02)

    def _undo(self, inst: Instance) -> None:
        """Port first (if that fails the record stays, so delete can be retried), then the VIF."""
        try:
            if inst.created_port:
                self.user.delete(f"/v2.0/ports/{inst.port_id}")
            else:
                self.admin.put(f"/v2.0/ports/{inst.port_id}", {"port": {
                    "device_owner": "", "device_id": "", "binding:host_id": ""}})
        except ApiError as exc:
            if exc.status != 404:
                raise
        vif.unplug(inst.namespace, self.node_ns, tap_name(inst.port_id))
        shutil.rmtree(self.dir / inst.name, ignore_errors=True)
        self._record(inst.name).unlink(missing_ok=True)

    def delete(self, name: str) -> Instance:
        """Unplug, then delete the port (or, for a port given with --port, release it)."""
        inst = self.get(name)
        self._undo(inst)
        return inst

    def exec_argv(self, name: str, argv: Sequence[str]) -> list[str]:
        return vif.exec_argv(self.get(name).namespace, argv)
