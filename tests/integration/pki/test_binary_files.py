"""The rendered files of a binary-installed cluster's nodes, from the inventory and the ledger, and
the Configuration tab that previews and hands them out.

Certificates come from ``tests.binary_certs`` (signed directly into ledger rows): what is checked
here is that each file embeds or names the right row, not the certificate plan.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.utils.html import escape

from clusterpanel.models import AuditEvent
from clusterpanel.security.audit import Actor
from nodes.models import Cluster
from pki.models import Certificate
from pki.models.binary_settings import ClusterBinarySettings
from pki.models.kubeadm_settings import ClusterKubeadmSettings
from pki.services import binary_files
from pki.services import bootstrap as bootstrap_services
from pki.services.certificates.errors import PKIInputError
from tests.actors import SETUP
from tests.binary_certs import issue_binary_certs
from tests.factories import make_cluster, make_nodes

pytestmark = pytest.mark.django_db


def _binary_cluster(name: str = "bin", *, skip: tuple[str, ...] = ()) -> Cluster:
    cluster = make_cluster(
        name,
        flavor="binary",
        key_algorithm="ECDSA-P256",
        pod_subnet="10.244.0.0/16",
        container_runtime="cri-o",
    )
    make_nodes(
        cluster,
        [
            ("cp-1", "10.0.0.11", "control-plane"),
            ("cp-2", "10.0.0.12", "control-plane"),
            ("w-1", "10.0.1.1", "worker"),
        ],
    )
    ClusterBinarySettings.objects.create(
        cluster=cluster, cert_dir="/etc/kubernetes/ssl", kube_proxy_mode="iptables"
    )
    issue_binary_certs(cluster, skip=skip)
    return cluster


@pytest.fixture
def binary_cluster(db: Any) -> Cluster:
    cluster = _binary_cluster()
    bootstrap_services.add_static_token(
        cluster, token="s3cret-bootstrap", user="kubelet-bootstrap", uid="10001", actor=SETUP
    )
    return cluster


def _by_name(files: list[binary_files.RenderedFile]) -> dict[str, binary_files.RenderedFile]:
    return {PurePosixPath(f.path).name: f for f in files}


def _kubeconfig(rendered: binary_files.RenderedFile) -> dict[str, Any]:
    doc = yaml.safe_load(rendered.content)
    user = doc["users"][0]["user"]
    return {
        "server": doc["clusters"][0]["cluster"]["server"],
        "ca": base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]),
        "cert": base64.b64decode(user["client-certificate-data"]),
        "key": base64.b64decode(user["client-key-data"]),
        "user": doc["users"][0]["name"],
        "context": doc["current-context"],
    }


def test_node_files_embed_and_name_the_ledgers_certificates(binary_cluster: Cluster) -> None:
    cluster = binary_cluster
    cp1, w1 = cluster.nodes.get(name="cp-1"), cluster.nodes.get(name="w-1")
    files = _by_name(binary_files.binary_node_files(cluster, cp1))
    assert list(files) == [
        "etcd.service",
        "kube-apiserver.service",
        "kube-controller-manager.service",
        "kube-scheduler.service",
        "kubelet.service",
        "kube-proxy.service",
        "kubelet-config.yaml",
        "kube-proxy-config.yaml",
        "kubelet.kubeconfig",
        "kube-proxy.kubeconfig",
        "kube-controller-manager.kubeconfig",
        "kube-scheduler.kubeconfig",
        "admin.kubeconfig",
        "audit-policy.yaml",
        "tokens.csv",
    ]
    ca = cluster.certificate_authorities.get(name="ca", status="active").certificate_pem.encode()
    for node in (cp1, w1):
        kubelet = _kubeconfig(
            _by_name(binary_files.binary_node_files(cluster, node))["kubelet.kubeconfig"]
        )
        row = Certificate.objects.get(cluster=cluster, name="kubelet-client", node_name=node.name)
        assert kubelet["ca"] == ca
        assert kubelet["cert"] == row.certificate_pem.encode()
        assert kubelet["key"] == row.private_key_pem.encode()
        assert kubelet["user"] == f"system:node:{node.name}"
        assert kubelet["context"] == "default"
        assert kubelet["server"] == "https://lb.example.internal:6443"
    scheduler = _kubeconfig(files["kube-scheduler.kubeconfig"])
    assert scheduler["server"] == "https://127.0.0.1:6443"
    assert files["kube-scheduler.kubeconfig"].owner == "kube"
    # The layout's certificate directory, the runtime and kube-proxy's mode reach the files.
    apiserver = files["kube-apiserver.service"].content.decode()
    assert "--tls-cert-file=/etc/kubernetes/ssl/kubernetes.pem \\\n" in apiserver
    assert "--token-auth-file=/etc/k8s/tokens.csv\n" in apiserver
    assert "--audit-policy-file=/etc/k8s/audit-policy.yaml \\\n" in apiserver
    assert "--etcd-servers=https://10.0.0.11:2379,https://10.0.0.12:2379 \\\n" in apiserver
    assert "unix:///var/run/crio/crio.sock" in files["kubelet.service"].content.decode()
    assert yaml.safe_load(files["kube-proxy-config.yaml"].content)["mode"] == "iptables"
    assert (
        files["audit-policy.yaml"].content.decode()
        == ClusterKubeadmSettings(cluster=cluster).audit_policy
    )
    tokens = files["tokens.csv"]
    assert tokens.content == b"s3cret-bootstrap,kubelet-bootstrap,10001\n"
    assert (tokens.mode, tokens.secret) == (0o600, True)
    worker = _by_name(binary_files.binary_node_files(cluster, w1))
    assert list(worker) == [
        "kubelet.service",
        "kube-proxy.service",
        "kubelet-config.yaml",
        "kube-proxy-config.yaml",
        "kubelet.kubeconfig",
        "kube-proxy.kubeconfig",
    ]


def test_audit_off_and_no_static_tokens_drop_their_files_and_flags(db: Any) -> None:
    """Also: without a binary settings row the layout's defaults apply."""
    cluster = _binary_cluster("plain")
    ClusterBinarySettings.objects.filter(cluster=cluster).delete()
    ClusterKubeadmSettings.objects.create(cluster=cluster, audit_enabled=False)
    files = _by_name(binary_files.binary_node_files(cluster, cluster.nodes.get(name="cp-1")))
    assert "audit-policy.yaml" not in files and "tokens.csv" not in files
    proxy = yaml.safe_load(files["kube-proxy-config.yaml"].content)
    assert (proxy["mode"], proxy["ipvs"]) == ("ipvs", {"scheduler": "rr"})
    assert b"--tls-cert-file=/etc/k8s/ssl/kubernetes.pem" in files["kube-apiserver.service"].content
    apiserver = files["kube-apiserver.service"].content.decode()
    assert "--audit-" not in apiserver and "--token-auth-file" not in apiserver


