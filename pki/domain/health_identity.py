"""The panel's own identity for health checks of the API server: a client certificate from the
cluster CA for the user ``clusterpanel:health`` (no groups), and the RBAC that lets it read the
health endpoints and nothing else.

kubeadm's default RBAC already opens ``/livez``, ``/readyz`` and ``/healthz`` to every client
(``system:public-info-viewer``), but hardened clusters remove that binding or turn anonymous
requests off; a named, least-privileged user keeps the checks working there and makes them
stand out in the API server's audit log. No certificate of kubeadm's tree is as narrow:
``apiserver-kubelet-client`` and ``admin.conf`` are cluster admins.

The identity is the panel's alone: the user name is reserved (``pki.domain.identities``), so no
kubeconfig, cfssl signing or token path hands it to anyone, and its key is never downloadable.
"""

from __future__ import annotations

import datetime as dt

from pki.domain import yaml
from pki.domain.kubeadm import CA
from pki.domain.x509 import USAGE_CLIENT, CertSpec

USER = "clusterpanel:health"
# The ledger row's name (kind "panel", no node): not a file of kubeadm's tree.
LEDGER_NAME = "clusterpanel-health"
CLUSTER_ROLE = "clusterpanel:health"
CLUSTER_ROLE_BINDING = "clusterpanel:health"
# What the health checks read: the aggregated endpoints and each single check under them.
NON_RESOURCE_URLS = ("/livez", "/livez/*", "/readyz", "/readyz/*", "/healthz")
_LABELS = {"app.kubernetes.io/managed-by": "clusterpanel"}


def certificate_spec(validity: dt.timedelta) -> CertSpec:
    """The health identity's certificate: CN ``clusterpanel:health``, no O, client auth only."""
    return CertSpec(
        name=LEDGER_NAME,
        signer=CA,
        common_name=USER,
        usages=(USAGE_CLIENT,),
        validity=validity,
    )


def rbac_documents() -> list[dict[str, object]]:
    """A ClusterRole allowing ``get`` on the health endpoints, bound to the health user."""
    role: dict[str, object] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": CLUSTER_ROLE, "labels": dict(_LABELS)},
        "rules": [{"nonResourceURLs": list(NON_RESOURCE_URLS), "verbs": ["get"]}],
    }
    binding: dict[str, object] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": CLUSTER_ROLE_BINDING, "labels": dict(_LABELS)},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": CLUSTER_ROLE,
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
    }
    return [role, binding]


def rbac_manifest() -> str:
    """``rbac_documents`` as the YAML ``kubectl apply -f -`` reads."""
    return yaml.dump_documents(rbac_documents())
