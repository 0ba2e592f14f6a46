"""Forms of the PKI pages. They collect input; the checks live in ``pki.services.certificates``."""

from __future__ import annotations

from typing import Any

from django import forms

from clusterpanel.api.params import MAX_ID
from clusterpanel.errors import InputError
from nodes.models import Node, NodeRole
from nodes.rules import validation
from nodes.rules.validation import MAX_VALIDITY_DAYS
from pki.models.certificates import CAName

# Uploads are PEM files and small archives.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


class PKIForm(forms.Form):
    """Adds ``apply_error``: a service refusal shown on the field it names."""

    def apply_error(self, exc: InputError) -> None:
        for name, messages in exc.errors.items():
            target = name if name in self.fields else None
            for message in messages:
                self.add_error(target, message)

    def file_or_text(self, file_field: str, text_field: str | None = None) -> bytes:
        """Bytes of an uploaded file, else of a pasted text (validated as present)."""
        upload = self.cleaned_data.get(file_field)
        if upload is not None:
            return bytes(upload.read())
        text = self.cleaned_data.get(text_field or "", "") if text_field else ""
        return str(text).encode()

    def _require_one(self, cleaned: dict[str, Any], file_field: str, text_field: str) -> None:
        if not cleaned.get(file_field) and not str(cleaned.get(text_field) or "").strip():
            self.add_error(file_field, "Upload a file or paste its content.")


def _check_size(upload: Any) -> Any:
    if upload is not None and upload.size > MAX_UPLOAD_BYTES:
        raise forms.ValidationError("The file is larger than 10 MiB.")
    return upload


class SanCheckForm(PKIForm):
    host = forms.CharField(max_length=253, label="Host name or IP")
    certificate = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, widget=forms.HiddenInput
    )

    def clean_host(self) -> str:
        try:
            return validation.host(str(self.cleaned_data.get("host") or ""))
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


class InspectForm(PKIForm):
    pem = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 8}), label="PEM certificate"
    )
    pem_file = forms.FileField(required=False, label="…or upload a .crt/.pem file")

    def clean_pem_file(self) -> Any:
        return _check_size(self.cleaned_data.get("pem_file"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self._require_one(cleaned, "pem_file", "pem")
        return cleaned


class KubeadmImportForm(PKIForm):
    archive = forms.FileField(
        help_text="tar.gz, tar or zip of /etc/kubernetes or of /etc/kubernetes/pki."
    )
    node: forms.ModelChoiceField[Node] = forms.ModelChoiceField(
        queryset=None,
        required=False,
        help_text="The control-plane node the tree comes from, to import its own certificates.",
    )

    def __init__(self, *args: Any, cluster: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["node"].queryset = cluster.nodes.filter(role=NodeRole.CONTROL_PLANE)  # type: ignore[attr-defined]

    def clean_archive(self) -> Any:
        return _check_size(self.cleaned_data.get("archive"))


class CfsslCAForm(PKIForm):
    name = forms.ChoiceField(choices=CAName.choices, initial=CAName.CA, label="Use as")
    ca_pem = forms.FileField(label="ca.pem")
    ca_key_pem = forms.FileField(label="ca-key.pem")

    def clean_ca_pem(self) -> Any:
        return _check_size(self.cleaned_data.get("ca_pem"))

    def clean_ca_key_pem(self) -> Any:
        return _check_size(self.cleaned_data.get("ca_key_pem"))


class CfsslCsrForm(PKIForm):
    name = forms.ChoiceField(choices=CAName.choices, initial=CAName.CA, label="Use as")
    ca_csr = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        label="ca-csr.json",
        help_text='cfssl CSR JSON, e.g. {"CN": "kubernetes", "key": {"algo": "rsa", "size": 2048}}',
    )


class KubeconfigForm(PKIForm):
    """A user's own kubeconfig, like ``kubeadm kubeconfig user --client-name``."""

    username = forms.CharField(
        max_length=48,
        label="User name",
        help_text="The client certificate's CN: the user name RBAC sees.",
    )
    groups = forms.CharField(
        required=False,
        max_length=1000,
        label="Groups",
        help_text=(
            "Comma or space separated (the certificate's O). system:masters is refused; "
            "kubeadm:cluster-admins, node and other system: groups only to admins."
        ),
    )
    validity = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_VALIDITY_DAYS,
        label="Validity (days)",
        help_text="Empty: the cluster's certificate validity. It must end before the CA does.",
    )

    def clean_groups(self) -> list[str]:
        text = str(self.cleaned_data.get("groups") or "")
        return [group for group in text.replace(",", " ").split() if group]
