"""Configuration: one typed object built from defaults, a TOML file and env vars.

Option names follow Neutron's (``[ml2] type_drivers``, ``[DEFAULT] global_physnet_mtu``)
so an operator's knowledge carries over. Nothing reads configuration at import time:
``load()`` builds a :class:`Config` in ``main()`` and it is passed down from there.

Environment overrides use ``NEUTRINO_<SECTION>__<OPTION>`` (``NEUTRINO_DATABASE__CONNECTION``);
values are parsed as TOML scalars/arrays where they parse, else taken as strings.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_FILE = Path("/etc/neutrino/neutrino.toml")


@dataclass
class DefaultSection:
    bind: str = "127.0.0.1:9696"
    state_dir: str = "/var/lib/neutrino"
    auth_strategy: str = "keystone"  # or "noauth"
    global_physnet_mtu: int = 1500
    base_mac: str = "fa:16:3e:00:00:00"
    max_request_body_size: int = 1024 * 1024
    # Threads running database work; more only adds memory and lock contention on SQLite.
    thread_pool_size: int = 4
    public_endpoint: str = ""  # advertised URL; derived from bind when empty
    transport_url: str = "inproc://"  # the bus between server and agents (or amqp://user:pass@host:5672/)
    control_exchange: str = "neutrino"  # AMQP names start with it (one deployment per prefix)
    agent_down_time: int = 75  # seconds without a heartbeat before an agent counts as dead
    # Neutron's defaults: a dead DHCP agent's networks move to a live one; a dead L3 agent's
    # routers stay (moving them would cut the router's sessions and floating IPs twice).
    allow_automatic_dhcp_failover: bool = True
    allow_automatic_l3agent_failover: bool = False
    # Neutron's option: the most items one list response holds ("infinite" or a negative
    # number: no cap). A larger or absent ?limit= is capped, and the response has the links.
    pagination_max_limit: str = "-1"


@dataclass
class DatabaseSection:
    connection: str = ""  # empty: sqlite:///<state_dir>/neutrino.db


@dataclass
class Ml2Section:
    type_drivers: list[str] = field(
        default_factory=lambda: ["local", "flat", "vlan", "vxlan", "gre", "geneve"]
    )
    tenant_network_types: list[str] = field(default_factory=lambda: ["vxlan"])
    # each binds only on hosts whose live agent is of its kind (Neutron's agent-based drivers)
    mechanism_drivers: list[str] = field(default_factory=lambda: ["openvswitch", "linuxbridge"])
    path_mtu: int = 0
    physical_network_mtus: list[str] = field(default_factory=list)  # "physnet:mtu"
    flat_networks: list[str] = field(default_factory=lambda: ["*"])
    network_vlan_ranges: list[str] = field(default_factory=lambda: ["physnet1:100:199"])
    vxlan_vni_ranges: list[str] = field(default_factory=lambda: ["1:1000"])
    gre_tunnel_id_ranges: list[str] = field(default_factory=lambda: ["1:1000"])
    geneve_vni_ranges: list[str] = field(default_factory=lambda: ["1:1000"])


@dataclass
class QuotaSection:
    quota_network: int = 100
    quota_subnet: int = 100
    quota_port: int = 500
    quota_router: int = 10
    quota_floatingip: int = 50
    quota_security_group: int = 10
    quota_security_group_rule: int = 100


@dataclass
class IdentitySection:
    admin_user: str = "admin"
    admin_project: str = "admin"
    admin_password: str = ""  # generated on first start when empty
    demo_user: str = "demo"
    demo_project: str = "demo"
    demo_password: str = ""
    region: str = "RegionOne"
    token_expiration: int = 3600


@dataclass
class AgentSection:
    """This host's agents (L2, DHCP, L3, metadata) as ``neutrino up`` runs them."""

    host: str = ""  # default: the machine's hostname
    # The namespace that plays this host's network stack: bridges, taps and vxlan devices
    # live there, so the machine's own namespace only gets the external gateway link.
    node_namespace: str = ""  # default: neutrino-<host>
    namespace_prefix: str = ""  # prepended to qdhcp-/qrouter-/vm- names (tests keep theirs apart)
    l2_driver: str = "linuxbridge"  # the dataplane: linuxbridge or openvswitch
    # What this host runs: a network node all of them, a compute node ["l2"] (Neutron's split).
    roles: list[str] = field(default_factory=lambda: ["l2", "dhcp", "l3", "metadata"])
    # security groups: nftables (linuxbridge; openvswitch with hybrid plugging, qbr/qvb/qvo) or openvswitch
    # (conntrack flows; openvswitch); "" = the L2 driver's own (nftables, openvswitch)
    firewall_driver: str = ""
    report_interval: float = 10.0
    resync_interval: float = 30.0


