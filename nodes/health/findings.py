"""Findings and scanned certificates: what the certificate scan found on the nodes.

A finding is open while ``resolved_at`` is empty; at most one open finding per (cluster, node,
kind, path) — a re-scan that finds the same thing again moves its ``last_seen`` (and its
severity and message, a certificate going from one band into the next), one that no longer
finds it resolves it. A silence hides a finding from the open list until its end time.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class FindingQuerySet(models.QuerySet["Finding"]):
    def open(self) -> FindingQuerySet:
        return self.filter(resolved_at__isnull=True)

    def unsilenced(self) -> FindingQuerySet:
        now = timezone.now()
        return self.filter(
            models.Q(silenced_until__isnull=True) | models.Q(silenced_until__lte=now)
        )


class Finding(models.Model):
    cluster = models.ForeignKey("nodes.Cluster", on_delete=models.CASCADE, related_name="findings")
    # Empty for a finding about several nodes (keys that differ between control-plane nodes).
    node = models.ForeignKey(
        "nodes.Node", null=True, blank=True, on_delete=models.CASCADE, related_name="findings"
    )
    kind = models.CharField(max_length=32)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    path = models.CharField(max_length=512)
    message = models.CharField(max_length=1000)
    suggestion = models.CharField(max_length=300, blank=True)
    action_kind = models.CharField(
        max_length=64, blank=True, help_text="The job kind that fixes it."
    )
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    silenced_until = models.DateTimeField(null=True, blank=True)

    objects = FindingQuerySet.as_manager()

    class Meta:
        ordering = ["resolved_at", "-last_seen", "pk"]
        indexes = [
            models.Index(fields=["cluster", "resolved_at", "severity"], name="finding_open"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "node", "kind", "path"],
                condition=models.Q(resolved_at__isnull=True, node__isnull=False),
                name="one_open_finding_per_node_file",
            ),
            models.UniqueConstraint(
                fields=["cluster", "kind", "path"],
                condition=models.Q(resolved_at__isnull=True, node__isnull=True),
                name="one_open_cluster_finding_per_file",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.severity} {self.kind} {self.path}"

    @property
    def silenced(self) -> bool:
        return self.silenced_until is not None and self.silenced_until > timezone.now()


class ScannedCertificate(models.Model):
    """One certificate as the newest scan of its node read it (a node's rows are replaced by
    each successful scan of that node)."""

    cluster = models.ForeignKey(
        "nodes.Cluster", on_delete=models.CASCADE, related_name="scanned_certificates"
    )
    node = models.ForeignKey(
        "nodes.Node", on_delete=models.CASCADE, related_name="scanned_certificates"
    )
    path = models.CharField(max_length=512)
    subject = models.CharField(max_length=1000)
    issuer = models.CharField(max_length=1000, blank=True)
    sans = models.JSONField(default=list, blank=True)
    not_after = models.DateTimeField()
    fingerprint = models.CharField(max_length=95)
    scanned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["not_after", "pk"]
        indexes = [models.Index(fields=["not_after"], name="scanned_cert_expiry")]
        constraints = [
            models.UniqueConstraint(fields=["node", "path"], name="one_scanned_cert_per_file")
        ]

    def __str__(self) -> str:
        return f"{self.path} on {self.node_id}"
