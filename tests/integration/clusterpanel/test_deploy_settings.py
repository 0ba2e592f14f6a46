"""Production mode passes ``manage.py check --deploy`` with no warnings, and bad
environment values stop the process with a message naming the variable."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        # Only what production would have: no test-only switches from this process.
        env={**{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _production(tmp_path: Path) -> dict[str, str]:
    return {
        "CLUSTERPANEL_DATA_DIR": str(tmp_path),
        "CLUSTERPANEL_DEBUG": "false",
        "CLUSTERPANEL_HTTPS": "true",
        "CLUSTERPANEL_SECRET_KEY": secrets.token_urlsafe(64),
        "CLUSTERPANEL_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "CLUSTERPANEL_ALLOWED_HOSTS": "panel.example.com",
    }


def test_production_mode_passes_the_deploy_check(tmp_path: Path) -> None:
    result = _run(_production(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_plain_http_mode_is_flagged_by_the_deploy_check(tmp_path: Path) -> None:
    env = {**_production(tmp_path), "CLUSTERPANEL_HTTPS": "false"}
    result = _run(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr + result.stdout


def test_a_bad_boolean_names_the_variable(tmp_path: Path) -> None:
    result = _run({**_production(tmp_path), "CLUSTERPANEL_HTTPS": "maybe"}, "check")
    assert result.returncode != 0
    assert "CLUSTERPANEL_HTTPS must be a boolean" in result.stderr


def test_secret_file_variant_is_read(tmp_path: Path) -> None:
    key_file = tmp_path / "secret"
    key_file.write_text(secrets.token_urlsafe(64))
    env = _production(tmp_path)
    del env["CLUSTERPANEL_SECRET_KEY"]
    env["CLUSTERPANEL_SECRET_KEY_FILE"] = str(key_file)
    result = _run(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    both = _run({**env, "CLUSTERPANEL_SECRET_KEY": "x" * 60}, "check")
    assert "not both" in both.stderr


def test_a_sqlite_database_url_gets_wal_and_queued_writers(tmp_path: Path) -> None:
    """As the embedded database: two writers wait for each other instead of failing at once."""
    env = {**_production(tmp_path), "DATABASE_URL": f"sqlite://{tmp_path / 'panel.sqlite3'}"}
    script = (
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('PRAGMA journal_mode')\n"
        "    print(cursor.fetchone()[0], connection.transaction_mode)\n"
    )
    result = _run(env, "shell", "--no-imports", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "IMMEDIATE"]
