"""The alert settings form. The webhook secret is write-only: never rendered, blank keeps it."""

from __future__ import annotations

from typing import Any

from django import forms

from nodes.alerts import webhook_guard
from nodes.rules import alert_targets


class AlertSettingsForm(forms.Form):
    webhook_url = forms.CharField(
        required=False,
        max_length=2000,
        label="Webhook URL",
        help_text="http(s) URL that receives each alert as a signed JSON POST.",
    )
    webhook_secret = forms.CharField(
        required=False,
        max_length=512,
        strip=False,
        label="Webhook secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Signs each body (X-Clusterpanel-Signature: sha256=<HMAC-SHA256>). "
        "Blank keeps the stored secret.",
    )
    clear_webhook_secret = forms.BooleanField(required=False, label="Remove the stored secret")
    email_recipients = forms.CharField(
        required=False,
        max_length=8000,
        label="E-mail recipients",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One address per line (or separated by commas).",
    )

    def clean_webhook_url(self) -> str:
        value: str = self.cleaned_data["webhook_url"].strip()
        if value:
            try:
                webhook_guard.check_for_saving(value)
            except ValueError as error:
                raise forms.ValidationError(str(error)) from None
        return value

    def clean_email_recipients(self) -> list[str]:
        addresses = alert_targets.split_recipients(self.cleaned_data["email_recipients"])
        try:
            return alert_targets.email_recipients(addresses)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None

    def secret(self) -> str | None:
        """The secret to store: None keeps the stored one, "" removes it."""
        data: dict[str, Any] = self.cleaned_data
        if data.get("clear_webhook_secret"):
            return ""
        return data.get("webhook_secret") or None
