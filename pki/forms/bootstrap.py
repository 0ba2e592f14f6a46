"""Forms for tokens, kubeadm settings and the static token file.

Forms only translate text boxes into the values ``pki.services.bootstrap`` validates, then put the
service's field errors back on the form's fields, so pages and the API say the same thing.
"""

from __future__ import annotations

from typing import Any

from django import forms

from clusterpanel.errors import InputError
from clusterpanel.web.forms import add_errors
from pki.domain import tokens as token_rules
from pki.services import bootstrap as bootstrap_services


class TokenForm(forms.Form):
    ttl = forms.CharField(
        initial="24h",
        label="TTL",
        help_text="A duration like 24h, 90m or 1h30m. 0 means the token never expires.",
    )
    description = forms.CharField(required=False, max_length=255)
    usages = forms.MultipleChoiceField(
        choices=[(usage, usage) for usage in token_rules.VALID_USAGES],
        initial=list(token_rules.DEFAULT_USAGES),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Joining needs both.",
    )
    groups = forms.CharField(
        required=False,
        initial=token_rules.DEFAULT_GROUP,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Extra groups, one per line (system:bootstrappers:…).",
    )
    token = forms.CharField(
        required=False,
        label="Token (optional)",
        help_text="Bring your own id.secret; left empty, one is generated.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.errors:
            return data
        try:
            data["request"] = bootstrap_services.validate_token_request(
                ttl=data.get("ttl", "").strip(),
                usages=data.get("usages") or [],
                groups=bootstrap_services.parse_groups(data.get("groups", "")),
                description=data.get("description", ""),
                token=data.get("token", "").strip() or None,
            )
        except InputError as error:
            add_errors(self, error)
        return data
