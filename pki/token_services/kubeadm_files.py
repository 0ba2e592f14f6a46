"""kubeadm ``--config`` files: ``init`` or ``join`` per node, and the ClusterConfiguration alone."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from clusterpanel import audit
from nodes.models import Cluster, EtcdTopology, Node, NodeRole
from pki import kubeadm_config
from pki.models.tokens import BootstrapToken, CertificateKey
from pki.services.spec import apiserver_port
from pki.token_services.join import _join_token, ca_cert_hashes, current_certificate_key
from pki.token_services.kubeadm_settings import settings_for
from pki.token_services.tokens import usable_join_token


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
    user: Any = None,
    now: datetime | None = None,
) -> KubeadmConfig:
    """``kubeadm init --config`` for the first control-plane node, ``kubeadm join --config``
    for the others.

    The init file carries a usable join token (so that the token kubeadm creates is one the
    panel knows, and later join commands work) and the certificate key for ``--upload-certs``.
    """
    now = now or timezone.now()
    if node.cluster_id != cluster.pk:
        raise ValidationError({"node": [f"node {node.name} is not in cluster {cluster.name}"]})
    if node.role == NodeRole.ETCD:
        raise ValidationError(
            {"node": [f"{node.name} is an external etcd member; kubeadm does not join it"]}
        )
    stored = settings_for(cluster)
    control_plane = node.role == NodeRole.CONTROL_PLANE
    try:
        bind_port = apiserver_port(cluster)
    except kubeadm_config.ConfigError as error:
        raise ValidationError({"config": [str(error)]}) from None
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
                token, created = _join_token(cluster, True, user, now)
        else:
            token, created = _join_token(cluster, new_token, user, now)
        key = current_certificate_key(cluster, user=user, now=now) if control_plane else None
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
        raise ValidationError({"config": [str(error)]}) from None
    return KubeadmConfig(text, "init" if is_init else "join", token, key, created)


def cluster_configuration_preview(cluster: Cluster) -> str:
    """The ClusterConfiguration alone (no secrets), for the configuration page."""
    try:
        document = kubeadm_config.render_cluster_configuration(cluster_config_input(cluster))
    except kubeadm_config.ConfigError as error:
        raise ValidationError({"config": [str(error)]}) from None
    from pki.yaml_dump import dump_document

    return dump_document(document)


def audited_kubeadm_config(
    request: HttpRequest, cluster: Cluster, node: Node, *, new_token: bool
) -> KubeadmConfig:
    """``kubeadm_config_for`` as the pages and the API hand it out: the file carries a token
    (and for control-plane nodes the certificate key), so every download is audited in the
    same transaction, with the ids of what it reveals but never their values."""
    with transaction.atomic():
        config = kubeadm_config_for(cluster, node, new_token=new_token, user=request.user)
        if config.token_created and config.token is not None:
            audit.record("token.create", request=request, obj=config.token)
        audit.record(
            "kubeadm_config.download",
            request=request,
            obj=node,
            details={
                "kind": config.kind,
                "token_id": config.token.token_id if config.token else None,
                "certificate_key_id": config.certificate_key.pk if config.certificate_key else None,
            },
        )
    return config
