"""Shared helpers for the Django-level PKI tests: real openssl, clusters issued once per module."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from nodes.models import Cluster
from pki.models import Certificate, CertificateAuthority, ServiceAccountKey
from tests.factories import make_cluster, make_nodes, make_user


def openssl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run openssl; fail the test with its stderr when it refuses."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (Debian package 'openssl')")
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30, cwd=cwd)
    assert result.returncode == 0, f"openssl {' '.join(args)}: {result.stderr}"
    return result


def row_counts() -> tuple[int, int, int]:
    """Rows of every PKI table: a refused request must leave them as they were."""
    return (
        CertificateAuthority.objects.count(),
        Certificate.objects.count(),
        ServiceAccountKey.objects.count(),
    )


def untar(data: bytes, root: Path) -> dict[str, tarfile.TarInfo]:
    """Unpack a bundle (the archive is ours, so extraction is safe) and list its members."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        tar.extractall(root, filter="tar")
    return members


@contextmanager
def committed_cluster(
    django_db_blocker: Any,
    name: str,
    nodes: list[tuple[str, str, str]],
    **fields: Any,
) -> Iterator[tuple[Cluster, APIClient]]:
    """A cluster with nodes and an admin API client, committed for a whole module.

    Issuing a tree costs key generation; doing it once per module keeps the suite fast. Tests
    that change it run inside their own transaction, which pytest-django rolls back. Issue with
    ``pki.services`` here, not through the API: audit events are append-only and would outlive
    the module.
    """
    with django_db_blocker.unblock():
        cluster = make_cluster(name, **fields)
        make_nodes(cluster, nodes)
        user = make_user(f"{name}-admin", "admin")
        client = APIClient()
        client.force_authenticate(user)
        try:
            yield cluster, client
        finally:
            cluster.delete()
            user.delete()
