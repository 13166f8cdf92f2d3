"""``neutrino instance create|exec|list|show|delete``: namespaces that stand in for VMs."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from neutrino.config import Config

if TYPE_CHECKING:
    from neutrino.compute.manager import Compute


def _compute(cfg: Config, cloud: str) -> Compute:
    from neutrino.allinone import host_config
    from neutrino.client import Client
    from neutrino.compute.manager import Compute

    state = Path(cfg.DEFAULT.state_dir).resolve()
    clouds = state / "clouds.yaml"
    if not clouds.exists():
        raise SystemExit(f"neutrino instance: {clouds} does not exist; is the cloud up (`neutrino up`)?")
    hc = host_config(cfg)
    return Compute(Client.from_clouds(clouds, cloud), Client.from_clouds(clouds, "admin"), hc.host, hc.node_ns,
                   state, ns_prefix=hc.ns_prefix)


def _print(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def cmd_instance(cfg: Config, args: argparse.Namespace) -> int:
    return run(lambda: _compute(cfg, args.os_cloud), args)


def run(make_compute: Callable[[], Compute], args: argparse.Namespace) -> int:
    """One ``instance`` verb on the instances ``make_compute`` manages (this cloud's, or a lab host's)."""
    from neutrino.client import ApiError
    from neutrino.compute.dhcp_client import NoLease
    from neutrino.compute.manager import InstanceError

    try:
        return _run(make_compute, args)
    except (InstanceError, ApiError, NoLease) as exc:
        print(f"neutrino instance {args.instance_command}: {exc}", file=sys.stderr)
        return 1


def _run(make_compute: Callable[[], Compute], args: argparse.Namespace) -> int:
    verb = args.instance_command
    if verb != "list" and os.geteuid() != 0:
        raise SystemExit(f"neutrino instance {verb}: needs root (instances are network namespaces)")
    compute = make_compute()
    if verb == "create":
        started = time.monotonic()
        inst = compute.create(args.name, network=args.network, port=args.port,
                              security_groups=args.security_group or [], timeout=args.timeout)
        lease = inst.lease
        _print([("name", inst.name), ("id", inst.id), ("port", inst.port_id), ("namespace", inst.namespace),
                ("address", f"{lease.get('ip')}/{lease.get('prefixlen')}"), ("gateway", str(lease.get("router"))),
                ("mtu", str(lease.get("mtu"))), ("ready in", f"{time.monotonic() - started:.2f} s")])
        return 0
    if verb == "exec":
        command = [a for a in args.command if a != "--"] if args.command[:1] == ["--"] else args.command
        if not command:
            raise SystemExit("neutrino instance exec: give a command after --, e.g. -- ping -c1 10.0.0.1")
        argv = compute.exec_argv(args.name, command)
        return subprocess.run(argv).returncode
    if verb == "list":
        print(f"{'name':<16} {'address':<18} {'status':<7} {'port':<36} namespace")
        for inst in compute.instances():
            status = compute.user.get(f"/v2.0/ports/{inst.port_id}", fields="status")["port"]["status"]
            print(f"{inst.name:<16} {str(inst.lease.get('ip', '-')):<18} {status:<7} {inst.port_id:<36} "
                  f"{inst.namespace}")
        return 0
    if verb == "show":
        inst = compute.get(args.name)
        port = compute.user.get(f"/v2.0/ports/{inst.port_id}")["port"]
        _print([("name", inst.name), ("id", inst.id), ("port", inst.port_id), ("status", port["status"]),
                ("network", inst.network_id), ("mac", port["mac_address"]),
                ("fixed_ips", ", ".join(f["ip_address"] for f in port["fixed_ips"])),
                ("namespace", inst.namespace), ("lease", str(inst.lease))])
        return 0
    if verb == "delete":
        for name in args.names:
            inst = compute.delete(name)
            print(f"deleted instance {name} (port {inst.port_id}{' deleted' if inst.created_port else ' released'})")
        return 0
    raise SystemExit(f"unknown instance command {verb}")


def add_parser(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
               func: Callable[[argparse.Namespace], int], lab: bool = False) -> argparse.ArgumentParser:
    """``instance`` under ``sub``; for a lab, ``create`` takes the ``--host`` to run on."""
    inst = sub.add_parser("instance", help="instances (namespaces standing in for VMs) on this host")
    inst.add_argument("--os-cloud", default="demo", help="cloud of clouds.yaml that owns the instance (demo)")
    inst.add_argument("--state-dir", help="where `neutrino up` keeps its state (default: the cloud "
                                                                  "running on this host)")
    isub = inst.add_subparsers(dest="instance_command", required=True)
    create = isub.add_parser("create", help="create a port, plug a namespace into it, get its address by DHCP")
    create.add_argument("--network", help="network name or id")
    create.add_argument("--port", help="use this existing port instead of creating one")
    create.add_argument("--security-group", action="append", help="security group name or id (repeatable)")
    create.add_argument("--timeout", type=float, default=30.0)
    if lab:
        create.add_argument("--host", required=True, help="the lab host to run on (host-1 ... host-N)")
    create.add_argument("name")
    ex = isub.add_parser("exec", help="run a command inside: neutrino instance exec NAME -- CMD ...")
    ex.add_argument("name")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    isub.add_parser("list", help="instances on this host")
    show = isub.add_parser("show", help="one instance")
    show.add_argument("name")
    delete = isub.add_parser("delete", help="unplug and delete instances (and the ports they created)")
    delete.add_argument("names", nargs="+")
    inst.set_defaults(func=func)
    return inst
