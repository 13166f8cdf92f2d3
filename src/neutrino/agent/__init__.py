"""Agents: reconcilers that make the API model real on this host."""
