"""App configuration: connects the audit signal handlers."""

from __future__ import annotations

from django.apps import AppConfig


class ClusterpanelConfig(AppConfig):
    name = "clusterpanel"
    verbose_name = "Panel"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from clusterpanel.api import schema  # noqa: F401 - registers the OpenAPI extension
        from clusterpanel.security import signals

        post_migrate.connect(signals.grant_admin_site_permissions, sender=self)
