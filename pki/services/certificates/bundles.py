"""What operators download: a node's ``/etc/kubernetes`` bundle and user kubeconfigs."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import tarfile
import time
from collections.abc import Sequence

from django.db import transaction

from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import can, require_permission
from nodes.models import Cluster, Node, NodeRole
from pki.domain import kubeadm, kubeconfig, principals
from pki.domain.identities import Door
from pki.domain.kubeadm_config import AuditLogConfig
from pki.domain.x509 import (
    USAGE_CLIENT,
    CertSpec,
    PKIError,
    certificate_to_pem,
    private_key_to_pem,
)
from pki.models.certificates import (
    Certificate,
    CertificateAuthority,
    CertificateKind,
)
from pki.models.kubeadm_settings import ClusterKubeadmSettings
from pki.services import identities as identity_policy
from pki.services.certificates.authorities import ensure_cluster_cas, stored_service_account_key
from pki.services.certificates.binary_bundles import binary_bundle_files
from pki.services.certificates.errors import PKIInputError
from pki.services.certificates.issuing import sign_specs, spec_of
from pki.services.certificates.spec import (
    cluster_spec,
    current_plan,
    is_binary,
    node_spec,
    refuse_binary,
)
from pki.services.certificates.store import active_cas, active_tree, store_leaf


def _ca_spec(ca: CertificateAuthority) -> CertSpec:
    return CertSpec(ca.name, None, ca.common_name, is_ca=True)


def _stored_tree(cluster: Cluster) -> kubeadm.IssuedTree:
    """The stored CAs, active files and ``sa`` key as the pure module's ``IssuedTree``.

    Nothing is generated: a cluster without its CAs and ``sa`` key has nothing to hand out.
    """
    sa = stored_service_account_key(cluster)
    if sa is None:
        raise PKIInputError(
            f"cluster {cluster.name} has no certificates yet; issue the missing certificates first",
            "node",
        )
    cas = {
        name: kubeadm.Issued(_ca_spec(ca), ca.certificate, ca.private_key)
        for name, ca in active_cas(cluster).items()
    }
    validity = dt.timedelta(days=cluster.certificate_validity_days)
    leaves = {
        key: kubeadm.Issued(spec_of(row, validity), row.certificate, row.private_key)
        for key, row in active_tree(cluster).items()
    }
    return kubeadm.IssuedTree(cas=cas, leaves=leaves, sa_key=sa.private_key)


def node_bundle_files(
    cluster: Cluster, node: Node, *, include_super_admin: bool = True
) -> dict[str, kubeadm.NodeFile]:
    """The node's ``/etc/kubernetes`` files from the stored PKI (PKIInputError if incomplete)."""
    return nodes_bundle_files(cluster, [node], include_super_admin=include_super_admin)[node.name]


def nodes_bundle_files(
    cluster: Cluster, nodes: Sequence[Node], *, include_super_admin: bool = True
) -> dict[str, dict[str, kubeadm.NodeFile]]:
    """Each node's ``/etc/kubernetes`` files, by node name, from one read of the stored PKI: the
    tree (every CA and leaf with its decrypted key) grows with the nodes, so reading it once per
    node would make a 30-node bundle quadratic. A binary cluster's files are
    ``binary_bundles.binary_nodes_bundle_files``."""
    refuse_binary(cluster, "/etc/kubernetes tree (its files are in the binary layout)", "node")
    spec = cluster_spec(cluster)
    current_plan(cluster)  # an impossible topology is reported before anything else
    if not nodes:
        return {}
    tree, audit_policy = _stored_tree(cluster), _audit_policy(cluster)
    found: dict[str, dict[str, kubeadm.NodeFile]] = {}
    for node in nodes:
        try:
            files = kubeadm.node_files(spec, tree, node_spec(node))
        except (PKIError, KeyError):
            raise PKIInputError(
                f"the certificates of {node.name} are not all issued yet; issue the missing "
                "certificates first",
                "node",
            ) from None
        if not include_super_admin:
            files.pop("super-admin.conf", None)
        if node.role == NodeRole.CONTROL_PLANE and audit_policy is not None:
            # The ClusterConfiguration the panel renders points kube-apiserver at this file
            # (a hostPath mount of type File): without it the apiserver pod cannot start.
            path = AuditLogConfig.policy_path.removeprefix("/etc/kubernetes/")
            files[path] = kubeadm.NodeFile(audit_policy.encode(), kubeadm.CERT_MODE)
        found[node.name] = files
    return found


def _audit_policy(cluster: Cluster) -> str | None:
    """The cluster's audit policy when audit logging is on (the default), else None."""
    settings = ClusterKubeadmSettings.objects.filter(cluster=cluster).first()
    if settings is None:
        settings = ClusterKubeadmSettings(cluster=cluster)
    return settings.audit_policy if settings.audit_enabled else None


