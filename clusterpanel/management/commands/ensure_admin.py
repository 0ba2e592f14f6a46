"""``manage.py ensure_admin``: create the first admin account once.

Prints the generated password a single time, framed in a box so that it stands out
after the migration lines (``manage.py serve`` and the compose ``migrate`` service run
this last); later runs do nothing while any superuser exists.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser

from clusterpanel.env import env_secret


def framed(lines: list[str]) -> str:
    """``lines`` in an ASCII box, which survives every terminal and log viewer."""
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 4) + "+"
    return "\n".join([rule, *(f"|  {line.ljust(width)}  |" for line in lines), rule])


class Command(BaseCommand):
    help = "Create an 'admin' superuser with a random password if no superuser exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(15)
        user = user_model.objects.create_superuser(options["username"], "", password)
        group = Group.objects.filter(name="admin").first()
        if group is not None:
            user.groups.add(group)
        lines = [
            "Created the first admin account. This password is shown only once:",
            "",
            f"  username: {user.username}",
            f"  password: {password}",
            "",
            "Log in and change it.",
        ]
        if not env_secret("CLUSTERPANEL_ENCRYPTION_KEYS"):
            lines += [
                f"Back up {settings.ENCRYPTION_KEYS_FILE} together with the database:",
                "without it the stored secrets cannot be read.",
            ]
        self.stdout.write("\n" + framed(lines) + "\n")
