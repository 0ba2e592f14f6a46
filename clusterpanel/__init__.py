"""clusterpanel: a control panel for self-hosted Kubernetes clusters."""

from __future__ import annotations

from clusterpanel.celery import app as celery_app

__all__ = ["celery_app"]
