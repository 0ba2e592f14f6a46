"""The panel's health identity: its certificate's subject and the RBAC manifest, compared with
what kubectl itself generates for that role and binding (``kubectl create … --dry-run=client``
needs no API server)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pki.domain import health_identity, identities
from pki.domain.identities import Door


def _kubectl(home: Path, *args: str) -> dict[str, object]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed; see docs/TESTING.md for the Debian packages")
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "KUBECONFIG": os.devnull}
    result = subprocess.run(
        [kubectl, "create", *args, "--dry-run=client", "-o", "yaml"],
        capture_output=True, text=True, env=env, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    document["metadata"].pop("creationTimestamp", None)
    return document


def test_the_manifest_is_the_role_and_binding_kubectl_generates(tmp_path: Path) -> None:
    role, binding = yaml.safe_load_all(health_identity.rbac_manifest())
    urls = [f"--non-resource-url={url}" for url in health_identity.NON_RESOURCE_URLS]
    expected_role = _kubectl(tmp_path, "clusterrole", "clusterpanel:health", "--verb=get", *urls)
    expected_binding = _kubectl(
        tmp_path, "clusterrolebinding", "clusterpanel:health",
        "--clusterrole=clusterpanel:health", "--user=clusterpanel:health",
    )  # fmt: skip
    # The same objects, with the panel's label on each.
    for ours, theirs in ((role, expected_role), (binding, expected_binding)):
        labels = ours["metadata"].pop("labels")
        assert labels == {"app.kubernetes.io/managed-by": "clusterpanel"}
        assert ours == theirs
    # Read-only, health endpoints only.
    assert role["rules"] == [
        {
            "nonResourceURLs": ["/livez", "/livez/*", "/readyz", "/readyz/*", "/healthz"],
            "verbs": ["get"],
        }
    ]
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "clusterpanel:health"}
    ]


def test_the_certificate_is_a_client_of_the_cluster_ca_without_groups() -> None:
    spec = health_identity.certificate_spec(dt.timedelta(days=365))
    assert (spec.signer, spec.common_name, spec.organizations) == ("ca", "clusterpanel:health", ())
    assert spec.usages == ("client",) and spec.node is None and not spec.is_ca
    # The user name is reserved: no door hands it out.
    for door in Door:
        (finding,) = identities.assess(door, user=spec.common_name)
        assert finding.never, door
