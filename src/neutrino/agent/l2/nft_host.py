"""The nftables firewall of one host (security groups for ports on Linux bridges).

The renderer (``agent.l2.firewall``) says what the host's tables should hold; this object
applies it: whole on the first pass and on every full resync, as a delta otherwise; keeps a
record so that a restarted agent need not re-apply an unchanged ruleset; isolates the ports
whose rules nft refuses (kept closed, retried with back-off) so that one port never keeps the
rest of the host unfiltered; and forgets the conntrack entries of flows a change revokes.
Fails closed throughout: whatever goes wrong, a guarded port passes nothing.

The driver that owns the bridges says which bridge carries a port's frames (``layout``: a
bridge per network on the Linux-bridge driver, a bridge per port with Open vSwitch hybrid
plugging), so nothing here knows how the L2 driver names its devices.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from neutrino.agent.l2 import firewall
from neutrino.agent.retry import Retries, fingerprint
from neutrino.files import write_atomic
from neutrino.kernel import KernelError, conntrack, netns, nft

LOG = logging.getLogger(__name__)
# br_netfilter: bridged IPv4/IPv6 packets pass the inet table (where security groups live)
BR_NETFILTER: dict[str, str | int] = {"net.bridge.bridge-nf-call-iptables": 1,
                                      "net.bridge.bridge-nf-call-ip6tables": 1}

Dict = dict[str, Any]


class NftFirewall:
    """The host's ``neutrino-*`` nft tables, in ``node_ns``; failures per port go to ``retries``."""

    def __init__(self, node_ns: str, state_dir: Path, retries: Retries,
                 layout: firewall.Layout = firewall.PER_NETWORK) -> None:
        self.node_ns = node_ns
        self.state_dir = Path(state_dir)
        self.retries = retries
        self.layout = layout
        self._script: str | None = None
        self._key: bytes | None = None
        self._zones: dict[str, int] | None = None
        self._refused: dict[str, str] = {}  # guarded port -> why nft itself refused its rules (kept closed)
        self._verifying = True

    def apply(self, state: Mapping[str, Any], verify: bool) -> bool:
        """Make the host's nft tables what the ports and groups say; a port that cannot be
        filtered is left out of them, which cuts its tap off (see firewall.render_antispoof),
        and is reported (port ERROR, agent ``failures``) and retried with back-off."""
        self._verifying = verify
        # All the host's ports: the network's own (DHCP, router) are let through unfiltered, as in Neutron.
        ports = state["ports"]
        groups, members = state["security_groups"], state["members"]
        self._closed_baseline(ports)
        if self._zones is None:
            self._zones = firewall.read_zones(self._current_sg_table(), layout=self.layout)
        previous = self._zones
        self._zones = firewall.assign_zones(sorted(firewall.zoned_network_ids(ports, self.layout)), previous)
        for scope, zone in self._zones.items():
            if previous.get(scope) != zone:  # newly given to this network (or port): forget its old flows
                conntrack.flush_zone(self.node_ns, zone)
        by_id = {str(p["id"]): p for p in ports}
        self._refused = {pid: why for pid, why in self._refused.items() if pid in by_id}
        closed = {pid for pid in self._refused if not self.retries.due(f"port:{pid}", fingerprint(by_id[pid]))}
        # Rendering a hundred ports' chains costs ~20 ms; the same inputs give the same script.
        key = orjson.dumps([ports, groups, members, self._zones, sorted(closed)], option=orjson.OPT_SORT_KEYS)
        if key == self._key and not self._verifying and self._script is not None:
            return False
        rendered = self._render(ports, groups, members, closed)
        before = self._script
        refused: set[str] = set()
        try:
            applied = self._apply_script(rendered.script)
        except KernelError as exc:
            refused = self._isolate(ports, groups, members, closed)
            if not refused:
                if not self._tables_present():  # never open: at least cut every guarded tap off
                    self._cut_off_guarded(ports)
                raise
            self._refused.update(dict.fromkeys(refused, f"nft refused its rules: {exc}"))
            closed |= refused
            LOG.warning("nft refused the rules of port(s) %s (%s); applying the host without them",
                        ", ".join(sorted(refused)), exc)
            rendered = self._render(ports, groups, members, closed)
            applied = self._apply_script(rendered.script)
        if applied and before is not None:
            self._cut_revoked(before, rendered.script, ports)
        # a port nft refused is retried when its back-off ends, so its render is not cached
        self._key = key if not self._refused else None
        self._record_firewall_failures(ports, rendered, closed - refused)
        return applied

    def _render(self, ports: list[Dict], groups: list[Dict], members: Mapping[str, Any],
                closed: set[str]) -> firewall.Rendered:
        return firewall.render_host(ports, groups, members, zones=self._zones, closed=closed, layout=self.layout)

    def _cut_revoked(self, before: str, after: str, ports: list[Dict]) -> None:
        """Delete the conntrack entries of the flows the new rules no longer allow (a rule
        removed, a port out of a group, a remote group's member gone, port security turned
        on): ``ct state established`` would let them live on. Best effort: logged, not raised,
        since the rules themselves are in place."""
        by_id = {str(p["id"]): p for p in ports}
        for pid, src, dst in firewall.revoked(before, after, ports):
            zone = (self._zones or {}).get(self.layout.key(by_id[pid]))
            if zone is None:
                continue
            try:
                conntrack.delete_flows(self.node_ns, zone, src=src, dst=dst)
            except (KernelError, ValueError) as exc:
                LOG.warning("port %s: could not forget flows its rules no longer allow: %s", pid, exc)

    def _closed_baseline(self, ports: list[Dict]) -> None:
        """What must hold before anything else of the firewall part, so that whatever fails after
        it (a zone flush, a render, nft) leaves guarded ports closed, never open:

        * the host's tables exist: a node namespace without them (a fresh host, tables removed)
          first gets a script that cuts every guarded tap off, since an instance's tap may be on
          its bridge before this agent's first apply;
        * br_netfilter hands bridged packets to the inet table in the node namespace (the
          ``bridge-nf-call-ip(6)tables`` sysctls are per namespace; at 0 every security group
          rule is silently skipped). Where they cannot be set (br_netfilter not loaded) every
          guarded port stays cut off and the part fails, saying why.
        """
        if self._script is None or self._verifying:
            if not self._tables_present():
                self._cut_off_guarded(ports)
        try:
            netns.set_sysctls(self.node_ns, BR_NETFILTER)
        except KernelError as exc:
            self._cut_off_guarded(ports)
            raise KernelError("enable br_netfilter", self.node_ns,
                              detail=f"security groups cannot be enforced, guarded ports stay closed: {exc}") from exc

    def _cut_off_guarded(self, ports: list[Dict]) -> None:
        """Apply a script in which every guarded port is closed (the network's own ports pass)."""
        guarded = {str(p["id"]) for p in ports if not firewall.is_trusted(p)}
        nft.apply(self.node_ns, firewall.render_host(ports, [], {}, closed=guarded, layout=self.layout).script)
        self._script = None  # the kernel no longer holds what this agent last applied
        self._key = None
        self.record.unlink(missing_ok=True)

    def _apply_script(self, script: str) -> bool:
        """Apply ``script``: as a delta of what this agent applied, or whole (first pass, full resync).

        False when the kernel already held exactly this script.
        """
        applied = self._script
        if applied is None and self._recorded() == script and self._tables_present():
            applied = script  # a restarted agent: the kernel already holds exactly this (see below)
        if script == applied and not (self._verifying and self._script is not None):
            self._script = script
            return False
        # Forget the record first: an agent that dies between the apply and the new record must
        # not find an old one that a restart would trust (the kernel may hold more than it says).
        self.record.unlink(missing_ok=True)
        if applied is not None and not self._verifying:
            try:
                nft.apply(self.node_ns, firewall.delta(applied, script))
            except KernelError:
                LOG.warning("incremental firewall update failed; replacing the tables whole", exc_info=True)
                nft.apply(self.node_ns, script)
        else:
            nft.apply(self.node_ns, script)  # first pass, and every full resync: the whole, atomically
        self._script = script
        write_atomic(self.record, script, mode=0o600)
        return True

    def _isolate(self, ports: list[Dict], groups: list[Dict], members: Mapping[str, Any],
                 closed: set[str]) -> set[str]:
        """The guarded ports whose own rules nft refuses (``nft -c``, nothing applied)."""
        trusted = [p for p in ports if firewall.is_trusted(p)]
        refused = set()
        for port in ports:
            pid = str(port["id"])
            if firewall.is_trusted(port) or pid in closed or firewall.port_problem(port, self.layout) is not None:
                continue
            alone = firewall.render_host([port, *trusted], groups, members, zones=self._zones, layout=self.layout)
            try:
                nft.check(self.node_ns, alone.script)
            except KernelError:
                refused.add(pid)
        return refused

    def _record_firewall_failures(self, ports: list[Dict], rendered: firewall.Rendered, waiting: set[str]) -> None:
        """Record this pass's outcome per port and rule; ``waiting`` ports were not tried (back-off)."""
        for port in ports:
            pid = str(port["id"])
            key = f"port:{pid}"
            if pid in waiting:
                continue
            if pid in rendered.failed_ports:
                refused = self._refused.get(pid)  # nft refused it: retried on a timer; a bad value: when it changes
                why = refused or rendered.failed_ports[pid]
                self.retries.failed(key, f"firewall: {why}", fingerprint(port), timed=refused is not None)
            else:
                self.retries.succeeded(key)
                self._refused.pop(pid, None)
        self.retries.keep_only((f"port:{p['id']}" for p in ports), "port:")
        for rule_id, why in rendered.failed_rules.items():
            self.retries.failed(f"rule:{rule_id}", why, timed=False)
        self.retries.keep_only((f"rule:{r}" for r in rendered.failed_rules), "rule:")

    @property
    def record(self) -> Path:
        """The last script applied, so a restarted agent need not re-apply an unchanged ruleset."""
        return self.state_dir / "firewall.nft"

    def _recorded(self) -> str | None:
        try:
            return self.record.read_text()
        except FileNotFoundError:
            return None

    def in_place(self) -> bool:
        """Whether the host's tables are in the kernel, so that a tap the L2 driver puts on a
        bridge meets them (and, unnamed there, passes nothing)."""
        return self._tables_present()

    def _tables_present(self) -> bool:
        tables = set(nft.list_tables(self.node_ns))
        return set(firewall.OWNED_TABLES) <= tables

    def _current_sg_table(self) -> list[dict[str, Any]]:
        """The zone chain as the kernel has it (read_zones needs no more: the table is large)."""
        if ("inet", firewall.SG_TABLE) not in nft.list_tables(self.node_ns):
            return []
        try:
            return nft.read_chain(self.node_ns, "inet", firewall.SG_TABLE, firewall.ZONE_CHAIN)
        except KernelError:  # no zone chain (no guarded port yet)
            return []

