"""The page's form of a binary install's layout settings; ``pki.services.binary_settings`` checks
the values, so the page and the API give the same messages."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from clusterpanel.errors import InputError
from clusterpanel.web.forms import add_errors
from pki.domain import binary_rules
from pki.models.binary_settings import ClusterBinarySettings, KubeProxyMode
from pki.services import binary_settings

_PROFILES_TEXT = 16 * 1024


class BinarySettingsForm(forms.Form):
    install_prefix = forms.CharField(max_length=binary_rules.MAX_PATH, label="Install prefix")
    cert_dir = forms.CharField(max_length=binary_rules.MAX_PATH, label="Certificate directory")
    config_dir = forms.CharField(max_length=binary_rules.MAX_PATH, label="Configuration directory")
    etcd_data_dir = forms.CharField(max_length=binary_rules.MAX_PATH, label="etcd data directory")
    service_user = forms.CharField(max_length=32, label="Service user")
    kube_proxy_mode = forms.ChoiceField(choices=KubeProxyMode.choices, label="kube-proxy mode")
    ipvs_scheduler = forms.ChoiceField(
        choices=[(s, s) for s in binary_rules.IPVS_SCHEDULERS], label="ipvs scheduler"
    )
    service_node_port_range = forms.CharField(max_length=32, label="NodePort range")
    signing_profiles = forms.CharField(
        required=False,
        max_length=_PROFILES_TEXT,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
        label="Signing profiles",
        help_text='cfssl\'s signing.profiles as JSON: {"server": {"usages": [...], '
        '"expiry": "175200h"}, "client": …, "peer": …}.',
    )
    ca_config = forms.CharField(
        required=False,
        max_length=binary_rules.MAX_CA_CONFIG,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        label="Import a ca-config.json",
        help_text="Paste an existing cfssl ca-config.json (or upload it below): its "
        "signing.profiles replace the profiles above.",
    )
    ca_config_file = forms.FileField(required=False, label="ca-config.json file")

    @classmethod
    def for_settings(
        cls, settings: ClusterBinarySettings, data: Any = None, files: Any = None
    ) -> BinarySettingsForm:
        initial: dict[str, Any] = {name: getattr(settings, name) for name in binary_settings.FIELDS}
        initial["signing_profiles"] = json.dumps(settings.signing_profiles, indent=2)
        return cls(data, files, initial=initial)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.errors:
            return data
        upload = data.pop("ca_config_file", None)
        if upload is not None:
            if upload.size > binary_rules.MAX_CA_CONFIG:
                self.add_error("ca_config_file", "a ca-config.json is at most 64 KiB")
                return data
            try:
                data["ca_config"] = upload.read().decode()
            except UnicodeDecodeError:
                self.add_error("ca_config_file", "the file is not UTF-8 text")
                return data
        values = {name: data[name] for name in binary_settings.FIELDS if name != "signing_profiles"}
        if data.get("ca_config"):
            values["ca_config"] = data["ca_config"]
        else:
            try:
                values["signing_profiles"] = json.loads(data.get("signing_profiles") or "{}")
            except ValueError as error:
                self.add_error("signing_profiles", f"not JSON: {error}")
                return data
        try:
            binary_settings.validate(values)
        except InputError as error:
            add_errors(self, error)
        self.values = values
        return data
