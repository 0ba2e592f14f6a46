"""Model fields whose values are encrypted at rest by ``clusterpanel.crypto``."""

from __future__ import annotations

from typing import Any

from django.db import models

from clusterpanel.security import crypto


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    """A text field stored as AES-GCM ciphertext; reads return the plain text.

    An empty string is stored as empty (there is no secret to hide), so "not set"
    stays visible to queries such as ``filter(ssh_password="")``.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(str(value))