def test_a_missing_certificate_or_a_kubeadm_cluster_is_refused_by_name(
    db: Any, web_client: Callable[[str | None], Any]
) -> None:
    cluster = _binary_cluster("partial", skip=("kube-proxy",))
    worker = cluster.nodes.get(name="w-1")
    with pytest.raises(PKIInputError, match="kube-proxy") as caught:
        binary_files.binary_node_files(cluster, worker)
    assert "w-1" in str(caught.value)
    page = web_client("viewer").get(f"/clusters/{cluster.pk}/config/nodes/{worker.pk}/files/")
    assert page.status_code == 409
    assert "kube-proxy" in page.content.decode()
    kubeadm = make_cluster("kubeadm-one")
    node = make_nodes(kubeadm, [("cp-1", "10.9.0.11", "control-plane")])[0]
    with pytest.raises(PKIInputError, match="kubeadm cluster"):
        binary_files.binary_node_files(kubeadm, node)


def test_configuration_tab_previews_without_secrets_and_downloads_by_role(
    binary_cluster: Cluster, web_client: Callable[[str | None], Any], personas: dict[str, User]
) -> None:
    """Everybody who sees the cluster reads the previews (no key, no token); units and
    configuration download for everybody, unaudited; a file with a secret as the identity policy
    decides: nothing for a viewer, a control-plane node's kubeconfigs for an admin, each download
    audited with the privileged parts granted and a refusal recording nothing."""
    cluster = binary_cluster
    cp1 = cluster.nodes.get(name="cp-1")
    tab = web_client("viewer").get(f"/clusters/{cluster.pk}/config/")
    assert tab.status_code == 200
    body = tab.content.decode()
    assert "Files per node" in body and "kubeadm configuration per node" not in body
    assert f"/clusters/{cluster.pk}/config/nodes/{cp1.pk}/files/" in body

    base = f"/clusters/{cluster.pk}/config/nodes/{cp1.pk}/files/"
    page = web_client("viewer").get(base)
    assert page.status_code == 200
    html = page.content.decode()
    admin_row = Certificate.objects.get(cluster=cluster, name="admin")
    key_b64 = base64.b64encode(admin_row.private_key_pem.encode()).decode()
    cert_b64 = base64.b64encode(admin_row.certificate_pem.encode()).decode()
    assert key_b64 not in html and cert_b64 in html
    assert "client-key-data: REDACTED" in html
    assert "s3cret-bootstrap" not in html and "********,kubelet-bootstrap,10001" in html
    assert "--etcd-servers=https://10.0.0.11:2379" in html
    assert f"{base}kube-apiserver.service" in html
    for name in ("admin.kubeconfig", "kubelet.kubeconfig", "tokens.csv"):
        assert f"{base}{name}" not in html  # a viewer gets no link to a secret
    admin_page = web_client("admin").get(base).content.decode()
    assert f"{base}admin.kubeconfig" in admin_page and f"{base}tokens.csv" in admin_page
    operator_page = web_client("operator").get(base).content.decode()
    # An operator may read the static tokens (no privileged row) but no control-plane identity.
    assert f"{base}tokens.csv" in operator_page
    for name in SECRET_KUBECONFIGS:
        assert f"{base}{name}" not in operator_page, name

    unit = web_client("viewer").get(f"{base}kube-apiserver.service")
    assert unit.status_code == 200
    assert unit["Content-Disposition"] == 'attachment; filename="kube-apiserver.service"'
    assert b"ExecStart=/opt/kubernetes/bin/kube-apiserver" in unit.content
    assert not AuditEvent.objects.filter(action="pki.binary_file.download").exists()

    for name in ("kubelet.kubeconfig", "admin.kubeconfig", "tokens.csv"):
        refused = web_client("viewer").get(f"{base}{name}")
        assert refused.status_code == 403, name
        assert key_b64.encode() not in refused.content
        assert b"s3cret-bootstrap" not in refused.content
    assert web_client("operator").get(f"{base}admin.kubeconfig").status_code == 403
    assert not AuditEvent.objects.filter(action="pki.binary_file.download").exists()

    admin = web_client("admin")
    kubeconfig = admin.get(f"{base}admin.kubeconfig")
    assert kubeconfig.status_code == 200
    assert kubeconfig["Cache-Control"] == "no-store"
    assert key_b64.encode() in kubeconfig.content
    tokens = admin.get(f"{base}tokens.csv")
    assert tokens.content == b"s3cret-bootstrap,kubelet-bootstrap,10001\n"
    events = list(AuditEvent.objects.filter(action="pki.binary_file.download").order_by("pk"))
    assert [(e.actor, _without_privileged(e.details)) for e in events] == [
        (
            personas["admin"],
            {"node": "cp-1", "file": "/etc/k8s/admin.kubeconfig", "kind": "kubeconfig"},
        ),
        (personas["admin"], {"node": "cp-1", "file": "/etc/k8s/tokens.csv", "kind": "tokens"}),
    ]
    assert _privileged(events[0]) == [("group", "system:masters")]
    assert _privileged(events[1]) == []
    assert admin.get(f"{base}nothing.conf").status_code == 404


