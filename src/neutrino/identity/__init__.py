"""Keystone v3 identity subset: users, projects, roles and tokens for OpenStack clients."""

from neutrino.identity.service import Identity

__all__ = ["Identity"]
