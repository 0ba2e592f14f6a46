"""kubeadm configuration files (``kubeadm init --config`` / ``kubeadm join --config``).

The first control-plane node gets an InitConfiguration plus the ClusterConfiguration; every other
node gets a JoinConfiguration (a joining node reads the cluster-wide settings from the cluster's
``kubeadm-config`` ConfigMap, so kubeadm ignores a ClusterConfiguration in a join file).

The API version follows the Kubernetes version: ``kubeadm.k8s.io/v1beta4`` from 1.31 on, where
``extraArgs`` and ``kubeletExtraArgs`` are lists of ``{name, value}`` and ClusterConfiguration has
``encryptionAlgorithm`` and the two validity periods; ``v1beta3`` before, where extra arguments are
maps and those three fields do not exist (their defaults are what v1beta3 kubeadm does anyway, so
defaults are simply left out there and anything else is refused).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from clusterpanel.errors import InputError
from pki.domain.audit_policy import DEFAULT_AUDIT_POLICY, AuditPolicyError, validate_audit_policy
from pki.domain.join import (
    JoinError,
    normalize_endpoint,
    validate_ca_cert_hash,
    validate_certificate_key,
)
from pki.domain.names import (
    DNS1123_LABEL,
    is_dns1123_subdomain,
    is_wildcard_dns1123_subdomain,
    parse_version,
)
from pki.domain.tokens import TokenError, format_go_duration, parse_token, parse_ttl
from pki.domain.yaml import dump_document, dump_documents

V1BETA3 = "kubeadm.k8s.io/v1beta3"
V1BETA4 = "kubeadm.k8s.io/v1beta4"

CRI_SOCKETS: dict[str, str] = {
    "containerd": "unix:///var/run/containerd/containerd.sock",
    "cri-o": "unix:///var/run/crio/crio.sock",
}
ENCRYPTION_ALGORITHMS: tuple[str, ...] = (
    "RSA-2048",
    "RSA-3072",
    "RSA-4096",
    "ECDSA-P256",
    "ECDSA-P384",
)
DEFAULT_ENCRYPTION_ALGORITHM = "RSA-2048"
DEFAULT_CERTIFICATE_VALIDITY = timedelta(hours=8760)
DEFAULT_CA_CERTIFICATE_VALIDITY = timedelta(hours=87600)
TAINT_EFFECTS: tuple[str, ...] = ("NoSchedule", "PreferNoSchedule", "NoExecute")
DEFAULT_BIND_PORT = 6443

_FLAG_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]*")
_PATH_RE = re.compile(r"/[A-Za-z0-9._/@:+-]*")
_IMAGE_REPOSITORY_RE = re.compile(r"[a-z0-9]([a-z0-9._:/-]*[a-z0-9])?")
_TAINT_KEY_RE = re.compile(
    rf"({DNS1123_LABEL}(\.{DNS1123_LABEL})*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
)
_TAINT_VALUE_RE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


class ConfigError(InputError):
    """An invalid value for a kubeadm configuration; the message names the field or flag."""


@dataclass(frozen=True)
class LocalEtcd:
    """Stacked etcd run by kubeadm as a static pod on each control-plane node."""

    data_dir: str = "/var/lib/etcd"
    server_cert_sans: tuple[str, ...] = ()
    peer_cert_sans: tuple[str, ...] = ()
    extra_args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExternalEtcd:
    """An etcd cluster kubeadm does not manage; the files must already be on every node."""

    endpoints: tuple[str, ...]
    ca_file: str
    cert_file: str
    key_file: str


@dataclass(frozen=True)
class AuditLogConfig:
    """Audit logging for kube-apiserver: the policy and where the log goes on the host."""

    policy: str = DEFAULT_AUDIT_POLICY
    policy_path: str = "/etc/kubernetes/audit-policy.yaml"
    log_dir: str = "/var/log/kubernetes/audit"
    max_age_days: int = 30
    max_backups: int = 10
    max_size_mb: int = 100

    @property
    def log_path(self) -> str:
        return f"{self.log_dir.rstrip('/')}/audit.log"


@dataclass(frozen=True)
class ClusterConfigInput:
    """Cluster-wide settings (ClusterConfiguration)."""

    kubernetes_version: str
    control_plane_endpoint: str
    cluster_name: str = "kubernetes"
    certificates_dir: str = "/etc/kubernetes/pki"
    image_repository: str = "registry.k8s.io"
    service_subnet: str = "10.96.0.0/12"
    pod_subnet: str | None = None
    dns_domain: str = "cluster.local"
    etcd: LocalEtcd | ExternalEtcd = field(default_factory=LocalEtcd)
    apiserver_cert_sans: tuple[str, ...] = ()
    apiserver_extra_args: Mapping[str, str] = field(default_factory=dict)
    controller_manager_extra_args: Mapping[str, str] = field(default_factory=dict)
    scheduler_extra_args: Mapping[str, str] = field(default_factory=dict)
    encryption_algorithm: str = DEFAULT_ENCRYPTION_ALGORITHM
    certificate_validity: timedelta = DEFAULT_CERTIFICATE_VALIDITY
    ca_certificate_validity: timedelta = DEFAULT_CA_CERTIFICATE_VALIDITY
    audit: AuditLogConfig | None = None


@dataclass(frozen=True)
class Taint:
    """A node taint (``key[=value]:effect``)."""

    key: str
    effect: str
    value: str | None = None


CONTROL_PLANE_TAINT = Taint("node-role.kubernetes.io/control-plane", "NoSchedule")


@dataclass(frozen=True)
class NodeConfigInput:
    """Per-node registration settings. ``taints=None`` means the default for the role.

    ``labels`` reach the kubelet as its ``node-labels`` flag (kubeadm has no other field for
    them), joined to any ``node-labels`` already in ``kubelet_extra_args``; the node's own
    value wins for a key set in both.
    """

    name: str
    advertise_address: str
    control_plane: bool
    bind_port: int = DEFAULT_BIND_PORT
    cri: Literal["containerd", "cri-o"] = "containerd"
    taints: tuple[Taint, ...] | None = None
    kubelet_extra_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JoinInput:
    """How a joining node finds and trusts the cluster (bootstrap-token discovery)."""

    api_server_endpoint: str
    token: str = field(repr=False)
    ca_cert_hashes: tuple[str, ...]
    certificate_key: str | None = field(default=None, repr=False)


# --- validation helpers -------------------------------------------------------------------


# Extra arguments of one component: more than any component has flags, values long enough for
# cipher-suite and admission-plugin lists.
MAX_EXTRA_ARGS = 64
MAX_FLAG_NAME = 100
MAX_FLAG_VALUE = 4096


def validate_extra_args(mapping: Mapping[str, str], where: str = "extraArgs") -> dict[str, str]:
    """Check flag names (``[a-z0-9-]+``, no leading dash) and single-line string values."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where}: must be a mapping of flag name to value")
    if len(mapping) > MAX_EXTRA_ARGS:
        raise ConfigError(f"{where}: at most {MAX_EXTRA_ARGS} flags, not {len(mapping)}")
    result: dict[str, str] = {}
    for name, value in mapping.items():
        if not isinstance(name, str) or _FLAG_NAME_RE.fullmatch(name) is None:
            raise ConfigError(f"{where}: flag {name!r} must be [a-z0-9-]+ without leading dashes")
        if not isinstance(value, str):
            raise ConfigError(f"{where}: flag {name!r} must have a string value")
        if any(char in value for char in "\n\r\0"):
            raise ConfigError(f"{where}: flag {name!r} value must be a single line")
        if len(name) > MAX_FLAG_NAME or len(value) > MAX_FLAG_VALUE:
            raise ConfigError(
                f"{where}: flag names have at most {MAX_FLAG_NAME} characters and values at "
                f"most {MAX_FLAG_VALUE}"
            )
        result[name] = value
    return result