# A control-plane node's kubeconfigs and the identity each one's certificate names.
SECRET_KUBECONFIGS = {
    "kubelet.kubeconfig": "system:node:cp-1 (groups: system:nodes)",
    "kube-proxy.kubeconfig": "system:kube-proxy",
    "kube-controller-manager.kubeconfig": "system:kube-controller-manager",
    "kube-scheduler.kubeconfig": "system:kube-scheduler",
    "admin.kubeconfig": "admin (groups: system:masters)",
}


def _without_privileged(details: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in details.items() if key != "privileged"}


def _privileged(event: AuditEvent) -> list[tuple[str, str]]:
    return [(item["kind"], item["name"]) for item in event.details["privileged"]]


def _download_events() -> Any:
    return AuditEvent.objects.filter(action="pki.binary_file.download").order_by("pk")


def test_an_operator_downloads_a_workers_own_kubeconfigs_as_its_bundle(
    binary_cluster: Cluster, web_client: Callable[[str | None], Any], personas: dict[str, User]
) -> None:
    """kubeadm's worker-bundle rule: the worker's own kubelet and kube-proxy identities are an
    operator download (as the worker's bundle is), audited with the identities granted; a viewer
    gets neither, and a refusal records nothing."""
    cluster = binary_cluster
    worker = cluster.nodes.get(name="w-1")
    base = f"/clusters/{cluster.pk}/config/nodes/{worker.pk}/files/"
    for name in ("kubelet.kubeconfig", "kube-proxy.kubeconfig"):
        refused = web_client("viewer").get(f"{base}{name}")
        assert refused.status_code == 403, name
    assert not _download_events().exists()
    page = web_client("operator").get(base).content.decode()
    assert f"{base}kubelet.kubeconfig" in page and f"{base}kube-proxy.kubeconfig" in page

    operator = web_client("operator")
    kubelet = operator.get(f"{base}kubelet.kubeconfig")
    assert kubelet.status_code == 200
    row = Certificate.objects.get(cluster=cluster, name="kubelet-client", node_name="w-1")
    assert base64.b64encode(row.private_key_pem.encode()) in kubelet.content
    proxy = operator.get(f"{base}kube-proxy.kubeconfig")
    assert proxy.status_code == 200
    proxy_row = Certificate.objects.get(cluster=cluster, name="kube-proxy")
    assert base64.b64encode(proxy_row.private_key_pem.encode()) in proxy.content
    events = list(_download_events())
    assert [(e.actor, e.details["file"]) for e in events] == [
        (personas["operator"], "/etc/k8s/kubelet.kubeconfig"),
        (personas["operator"], "/etc/k8s/kube-proxy.kubeconfig"),
    ]
    assert _privileged(events[0]) == [("user", "system:node:w-1"), ("group", "system:nodes")]
    assert _privileged(events[1]) == [("user", "system:kube-proxy")]