# Why a bundle is an admin download, per node role; a worker's (ca.crt and its own kubelet.conf)
# is not.
_KEY_BUNDLES: dict[str, str] = {
    NodeRole.CONTROL_PLANE: (
        "a control-plane bundle carries the cluster's CA keys and sa.key: it is an admin download"
    ),
    NodeRole.ETCD: (
        "an etcd member's bundle carries keys that etcd trusts as clients, which open every "
        "Secret of the cluster: it is an admin download"
    ),
}


def download_bundle(cluster: Cluster, node: Node, *, actor: Actor) -> bytes:
    """The node's bundle for ``actor`` to download, audited. Control-plane and etcd bundles only
    for a role that may download CA keys (403 otherwise); ``super-admin.conf`` is in it only for
    a role that may hold it."""
    if node.role != NodeRole.WORKER:
        reason = _KEY_BUNDLES.get(str(node.role), _KEY_BUNDLES[NodeRole.CONTROL_PLANE])
        require_permission(actor.user, "download_ca_keys", reason)
    super_admin = can(actor.user, "download_super_admin")
    data = build_bundle(cluster, node, include_super_admin=super_admin)
    audit.record(
        "pki.bundle.download",
        actor,
        obj=node,
        cluster=cluster,
        details={"node": node.name, "super_admin": super_admin},
    )
    return data


def build_bundle(cluster: Cluster, node: Node, *, include_super_admin: bool = True) -> bytes:
    """A tar.gz laid out as ``/etc/kubernetes`` on ``node``: keys 0600, certificates 0644.

    A binary cluster's bundle holds the node's certificate directory instead, its paths
    relative to ``/`` (``etc/k8s/ssl/ca.pem`` …)."""
    if is_binary(cluster):
        files = {
            path.lstrip("/"): item for path, item in binary_bundle_files(cluster, node).items()
        }
    else:
        files = node_bundle_files(cluster, node, include_super_admin=include_super_admin)
    now = int(time.time())
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=now) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        directories = sorted(
            {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
        )
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for path in sorted(files):
            node_file = files[path]
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(node_file.content), node_file.mode, now
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(node_file.content))
    return buffer.getvalue()


# The organizations of one client certificate; RBAC needs few.
MAX_GROUPS = 32


def user_kubeconfig(
    cluster: Cluster, username: str, groups: Sequence[str], validity_days: int, *, actor: Actor
) -> tuple[str, Certificate]:
    """A kubeconfig for ``username`` with its own client certificate in ``groups``.

    Like ``kubeadm kubeconfig user --client-name``. ``system:masters`` bypasses RBAC entirely
    and is refused to everybody: that identity exists only as ``super-admin.conf``. Other
    privileged identities (``pki.domain.identities``) only for an admin, and audited as such.
    """
    try:
        principals.user_name(username or "")
    except principals.PrincipalError as error:
        raise PKIInputError(str(error), "username") from None
    if len(groups) > MAX_GROUPS:
        raise PKIInputError(f"at most {MAX_GROUPS} groups, not {len(groups)}", "groups")
    for group in groups:
        try:
            principals.group_name(group)
        except principals.PrincipalError as error:
            raise PKIInputError(str(error), "groups") from None
    privileged = identity_policy.authorize(
        actor,
        Door.KUBECONFIG,
        {"user": "username", "group": "groups"},
        user=username,
        groups=groups,
    )
    if validity_days < 1:
        raise PKIInputError("the validity must be at least one day", "validity")
    spec = CertSpec(
        name=f"user:{username}",
        signer=kubeadm.CA,
        common_name=username,
        organizations=tuple(dict.fromkeys(groups)),
        usages=(USAGE_CLIENT,),
        validity=dt.timedelta(days=validity_days),
    )
    with transaction.atomic():
        cas = ensure_cluster_cas(cluster)
        ((_, cert, key),) = sign_specs(cluster, cas, [spec], field_name="validity")
        row = store_leaf(
            cluster,
            cas[kubeadm.CA],
            cert,
            key,
            name=spec.name,
            kind=CertificateKind.USER,
            usages=spec.usages,
        )
        audit.record(
            "pki.kubeconfig.issue",
            actor,
            obj=row,
            cluster=cluster,
            details={
                "username": row.common_name,
                "groups": row.organizations,
                "serial": row.serial,
                "privileged": privileged,
            },
        )
    server = "https://" + kubeadm.join_host_port(cluster.endpoint_host, cluster.endpoint_port)
    text = kubeconfig.render_kubeconfig(
        cluster_name=cluster.cluster_name,
        server=server,
        ca_cert_pem=cas[kubeadm.CA].certificate_pem.encode(),
        client_cert_pem=certificate_to_pem(cert),
        client_key_pem=private_key_to_pem(key),
        user=username,
    )
    return text, row