@dataclass
class LinuxBridgeSection:
    physical_interface_mappings: list[str] = field(default_factory=list)  # "physnet:interface"


@dataclass
class VxlanSection:
    local_ip: str = "127.0.0.1"  # this host's tunnel endpoint
    underlay_dev: str = "lo"


@dataclass
class PublicSection:
    """The host-only external network ``neutrino up`` creates (DevStack's br-ex, without an uplink)."""

    network_name: str = "public"
    physical_network: str = "public"
    cidr: str = "203.0.113.0/24"
    gateway_ip: str = "203.0.113.1"  # held by this machine on the neutrino-<physnet> link
    allocation_start: str = "203.0.113.10"
    allocation_end: str = "203.0.113.250"


@dataclass
class OsloPolicySection:
    """Neutron's ``[oslo_policy]``: a YAML (or JSON) file whose rules override the defaults."""

    policy_file: str = ""  # empty: /etc/neutrino/policy.yaml when it exists


@dataclass
class Config:
    DEFAULT: DefaultSection = field(default_factory=DefaultSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)
    ml2: Ml2Section = field(default_factory=Ml2Section)
    quotas: QuotaSection = field(default_factory=QuotaSection)
    identity: IdentitySection = field(default_factory=IdentitySection)
    agent: AgentSection = field(default_factory=AgentSection)
    linux_bridge: LinuxBridgeSection = field(default_factory=LinuxBridgeSection)
    vxlan: VxlanSection = field(default_factory=VxlanSection)
    public: PublicSection = field(default_factory=PublicSection)
    oslo_policy: OsloPolicySection = field(default_factory=OsloPolicySection)

    @property
    def db_url(self) -> str:
        if self.database.connection:
            return self.database.connection
        return f"sqlite:///{Path(self.DEFAULT.state_dir) / 'neutrino.db'}"

    @property
    def public_url(self) -> str:
        if self.DEFAULT.public_endpoint:
            return self.DEFAULT.public_endpoint.rstrip("/")
        return f"http://{self.DEFAULT.bind}"


class ConfigError(ValueError):
    """A config file or variable that cannot be used; the message says which and why."""


# [agent] l2_driver -> the firewall drivers it can run, its default first
FIREWALL_DRIVERS: dict[str, tuple[str, ...]] = {"linuxbridge": ("nftables",),
                                                "openvswitch": ("openvswitch", "nftables")}


def firewall_driver(l2_driver: str, chosen: str) -> str:
    """The security-group driver ``[agent] firewall_driver`` names for ``l2_driver`` ("" = its default).

    ``nftables`` with Open vSwitch plugs each instance's tap the hybrid way (its own Linux bridge
    joined to br-int by a veth, as Neutron's iptables_hybrid) and filters it there.
    """
    drivers = FIREWALL_DRIVERS.get(l2_driver)
    if drivers is None:
        raise ConfigError(f"[agent] l2_driver: unknown {l2_driver!r} (known: {', '.join(FIREWALL_DRIVERS)})")
    if not chosen:
        return drivers[0]
    if chosen in drivers:
        return chosen
    raise ConfigError(f"[agent] firewall_driver: {chosen!r} does not work with l2_driver = {l2_driver} "
                      f"(it takes: {', '.join(drivers)})")


def _coerce(value: Any, current: Any, where: str) -> Any:
    if isinstance(current, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected a boolean, got {value!r}")
    if isinstance(current, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if isinstance(current, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(current, list):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return [str(v) for v in value]
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    return str(value)


def _apply(section: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name for f in fields(section)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown option {key!r} (known: {', '.join(sorted(known))})")
        setattr(section, key, _coerce(value, getattr(section, key), f"{where}.{key}"))


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def load(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Build the config: defaults < file (explicit path, else /etc/neutrino if present) < env."""
    cfg = Config()
    env = dict(os.environ if env is None else env)
    file = Path(path) if path else (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None)
    if path and not Path(path).exists():
        raise ConfigError(f"config file {path} does not exist")
    if file:
        try:
            data = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: {exc}") from None
        for name, values in data.items():
            section = getattr(cfg, name, None)
            if not is_dataclass(section) or not isinstance(values, dict):
                raise ConfigError(f"{file}: unknown section [{name}]")
            _apply(section, values, f"{file} [{name}]")
    for key, raw in env.items():
        if not key.startswith("NEUTRINO_") or "__" not in key:
            continue
        sect, opt = key[len("NEUTRINO_"):].split("__", 1)
        name = "DEFAULT" if sect.upper() == "DEFAULT" else sect.lower()
        section = getattr(cfg, name, None)
        if not is_dataclass(section):
            raise ConfigError(f"{key}: unknown section {sect!r}")
        _apply(section, {opt.lower(): _parse_env_value(raw)}, key)
    return cfg
