"""The jobs tests use the session's jobs worker (tests/real_services.py)."""
