"""docker-compose.yml, the Dockerfile and .env.example agree with the settings.

Docker cannot run on the test machines, so these checks read the files.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _settings_variables() -> set[str]:
    source = "".join(p.read_text() for p in (ROOT / "clusterpanel").rglob("*.py"))
    return set(re.findall(r'env_(?:str|bool|int|list|secret)\("([A-Z_]+)"', source))


def _example_variables() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return {line.split("=", 1)[0] for line in text.splitlines() if re.match(r"^[A-Z_]+=", line)}


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    assert _example_variables() == _settings_variables()


def test_compose_runs_postgres_redis_web_worker_and_beat() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command
    assert "gunicorn" in services["web"]["command"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "clusterpanel", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "clusterpanel", "beat"]
    for name in ("web", "worker", "beat"):
        assert services[name]["env_file"] == ".env"


def test_compose_bootstraps_the_data_dir_before_migrating_and_beat_uses_the_setting() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    steps = [step.strip() for step in services["migrate"]["command"][-1].split("&&")]
    assert steps == [
        "python manage.py bootstrap_data_dir",
        "python manage.py migrate --noinput",
        "python manage.py ensure_admin",
    ]
    # One place for beat's schedule file: CELERY_BEAT_SCHEDULE_FILENAME in the settings.
    assert "--schedule" not in services["beat"]["command"]


def test_compose_database_matches_the_example_url() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["services"]["postgres"]["environment"]
    example = (ROOT / ".env.example").read_text()
    url = re.search(r"^DATABASE_URL=(.+)$", example, re.M)
    assert url is not None
    expected = (
        f"postgres://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@postgres:5432/"
        f"{env['POSTGRES_DB']}"
    )
    assert url.group(1) == expected


def test_the_image_collects_static_files_and_drops_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "collectstatic --noinput" in dockerfile
    assert re.search(r"^USER clusterpanel$", dockerfile, re.M)
    assert "requirements.txt" in dockerfile
