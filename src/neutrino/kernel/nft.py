"""nftables inside our own namespaces: apply a rendered script atomically, list, delete, read back as JSON.

Only neutrino's namespaces (never the root one) and only tables named ``neutrino-*``: a
script that names any other table, or flushes the whole ruleset, is refused before nft runs.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from neutrino.kernel import KernelError, NamespaceNotFound, NotOurs
from neutrino.kernel.names import is_our_namespace
from neutrino.kernel.netns import is_root_namespace, namespace_exists

TABLE_PREFIX = "neutrino-"
FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
TIMEOUT = 30.0

# Every place a script can name a table: "table [F] N" (a block or a table command), and the table
# of top-level commands such as "add rule [F] N ...". Without F nft means "ip", so that is checked too.
_FAMILY = r"(?:(" + "|".join(FAMILIES) + r")\s+)?"
_TABLE_REF = re.compile(r"\btable\s+" + _FAMILY + r"([^\s{};]+)")
_COMMAND_REF = re.compile(r"\b(?:add|create|insert|replace|delete|destroy|flush|reset|list)\s+"
                          r"(?:chain|set|map|rule|element|flowtable|counter|quota)\s+" + _FAMILY + r"([^\s{};]+)")
_RULESET = re.compile(r"\b(?:flush|delete|reset)\s+ruleset\b")


def _guard(op: str, ns: str) -> None:
    if not is_our_namespace(ns):
        raise NotOurs(op, ns, detail="not a neutrino namespace")
    if not namespace_exists(ns):
        raise NamespaceNotFound(op, ns, detail="no such namespace")
    if is_root_namespace(ns):
        raise NotOurs(op, ns, detail="refusing to touch the root namespace's nftables")


def _guard_table(op: str, family: str, name: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown nft family {family!r}")
    if not name.startswith(TABLE_PREFIX) or len(name) == len(TABLE_PREFIX):
        raise NotOurs(op, f"{family} {name}", detail=f"not a {TABLE_PREFIX}* table")


def check_script(script: str) -> None:
    """Refuse a script that flushes the ruleset or names a table that is not ours."""
    if _RULESET.search(script):
        raise NotOurs("apply nft", "ruleset", detail="refusing a whole-ruleset command")
    for family, name in _TABLE_REF.findall(script) + _COMMAND_REF.findall(script):
        _guard_table("apply nft", family or "ip", name.strip('"'))


def _nft(op: str, ns: str, args: list[str], stdin: str | None = None) -> str:
    _guard(op, ns)
    try:
        done = subprocess.run(["ip", "netns", "exec", ns, "nft", *args], input=stdin, capture_output=True,
                              text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelError(op, ns, detail=str(exc)) from exc
    if done.returncode != 0:
        raise KernelError(op, ns, detail=done.stderr.strip() or f"nft exited {done.returncode}")
    return done.stdout


def apply(ns: str, script: str) -> None:
    """Run ``script`` with ``nft -f -`` inside ``ns``: all of it in one transaction, or none of it."""
    check_script(script)
    _nft("apply nft", ns, ["-f", "-"], stdin=script)


def list_tables(ns: str) -> list[tuple[str, str]]:
    """Every table in ``ns`` as sorted (family, name) pairs, ours or not."""
    found = json.loads(_nft("list tables", ns, ["-j", "list", "tables"]) or "{}")
    return sorted((t["table"]["family"], t["table"]["name"]) for t in found.get("nftables", []) if "table" in t)


def delete_table(ns: str, family: str, name: str) -> bool:
    """Delete our table ``family name`` in ``ns``; False if it was not there."""
    _guard_table("delete table", family, name)
    if (family, name) not in list_tables(ns):
        return False
    _nft("delete table", ns, ["delete", "table", family, name])
    return True


def read_table(ns: str, family: str, name: str) -> list[dict[str, Any]]:
    """``nft -j list table``: the table's objects (table, chains, sets, rules) as JSON dicts."""
    _guard_table("read table", family, name)
    out = json.loads(_nft("read table", ns, ["-j", "list", "table", family, name]))
    return [item for item in out.get("nftables", []) if "metainfo" not in item]


def read_chain(ns: str, family: str, table: str, chain: str) -> list[dict[str, Any]]:
    """``nft -j list chain``: one chain's objects (a small read where the whole table is large)."""
    _guard_table("read chain", family, table)
    out = json.loads(_nft("read chain", ns, ["-j", "list", "chain", family, table, chain]))
    return [item for item in out.get("nftables", []) if "metainfo" not in item]


def read_ruleset(ns: str) -> list[dict[str, Any]]:
    """``nft -j list ruleset`` in ``ns`` without the metainfo header (it carries versions, not state)."""
    out = json.loads(_nft("read ruleset", ns, ["-j", "list", "ruleset"]) or "{}")
    return [item for item in out.get("nftables", []) if "metainfo" not in item]


def check(ns: str, script: str) -> None:
    """``nft -c -f -`` inside ``ns``: would the kernel take ``script``? Nothing is applied.

    Used to find which one object a refused script owes its failure to, so that only that
    object is left out (see HostAgent._firewall).
    """
    check_script(script)
    _nft("check nft", ns, ["-c", "-f", "-"], stdin=script)