def apiserver_bind_port(apiserver_extra_args: Mapping[str, str]) -> int:
    """The port kube-apiserver listens on: its ``secure-port`` extra argument, else 6443.

    kubeadm starts the apiserver with ``--secure-port`` from ``localAPIEndpoint.bindPort``, lets
    an extraArgs ``secure-port`` override it, but keeps bindPort for the static pod's probes, the
    local kubeconfigs and the etcd/kubelet wiring: the two must agree, so bindPort follows this.
    """
    value = apiserver_extra_args.get("secure-port") if apiserver_extra_args else None
    if value is None:
        return DEFAULT_BIND_PORT
    if not isinstance(value, str) or not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ConfigError(
            f"apiServer.extraArgs: flag 'secure-port' must be a port between 1 and 65535, "
            f"not {value!r}"
        )
    return int(value)


def kubernetes_minor(version: str) -> tuple[int, int]:
    """Return (major, minor) of ``v1.31.2`` or ``1.31.2``."""
    parsed = parse_version(version)
    if parsed is None:
        raise ConfigError(f"kubernetesVersion: {version!r} must look like v1.31.2")
    return parsed[0], parsed[1]


def api_version_for(kubernetes_version: str) -> str:
    """``v1beta4`` for Kubernetes >= 1.31, ``v1beta3`` for 1.22 to 1.30."""
    minor = kubernetes_minor(kubernetes_version)
    if minor < (1, 22):
        raise ConfigError(f"kubernetesVersion: {kubernetes_version} is older than 1.22")
    return V1BETA4 if minor >= (1, 31) else V1BETA3


