"""App configuration: loads the Celery app and connects the audit signal handlers."""

from __future__ import annotations

from django.apps import AppConfig


class ClusterpanelConfig(AppConfig):
    name = "clusterpanel"
    verbose_name = "Panel"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # The Celery app, loaded here rather than in the package so that ``clusterpanel.errors``
        # stays importable without Celery; shared tasks bind to it in every Django process.
        from clusterpanel import celery  # noqa: F401
        from clusterpanel.api import schema  # noqa: F401 - registers the OpenAPI extension
        from clusterpanel.jobs import signals as job_signals
        from clusterpanel.security import signals

        # After every app's migrations, not only this app's: the permissions of nodes and pki
        # are created when their own post_migrate runs, after this app's.
        post_migrate.connect(
            signals.grant_admin_site_permissions,
            dispatch_uid="clusterpanel.grant_admin_site_permissions",
        )
        job_signals.connect()
