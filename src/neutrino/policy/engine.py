"""The one policy engine: every API decision (may this caller do this to this object?) is made
here, from Neutron's default rules (:mod:`neutrino.policy.defaults`) and the operator's
``policy.yaml`` (``[oslo_policy] policy_file``, Neutron's option name and file syntax).

Why oslo.policy: it is the library Neutron and every OpenStack service evaluate policy files
with, so an operator's file means here exactly what it means there (rule references, ``role:``,
``not``/``and``/``or``, ``@``/``!``, the ``default`` rule, re-reading the file when it changes).
Its cost, measured with ``bench/api.py`` (spawned server, before -> after this engine):
cold start median 0.58 -> 0.74 s over 5 spawns (target < 1.5 s), peak RSS 76 -> 85 MB
(target < 120 MB); on a full run 0.75 s, 91 MB, and listing 1000 ports 31 ms (target < 50 ms,
of which ~3 ms are the 1000 ``get_port`` checks). Both targets hold with room to spare, so the
fidelity is worth it; oslo.policy's one hot spot (below, ``_check``) is patched.

How a request is decided, as Neutron's policy hook does it:

- create: ``create_<res>`` and, for each attribute the body sets to a non-default value that
  has a rule, ``create_<res>:<attr>`` (and ``create_<res>:<attr>:<key>`` for the keys of a
  dict or list of dicts) -> 403.
- show / list: ``get_<res>`` on the object; what fails is not found (404) or left out of the
  list. Attributes whose ``get_<res>:<attr>`` fails are left out of the answer.
- update / delete: ``update_<res>`` (+ attribute rules for the keys being changed) or
  ``delete_<res>``; on failure 404 when ``get_<res>`` fails too (the caller may not know it
  exists), else 403.

Targets carry the object's attributes plus, for objects on a network, ``network:project_id``,
``network:shared`` and ``network:router:external``, and for security group rules
``security_group:project_id`` (see :mod:`neutrino.policy.targets`).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from oslo_config import cfg
from oslo_policy import _checks
from oslo_policy import policy as oslo

from neutrino.config import ConfigError
from neutrino.context import Context
from neutrino.errors import PolicyNotAuthorized
from neutrino.policy import checks  # noqa: F401  (registers Neutron's field/owner checks)
from neutrino.policy import sql as policy_sql
from neutrino.policy.defaults import RULES
from neutrino.policy.sql import Bound, Resolve

LOG = logging.getLogger(__name__)
DEFAULT_POLICY_FILE = "/etc/neutrino/policy.yaml"
RELOAD_INTERVAL = 1.0  # seconds between looks at the policy file's mtime


class PolicyFileError(ConfigError):
    """The configured policy file is missing or does not parse (the CLI reports it as a
    configuration error, without a traceback)."""


_TAKES_CURRENT_RULE: dict[type, bool] = {}


def _check(rule: Any, target: Any, creds: Any, enforcer: Any, current_rule: str | None = None) -> bool:
    """oslo.policy's ``_checks._check`` with the signature question answered once per class.

    oslo.policy 6.0.1 calls ``inspect.getfullargspec`` on every node of a rule on every
    evaluation (~10 us a node, ~150 us for ``get_port``) only to learn whether the check takes
    ``current_rule``; the answer depends on the class, so it is cached here. Listing 1000 ports
    evaluates ``get_port`` 1000 times, which would otherwise cost the 50 ms listing target.
    """
    kind = type(rule)
    takes = _TAKES_CURRENT_RULE.get(kind)
    if takes is None:
        takes = _TAKES_CURRENT_RULE[kind] = len(inspect.getfullargspec(rule.__call__).args) > 4
    if takes:
        return bool(rule(target, creds, enforcer, current_rule))
    return bool(rule(target, creds, enforcer))


_checks._check = _check


def creds(ctx: Context) -> dict[str, Any]:
    """What a rule may ask of the caller: the values Neutron's context hands oslo.policy
    (``to_policy_values``), so that an operator's file naming ``is_admin:True``,
    ``tenant_id:...`` or ``project_name:...`` means here what it means in Neutron."""
    return {"roles": sorted(ctx.roles), "project_id": ctx.project_id, "tenant_id": ctx.project_id,
            "user_id": ctx.user_id, "user": ctx.user_id, "is_admin": ctx.is_admin,
            "project_name": ctx.project_name, "user_name": ctx.user_name,
            "domain_id": None, "system_scope": None}


class Policy:
    """Neutron's rules plus the operator's overrides, evaluated with oslo.policy."""

    def __init__(self, policy_file: str = "") -> None:
        if policy_file and not os.path.isfile(policy_file):
            raise PolicyFileError(f"[oslo_policy] policy_file {policy_file!r} does not exist")
        conf = cfg.ConfigOpts()
        conf([], project="neutrino", default_config_files=[], default_config_dirs=[])
        self._enforcer = oslo.Enforcer(conf, policy_file=os.path.abspath(policy_file or DEFAULT_POLICY_FILE))
        conf.set_override("policy_dirs", [], group="oslo_policy")
        self._enforcer.register_defaults([oslo.RuleDefault(name, check) for name, check in RULES.items()])
        try:
            self._enforcer.load_rules()
        except Exception as exc:  # oslo raises yaml/ValueError/ParseError for a bad file
            raise PolicyFileError(f"policy file {policy_file or DEFAULT_POLICY_FILE}: {exc}") from None
        self._rule_checks: dict[str, oslo.RuleCheck] = {}
        self._loaded_at = time.monotonic()
        self._broken = ""  # the last load error reported, so a broken file is logged once

    def known(self, name: str) -> bool:
        """A rule of this name exists (a default or one the operator's file adds)."""
        return name in self._enforcer.rules or name in self._enforcer.registered_rules

    def _rule(self, name: str) -> oslo.RuleCheck:
        found = self._rule_checks.get(name)
        if found is None:
            found = self._rule_checks[name] = oslo.RuleCheck("rule", name)
        return found

    def _passes(self, check: Any, target: Mapping[str, Any], who: dict[str, Any]) -> bool:
        self._fresh()
        return _check(check, target, who, self._enforcer)

    def _fresh(self) -> None:
        now = time.monotonic()
        if now - self._loaded_at > RELOAD_INTERVAL:
            # oslo.policy re-reads the file when its mtime changed; it also walks every
            # registered rule each time, so not on every one of a list's 1000 checks
            self._loaded_at = now
            try:
                self._enforcer.load_rules()
            except Exception as exc:  # a file broken while running: keep the rules in force
                if self._broken != str(exc):
                    LOG.error("policy file %s not applied, keeping the previous rules: %s",
                              self._enforcer.policy_path, exc)
                    self._broken = str(exc)
            else:
                self._broken = ""

    def check(self, ctx: Context, action: str, target: Mapping[str, Any]) -> bool:
        """Whether ``action`` (a rule name such as ``get_port``) allows ``target``."""
        return self._passes(self._rule(action), target, creds(ctx))

    def allowed(self, ctx: Context, action: str, targets: Sequence[Mapping[str, Any]]) -> list[bool]:
        """``check`` for each target of a list, the caller's values built once."""
        rule, who = self._rule(action), creds(ctx)
        return [self._passes(rule, target, who) for target in targets]

    def condition(self, ctx: Context, action: str, resolve: Resolve) -> Bound:
        """An SQL condition every object ``action`` allows for this caller satisfies (True,
        False or a condition on the columns ``resolve`` names), so that a list reads only rows
        it may show; :mod:`neutrino.policy.sql`. The rows are still checked one by one."""
        self._fresh()
        return policy_sql.condition(self._rule(action), creds(ctx), self._enforcer, resolve)

    def decide_admin(self, ctx: Context) -> Context:
        """``ctx`` with ``is_admin`` as the ``context_is_admin`` rule decides it and
        ``can_set_project_id`` as ``context_can_set_project_id`` does (Neutron's context derives
        both the same way, the caller's own values as the target), so an override of either
        reaches the code that asks (naming another project in a body, query narrowing)."""
        who = creds(ctx)
        return dataclasses.replace(
            ctx, policy_admin=self.check(ctx, "context_is_admin", who),
            policy_can_set_project=self.check(ctx, "context_can_set_project_id", who))

    def authorize(self, ctx: Context, action: str, target: Mapping[str, Any],
                  changed: Mapping[str, Any] | None = None) -> None:
        """Raise 403 unless ``action`` and the rules of every attribute in ``changed`` pass.

        ``changed`` holds the attributes the request sets (create: those differing from their
        default; update: every key in the body), as Neutron's ``_build_match_rule`` picks them.
        """
        match: Any = self._rule(action)
        for name, value in (changed or {}).items():
            attr_rule = f"{action}:{name}"
            if not self.known(attr_rule):
                continue
            rule: Any = self._rule(attr_rule)
            subs = [self._rule(f"{attr_rule}:{key}") for key in _sub_keys(value)
                    if self.known(f"{attr_rule}:{key}")]
            if subs:
                rule = oslo.AndCheck([rule, oslo.AndCheck(subs)])
            match = oslo.AndCheck([match, rule])
        if not self._passes(match, target, creds(ctx)):
            raise PolicyNotAuthorized(rule=str(match))

    def hidden(self, ctx: Context, rule: str, names: list[str], target: Mapping[str, Any]) -> set[str]:
        """The attributes among ``names`` whose ``get_<rule>:<attr>`` rule refuses ``target``
        (Neutron decides this once per response, from its first item)."""
        who = creds(ctx)
        return {name for name in names
                if self.known(f"get_{rule}:{name}")
                and not self._passes(self._rule(f"get_{rule}:{name}"), target, who)}


def _sub_keys(value: Any) -> list[str]:
    """Keys of a dict value, or of every dict in a list value (``fixed_ips`` -> ip_address...)."""
    if isinstance(value, dict):
        return sorted(value)
    if isinstance(value, list):
        return sorted({k for item in value if isinstance(item, dict) for k in item})
    return []
