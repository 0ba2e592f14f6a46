"""A dump of the test database as bytes, the way an attacker with the backup would see it.

SQLite: the database file with its WAL and journal. PostgreSQL: ``pg_dump`` of the test
database. Close the connection first on SQLite so that committed pages reach the file.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from django.db import connection


def database_dump() -> bytes:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        connection.close()
        name = Path(settings["NAME"])
        parts = [name, Path(f"{name}-wal"), Path(f"{name}-journal")]
        return b"".join(part.read_bytes() for part in parts if part.exists())
    if connection.vendor == "postgresql":
        env = {**os.environ, "PGPASSWORD": settings.get("PASSWORD") or ""}
        return subprocess.run(
            ["pg_dump", "--no-owner", "-h", settings["HOST"] or "127.0.0.1",
             "-p", str(settings["PORT"] or 5432), "-U", settings["USER"], settings["NAME"]],
            env=env, capture_output=True, check=True, timeout=120,
        ).stdout  # fmt: skip
    raise NotImplementedError(f"no dump for {connection.vendor}")
