"""The rendered files of a binary-installed cluster's nodes, read from the inventory and the ledger.

Builds the pure ``BinarySpec`` from the cluster, its binary settings and its kubeadm settings'
audit switch, reads the certificates through ``binary_pems`` and hands both to
``pki.domain.binary_node``. The certificate files themselves are the node's bundle; these are the
units, configuration files, kubeconfigs, the audit policy and the static token file.

Previews never show a secret (kubeconfig keys and token values are masked) and record nothing;
the download of a file that carries one (a kubeconfig's private key, the static tokens) is
decided by the identity policy on the identities the file hands out, like the node bundles and
the static-token download, and audited.
"""

from __future__ import annotations

import posixpath

from django.core.exceptions import PermissionDenied
from django.db import transaction

from clusterpanel.errors import InputError
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import require_permission
from nodes.models import Cluster, ClusterFlavor, Node
from pki.domain import kubeconfig
from pki.domain import static_tokens as static_rules
from pki.domain.binary_node import (
    KIND_KUBECONFIG,
    KIND_TOKENS,
    MissingCertificate,
    RenderedFile,
    node_files,
    redact_kubeconfig,
)
from pki.domain.binary_spec import BinarySpec
from pki.models.binary_settings import ClusterBinarySettings
from pki.models.kubeadm_settings import ClusterKubeadmSettings
from pki.services import identities as identity_policy
from pki.services.certificates.binary_pems import binary_pems
from pki.services.certificates.errors import PKIInputError
from pki.services.certificates.spec import cluster_spec, node_spec

__all__ = [
    "RenderedFile",
    "binary_file",
    "binary_file_preview",
    "binary_node_files",
    "binary_spec",
    "download_binary_file",
    "downloadable",
    "file_name",
    "is_binary",
]


def _binary_settings(cluster: Cluster) -> ClusterBinarySettings:
    row = ClusterBinarySettings.objects.filter(cluster=cluster).first()
    return row if row is not None else ClusterBinarySettings(cluster=cluster)


def _kubeadm_settings(cluster: Cluster) -> ClusterKubeadmSettings:
    row = ClusterKubeadmSettings.objects.filter(cluster=cluster).first()
    return row if row is not None else ClusterKubeadmSettings(cluster=cluster)


def _require_binary(cluster: Cluster) -> None:
    if cluster.flavor != ClusterFlavor.BINARY:
        raise PKIInputError(
            f"{cluster.name} is a kubeadm cluster: its nodes get kubeadm files, not units", "node"
        )


def binary_spec(cluster: Cluster) -> BinarySpec:
    """The cluster as the renderers see it: layout, topology and component settings."""
    settings = _binary_settings(cluster)
    return BinarySpec(
        layout=settings.layout(),
        cluster=cluster_spec(cluster),
        pod_subnet=cluster.pod_subnet or "",
        # str(): an unsaved settings row (the defaults) holds the choice enums themselves.
        container_runtime=str(cluster.container_runtime),
        kube_proxy_mode=str(settings.kube_proxy_mode),
        ipvs_scheduler=str(settings.ipvs_scheduler),
        service_node_port_range=str(settings.service_node_port_range),
        static_tokens=cluster.static_tokens.exists(),
        audit=_kubeadm_settings(cluster).audit_enabled,
    )


def _token_csv(cluster: Cluster) -> str:
    entries = [
        static_rules.StaticTokenEntry(row.token, row.user, row.uid, tuple(row.groups))
        for row in cluster.static_tokens.order_by("pk")
    ]
    return static_rules.render_token_csv(entries)


def binary_node_files(cluster: Cluster, node: Node) -> list[RenderedFile]:
    """Every rendered file of ``node`` (path, content, mode, then kind, secret and owner).

    PKIInputError for a kubeadm cluster or when a certificate a kubeconfig embeds is not issued
    yet (the message names it).
    """
    _require_binary(cluster)
    spec = binary_spec(cluster)
    kubeadm_settings = _kubeadm_settings(cluster)
    policy = kubeadm_settings.audit_policy if spec.audit else None
    tokens = _token_csv(cluster) if spec.static_tokens else None
    pems = binary_pems(cluster, node.name)
    try:
        return node_files(spec, node_spec(node), pems, audit_policy=policy, token_csv=tokens)
    except MissingCertificate as error:
        raise PKIInputError(str(error), "node") from None


