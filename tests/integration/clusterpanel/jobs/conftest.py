"""The jobs tests use the session's jobs worker (tests/integration/conftest.py)."""
