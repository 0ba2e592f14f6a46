from __future__ import annotations

from django.apps import AppConfig


class PkiConfig(AppConfig):
    name = "pki"
    verbose_name = "PKI"

    def ready(self) -> None:
        from pki import token_admin  # noqa: F401 - registers the token admin classes
