"""``manage.py rotate_encryption_keys``: re-seal every secret under the first key: the
database's encrypted fields, and the sealed files the apps registered (``sealed_files``).

Run it after putting a new key first in CLUSTERPANEL_ENCRYPTION_KEYS (keeping the
old ones after it); when it finishes, the old keys can be removed.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction

from clusterpanel.security import crypto, sealed_files
from clusterpanel.security.fields import EncryptedTextField

BATCH = 500


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the newest (first) encryption key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count, change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        ring = crypto.keyring()
        total = 0
        for model in apps.get_models():
            fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            changed = self._rotate_model(model, fields, ring, options["dry_run"])
            total += changed
            self.stdout.write(f"{model._meta.label}: {changed} row(s) re-encrypted")
        files = 0
        for label, reseal in sealed_files.stores():
            count = reseal(ring, options["dry_run"])
            files += count
            self.stdout.write(f"{label}: {count} file(s) re-sealed")
        verb = "would re-encrypt" if options["dry_run"] else "re-encrypted"
        self.stdout.write(f"{verb} {total} row(s) and {files} file(s) under key {ring.primary}")

    def _rotate_model(
        self, model: Any, fields: list[EncryptedTextField], ring: crypto.KeyRing, dry_run: bool
    ) -> int:
        table = connection.ops.quote_name(model._meta.db_table)
        pk = connection.ops.quote_name(model._meta.pk.column)
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        changed = 0
        # Read the raw ciphertext so rows already under the primary key are skipped.
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {pk}, {columns} FROM {table}")  # noqa: S608 - names quoted
            rows = cursor.fetchall()
        stale = [
            row[0]
            for row in rows
            if any(value and ring.key_id_of(value) != ring.primary for value in row[1:])
        ]
        if dry_run:
            return len(stale)
        names = [f.name for f in fields]
        for start in range(0, len(stale), BATCH):
            with transaction.atomic():
                objs = list(model._base_manager.filter(pk__in=stale[start : start + BATCH]))
                # Reading decrypted with any key; saving encrypts with the primary.
                model._base_manager.bulk_update(objs, names)
                changed += len(objs)
        return changed