def file_name(rendered: RenderedFile) -> str:
    """The file's base name, which is unique among a node's files (and names it in URLs)."""
    return posixpath.basename(rendered.path)


def binary_file(cluster: Cluster, node: Node, name: str) -> RenderedFile:
    """One of the node's files by its base name (PKIInputError naming ``file`` if none)."""
    for rendered in binary_node_files(cluster, node):
        if file_name(rendered) == name:
            return rendered
    raise PKIInputError(f"{node.name} has no rendered file {name!r}", "file")


def _masked_tokens(text: str) -> str:
    entries, _ = static_rules.parse_token_csv(text)
    masked = [
        static_rules.StaticTokenEntry("*" * 8, entry.user, entry.uid, entry.groups)
        for entry in entries
    ]
    # The masked values repeat, which the renderer refuses: join the lines by hand.
    return "".join(static_rules.render_token_csv([entry]) for entry in masked)


def binary_file_preview(rendered: RenderedFile) -> str:
    """The text to show on the page: kubeconfig keys and token values masked."""
    text = rendered.content.decode()
    if rendered.kind == KIND_KUBECONFIG:
        return redact_kubeconfig(text)
    if rendered.kind == KIND_TOKENS:
        return _masked_tokens(text)
    return text


def _authorize(node: Node, rendered: RenderedFile, actor: Actor) -> list[dict[str, str]]:
    """The identities the secret file hands out, as the identity policy grants them to ``actor``
    (``PermissionDenied`` naming the identity otherwise). The file itself is asked: a kubeconfig
    is whoever its embedded client certificate names, a token file every row in it."""
    name = file_name(rendered)
    text = rendered.content.decode()
    if rendered.kind == KIND_TOKENS:
        entries, _ = static_rules.parse_token_csv(text)
        rows = [(entry.user, entry.groups) for entry in entries]
        return identity_policy.authorize_token_file(actor, rows, what=name)
    if rendered.kind == KIND_KUBECONFIG:
        user, groups = kubeconfig.client_identity(text)
        return identity_policy.authorize_node_identity(
            actor,
            what=name,
            node_name=node.name,
            node_role=str(node.role),
            user=user,
            groups=groups,
        )
    # A secret the policy cannot name an identity for: keys of the cluster, an admin download.
    require_permission(actor.user, "download_ca_keys", f"{name} carries a secret of the cluster")
    return []


def downloadable(node: Node, rendered: RenderedFile, actor: Actor) -> bool:
    """Whether ``download_binary_file`` would hand the file to ``actor`` (the page's links);
    decided by the same check, recording nothing."""
    if not rendered.secret:
        return True
    try:
        _authorize(node, rendered, actor)
    except (PermissionDenied, InputError):
        # A kubeconfig whose certificate does not parse: the download says why (a 409).
        return False
    return True


def download_binary_file(cluster: Cluster, node: Node, name: str, *, actor: Actor) -> RenderedFile:
    """The file for ``actor`` to download. A file carrying a secret is decided by the identity
    policy (``pki.services.identities``) on the identities it hands out, 403 naming them when
    refused, and audited with the privileged parts granted: a worker's own kubelet and kube-proxy
    kubeconfigs as its bundle (an operator), every other kubeconfig as a grant of its identity
    (the controller manager's, the scheduler's and a control-plane kubelet's for an admin;
    ``admin.kubeconfig``, in ``system:masters``, also needs the super-admin permission), and
    ``tokens.csv`` row by row as the static-token download. Units and configuration files hold
    no secret and record nothing."""
    rendered = binary_file(cluster, node, name)
    if not rendered.secret:
        return rendered
    privileged = _authorize(node, rendered, actor)
    with transaction.atomic():
        audit.record(
            "pki.binary_file.download",
            actor,
            obj=node,
            cluster=cluster,
            details={
                "node": node.name,
                "file": rendered.path,
                "kind": rendered.kind,
                "privileged": privileged,
            },
        )
    return rendered


def is_binary(cluster: Cluster) -> bool:
    """Whether the Configuration tab shows rendered files rather than kubeadm files."""
    return cluster.flavor == ClusterFlavor.BINARY
