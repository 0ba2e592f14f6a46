"""A cluster's renewal policy: off unless an admin turns it on (absent row = off, defaults).

Beat acts on behalf of ``acting_user``, the admin who last saved the policy: the renewal and
the rollout are audited under that name (``via=schedule``), and they stop (with an alert) when
that account no longer holds the role to roll out control-plane certificates. The row is also
the lock that keeps two beat ticks from renewing and launching twice for one due period.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from clusterpanel.validators import ListLimit
from nodes.renewal import policy


def default_weekdays() -> list[str]:
    return ["mon", "tue", "wed", "thu", "fri"]


def _validate_weekdays(value: Any) -> None:
    try:
        policy.weekdays(value)
    except ValueError as error:
        raise ValidationError(str(error), code="bad_value") from None


def _validate_time_zone(value: Any) -> None:
    try:
        policy.zone(str(value))
    except ValueError as error:
        raise ValidationError(str(error), code="bad_value") from None


class RenewalPolicy(models.Model):
    cluster = models.OneToOneField(
        "nodes.Cluster", on_delete=models.CASCADE, related_name="renewal_policy"
    )
    enabled = models.BooleanField(
        default=False, help_text="Renew and roll out the cluster's certificates on a schedule."
    )
    days_before = models.PositiveIntegerField(
        default=policy.DEFAULT_DAYS_BEFORE,
        validators=[MinValueValidator(1), MaxValueValidator(policy.MAX_DAYS_BEFORE)],
        help_text="Renew when the soonest leaf has fewer days left than this (or has passed "
        "two thirds of its lifetime).",
    )
    weekdays = models.JSONField(
        default=default_weekdays,
        validators=[ListLimit(len(policy.WEEKDAYS), 3), _validate_weekdays],
        help_text="Days of the maintenance window (mon … sun).",
    )
    start_hour = models.PositiveSmallIntegerField(
        default=2,
        validators=[MaxValueValidator(23)],
        help_text="First hour of the window (0-23), in the window's time zone.",
    )
    end_hour = models.PositiveSmallIntegerField(
        default=6,
        validators=[MaxValueValidator(23)],
        help_text="Hour the window ends (0-23, exclusive); at or before the start it ends the "
        "next day; equal to the start, the window is the whole day.",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[_validate_time_zone],
        help_text="IANA time zone of the window's hours (UTC, Europe/Berlin …).",
    )
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_reason = models.CharField(max_length=300, blank=True)
    last_job = models.ForeignKey(
        "clusterpanel.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_error = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "renewal policies"

    def __str__(self) -> str:
        return f"renewal policy of {self.cluster_id}"

    def window(self) -> policy.Window:
        return policy.Window(
            frozenset(self.weekdays), self.start_hour, self.end_hour, self.time_zone
        )
