"""Alembic migrations of neutrino's schema."""
