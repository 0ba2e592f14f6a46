"""The same code runs on PostgreSQL: migrations apply, secrets are stored encrypted
and read back, and the role groups exist."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import services

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
from nodes.models import Node
from tests.factories import make_cluster, make_node
c = make_cluster("pg", control_plane_endpoint="10.0.0.1")
make_node(c, "worker", name="n1", address="10.0.0.2", ssh_password="pg-secret-pw")
print(Node.objects.get(name="n1").ssh_password)
from django.contrib.auth.models import Group
print(sorted(Group.objects.values_list("name", flat=True)))
"""


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    # Not under pytest's tmp dir: that is private to root, and postgres runs as its own user.
    workdir = Path(tempfile.mkdtemp(prefix="clusterpanel-pg-"))
    try:
        with services.postgres_server(workdir) as url:
            yield url
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_migrations_and_encrypted_fields_work_on_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "DATABASE_URL": postgres_url, "CLUSTERPANEL_DATA_DIR": str(tmp_path)}
    services.bootstrap_data_dir(env)  # the keys; the database is PostgreSQL's

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    migrated = manage("migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    shell = manage("shell", "--no-imports", "-c", SCRIPT)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.splitlines() == ["pg-secret-pw", "['admin', 'operator', 'viewer']"]
    port = postgres_url.rsplit(":", 1)[1].split("/")[0]
    stored = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "clusterpanel", "-tA",
         "-c", "SELECT ssh_password FROM nodes_node"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert stored.startswith("enc1:")
    assert "pg-secret-pw" not in stored
