"""api.definitions package."""
