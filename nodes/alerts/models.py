"""Where a cluster's alerts go, and every delivery with its attempts.

A delivery is unique per cluster, key and channel: the key names the event (an expiry band of one
certificate, one health transition), so sending the same alert twice is an insert that fails and
sends nothing. The database row is the truth; Celery messages only trigger attempts.
"""

from __future__ import annotations

from django.core.validators import MaxLengthValidator
from django.db import models
from django.utils import timezone

from clusterpanel.security.fields import EncryptedTextField
from clusterpanel.validators import ListLimit
from nodes import validators
from nodes.rules import alert_targets


class AlertSettings(models.Model):
    """A cluster's alert targets. The webhook secret is write-only: never shown or echoed."""

    cluster = models.OneToOneField(
        "nodes.Cluster", on_delete=models.CASCADE, related_name="alert_settings"
    )
    webhook_url = models.CharField(
        max_length=2000,
        blank=True,
        validators=[validators.validate_webhook_url],
        help_text="http(s) URL that receives each alert as a signed JSON POST.",
    )
    webhook_secret = EncryptedTextField(
        blank=True,
        validators=[MaxLengthValidator(512)],
        help_text="Signs each body: X-Clusterpanel-Signature: sha256=<HMAC-SHA256 hex>.",
    )
    email_recipients = models.JSONField(
        default=list,
        blank=True,
        validators=[
            ListLimit(alert_targets.MAX_RECIPIENTS, 254),
            validators.validate_email_recipients,
        ],
        help_text="Addresses that receive each alert by e-mail.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"alert settings of {self.cluster_id}"


class AlertChannel(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    EMAIL = "email", "E-mail"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class AlertDelivery(models.Model):
    """One alert to one channel of one cluster: what, to whom, and how each attempt went."""

    cluster = models.ForeignKey(
        "nodes.Cluster", on_delete=models.CASCADE, related_name="alert_deliveries"
    )
    key = models.CharField(max_length=200)
    channel = models.CharField(max_length=8, choices=AlertChannel.choices)
    target = models.TextField(help_text="The webhook URL or the e-mail addresses, as sent to.")
    subject = models.CharField(max_length=255)
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # One entry per attempt: {"at": ISO time, "ok": bool, "detail": status or error}.
    attempt_log = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "alert deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "key", "channel"], name="one_alert_delivery_per_key"
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="alert_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.key} via {self.channel}"


class ExpiryNotice(models.Model):
    """A certificate's expiry band, announced: one row per cluster and key (``expiry:<kind>:
    <id>:band:<days>``), written with the digest that announced it, so a band is announced once
    however many digests (runs) follow."""

    cluster = models.ForeignKey(
        "nodes.Cluster", on_delete=models.CASCADE, related_name="expiry_notices"
    )
    key = models.CharField(max_length=200)
    digest_key = models.CharField(max_length=200, help_text="The alert that listed it.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "key"], name="one_expiry_notice_per_key")
        ]

    def __str__(self) -> str:
        return self.key
