"""API bodies of a cluster's alert settings and renewal policy (the views are actions of the
cluster viewset). Each write goes through the same service as the Alerts tab's forms."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from clusterpanel.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
)
from nodes.alerts.models import AlertSettings
from nodes.renewal import policy
from nodes.renewal.models import RenewalPolicy
from nodes.rules import alert_targets


class AlertSettingsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    webhook_url = StrictCharField(
        max_length=2000,
        allow_blank=True,
        help_text='http(s) URL that receives each alert as a signed JSON POST ("" for none). '
        "Hosts that are or resolve to loopback, link-local, private or metadata addresses are "
        "refused unless listed in CLUSTERPANEL_ALERT_WEBHOOK_ALLOWED_HOSTS.",
    )
    webhook_secret = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=512,
        trim_whitespace=False,
        help_text="Signs each body (X-Clusterpanel-Signature). Left out: the stored secret is "
        'kept; "": it is removed. Never answered.',
    )
    email_recipients = serializers.ListField(
        child=StrictCharField(max_length=254),
        max_length=alert_targets.MAX_RECIPIENTS,
        help_text="Addresses that receive each alert by e-mail.",
    )
    has_webhook_secret = serializers.BooleanField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def validate_email_recipients(self, value: list[str]) -> list[str]:
        try:
            return alert_targets.email_recipients(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None

    @staticmethod
    def answer(config: AlertSettings) -> dict[str, Any]:
        return {
            "webhook_url": config.webhook_url,
            "email_recipients": list(config.email_recipients),
            "has_webhook_secret": bool(config.webhook_secret),
            "updated_at": config.updated_at if config.pk else None,
        }


class RenewalPolicySerializer(serializers.Serializer):  # type: ignore[type-arg]
    enabled = StrictBooleanField(help_text="Renew and roll out on a schedule (off by default).")
    days_before = StrictIntegerField(
        min_value=1,
        max_value=policy.MAX_DAYS_BEFORE,
        help_text="Renew when the soonest leaf has fewer days left (or has passed two thirds of "
        "its lifetime).",
    )
    weekdays = serializers.ListField(
        child=StrictChoiceField(choices=list(policy.WEEKDAYS)),
        min_length=1,
        max_length=len(policy.WEEKDAYS),
        help_text="Days of the maintenance window.",
    )
    start_hour = StrictIntegerField(
        min_value=0, max_value=23, help_text="The window's first hour, in its time zone."
    )
    end_hour = StrictIntegerField(
        min_value=0,
        max_value=23,
        help_text="The hour the window ends (exclusive); at or before the start it ends the "
        "next day; equal to the start, the whole day.",
    )
    time_zone = StrictCharField(max_length=64, help_text="IANA time zone of the hours (UTC).")
    window = serializers.CharField(read_only=True)
    acting_user = serializers.CharField(
        read_only=True, help_text="The admin on whose behalf beat renews and rolls out."
    )
    last_run_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_reason = serializers.CharField(read_only=True)
    last_job = serializers.IntegerField(read_only=True, allow_null=True)
    last_error = serializers.CharField(read_only=True)

    def validate_time_zone(self, value: str) -> str:
        try:
            policy.zone(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None
        return value

    @staticmethod
    def answer(row: RenewalPolicy) -> dict[str, Any]:
        return {
            "enabled": row.enabled,
            "days_before": row.days_before,
            "weekdays": list(row.weekdays),
            "start_hour": row.start_hour,
            "end_hour": row.end_hour,
            "time_zone": row.time_zone,
            "window": policy.describe(row.window()),
            "acting_user": row.acting_user.get_username() if row.acting_user else "",
            "last_run_at": row.last_run_at,
            "last_reason": row.last_reason,
            "last_job": row.last_job_id,
            "last_error": row.last_error,
        }
