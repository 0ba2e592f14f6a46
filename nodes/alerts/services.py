"""Alert delivery: ``notify`` records one delivery per configured channel, once per key; the
``nodes.deliver_alert`` task attempts it, retrying a failure with exponential backoff.

Each attempt is claimed with a conditional update (the attempt count it read), so two messages
for the same delivery (a retry and a sweep, a redelivered message) never send it twice at once;
the network call runs outside any transaction.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from clusterpanel.errors import InputError
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes.alerts import signing, transport, webhook_guard
from nodes.alerts.models import AlertChannel, AlertDelivery, AlertSettings, DeliveryStatus
from nodes.models import Cluster

log = logging.getLogger(__name__)

# How long a claimed attempt keeps others away: longer than one request may take.
_LEASE_SLACK = 60


def settings_of(cluster: Cluster) -> AlertSettings:
    """The cluster's alert settings (unsaved and empty when none were stored)."""
    found = AlertSettings.objects.filter(cluster=cluster).first()
    return found if found is not None else AlertSettings(cluster=cluster)


def channels(config: AlertSettings) -> list[tuple[str, str]]:
    targets = []
    if config.webhook_url:
        targets.append((AlertChannel.WEBHOOK.value, config.webhook_url))
    if config.email_recipients:
        targets.append((AlertChannel.EMAIL.value, ", ".join(config.email_recipients)))
    return targets


def notify(
    cluster: Cluster,
    key: str,
    subject: str,
    payload: dict[str, Any],
    *,
    config: AlertSettings | None = None,
) -> list[AlertDelivery]:
    """Send an alert on every channel of the cluster, once per ``key``.

    The deliveries created now (none when the key was sent before, or when the cluster has no
    alert targets); each is attempted by a task sent when the surrounding transaction commits.
    ``config`` is the cluster's settings when the caller has loaded them already.
    """
    created = []
    for channel, target in channels(config or settings_of(cluster)):
        try:
            with transaction.atomic():
                delivery = AlertDelivery.objects.create(
                    cluster=cluster,
                    key=key[:200],
                    channel=channel,
                    target=target,
                    subject=subject[:255],
                    payload=payload,
                    next_attempt_at=timezone.now(),
                )
        except IntegrityError:
            continue  # this key went out on this channel before
        created.append(delivery)
        transaction.on_commit(functools.partial(_dispatch, delivery.pk))
    return created


def _dispatch(delivery_id: int, countdown: int = 0) -> None:
    from nodes.alerts.tasks import deliver_alert

    try:
        deliver_alert.apply_async(args=[delivery_id], countdown=countdown)
    except Exception:  # the retry sweep sends it later; the row is the truth
        log.exception("alert delivery %s: could not queue its task", delivery_id)


def envelope(delivery: AlertDelivery, cluster: Cluster) -> dict[str, Any]:
    """The webhook body: the same bytes on every attempt."""
    return {
        "delivery": delivery.pk,
        "key": delivery.key,
        "subject": delivery.subject,
        "cluster": {"id": cluster.pk, "name": cluster.name},
        "created_at": delivery.created_at.isoformat(),
        "payload": delivery.payload,
    }


def _email_text(delivery: AlertDelivery, cluster: Cluster) -> str:
    lines = delivery.payload.get("lines") if isinstance(delivery.payload, dict) else None
    listed = "".join(f"- {line}\n" for line in lines) + "\n" if isinstance(lines, list) else ""
    return (
        f"{delivery.subject}\n\nCluster: {cluster.name}\nAlert: {delivery.key}\n\n"
        + listed
        + json.dumps(delivery.payload, indent=2, sort_keys=True)
        + "\n"
    )


def _send(delivery: AlertDelivery) -> str:
    cluster = delivery.cluster
    if delivery.channel == AlertChannel.WEBHOOK:
        secret = settings_of(cluster).webhook_secret or ""
        data = signing.body(envelope(delivery, cluster))
        headers = {"X-Clusterpanel-Delivery": str(delivery.pk), "X-Clusterpanel-Key": delivery.key}
        return transport.post_webhook(delivery.target, secret, data, headers)
    recipients = [item.strip() for item in delivery.target.split(",") if item.strip()]
    subject = f"[clusterpanel] {cluster.name}: {delivery.subject}"
    return transport.send_email(recipients, subject, _email_text(delivery, cluster))


