"""Shared fixtures: the four personas, clusters, API clients and SSH keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import make_cluster, make_personas

# The real services (Redis, workers, sshd hosts) for integration and browser tests alike: one
# plugin, so that a session that runs both starts each of them once.
pytest_plugins = ["tests.real_services"]


@pytest.fixture
def personas(db: Any) -> dict[str, User]:
    """An admin, an operator, a viewer and an outsider (logged in, no role)."""
    return make_personas()


@pytest.fixture
def web_client(personas: dict[str, User]) -> Callable[[str | None], Client]:
    def client_for(persona: str | None) -> Client:
        client = Client()
        if persona is not None:
            client.force_login(personas[persona])
        return client

    return client_for


@pytest.fixture
def api_client(personas: dict[str, User]) -> Callable[[str | None], APIClient]:
    def client_for(persona: str | None) -> APIClient:
        client = APIClient()
        if persona is not None:
            client.force_authenticate(personas[persona])
        return client

    return client_for


@pytest.fixture
def cluster(db: Any) -> Any:
    """``prod`` behind ``lb.example.internal:6443``, without nodes."""
    return make_cluster("prod", control_plane_endpoint="lb.example.internal:6443")


@pytest.fixture(scope="session")
def ed25519_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="session")
def encrypted_rsa_key() -> tuple[str, str]:
    """An RSA key in encrypted PKCS#8 PEM, and its passphrase."""
    passphrase = "correct horse battery staple"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ).decode()
    return pem, passphrase


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # The real hasher costs ~0.3 s per user; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# The tests that take longest (tens of seconds each: the browser story, whole jobs on test hosts,
# the broker soak, ``manage.py serve``, the real tools, the schema fuzz, the permission matrix)
# start first. xdist
# hands out tests in collection order; one of them picked up last keeps one worker busy while
# the other has nothing left to do. Whole files move, in their own order, so module-scoped
# fixtures are still set up once.
SLOW_FIRST = (
    "tests/e2e/test_story.py",
    "tests/integration/nodes/test_bootstrap_job.py",
    "tests/integration/clusterpanel/test_broker_soak.py",
    "tests/integration/nodes/test_distribute_pki_job.py",
    "tests/integration/clusterpanel/test_serve.py",
    "tests/integration/nodes/test_cert_scan_job.py",
    "tests/integration/clusterpanel/test_permissions.py",
    "tests/integration/nodes/test_cert_rollout_job.py",
    "tests/integration/nodes/test_upgrade_job.py",
    "tests/integration/pki/test_real_tools.py",
    "tests/e2e/test_content_security_policy.py",
)


def _slow_rank(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    if path in SLOW_FIRST:
        return SLOW_FIRST.index(path)
    return len(SLOW_FIRST) + (0 if item.get_closest_marker("lifecycle") else 1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _refuse_database_in_no_database_tests(items)
    items.sort(key=_slow_rank)  # stable: every other test keeps its place


# ``no_database`` (pyproject.toml) leaves a test out of the PostgreSQL pass of tests/run.py. It
# may only mark tests that cannot reach the pass's database: no ``django_db`` mark and no
# database fixture (pytest-django then refuses the test any database access in this process).
_DATABASE_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_server", "worker_env"}


def _refuse_database_in_no_database_tests(items: list[pytest.Item]) -> None:
    wrong = [
        item.nodeid
        for item in items
        if item.get_closest_marker("no_database")
        and (
            item.get_closest_marker("django_db")
            or _DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        )
    ]
    if wrong:
        raise pytest.UsageError(
            "marked no_database but uses the database: " + ", ".join(sorted(wrong))
        )