def _check_path(value: str, where: str) -> str:
    if not isinstance(value, str) or _PATH_RE.fullmatch(value) is None or "/../" in value + "/":
        raise ConfigError(f"{where}: {value!r} must be an absolute path")
    return value


def _check_dns_subdomain(value: str, where: str) -> str:
    if not isinstance(value, str) or not is_dns1123_subdomain(value):
        raise ConfigError(f"{where}: {value!r} must be a lowercase DNS-1123 subdomain")
    return value


def _check_ip(value: str, where: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        raise ConfigError(f"{where}: {value!r} is not an IP address") from None


def _check_port(value: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(f"{where}: {value!r} must be a port between 1 and 65535")
    return value


def _check_subnets(value: str, where: str) -> str:
    """One CIDR or a dual-stack pair ``v4,v6``, as kubeadm accepts."""
    parts = value.split(",") if isinstance(value, str) else []
    try:
        networks = [ipaddress.ip_network(part.strip(), strict=True) for part in parts]
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not a CIDR (or two, comma-separated)") from None
    if not 1 <= len(networks) <= 2 or len({net.version for net in networks}) != len(networks):
        raise ConfigError(f"{where}: {value!r} must be one CIDR or one IPv4 and one IPv6 CIDR")
    return ",".join(str(net) for net in networks)


def _check_sans(values: Sequence[str], where: str) -> list[str]:
    result = []
    for value in values:
        try:
            result.append(str(ipaddress.ip_address(value)))
            continue
        except (ValueError, TypeError):
            pass
        if not isinstance(value, str) or not (
            is_dns1123_subdomain(value) or is_wildcard_dns1123_subdomain(value)
        ):
            raise ConfigError(f"{where}: {value!r} is not an IP address or DNS name")
        result.append(value)
    return result


def _endpoint(value: str, where: str) -> str:
    try:
        return normalize_endpoint(value)
    except JoinError as error:
        raise ConfigError(f"{where}: {error}") from None


# --- rendering pieces ---------------------------------------------------------------------


def _args(mapping: Mapping[str, str], api_version: str, where: str) -> Any:
    """extraArgs: a list of {name, value} in v1beta4, a map in v1beta3."""
    checked = validate_extra_args(mapping, where)
    if api_version == V1BETA4:
        return [{"name": name, "value": value} for name, value in checked.items()]
    return dict(checked)


def _taints(node: NodeConfigInput) -> list[dict[str, str]]:
    default: tuple[Taint, ...] = (CONTROL_PLANE_TAINT,) if node.control_plane else ()
    rendered = []
    for index, taint in enumerate(default if node.taints is None else node.taints):
        where = f"nodeRegistration.taints[{index}]"
        if not isinstance(taint.key, str) or not _TAINT_KEY_RE.fullmatch(taint.key):
            raise ConfigError(f"{where}.key: {taint.key!r} is not a valid taint key")
        if taint.effect not in TAINT_EFFECTS:
            raise ConfigError(f"{where}.effect: must be one of {', '.join(TAINT_EFFECTS)}")
        entry = {"key": taint.key}
        if taint.value:
            if not _TAINT_VALUE_RE.fullmatch(taint.value) or len(taint.value) > 63:
                raise ConfigError(f"{where}.value: {taint.value!r} is not a valid taint value")
            entry["value"] = taint.value
        entry["effect"] = taint.effect
        rendered.append(entry)
    return rendered


def _node_labels(text: str, where: str) -> dict[str, str]:
    """Parse the kubelet's ``--node-labels`` value (``key=value,key2=value2``)."""
    labels: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise ConfigError(f"{where}: {item!r} in node-labels is not key=value")
        labels[key] = value
    return labels


def _kubelet_args(node: NodeConfigInput) -> dict[str, str]:
    where = "nodeRegistration.kubeletExtraArgs"
    args = validate_extra_args(node.kubelet_extra_args, where)
    if node.labels:
        labels = _node_labels(args["node-labels"], where) if args.get("node-labels") else {}
        labels.update(node.labels)
        for key, value in labels.items():
            if not isinstance(key, str) or len(key) > 317 or not _TAINT_KEY_RE.fullmatch(key):
                raise ConfigError(f"{where}: {key!r} is not a valid node label key")
            if (
                not isinstance(value, str)
                or len(value) > 63
                or not _TAINT_VALUE_RE.fullmatch(value)
            ):
                raise ConfigError(f"{where}: {value!r} is not a valid value of label {key!r}")
        args["node-labels"] = ",".join(f"{key}={value}" for key, value in labels.items())
    return args


def _node_registration(node: NodeConfigInput, api_version: str) -> dict[str, Any]:
    if node.cri not in CRI_SOCKETS:
        raise ConfigError(f"nodeRegistration.criSocket: runtime must be one of {list(CRI_SOCKETS)}")
    registration: dict[str, Any] = {
        "name": _check_dns_subdomain(node.name, "nodeRegistration.name"),
        "criSocket": CRI_SOCKETS[node.cri],
        # Always explicit: an absent list means "default taints", [] means none.
        "taints": _taints(node),
    }
    kubelet_args = _kubelet_args(node)
    if kubelet_args:
        registration["kubeletExtraArgs"] = _args(
            kubelet_args, api_version, "nodeRegistration.kubeletExtraArgs"
        )
    return registration


def _local_api_endpoint(node: NodeConfigInput) -> dict[str, Any]:
    return {
        "advertiseAddress": _check_ip(node.advertise_address, "localAPIEndpoint.advertiseAddress"),
        "bindPort": _check_port(node.bind_port, "localAPIEndpoint.bindPort"),
    }


def _etcd(etcd: LocalEtcd | ExternalEtcd, api_version: str) -> dict[str, Any]:
    if isinstance(etcd, ExternalEtcd):
        if not etcd.endpoints:
            raise ConfigError("etcd.external.endpoints: at least one endpoint is needed")
        for endpoint in etcd.endpoints:
            if not re.fullmatch(r"https?://[A-Za-z0-9.\[\]:-]+(:\d+)?", str(endpoint)):
                raise ConfigError(f"etcd.external.endpoints: {endpoint!r} must be an http(s) URL")
        return {
            "external": {
                "endpoints": list(etcd.endpoints),
                "caFile": _check_path(etcd.ca_file, "etcd.external.caFile"),
                "certFile": _check_path(etcd.cert_file, "etcd.external.certFile"),
                "keyFile": _check_path(etcd.key_file, "etcd.external.keyFile"),
            }
        }
    local: dict[str, Any] = {"dataDir": _check_path(etcd.data_dir, "etcd.local.dataDir")}
    if etcd.extra_args:
        local["extraArgs"] = _args(etcd.extra_args, api_version, "etcd.local.extraArgs")
    if etcd.server_cert_sans:
        local["serverCertSANs"] = _check_sans(etcd.server_cert_sans, "etcd.local.serverCertSANs")
    if etcd.peer_cert_sans:
        local["peerCertSANs"] = _check_sans(etcd.peer_cert_sans, "etcd.local.peerCertSANs")
    return {"local": local}


def _audit_args_and_volumes(
    audit: AuditLogConfig,
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    try:
        validate_audit_policy(audit.policy)
    except AuditPolicyError as error:
        raise ConfigError(f"audit policy: {error}") from None
    policy_path = _check_path(audit.policy_path, "audit.policyPath")
    log_dir = _check_path(audit.log_dir, "audit.logDir").rstrip("/")
    numbers = {
        "audit-log-maxage": audit.max_age_days,
        "audit-log-maxbackup": audit.max_backups,
        "audit-log-maxsize": audit.max_size_mb,
    }
    for flag, number in numbers.items():
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ConfigError(f"apiServer.extraArgs: flag {flag!r} must be a whole number >= 0")
    args = {"audit-policy-file": policy_path, "audit-log-path": audit.log_path}
    args.update({flag: str(number) for flag, number in numbers.items()})
    volumes: list[dict[str, Any]] = [
        {
            "name": "audit-policy",
            "hostPath": policy_path,
            "mountPath": policy_path,
            "readOnly": True,
            "pathType": "File",
        },
        {
            "name": "audit-log",
            "hostPath": log_dir,
            "mountPath": log_dir,
            "pathType": "DirectoryOrCreate",
        },
    ]
    return args, volumes


def _api_server(cluster: ClusterConfigInput, api_version: str) -> dict[str, Any]:
    extra = validate_extra_args(cluster.apiserver_extra_args, "apiServer.extraArgs")
    volumes: list[dict[str, Any]] = []
    if cluster.audit is not None:
        audit_args, volumes = _audit_args_and_volumes(cluster.audit)
        clash = sorted(set(extra) & set(audit_args))
        if clash:
            raise ConfigError(f"apiServer.extraArgs: flag {clash[0]!r} is set by the audit log")
        extra = {**extra, **audit_args}
    section: dict[str, Any] = {}
    if extra:
        section["extraArgs"] = _args(extra, api_version, "apiServer.extraArgs")
    if volumes:
        section["extraVolumes"] = volumes
    if cluster.apiserver_cert_sans:
        section["certSANs"] = _check_sans(cluster.apiserver_cert_sans, "apiServer.certSANs")
    return section


def _component(mapping: Mapping[str, str], api_version: str, where: str) -> dict[str, Any]:
    return {"extraArgs": _args(mapping, api_version, f"{where}.extraArgs")} if mapping else {}


def _v1beta4_only_fields(cluster: ClusterConfigInput, api_version: str) -> dict[str, Any]:
    if cluster.encryption_algorithm not in ENCRYPTION_ALGORITHMS:
        raise ConfigError(f"encryptionAlgorithm: must be one of {', '.join(ENCRYPTION_ALGORITHMS)}")
    periods = {
        "certificateValidityPeriod": cluster.certificate_validity,
        "caCertificateValidityPeriod": cluster.ca_certificate_validity,
    }
    for name, period in periods.items():
        if not isinstance(period, timedelta) or period <= timedelta(0):
            raise ConfigError(f"{name}: must be a positive duration")
    if api_version == V1BETA4:
        fields: dict[str, Any] = {"encryptionAlgorithm": cluster.encryption_algorithm}
        fields.update({name: format_go_duration(period) for name, period in periods.items()})
        return fields
    defaults = (
        cluster.encryption_algorithm == DEFAULT_ENCRYPTION_ALGORITHM
        and cluster.certificate_validity == DEFAULT_CERTIFICATE_VALIDITY
        and cluster.ca_certificate_validity == DEFAULT_CA_CERTIFICATE_VALIDITY
    )
    if not defaults:
        raise ConfigError(
            "encryptionAlgorithm/certificateValidityPeriod/caCertificateValidityPeriod: "
            "need kubeadm v1beta4 (Kubernetes 1.31 or later)"
        )
    return {}


def _networking(cluster: ClusterConfigInput) -> dict[str, str]:
    networking = {
        "serviceSubnet": _check_subnets(cluster.service_subnet, "networking.serviceSubnet")
    }
    if cluster.pod_subnet:
        networking["podSubnet"] = _check_subnets(cluster.pod_subnet, "networking.podSubnet")
    networking["dnsDomain"] = _check_dns_subdomain(cluster.dns_domain, "networking.dnsDomain")
    return networking


def render_cluster_configuration(cluster: ClusterConfigInput) -> dict[str, Any]:
    """The ClusterConfiguration document as a dict (validated)."""
    api_version = api_version_for(cluster.kubernetes_version)
    if not isinstance(cluster.image_repository, str) or not _IMAGE_REPOSITORY_RE.fullmatch(
        cluster.image_repository
    ):
        raise ConfigError(f"imageRepository: {cluster.image_repository!r} is not a registry path")
    document: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": "ClusterConfiguration",
        "kubernetesVersion": "v" + cluster.kubernetes_version.removeprefix("v"),
        "controlPlaneEndpoint": _endpoint(cluster.control_plane_endpoint, "controlPlaneEndpoint"),
        "clusterName": _check_dns_subdomain(cluster.cluster_name, "clusterName"),
        "certificatesDir": _check_path(cluster.certificates_dir, "certificatesDir"),
        "imageRepository": cluster.image_repository,
        "networking": _networking(cluster),
        "etcd": _etcd(cluster.etcd, api_version),
        "apiServer": _api_server(cluster, api_version),
        "controllerManager": _component(
            cluster.controller_manager_extra_args, api_version, "controllerManager"
        ),
        "scheduler": _component(cluster.scheduler_extra_args, api_version, "scheduler"),
    }
    document.update(_v1beta4_only_fields(cluster, api_version))
    return document


def _init_configuration(
    node: NodeConfigInput,
    api_version: str,
    bootstrap_token: str | None,
    bootstrap_token_ttl: timedelta | str,
    certificate_key: str | None,
) -> dict[str, Any]:
    if not node.control_plane:
        raise ConfigError("nodeRegistration: the first node (init) must be a control-plane node")
    document: dict[str, Any] = {"apiVersion": api_version, "kind": "InitConfiguration"}
    if bootstrap_token is not None:
        try:
            token = str(parse_token(bootstrap_token))
            ttl = format_go_duration(parse_ttl(bootstrap_token_ttl))
        except TokenError as error:
            raise ConfigError(f"bootstrapTokens: {error}") from None
        document["bootstrapTokens"] = [
            {
                "token": token,
                "ttl": ttl,
                "usages": ["signing", "authentication"],
                "groups": ["system:bootstrappers:kubeadm:default-node-token"],
            }
        ]
    document["nodeRegistration"] = _node_registration(node, api_version)
    document["localAPIEndpoint"] = _local_api_endpoint(node)
    if certificate_key is not None:
        document["certificateKey"] = _certificate_key(certificate_key)
    return document


def _certificate_key(value: str) -> str:
    try:
        return validate_certificate_key(value)
    except JoinError as error:
        raise ConfigError(str(error)) from None


def _join_configuration(node: NodeConfigInput, join: JoinInput, api_version: str) -> dict[str, Any]:
    try:
        token = str(parse_token(join.token))
        hashes = [validate_ca_cert_hash(value) for value in join.ca_cert_hashes]
    except (TokenError, JoinError) as error:
        raise ConfigError(f"discovery.bootstrapToken: {error}") from None
    if isinstance(join.ca_cert_hashes, str) or not hashes:
        raise ConfigError("discovery.bootstrapToken.caCertHashes: at least one hash is needed")
    document: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": _endpoint(
                    join.api_server_endpoint, "discovery.bootstrapToken.apiServerEndpoint"
                ),
                "token": token,
                "caCertHashes": hashes,
            }
        },
        "nodeRegistration": _node_registration(node, api_version),
    }
    if node.control_plane:
        control_plane: dict[str, Any] = {"localAPIEndpoint": _local_api_endpoint(node)}
        if join.certificate_key is not None:
            control_plane["certificateKey"] = _certificate_key(join.certificate_key)
        document["controlPlane"] = control_plane
    elif join.certificate_key is not None:
        raise ConfigError("controlPlane.certificateKey: only control-plane nodes take one")
    return document