def backoff(attempts: int) -> int:
    """Seconds before attempt ``attempts + 1``: RETRY_SECONDS, doubled per failed attempt."""
    return int(settings.CLUSTERPANEL_ALERT_RETRY_SECONDS * 2 ** max(attempts - 1, 0))


def attempt(delivery_id: int) -> AlertDelivery | None:
    """One attempt of a pending, due delivery; None when there is nothing to do (delivered,
    given up, not due yet, or claimed by another attempt)."""
    now = timezone.now()
    delivery = AlertDelivery.objects.select_related("cluster").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return None
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        return None
    lease = now + timedelta(seconds=settings.CLUSTERPANEL_ALERT_TIMEOUT + _LEASE_SLACK)
    claimed = AlertDelivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts
    ).update(attempts=delivery.attempts + 1, next_attempt_at=lease)
    if not claimed:
        return None
    delivery.attempts += 1
    try:
        detail = _send(delivery)
    except transport.DeliveryError as error:
        return _record(delivery, ok=False, detail=str(error))
    return _record(delivery, ok=True, detail=detail)


def _record(delivery: AlertDelivery, *, ok: bool, detail: str) -> AlertDelivery:
    now = timezone.now()
    delivery.attempt_log = [
        *delivery.attempt_log,
        {"attempt": delivery.attempts, "at": now.isoformat(), "ok": ok, "detail": detail},
    ]
    if ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif delivery.attempts >= settings.CLUSTERPANEL_ALERT_MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.FAILED
        delivery.last_error = detail
        delivery.next_attempt_at = None
    else:
        delivery.last_error = detail
        delivery.next_attempt_at = now + timedelta(seconds=backoff(delivery.attempts))
    delivery.save(
        update_fields=[
            "attempt_log",
            "status",
            "delivered_at",
            "next_attempt_at",
            "last_error",
        ]
    )
    if not ok:
        log.warning(
            "alert %s via %s: attempt %s failed: %s",
            delivery.key,
            delivery.channel,
            delivery.attempts,
            detail,
        )
        if delivery.status == DeliveryStatus.PENDING:
            _dispatch(delivery.pk, countdown=backoff(delivery.attempts))
    return delivery


def due_deliveries(limit: int = 500) -> list[int]:
    """Pending deliveries whose next attempt is due (for the sweep that survives lost messages)."""
    now = timezone.now()
    due = AlertDelivery.objects.filter(status=DeliveryStatus.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    return list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


@transaction.atomic
def send_test_alert(actor: Actor, cluster: Cluster) -> list[AlertDelivery]:
    """A test alert on every channel of the cluster (a fresh key each time), audited."""
    key = f"test:{uuid.uuid4().hex}"
    who = actor.user.get_username() if actor.user is not None else "clusterpanel"
    deliveries = notify(
        cluster,
        key,
        "Test alert",
        {"kind": "test", "message": f"Test alert sent by {who}."},
    )
    audit.record(
        "alert.test",
        actor,
        obj=cluster,
        details={"key": key, "channels": [d.channel for d in deliveries]},
    )
    return deliveries


@transaction.atomic
def update_alert_settings(
    actor: Actor,
    cluster: Cluster,
    *,
    webhook_url: str,
    email_recipients: list[str],
    webhook_secret: str | None = None,
) -> AlertSettings:
    """Store the cluster's alert targets; ``webhook_secret`` None keeps the stored one and ""
    clears it. The audit event says whether the secret changed, never its value. The Alerts
    tab and the API both save through here: a URL pointing at an internal address is refused
    (``InputError`` naming ``webhook_url``) whichever door it came through."""
    if webhook_url:
        try:
            webhook_guard.check_for_saving(webhook_url)
        except ValueError as error:
            raise InputError(str(error), "webhook_url") from None
    config = settings_of(cluster)
    config.webhook_url = webhook_url
    config.email_recipients = email_recipients
    secret_changed = webhook_secret is not None and webhook_secret != (config.webhook_secret or "")
    if webhook_secret is not None:
        config.webhook_secret = webhook_secret
    config.full_clean()
    config.save()
    audit.record(
        "alert_settings.update",
        actor,
        obj=cluster,
        details={
            "webhook_url": webhook_url,
            "email_recipients": email_recipients,
            "webhook_secret_changed": secret_changed,
        },
    )
    return config
