"""L2 agent: wiring ports into bridges, and the per-port security-group firewall it renders."""