JOIN_CLUSTER_CONFIGURATION_NOTE = (
    "# For reference: kubeadm join ignores this document and uses the ClusterConfiguration\n"
    "# stored in the cluster (ConfigMap kube-system/kubeadm-config).\n"
)


def render_kubeadm_config(
    cluster: ClusterConfigInput,
    node: NodeConfigInput,
    join: JoinInput | None,
    *,
    bootstrap_token: str | None = None,
    bootstrap_token_ttl: timedelta | str = timedelta(hours=24),
    certificate_key: str | None = None,
) -> str:
    """Render the kubeadm configuration file for one node.

    ``join=None``: the first control-plane node, InitConfiguration + ClusterConfiguration;
    ``bootstrap_token`` (created by init) and ``certificate_key`` (for upload-certs) apply only
    there. Otherwise a JoinConfiguration for a worker or an additional control-plane node,
    followed by the ClusterConfiguration for reference.
    """
    api_version = api_version_for(cluster.kubernetes_version)
    cluster_document = render_cluster_configuration(cluster)
    if join is None:
        init = _init_configuration(
            node, api_version, bootstrap_token, bootstrap_token_ttl, certificate_key
        )
        return dump_documents([init, cluster_document])
    if bootstrap_token is not None or certificate_key is not None:
        raise ConfigError("bootstrapTokens/certificateKey: only the init configuration takes them")
    # kubeadm join takes only the JoinConfiguration from the file and reads the cluster's own
    # ClusterConfiguration from kube-system/kubeadm-config; the copy says what that holds.
    return (
        dump_documents([_join_configuration(node, join, api_version)])
        + "---\n"
        + JOIN_CLUSTER_CONFIGURATION_NOTE
        + dump_document(cluster_document)
    )
