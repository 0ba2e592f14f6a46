"""Forms for clusters and nodes. Validation lives on the models; forms only
translate between text boxes and the models' lists and maps."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models

from nodes.models import CLUSTER_SECURITY_SETTINGS, CLUSTER_SETTINGS, Cluster, ClusterFlavor, Node
from nodes.rules import validation
from nodes.rules.credentials import (
    CredentialError,
    bastion_credential_changes,
    credential_changes,
)

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


def _secret_input(max_length: int, label: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        required=False,
        strip=False,
        max_length=max_length,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        label=label,
        help_text=help_text,
    )


# Settings a post may leave out (a form of an older page, a script): they keep their value.
_DEFAULTED = ("etcd_backup_interval_hours", "etcd_snapshot_retention", "health_interval_seconds")


class ClusterForm(forms.ModelForm):  # type: ignore[type-arg]
    """A cluster's settings. How the panel reaches the hosts (trust on first use, the bastion)
    is shown to everyone but editable only with ``edit_cluster_security``."""

    extra_sans = forms.CharField(
        required=False,
        max_length=_LIST_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Extra API server certificate names or IPs, one per line.",
        label="Extra certificate SANs",
    )
    bastion_private_key = forms.CharField(
        required=False,
        strip=False,
        max_length=validation.MAX_PRIVATE_KEY,
        widget=SecretTextarea(attrs={"rows": 3, "autocomplete": "off"}),
        label="Bastion private key",
    )
    bastion_key_passphrase = _secret_input(validation.MAX_SECRET, "Bastion key passphrase")
    bastion_password = _secret_input(
        validation.MAX_SECRET, "Bastion password", "Used only when no private key is set."
    )
    clear_bastion_credential = forms.BooleanField(
        required=False, label="Remove the stored bastion credential"
    )

    SECURITY_FIELDS = (
        *CLUSTER_SECURITY_SETTINGS,
        "bastion_private_key",
        "bastion_key_passphrase",
        "bastion_password",
        "clear_bastion_credential",
    )

    class Meta:
        model = Cluster
        fields = [*CLUSTER_SETTINGS, *CLUSTER_SECURITY_SETTINGS]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        # Acronyms and program names as they are written, not as Django capitalises field names.
        labels = {
            "control_plane_endpoint": "Control-plane endpoint",
            "dns_domain": "DNS domain",
            "etcd_topology": "etcd topology",
            "etcd_backup_interval_hours": "etcd backup every (hours)",
            "etcd_snapshot_retention": "etcd snapshots kept",
            "ca_validity_days": "CA validity days",
            "bastion_address": "Bastion address",
            "bastion_port": "Bastion SSH port",
            "bastion_user": "Bastion SSH user",
            "bastion_host_key_fingerprint": "Bastion host key fingerprint",
        }

    def __init__(self, *args: Any, edit_security: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.edit_security = edit_security
        if self.instance.pk and not self.is_bound:
            self.initial["extra_sans"] = "\n".join(self.instance.extra_sans)
        if self.instance.pk:
            for name in ("bastion_private_key", "bastion_password"):
                self.fields[name].help_text += " Leave empty to keep the stored one."
            # Chosen at creation: shown, never changed (posted values are ignored).
            self.fields["flavor"].disabled = True
            self.fields["flavor"].help_text = "Chosen when the cluster was created."
        else:
            del self.fields["clear_bastion_credential"]
        # Left out of a post (a form of an older page, a script), they keep the model's default.
        for name in ("bastion_port", "bastion_user", "flavor", *_DEFAULTED):
            self.fields[name].required = False
        if not edit_security:
            # Shown, not editable: posted values are ignored in favour of the stored ones.
            for name in self.SECURITY_FIELDS:
                if name in self.fields:
                    self.fields[name].disabled = True

    def clean_extra_sans(self) -> list[str]:
        return _lines(self.cleaned_data.get("extra_sans") or "")

    def clean_etcd_backup_interval_hours(self) -> int:
        return self._or_default("etcd_backup_interval_hours")

    def clean_etcd_snapshot_retention(self) -> int:
        return self._or_default("etcd_snapshot_retention")

    def clean_health_interval_seconds(self) -> int:
        return self._or_default("health_interval_seconds")

    def _or_default(self, name: str) -> int:
        """Left out or empty: the stored value when editing, else the model's default."""
        value = self.cleaned_data.get(name)
        if value is not None:
            return int(value)
        if self.instance.pk:
            return int(getattr(self.instance, name))
        field = Cluster._meta.get_field(name)
        assert isinstance(field, models.Field)
        return int(field.default)

    def clean_flavor(self) -> str:
        """Left out of a post: kubeadm, the model's default (an edit keeps the stored one)."""
        if self.instance.pk:
            return str(self.instance.flavor)
        return str(self.cleaned_data.get("flavor") or ClusterFlavor.KUBEADM)

    def clean_bastion_port(self) -> int:
        port = self.cleaned_data.get("bastion_port")
        return int(Cluster._meta.get_field("bastion_port").default) if port is None else port

    def clean_bastion_user(self) -> str:
        user = self.cleaned_data.get("bastion_user")
        return user or str(Cluster._meta.get_field("bastion_user").default)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.edit_security:
            return data
        try:
            changes = bastion_credential_changes(
                data.get("bastion_private_key") or "",
                data.get("bastion_key_passphrase") or "",
                data.get("bastion_password") or "",
                clear=bool(data.get("clear_bastion_credential")),
            )
        except CredentialError as error:
            self.add_error(error.field, str(error))
            return data
        for name, value in changes.items():
            setattr(self.instance, name, value)
        return data


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
    sudo_password = _secret_input(
        validation.MAX_SECRET,
        "Sudo password",
        "The password sudo asks the SSH user for. Empty: sudo must not ask (sudo -n).",
    )
    clear_sudo_password = forms.BooleanField(
        required=False, label="Remove the stored sudo password"
    )

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
            self.fields["sudo_password"].help_text += " Leave empty to keep the stored one."
        else:
            del self.fields["clear_credentials"]
            del self.fields["clear_sudo_password"]
        if self.instance.pk and not self.is_bound:
            self.initial["labels"] = "\n".join(f"{k}={v}" for k, v in self.instance.labels.items())
            self.initial["taints"] = "\n".join(self.instance.taints or [])
            self.initial["no_taints"] = self.instance.taints == []
        self.credential_changed = False

    def clean_address(self) -> Any:
        # The field's IPv6 cleaning drops a zone silently (fe80::1%anything is fe80::1): refuse it.
        raw = str(self.data.get(self.add_prefix("address"), ""))
        if "%" in raw:
            try:
                validation.ip(raw)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        return self.cleaned_data.get("address")

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
        if data.get("clear_sudo_password"):
            changes["sudo_password"] = ""
        if data.get("sudo_password"):
            changes["sudo_password"] = data["sudo_password"]
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


class ApproveHostKeyForm(forms.Form):
    """Approving a scanned key: the fingerprint the operator saw, sent back as a hidden field so
    that a key scanned again in between is not approved by mistake."""

    fingerprint = forms.CharField(max_length=60, widget=forms.HiddenInput)


class SilenceFindingForm(forms.Form):
    """Silencing a finding until a time (UTC), at most 90 days ahead (the service checks)."""

    until = forms.DateTimeField(
        label="Silence until (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
    )
