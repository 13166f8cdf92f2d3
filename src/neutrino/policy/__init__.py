"""Authorization: Neutron's policy rules evaluated by one engine (:class:`Policy`)."""

from neutrino.policy.engine import DEFAULT_POLICY_FILE, Policy, PolicyFileError

__all__ = ["DEFAULT_POLICY_FILE", "Policy", "PolicyFileError"]
