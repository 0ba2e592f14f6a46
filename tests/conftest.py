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
