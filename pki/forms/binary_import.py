"""The upload form of the binary-cluster import (``pki.services.certificates.binary_import``)."""

from __future__ import annotations

from typing import Any

from django import forms

from pki.forms.certificates import PKIForm, _check_size


class BinaryImportForm(PKIForm):
    certificates = forms.FileField(
        label="Certificate directory (tar.gz or zip)",
        help_text=(
            "The cfssl directory (e.g. /etc/k8s/ssl: ca.pem, ca-key.pem, kubernetes.pem …) and "
            "the kubeconfigs the units name. May also hold the unit files under units/."
        ),
    )
    units = forms.FileField(
        required=False,
        label="Unit files (tar.gz or zip)",
        help_text=(
            "The systemd units (etcd.service, kube-apiserver.service …) and the "
            "EnvironmentFile= files they read. Leave empty when the first archive has units/."
        ),
    )

    def clean_certificates(self) -> Any:
        return _check_size(self.cleaned_data.get("certificates"))

    def clean_units(self) -> Any:
        return _check_size(self.cleaned_data.get("units"))
