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
from pki.services.bootstrap.join_commands import (
    PLACEHOLDER_CERTIFICATE_KEY,
    ca_cert_hashes,
    join_token,
    mask_placeholders,
    placeholder_token,
    require_certificate_key,
    require_certificate_key_access,
    require_join_token,
    usable_certificate_key,
)
from pki.services.bootstrap.kubeadm_settings import settings_for
from pki.services.certificates.spec import apiserver_port, refuse_binary

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
    # True for the page's preview: the token and the certificate key are shown as asterisks.
    masked: bool = False
    # A control-plane file needs a certificate key; a preview may lack one (the download not).
    needs_certificate_key: bool = False


def _registration(cluster: Cluster, node: Node) -> tuple[kubeadm_config.NodeConfigInput, bool]:
    """The node's registration inputs, and whether the node runs ``kubeadm init``."""
    if node.cluster_id != cluster.pk:
        raise InputError(f"node {node.name} is not in cluster {cluster.name}", "node")
    refuse_binary(cluster, "kubeadm configuration files", "node")
    if node.role == NodeRole.ETCD:
        raise InputError.many(
            {"node": [f"{node.name} is an external etcd member; kubeadm does not join it"]}
        )
    stored = settings_for(cluster)
    try:
        bind_port = apiserver_port(cluster)
    except kubeadm_config.ConfigError as error:
        raise InputError(str(error), "config") from None
    registration = kubeadm_config.NodeConfigInput(
        name=node.name,
        advertise_address=str(node.address),
        control_plane=node.role == NodeRole.CONTROL_PLANE,
        bind_port=bind_port,
        cri=str(cluster.container_runtime),  # type: ignore[arg-type]
        taints=_taints(node),
        kubelet_extra_args=dict(stored.kubelet_extra_args),
        labels=dict(node.labels or {}),
    )
    first = init_node(cluster)
    return registration, first is not None and first.pk == node.pk


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

    The init file carries the usable join token (so that the token kubeadm creates is one the
    panel knows, and later join commands work) and a control-plane file the certificate key for
    ``--upload-certs``. Both must exist: a new token is made only when asked for
    (``new_token``, audited), a certificate key never (``NoUsableToken``/``NoCertificateKey``
    say what is missing). The file reveals both, so handing it out is recorded as
    ``kubeadm_config.download`` with their ids (never their values) in the same transaction.
    Control-plane files (init and join) carry the certificate key: refused (403) to a role that
    may not see it.
    """
    now = now or timezone.now()
    registration, is_init = _registration(cluster, node)
    if registration.control_plane:
        require_certificate_key_access(actor, CONTROL_PLANE_FILE_REFUSED)
    with transaction.atomic():
        key = require_certificate_key(cluster, now) if registration.control_plane else None
        token, created = join_token(cluster, new_token, actor, now)
        text = _render(
            cluster, registration, token.value, token, key.key if key else None, is_init, now
        )
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


def kubeadm_config_preview(
    cluster: Cluster, node: Node, *, actor: Actor, now: datetime | None = None
) -> KubeadmConfig:
    """The node's kubeadm file as the page shows it: the usable token and the certificate key
    masked. Reads only: it makes, reveals and records nothing (``NoUsableToken`` without a
    token; without a certificate key the preview says the download needs one). Control-plane
    files are an admin's, masked or not: refused (403) to a role that may not see the key."""
    now = now or timezone.now()
    registration, is_init = _registration(cluster, node)
    if registration.control_plane:
        require_certificate_key_access(actor, CONTROL_PLANE_FILE_REFUSED)
    token = require_join_token(cluster, now)
    key = usable_certificate_key(cluster, now) if registration.control_plane else None
    placeholder_key = PLACEHOLDER_CERTIFICATE_KEY if registration.control_plane else None
    text = _render(
        cluster, registration, placeholder_token(token), token, placeholder_key, is_init, now
    )
    return KubeadmConfig(
        mask_placeholders(text, token),
        "init" if is_init else "join",
        token,
        key,
        False,
        masked=True,
        needs_certificate_key=registration.control_plane and key is None,
    )


def _render(
    cluster: Cluster,
    registration: kubeadm_config.NodeConfigInput,
    token_value: str,
    token: BootstrapToken,
    certificate_key: str | None,
    is_init: bool,
    now: datetime,
) -> str:
    """The init or join file's text, with the given token value and certificate key."""
    try:
        if is_init:
            left = token.time_left(now)
            text = kubeadm_config.render_kubeadm_config(
                cluster_config_input(cluster),
                registration,
                None,
                bootstrap_token=token_value,
                bootstrap_token_ttl=timedelta(0)
                if left is None
                else timedelta(seconds=int(left.total_seconds())),
                certificate_key=certificate_key,
            )
        else:
            join = kubeadm_config.JoinInput(
                api_server_endpoint=cluster.normalized_endpoint,
                token=token_value,
                ca_cert_hashes=tuple(ca_cert_hashes(cluster)),
                certificate_key=certificate_key,
            )
            text = kubeadm_config.render_kubeadm_config(
                cluster_config_input(cluster), registration, join
            )
    except kubeadm_config.ConfigError as error:
        raise InputError(str(error), "config") from None
    return text


def cluster_configuration_preview(cluster: Cluster) -> str:
    """The ClusterConfiguration alone (no secrets), for the configuration page."""
    refuse_binary(cluster, "kubeadm ClusterConfiguration", "config")
    try:
        document = kubeadm_config.render_cluster_configuration(cluster_config_input(cluster))
    except kubeadm_config.ConfigError as error:
        raise InputError(str(error), "config") from None
    from pki.domain.yaml import dump_document

    return dump_document(document)
