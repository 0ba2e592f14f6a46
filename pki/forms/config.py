"""Forms of the Configuration tab: kubeadm settings and the static token file.

Forms only translate text boxes into the values ``pki.services.bootstrap`` validates, then put the
service's field errors back on the form's fields, so pages and the API say the same thing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from clusterpanel.errors import InputError
from clusterpanel.web.forms import add_errors
from pki.domain import principals
from pki.models.kubeadm_settings import ClusterKubeadmSettings
from pki.services import bootstrap as bootstrap_services


def _args_to_text(args: dict[str, str]) -> str:
    return "\n".join(f"{name}={value}" for name, value in args.items())


class ArgsField(forms.CharField):
    """``flag=value`` per line → dict. Syntax problems are reported here; flag names and values
    are checked by the service so the messages match the API's."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})

    def to_python(self, value: Any) -> dict[str, str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        args: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            name, equals, flag_value = line.strip().partition("=")
            if not equals:
                raise ValidationError(f"line {number}: write flag=value (without dashes)")
            if name in args:
                raise ValidationError(f"line {number}: flag {name!r} is given twice")
            args[name] = flag_value
        return args


class KubeadmSettingsForm(forms.Form):
    apiserver_extra_args = ArgsField(required=False, label="kube-apiserver extra args")
    controller_manager_extra_args = ArgsField(
        required=False, label="kube-controller-manager extra args"
    )
    scheduler_extra_args = ArgsField(required=False, label="kube-scheduler extra args")
    etcd_extra_args = ArgsField(required=False, label="etcd extra args (stacked etcd)")
    kubelet_extra_args = ArgsField(required=False, label="kubelet extra args")
    audit_enabled = forms.BooleanField(required=False, label="Audit log on")
    audit_policy = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        label="Audit policy",
        strip=False,
    )

    @classmethod
    def for_settings(
        cls, settings: ClusterKubeadmSettings, data: Any = None
    ) -> KubeadmSettingsForm:
        initial: dict[str, str | bool] = {
            name: _args_to_text(getattr(settings, name))
            for name in bootstrap_services.EXTRA_ARG_COMPONENTS
        }
        initial["audit_enabled"] = settings.audit_enabled
        initial["audit_policy"] = settings.audit_policy
        return cls(data, initial=initial)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.errors:
            return data
        try:
            return bootstrap_services.validate_settings(data)
        except InputError as error:
            add_errors(self, error)
        return data


class StaticTokenForm(forms.Form):
    """Checked by ``pki.services.bootstrap.add_static_token`` with the panel's rules for token
    values, user names, uids and group names (``pki.domain.principals``)."""

    token = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        strip=False,
        max_length=principals.MAX_TOKEN_LENGTH,
    )
    user = forms.CharField(max_length=principals.MAX_USER_NAME)
    uid = forms.CharField(max_length=principals.MAX_USER_NAME, label="UID")
    groups = forms.CharField(required=False, max_length=4096, help_text="Comma-separated.")


class StaticTokenImportForm(forms.Form):
    csv = forms.CharField(
        required=False,
        strip=False,
        label="tokens.csv",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="Paste the file, or upload it below.",
    )
    file = forms.FileField(required=False, label="…or upload the file")
    replace = forms.BooleanField(required=False, label="Replace the stored entries")

    MAX_BYTES = 1024 * 1024

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        upload = data.get("file")
        if upload is not None:
            if upload.size > self.MAX_BYTES:
                self.add_error("file", "the file is larger than 1 MiB")
                return data
            try:
                data["csv"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                self.add_error("file", "the file is not UTF-8 text")
                return data
        if not data.get("csv"):
            self.add_error("csv", "paste a token file or upload one")
        return data
