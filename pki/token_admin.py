"""Admin for bootstrap tokens, static tokens and certificate keys."""