@pytest.mark.parametrize("name", list(SECRET_KUBECONFIGS))
def test_an_operator_is_refused_a_control_plane_nodes_identities_by_name(
    name: str, binary_cluster: Cluster, web_client: Callable[[str | None], Any]
) -> None:
    """A control-plane node's kubeconfigs carry CA-signed identities the policy keeps for an
    admin: the 403 names the identity and why, and nothing is recorded; an admin gets it."""
    cluster = binary_cluster
    cp1 = cluster.nodes.get(name="cp-1")
    url = f"/clusters/{cluster.pk}/config/nodes/{cp1.pk}/files/{name}"
    refused = web_client("operator").get(url)
    assert refused.status_code == 403
    text = refused.content.decode()
    assert escape(f"{name} carries the private key of {SECRET_KUBECONFIGS[name]}") in text
    assert "only an admin may grant it" in text
    assert b"client-key-data" not in refused.content
    assert not _download_events().exists()
    granted = web_client("admin").get(url)
    assert granted.status_code == 200
    assert _download_events().get().details["file"] == f"/etc/k8s/{name}"


def test_a_token_file_with_a_privileged_row_is_refused_to_an_operator_on_both_paths(
    binary_cluster: Cluster, web_client: Callable[[str | None], Any], personas: dict[str, User]
) -> None:
    """One check for the static-token download and a node's tokens.csv: a privileged row keeps
    both from an operator, naming the row; an admin gets both, audited with the row granted."""
    cluster = binary_cluster
    admin_actor = Actor(user=personas["admin"], client_ip="127.0.0.1", via="web")
    bootstrap_services.add_static_token(
        cluster,
        token="m4sters-token",
        user="ops",
        uid="10002",
        groups=["system:masters"],
        actor=admin_actor,
    )
    cp1 = cluster.nodes.get(name="cp-1")
    node_file = f"/clusters/{cluster.pk}/config/nodes/{cp1.pk}/files/tokens.csv"
    static_file = f"/clusters/{cluster.pk}/config/tokens.csv"
    for url in (node_file, static_file):
        refused = web_client("operator").get(url)
        assert refused.status_code == 403, url
        text = refused.content.decode()
        assert "tokens.csv holds privileged identities (ops: system:masters)" in text
        assert "m4sters-token" not in text
    downloads = ("pki.binary_file.download", "static_token.download")
    assert not AuditEvent.objects.filter(action__in=downloads).exists()
    page = web_client("operator").get(node_file.removesuffix("tokens.csv"))
    assert node_file not in page.content.decode()  # no link to what would be refused

    admin = web_client("admin")
    for url in (node_file, static_file):
        granted = admin.get(url)
        assert granted.status_code == 200, url
        assert b"m4sters-token,ops,10002,system:masters" in granted.content
    node_event = _download_events().get()
    assert node_event.details["privileged"] == [
        {
            "kind": "group",
            "name": "system:masters",
            "reason": node_event.details["privileged"][0]["reason"],
            "user": "ops",
        }
    ]
    assert "bypasses RBAC" in node_event.details["privileged"][0]["reason"]
    static_event = AuditEvent.objects.get(action="static_token.download")
    assert static_event.details["privileged"] == node_event.details["privileged"]
