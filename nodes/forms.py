"""Forms for clusters and nodes. Validation lives on the models; forms only
translate between text boxes and the models' lists and maps."""

from __future__ import annotations

from typing import Any

from django import forms

from nodes.models import CLUSTER_SETTINGS, Cluster, Node
from nodes.rules import validation
from nodes.rules.credentials import CredentialError, credential_changes

# A text box of list entries: room for the most entries the model takes, at their longest.
_LIST_TEXT = 64 * 1024


class SecretTextarea(forms.Textarea):
    """A textarea that never renders its value, so a re-shown form cannot echo a key."""

    def format_value(self, value: Any) -> str | None:
        return None


def _lines(text: str) -> list[str]:
    items: list[str] = []
    for line in text.replace(",", "\n").splitlines():
        if line.strip():
            items.append(line.strip())
    return items


class ClusterForm(forms.ModelForm):  # type: ignore[type-arg]
    extra_sans = forms.CharField(
        required=False,
        max_length=_LIST_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Extra API server certificate names or IPs, one per line.",
        label="Extra certificate SANs",
    )

    class Meta:
        model = Cluster
        fields = CLUSTER_SETTINGS
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        # Acronyms and program names as they are written, not as Django capitalises field names.
        labels = {
            "control_plane_endpoint": "Control-plane endpoint",
            "dns_domain": "DNS domain",
            "etcd_topology": "etcd topology",
            "ca_validity_days": "CA validity days",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["extra_sans"] = "\n".join(self.instance.extra_sans)

    def clean_extra_sans(self) -> list[str]:
        return _lines(self.cleaned_data.get("extra_sans") or "")


class NodeForm(forms.ModelForm):  # type: ignore[type-arg]
    """Adds or edits a node. Credentials are write-only: blank keeps the stored one."""

    labels = forms.CharField(
        required=False,
        max_length=_LIST_TEXT,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One key=value per line.",
    )
    taints = forms.CharField(
        required=False,
        max_length=_LIST_TEXT,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One key=value:Effect per line. Empty: the role's default (control-plane "
        "nodes: node-role.kubernetes.io/control-plane:NoSchedule).",
    )
    no_taints = forms.BooleanField(
        required=False,
        label="No taints",
        help_text="Let any workload run here, even on a control-plane node.",
    )
    ssh_private_key = forms.CharField(
        required=False,
        strip=False,
        max_length=validation.MAX_PRIVATE_KEY,
        widget=SecretTextarea(attrs={"rows": 3, "autocomplete": "off"}),
        label="SSH private key",
        help_text="Paste the key, or upload it below.",
    )
    ssh_private_key_file = forms.FileField(required=False, label="…or upload the key file")
    ssh_key_passphrase = forms.CharField(
        required=False,
        strip=False,
        max_length=validation.MAX_SECRET,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        label="Key passphrase",
    )
    ssh_password = forms.CharField(
        required=False,
        strip=False,
        max_length=validation.MAX_SECRET,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        label="SSH password",
        help_text="Used only when no private key is set.",
    )
    clear_credentials = forms.BooleanField(required=False, label="Remove the stored credential")

    class Meta:
        model = Node
        fields = [
            "name",
            "address",
            "ssh_port",
            "ssh_user",
            "role",
            "labels",
            "taints",
            "host_key_fingerprint",
        ]

    def __init__(self, *args: Any, cluster: Cluster, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.cluster = cluster
        if self.instance.pk:
            # Only a stored node has a credential to keep or remove.
            self.fields["ssh_private_key"].help_text += " Leave empty to keep the stored key."
            self.fields["ssh_password"].help_text += " Leave empty to keep the stored one."
        else:
            del self.fields["clear_credentials"]
        if self.instance.pk and not self.is_bound:
            self.initial["labels"] = "\n".join(f"{k}={v}" for k, v in self.instance.labels.items())
            self.initial["taints"] = "\n".join(self.instance.taints or [])
            self.initial["no_taints"] = self.instance.taints == []
        self.credential_changed = False

    def clean_labels(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for line in _lines(self.cleaned_data.get("labels") or ""):
            key, sep, value = line.partition("=")
            if not sep:
                raise forms.ValidationError(f"'{line}' is not key=value")
            result[key.strip()] = value.strip()
        return result

    def clean_taints(self) -> list[str] | None:
        # Empty means the role's default; "No taints" (checked in clean()) means none.
        return _lines(self.cleaned_data.get("taints") or "") or None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("ssh_private_key_file")
        key_text = data.get("ssh_private_key") or ""
        if upload:
            if upload.size > 64 * 1024:
                self.add_error("ssh_private_key_file", "the key file is larger than 64 KiB")
                return data
            try:
                key_text = upload.read().decode()
            except UnicodeDecodeError:
                self.add_error("ssh_private_key_file", "the key file is not text")
                return data
        password = data.get("ssh_password") or ""
        passphrase = data.get("ssh_key_passphrase") or ""
        node = self.instance
        if data.get("no_taints"):
            if data.get("taints"):
                self.add_error("no_taints", "list taints or tick 'No taints', not both")
            else:
                data["taints"] = []
        try:
            changes = credential_changes(
                key_text, passphrase, password, clear=bool(data.get("clear_credentials"))
            )
        except CredentialError as error:
            self.add_error(error.field, str(error))
            return data
        for name, value in changes.items():
            setattr(node, name, value)
        self.credential_changed = bool(changes)
        return data


class ClusterDeleteForm(forms.Form):
    """Deleting a cluster destroys its CA keys: the operator types the cluster's name to confirm."""

    confirm_name = forms.CharField(
        max_length=63,
        label="Cluster name",
        help_text="Type the cluster's name to confirm.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, cluster: Cluster, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cluster = cluster
        self.refusal = f"Type {cluster.name} exactly to delete this cluster; nothing was deleted."
        self.fields["confirm_name"].error_messages["required"] = self.refusal

    def clean_confirm_name(self) -> str:
        typed = str(self.cleaned_data.get("confirm_name") or "")
        if typed != self.cluster.name:
            raise forms.ValidationError(self.refusal)
        return typed
