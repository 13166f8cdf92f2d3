"""ml2 package."""
