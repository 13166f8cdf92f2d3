"""cmd package."""
