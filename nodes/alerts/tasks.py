"""Celery tasks of alerts (beat names them in clusterpanel/celery.py)."""

from __future__ import annotations

from celery import shared_task

from nodes.alerts import expiry, services


@shared_task(name="nodes.deliver_alert", ignore_result=True)
def deliver_alert(delivery_id: int) -> None:
    services.attempt(delivery_id)


@shared_task(name="nodes.retry_alert_deliveries", ignore_result=True)
def retry_alert_deliveries() -> int:
    """Attempt every due pending delivery: catches deliveries whose task message was lost."""
    due = services.due_deliveries()
    for delivery_id in due:
        services.attempt(delivery_id)
    return len(due)


@shared_task(name="nodes.alert_certificate_expiry", ignore_result=True)
def alert_certificate_expiry() -> int:
    return expiry.alert_expiry_bands()
