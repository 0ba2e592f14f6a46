"""kubeadm ``--config`` files: ``init`` or ``join`` per node, and the ClusterConfiguration alone."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from clusterpanel.errors import InputError
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes.models import Cluster, EtcdTopology, Node, NodeRole
from pki.domain import kubeadm_config
from pki.models.tokens import BootstrapToken, CertificateKey
from pki.services.bootstrap.bootstrap_tokens import usable_join_token
from pki.services.bootstrap.join_commands import (
    ca_cert_hashes,
    current_certificate_key,
    join_token,
    require_certificate_key_access,
)
from pki.services.bootstrap.kubeadm_settings import settings_for
from pki.services.certificates.spec import apiserver_port

CONTROL_PLANE_FILE_REFUSED = (
    "control-plane kubeadm files (init and join) carry the certificate key, which decrypts the CA "
    "keys in kubeadm-certs: they are admin downloads; operators can download workers' files"
)


def _taints(node: Node) -> tuple[kubeadm_config.Taint, ...] | None:
    """The node's taints; None means kubeadm's default for the role, () means none."""
    if node.taints is None:
        return None
    result = []
    for text in node.taints:
        spec, _, effect = text.strip().rpartition(":")
        key, _, value = spec.partition("=")
        result.append(kubeadm_config.Taint(key, effect, value or None))
    return tuple(result)


def _etcd_endpoint(address: str) -> str:
    ip = ipaddress.ip_address(address)
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"https://{host}:2379"


def cluster_config_input(cluster: Cluster) -> kubeadm_config.ClusterConfigInput:
    """The ClusterConfiguration inputs from the inventory and the kubeadm settings."""
    stored = settings_for(cluster)
    etcd: kubeadm_config.LocalEtcd | kubeadm_config.ExternalEtcd
    if cluster.etcd_topology == EtcdTopology.EXTERNAL:
        members = cluster.nodes.filter(role=NodeRole.ETCD).order_by("pk")
        etcd = kubeadm_config.ExternalEtcd(
            endpoints=tuple(_etcd_endpoint(node.address) for node in members),
            ca_file="/etc/kubernetes/pki/etcd/ca.crt",
            cert_file="/etc/kubernetes/pki/apiserver-etcd-client.crt",
            key_file="/etc/kubernetes/pki/apiserver-etcd-client.key",
        )
    else:
        etcd = kubeadm_config.LocalEtcd(extra_args=dict(stored.etcd_extra_args))
    return kubeadm_config.ClusterConfigInput(
        kubernetes_version=cluster.kubernetes_version,
        control_plane_endpoint=cluster.normalized_endpoint,
        cluster_name=cluster.cluster_name,
        service_subnet=cluster.service_subnet,
        pod_subnet=cluster.pod_subnet or None,
        dns_domain=cluster.dns_domain,
        etcd=etcd,
        apiserver_cert_sans=tuple(cluster.extra_sans or ()),
        apiserver_extra_args=dict(stored.apiserver_extra_args),
        controller_manager_extra_args=dict(stored.controller_manager_extra_args),
        scheduler_extra_args=dict(stored.scheduler_extra_args),
        encryption_algorithm=str(cluster.key_algorithm),
        certificate_validity=timedelta(days=cluster.certificate_validity_days),
        ca_certificate_validity=timedelta(days=cluster.ca_validity_days),
        audit=(
            kubeadm_config.AuditLogConfig(policy=stored.audit_policy)
            if stored.audit_enabled
            else None
        ),
    )


def init_node(cluster: Cluster) -> Node | None:
    """The node that runs ``kubeadm init``: the first control-plane node added."""
    return cluster.nodes.filter(role=NodeRole.CONTROL_PLANE).order_by("pk").first()


@dataclass(frozen=True)
class KubeadmConfig:
    """A rendered kubeadm configuration file and the secrets it carries."""

    text: str = field(repr=False)
    kind: str  # "init" or "join"
    token: BootstrapToken | None
    certificate_key: CertificateKey | None
    token_created: bool


def kubeadm_config_for(
    cluster: Cluster,
    node: Node,
    *,
    new_token: bool = False,
    actor: Actor,
    now: datetime | None = None,
) -> KubeadmConfig:
    """``kubeadm init --config`` for the first control-plane node, ``kubeadm join --config``
    for the others.

    The init file carries a usable join token (so that the token kubeadm creates is one the
    panel knows, and later join commands work) and the certificate key for ``--upload-certs``.
    The file reveals both, so handing it out is recorded as ``kubeadm_config.download`` with
    their ids (never their values) in the same transaction. Control-plane files (init and join)
    carry the certificate key: refused (403) to a role that may not see it.
    """
    now = now or timezone.now()
    if node.cluster_id != cluster.pk:
        raise InputError(f"node {node.name} is not in cluster {cluster.name}", "node")
    if node.role == NodeRole.ETCD:
        raise InputError.many(
            {"node": [f"{node.name} is an external etcd member; kubeadm does not join it"]}
        )
    control_plane = node.role == NodeRole.CONTROL_PLANE
    if control_plane:
        require_certificate_key_access(actor, CONTROL_PLANE_FILE_REFUSED)
    stored = settings_for(cluster)
    try:
        bind_port = apiserver_port(cluster)
    except kubeadm_config.ConfigError as error:
        raise InputError(str(error), "config") from None
    registration = kubeadm_config.NodeConfigInput(
        name=node.name,
        advertise_address=str(node.address),
        control_plane=control_plane,
        bind_port=bind_port,
        cri=str(cluster.container_runtime),  # type: ignore[arg-type]
        taints=_taints(node),
        kubelet_extra_args=dict(stored.kubelet_extra_args),
        labels=dict(node.labels or {}),
    )
    first = init_node(cluster)
    is_init = first is not None and first.pk == node.pk
    with transaction.atomic():
        token: BootstrapToken | None
        if is_init:
            token = usable_join_token(cluster, now)
            created = False
            if token is None or new_token:
                token, created = join_token(cluster, True, actor, now)
        else:
            token, created = join_token(cluster, new_token, actor, now)
        key = current_certificate_key(cluster, user=actor.user, now=now) if control_plane else None
        text = _render(cluster, registration, token, key, is_init, now)
        audit.record(
            "kubeadm_config.download",
            actor,
            obj=node,
            details={
                "kind": "init" if is_init else "join",
                "token_id": token.token_id,
                "certificate_key_id": key.pk if key else None,
            },
        )
    return KubeadmConfig(text, "init" if is_init else "join", token, key, created)


def _render(
    cluster: Cluster,
    registration: kubeadm_config.NodeConfigInput,
    token: BootstrapToken,
    key: CertificateKey | None,
    is_init: bool,
    now: datetime,
) -> str:
    """The init or join file's text."""
    try:
        if is_init:
            left = token.time_left(now)
            text = kubeadm_config.render_kubeadm_config(
                cluster_config_input(cluster),
                registration,
                None,
                bootstrap_token=token.value,
                bootstrap_token_ttl=timedelta(0)
                if left is None
                else timedelta(seconds=int(left.total_seconds())),
                certificate_key=key.key if key else None,
            )
        else:
            join = kubeadm_config.JoinInput(
                api_server_endpoint=cluster.normalized_endpoint,
                token=token.value,
                ca_cert_hashes=tuple(ca_cert_hashes(cluster)),
                certificate_key=key.key if key else None,
            )
            text = kubeadm_config.render_kubeadm_config(
                cluster_config_input(cluster), registration, join
            )
    except kubeadm_config.ConfigError as error:
        raise InputError(str(error), "config") from None
    return text


def cluster_configuration_preview(cluster: Cluster) -> str:
    """The ClusterConfiguration alone (no secrets), for the configuration page."""
    try:
        document = kubeadm_config.render_cluster_configuration(cluster_config_input(cluster))
    except kubeadm_config.ConfigError as error:
        raise InputError(str(error), "config") from None
    from pki.domain.yaml import dump_document

    return dump_document(document)
