"""``manage.py ensure_admin``: create the first admin account once.

Prints the generated password a single time; later runs do nothing while any
superuser exists.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser


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
        self.stdout.write(
            "Created the first admin account. This password is shown only once:\n"
            f"  username: {user.username}\n  password: {password}\n"
        )
