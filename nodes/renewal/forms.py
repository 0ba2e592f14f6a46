"""The renewal policy's form on the Alerts tab (admins only)."""

from __future__ import annotations

from django import forms

from nodes.renewal import policy

DAY_LABELS = dict(
    zip(policy.WEEKDAYS, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), strict=True)
)


class RenewalPolicyForm(forms.Form):
    enabled = forms.BooleanField(
        required=False,
        label="Renew and roll out on a schedule",
        help_text="Renews the kubeadm leaves in the panel and launches cert-rollout, inside the "
        "window, when they are due.",
    )
    days_before = forms.IntegerField(
        min_value=1,
        max_value=policy.MAX_DAYS_BEFORE,
        label="Renew with fewer days left than",
        help_text="Or once a leaf has passed two thirds of its lifetime.",
    )
    weekdays = forms.MultipleChoiceField(
        choices=list(DAY_LABELS.items()),
        widget=forms.CheckboxSelectMultiple,
        label="Window days",
    )
    start_hour = forms.IntegerField(min_value=0, max_value=23, label="Window starts (hour)")
    end_hour = forms.IntegerField(
        min_value=0,
        max_value=23,
        label="Window ends (hour)",
        help_text="Exclusive; at or before the start it ends the next day; equal: all day.",
    )
    time_zone = forms.CharField(
        max_length=64, label="Time zone", help_text="IANA name of the hours' zone (UTC, …)."
    )

    def clean_time_zone(self) -> str:
        value: str = self.cleaned_data["time_zone"].strip()
        try:
            policy.zone(value)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        return value
