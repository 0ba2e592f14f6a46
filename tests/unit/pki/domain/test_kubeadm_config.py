"""kubeadm configuration files: field names per apiVersion, parsing, round trip, validation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from pki.domain.audit_policy import DEFAULT_AUDIT_POLICY, AuditPolicyError, validate_audit_policy
from pki.domain.kubeadm_config import (
    V1BETA3,
    V1BETA4,
    AuditLogConfig,
    ClusterConfigInput,
    ConfigError,
    ExternalEtcd,
    JoinInput,
    LocalEtcd,
    NodeConfigInput,
    Taint,
    api_version_for,
    apiserver_bind_port,
    render_cluster_configuration,
    render_kubeadm_config,
    validate_extra_args,
)

FIELDS: dict[str, dict[str, list[str]]] = yaml.safe_load(
    (Path(__file__).parent / "fixtures" / "kubeadm_fields.yaml").read_text()
)
TOKEN = "abcdef.0123456789abcdef"
HASHES = ("sha256:" + "1a" * 32, "sha256:" + "2b" * 32)
KEY = "3c" * 32


def full_cluster(version: str, **overrides: Any) -> ClusterConfigInput:
    values: dict[str, Any] = {
        "kubernetes_version": version,
        "control_plane_endpoint": "api.prod.example.com",
        "cluster_name": "prod",
        "certificates_dir": "/etc/kubernetes/pki",
        "image_repository": "registry.example.com/k8s",
        "service_subnet": "10.96.0.0/12",
        "pod_subnet": "10.244.0.0/16",
        "dns_domain": "cluster.local",
        "etcd": LocalEtcd(
            data_dir="/var/lib/etcd",
            server_cert_sans=("etcd.prod.example.com",),
            peer_cert_sans=("10.0.0.100",),
            extra_args={"quota-backend-bytes": "8589934592"},
        ),
        "apiserver_cert_sans": ("10.0.0.100", "api.prod.example.com", "*.prod.example.com"),
        "apiserver_extra_args": {"anonymous-auth": "false", "max-requests-inflight": "800"},
        "controller_manager_extra_args": {"bind-address": "0.0.0.0"},
        "scheduler_extra_args": {"bind-address": "0.0.0.0"},
        "audit": AuditLogConfig(),
    }
    values.update(overrides)
    return ClusterConfigInput(**values)


CP_NODE = NodeConfigInput(
    name="cp1",
    advertise_address="10.0.0.11",
    control_plane=True,
    kubelet_extra_args={"node-labels": "tier=control", "max-pods": "110"},
)
WORKER = NodeConfigInput(
    name="worker-1", advertise_address="10.0.0.21", control_plane=False, cri="cri-o"
)


def documents(text: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(text) if document is not None]


def unknown_fields(document: dict[str, Any], allowed: list[str]) -> list[str]:
    """Paths in ``document`` that the fixture does not list for its kind."""
    allowed_set = set(allowed)
    unknown: list[str] = []

    def known(path: str) -> bool:
        return any(
            entry == path or entry.startswith((path + ".", path + "[]")) for entry in allowed_set
        )

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            if path and f"{path}.*" in allowed_set:
                return  # free-form map such as v1beta3 extraArgs
            for key, child in value.items():
                child_path = f"{path}.{key}" if path else str(key)
                if known(child_path):
                    walk(child, child_path)
                else:
                    unknown.append(child_path)
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}[]")

    walk(document, "")
    return unknown


def all_renderings() -> list[tuple[str, str]]:
    renderings = []
    for version in ("v1.31.2", "1.33.0", "v1.30.5", "1.28.0"):
        cluster = full_cluster(version)
        external = full_cluster(
            version,
            etcd=ExternalEtcd(
                ("https://10.0.0.50:2379", "https://10.0.0.51:2379"),
                "/etc/kubernetes/pki/etcd/ca.crt",
                "/etc/kubernetes/pki/apiserver-etcd-client.crt",
                "/etc/kubernetes/pki/apiserver-etcd-client.key",
            ),
        )
        join_cp = JoinInput("api.prod.example.com:6443", TOKEN, HASHES, KEY)
        renderings += [
            (
                f"{version} init",
                render_kubeadm_config(cluster, CP_NODE, None, bootstrap_token=TOKEN),
            ),
            (f"{version} external etcd", render_kubeadm_config(external, CP_NODE, None)),
            (f"{version} join cp", render_kubeadm_config(cluster, CP_NODE, join_cp)),
            (
                f"{version} join worker",
                render_kubeadm_config(cluster, WORKER, JoinInput("10.0.0.5", TOKEN, HASHES)),
            ),
        ]
    return renderings


@pytest.mark.parametrize(("label", "text"), all_renderings())
def test_every_rendered_key_is_a_documented_field(label: str, text: str) -> None:
    for document in documents(text):
        allowed = FIELDS[document["apiVersion"]][document["kind"]]
        assert unknown_fields(document, allowed) == [], label


def test_field_check_catches_unknown_and_version_specific_keys() -> None:
    v1beta3 = FIELDS[V1BETA3]["ClusterConfiguration"]
    assert unknown_fields({"encryptionAlgorithm": "RSA-2048"}, v1beta3) == ["encryptionAlgorithm"]
    # v1beta3 takes a map there; the v1beta4 list form is caught.
    assert unknown_fields({"apiServer": {"extraArgs": {"a": "b"}}}, v1beta3) == []
    assert unknown_fields({"apiServer": {"extraArgs": [{"name": "a"}]}}, v1beta3) == [
        "apiServer.extraArgs[].name"
    ]
    assert unknown_fields({"apiServer": {"certSans": []}}, v1beta3) == ["apiServer.certSans"]
    v1beta4 = FIELDS[V1BETA4]["ClusterConfiguration"]
    assert unknown_fields({"apiServer": {"extraArgs": {"a": "b"}}}, v1beta4) == [
        "apiServer.extraArgs.a"
    ]
    assert unknown_fields({"apiServer": {"timeoutForControlPlane": "4m"}}, v1beta4) == [
        "apiServer.timeoutForControlPlane"
    ]


def test_api_version_follows_kubernetes_version() -> None:
    assert api_version_for("v1.31.0") == V1BETA4
    assert api_version_for("1.34.1") == V1BETA4
    assert api_version_for("v1.30.14") == V1BETA3
    assert api_version_for("1.22.0") == V1BETA3
    with pytest.raises(ConfigError, match="kubernetesVersion"):
        api_version_for("1.21.9")
    with pytest.raises(ConfigError, match="kubernetesVersion"):
        api_version_for("latest")


def test_init_v1beta4_round_trips_inputs() -> None:
    cluster = full_cluster(
        "1.31.2",
        encryption_algorithm="ECDSA-P256",
        certificate_validity=timedelta(days=90),
        ca_certificate_validity=timedelta(days=3650),
    )
    init, config = documents(
        render_kubeadm_config(cluster, CP_NODE, None, bootstrap_token=TOKEN, certificate_key=KEY)
    )
    assert (init["apiVersion"], init["kind"]) == (V1BETA4, "InitConfiguration")
    assert init["bootstrapTokens"] == [
        {
            "token": TOKEN,
            "ttl": "24h0m0s",
            "usages": ["signing", "authentication"],
            "groups": ["system:bootstrappers:kubeadm:default-node-token"],
        }
    ]
    assert init["nodeRegistration"] == {
        "name": "cp1",
        "criSocket": "unix:///var/run/containerd/containerd.sock",
        "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
        "kubeletExtraArgs": [
            {"name": "node-labels", "value": "tier=control"},
            {"name": "max-pods", "value": "110"},
        ],
    }
    assert init["localAPIEndpoint"] == {"advertiseAddress": "10.0.0.11", "bindPort": 6443}
    assert init["certificateKey"] == KEY

    assert (config["apiVersion"], config["kind"]) == (V1BETA4, "ClusterConfiguration")
    assert config["kubernetesVersion"] == "v1.31.2"
    assert config["controlPlaneEndpoint"] == "api.prod.example.com:6443"
    assert config["clusterName"] == "prod"
    assert config["certificatesDir"] == "/etc/kubernetes/pki"
    assert config["imageRepository"] == "registry.example.com/k8s"
    assert config["networking"] == {
        "serviceSubnet": "10.96.0.0/12",
        "podSubnet": "10.244.0.0/16",
        "dnsDomain": "cluster.local",
    }
    assert config["etcd"] == {
        "local": {
            "dataDir": "/var/lib/etcd",
            "extraArgs": [{"name": "quota-backend-bytes", "value": "8589934592"}],
            "serverCertSANs": ["etcd.prod.example.com"],
            "peerCertSANs": ["10.0.0.100"],
        }
    }
    assert config["apiServer"]["certSANs"] == list(cluster.apiserver_cert_sans)
    args = {arg["name"]: arg["value"] for arg in config["apiServer"]["extraArgs"]}
    assert args["anonymous-auth"] == "false"
    assert args["max-requests-inflight"] == "800"
    assert config["controllerManager"] == {
        "extraArgs": [{"name": "bind-address", "value": "0.0.0.0"}]
    }
    assert config["scheduler"] == {"extraArgs": [{"name": "bind-address", "value": "0.0.0.0"}]}
    assert config["encryptionAlgorithm"] == "ECDSA-P256"
    assert config["certificateValidityPeriod"] == "2160h0m0s"
    assert config["caCertificateValidityPeriod"] == "87600h0m0s"


def test_audit_flags_and_volumes() -> None:
    cluster = full_cluster(
        "1.31.2",
        audit=AuditLogConfig(log_dir="/var/log/k8s-audit", max_age_days=7, max_backups=3),
    )
    _, config = documents(render_kubeadm_config(cluster, CP_NODE, None))
    args = {arg["name"]: arg["value"] for arg in config["apiServer"]["extraArgs"]}
    assert args["audit-policy-file"] == "/etc/kubernetes/audit-policy.yaml"
    assert args["audit-log-path"] == "/var/log/k8s-audit/audit.log"
    assert (args["audit-log-maxage"], args["audit-log-maxbackup"]) == ("7", "3")
    assert args["audit-log-maxsize"] == "100"
    assert config["apiServer"]["extraVolumes"] == [
        {
            "name": "audit-policy",
            "hostPath": "/etc/kubernetes/audit-policy.yaml",
            "mountPath": "/etc/kubernetes/audit-policy.yaml",
            "readOnly": True,
            "pathType": "File",
        },
        {
            "name": "audit-log",
            "hostPath": "/var/log/k8s-audit",
            "mountPath": "/var/log/k8s-audit",
            "pathType": "DirectoryOrCreate",
        },
    ]
    _, without = documents(render_kubeadm_config(full_cluster("1.31.2", audit=None), CP_NODE, None))
    assert "extraVolumes" not in without["apiServer"]
    assert not any(arg["name"].startswith("audit") for arg in without["apiServer"]["extraArgs"])


def test_audit_flags_cannot_be_set_twice() -> None:
    cluster = full_cluster("1.31.2", apiserver_extra_args={"audit-log-path": "/tmp/x"})
    with pytest.raises(ConfigError, match="'audit-log-path'"):
        render_kubeadm_config(cluster, CP_NODE, None)


def test_v1beta3_uses_maps_and_omits_v1beta4_fields() -> None:
    init, config = documents(render_kubeadm_config(full_cluster("1.30.5"), CP_NODE, None))
    assert init["apiVersion"] == config["apiVersion"] == V1BETA3
    assert init["nodeRegistration"]["kubeletExtraArgs"] == {
        "node-labels": "tier=control",
        "max-pods": "110",
    }
    assert config["apiServer"]["extraArgs"]["anonymous-auth"] == "false"
    assert config["apiServer"]["extraArgs"]["audit-log-maxage"] == "30"
    assert config["etcd"]["local"]["extraArgs"] == {"quota-backend-bytes": "8589934592"}
    for name in ("encryptionAlgorithm", "certificateValidityPeriod", "caCertificateValidityPeriod"):
        assert name not in config


def test_v1beta3_refuses_non_default_v1beta4_settings() -> None:
    for override in (
        {"encryption_algorithm": "ECDSA-P256"},
        {"certificate_validity": timedelta(days=90)},
        {"ca_certificate_validity": timedelta(days=365)},
    ):
        with pytest.raises(ConfigError, match="v1beta4"):
            render_kubeadm_config(full_cluster("1.30.5", **override), CP_NODE, None)


def test_join_control_plane_round_trips_inputs() -> None:
    join = JoinInput("[fd00::10]:6443", TOKEN, HASHES, KEY)
    text = render_kubeadm_config(full_cluster("1.32.0"), CP_NODE, join)
    document, reference = documents(text)
    assert (document["apiVersion"], document["kind"]) == (V1BETA4, "JoinConfiguration")
    # The ClusterConfiguration follows for reference, marked as ignored by kubeadm join.
    assert (reference["apiVersion"], reference["kind"]) == (V1BETA4, "ClusterConfiguration")
    assert reference == render_cluster_configuration(full_cluster("1.32.0"))
    assert "kubeadm join ignores this document" in text
    assert document["discovery"] == {
        "bootstrapToken": {
            "apiServerEndpoint": "[fd00::10]:6443",
            "token": TOKEN,
            "caCertHashes": list(HASHES),
        }
    }
    assert document["controlPlane"] == {
        "localAPIEndpoint": {"advertiseAddress": "10.0.0.11", "bindPort": 6443},
        "certificateKey": KEY,
    }
    assert document["nodeRegistration"]["name"] == "cp1"


def test_join_worker_has_no_control_plane_and_no_taints() -> None:
    join = JoinInput("10.0.0.5", TOKEN, HASHES[:1])
    document, _ = documents(render_kubeadm_config(full_cluster("1.29.3"), WORKER, join))
    assert (document["apiVersion"], document["kind"]) == (V1BETA3, "JoinConfiguration")
    assert "controlPlane" not in document
    assert document["discovery"]["bootstrapToken"]["apiServerEndpoint"] == "10.0.0.5:6443"
    assert document["nodeRegistration"] == {
        "name": "worker-1",
        "criSocket": "unix:///var/run/crio/crio.sock",
        "taints": [],
    }
    with pytest.raises(ConfigError, match="certificateKey"):
        render_kubeadm_config(
            full_cluster("1.29.3"), WORKER, JoinInput("10.0.0.5", TOKEN, HASHES, KEY)
        )


def test_node_labels_become_the_kubelet_node_labels_flag() -> None:
    labeled = NodeConfigInput(
        "worker-1",
        "10.0.0.21",
        False,
        labels={"topology.kubernetes.io/zone": "eu-1a", "gpu": ""},
    )
    join = JoinInput("10.0.0.5", TOKEN, HASHES)
    v1beta4, _ = documents(render_kubeadm_config(full_cluster("1.31.0"), labeled, join))
    assert v1beta4["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-labels", "value": "topology.kubernetes.io/zone=eu-1a,gpu="}
    ]
    v1beta3, _ = documents(render_kubeadm_config(full_cluster("1.30.5"), labeled, join))
    assert v1beta3["nodeRegistration"]["kubeletExtraArgs"] == {
        "node-labels": "topology.kubernetes.io/zone=eu-1a,gpu="
    }
    # Joined to node-labels from the kubelet's extra arguments, the node's value winning.
    both = NodeConfigInput(
        "cp1",
        "10.0.0.11",
        True,
        kubelet_extra_args={"node-labels": "tier=control,zone=a", "max-pods": "110"},
        labels={"zone": "b", "disk": "ssd"},
    )
    init, _ = documents(render_kubeadm_config(full_cluster("1.31.0"), both, None))
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-labels", "value": "tier=control,zone=b,disk=ssd"},
        {"name": "max-pods", "value": "110"},
    ]
    bad = NodeConfigInput("cp1", "10.0.0.11", True, labels={"zone": "a,b"})
    with pytest.raises(ConfigError, match=r"kubeletExtraArgs.*label 'zone'"):
        render_kubeadm_config(full_cluster("1.31.0"), bad, None)


def test_the_apiserver_bind_port_is_its_secure_port_flag() -> None:
    assert apiserver_bind_port({}) == 6443
    assert apiserver_bind_port({"max-requests-inflight": "800"}) == 6443
    assert apiserver_bind_port({"secure-port": "6444"}) == 6444
    for bad in ("0", "70000", "https", "-1", ""):
        with pytest.raises(ConfigError, match="'secure-port' must be a port"):
            apiserver_bind_port({"secure-port": bad})


def test_custom_and_empty_taints() -> None:
    untainted = NodeConfigInput("cp1", "10.0.0.11", True, taints=())
    init, _ = documents(render_kubeadm_config(full_cluster("1.31.0"), untainted, None))
    assert init["nodeRegistration"]["taints"] == []
    gpu = NodeConfigInput(
        "gpu-1", "10.0.0.31", False, taints=(Taint("nvidia.com/gpu", "NoExecute", "present"),)
    )
    join, _ = documents(
        render_kubeadm_config(full_cluster("1.31.0"), gpu, JoinInput("10.0.0.5", TOKEN, HASHES))
    )
    assert join["nodeRegistration"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoExecute"}
    ]
    bad = NodeConfigInput("cp1", "10.0.0.11", True, taints=(Taint("a", "Sometimes"),))
    with pytest.raises(ConfigError, match=r"taints\[0\]\.effect"):
        render_kubeadm_config(full_cluster("1.31.0"), bad, None)


def test_external_etcd() -> None:
    etcd = ExternalEtcd(
        ("https://10.0.0.50:2379",), "/etc/etcd/ca.crt", "/etc/etcd/c.crt", "/etc/etcd/c.key"
    )
    _, config = documents(render_kubeadm_config(full_cluster("1.31.0", etcd=etcd), CP_NODE, None))
    assert config["etcd"] == {
        "external": {
            "endpoints": ["https://10.0.0.50:2379"],
            "caFile": "/etc/etcd/ca.crt",
            "certFile": "/etc/etcd/c.crt",
            "keyFile": "/etc/etcd/c.key",
        }
    }


def test_numeric_looking_strings_stay_strings() -> None:
    cluster = full_cluster("1.31.0", apiserver_extra_args={"v": "2", "flag": "1e3", "on": "y"})
    text = render_kubeadm_config(cluster, CP_NODE, None)
    assert 'value: "2"' in text
    assert 'value: "1e3"' in text
    assert 'value: "y"' in text


@pytest.mark.parametrize(
    ("mapping", "flag"),
    [
        ({"--anonymous-auth": "false"}, "--anonymous-auth"),
        ({"-v": "2"}, "-v"),
        ({"Anonymous": "x"}, "Anonymous"),
        ({"a b": "x"}, "a b"),
        ({"": "x"}, ""),
        ({"token-auth-file": "/etc/a\n- name: x"}, "token-auth-file"),
        ({"oidc-issuer-url": "https://a\rb"}, "oidc-issuer-url"),
        ({"v": 2}, "v"),
    ],
)
def test_validate_extra_args_names_the_flag(mapping: dict[str, Any], flag: str) -> None:
    with pytest.raises(ConfigError, match=f"flag {flag!r}"):
        validate_extra_args(mapping)


def test_validate_extra_args_accepts_good_flags() -> None:
    mapping = {"feature-gates": "A=true,B=false", "v": "2", "tls-cipher-suites": "X,Y"}
    assert validate_extra_args(mapping) == mapping


@pytest.mark.parametrize(
    ("cluster_override", "node", "field"),
    [
        ({"pod_subnet": "10.244.0.1/16"}, CP_NODE, "networking.podSubnet"),
        ({"service_subnet": "10.96.0.0/12,10.97.0.0/16"}, CP_NODE, "networking.serviceSubnet"),
        ({"cluster_name": "Prod"}, CP_NODE, "clusterName"),
        ({"certificates_dir": "etc/pki"}, CP_NODE, "certificatesDir"),
        ({"control_plane_endpoint": "bad host"}, CP_NODE, "controlPlaneEndpoint"),
        ({"apiserver_cert_sans": ("not a name",)}, CP_NODE, "apiServer.certSANs"),
        ({"encryption_algorithm": "DSA-1024"}, CP_NODE, "encryptionAlgorithm"),
        ({}, NodeConfigInput("cp_1", "10.0.0.11", True), "nodeRegistration.name"),
        ({}, NodeConfigInput("cp1", "10.0.0.300", True), "advertiseAddress"),
        ({}, NodeConfigInput("cp1", "10.0.0.11", True, bind_port=0), "bindPort"),
        ({}, WORKER, "control-plane node"),
    ],
)
def test_invalid_inputs_name_the_field(
    cluster_override: dict[str, Any], node: NodeConfigInput, field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        render_kubeadm_config(full_cluster("1.31.0", **cluster_override), node, None)


def test_dual_stack_subnets_are_accepted() -> None:
    cluster = full_cluster(
        "1.31.0",
        service_subnet="10.96.0.0/12,fd00:96::/112",
        pod_subnet="10.244.0.0/16,fd00:244::/56",
    )
    _, config = documents(render_kubeadm_config(cluster, CP_NODE, None))
    assert config["networking"]["serviceSubnet"] == "10.96.0.0/12,fd00:96::/112"


def test_default_audit_policy_is_valid_and_orders_rules_sensibly() -> None:
    policy = validate_audit_policy(DEFAULT_AUDIT_POLICY)
    rules = policy["rules"]
    levels = [rule["level"] for rule in rules]
    secrets_rule = next(
        index
        for index, rule in enumerate(rules)
        if any("secrets" in group.get("resources", []) for group in rule.get("resources", []))
    )
    assert levels[secrets_rule] == "Metadata"
    # Reads fall to Request only after the credential-bearing resources are capped at Metadata.
    request_rule = levels.index("Request")
    assert secrets_rule < request_rule < levels.index("RequestResponse")
    assert rules[request_rule]["verbs"] == ["get", "list", "watch"]
    health = next(rule for rule in rules if "nonResourceURLs" in rule)
    assert health["level"] == "None"
    assert "/readyz*" in health["nonResourceURLs"]
    proxy = rules[0]
    assert (proxy["level"], proxy["users"], proxy["verbs"]) == (
        "None",
        ["system:kube-proxy"],
        ["watch"],
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Verbose}]", "level"),
        ("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules: [{level: None}]", "apiVersion"),
        ("apiVersion: audit.k8s.io/v1\nkind: Pod\nrules: [{level: None}]", "kind"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []", "rules"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, user: [a]}]", "user"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, verbs: get}]", "verbs"),
        (
            "apiVersion: audit.k8s.io/v1\nkind: Policy\n"
            "rules: [{level: None, nonResourceURLs: ['/a*b']}]",
            "nonResourceURLs",
        ),
        (
            "apiVersion: audit.k8s.io/v1\nkind: Policy\n"
            "omitStages: [Never]\nrules: [{level: None}]",
            "omitStages",
        ),
        ("apiVersion: [", "YAML"),
    ],
)
def test_invalid_audit_policies(text: str, message: str) -> None:
    with pytest.raises(AuditPolicyError, match=message):
        validate_audit_policy(text)


def test_invalid_audit_policy_blocks_the_config() -> None:
    cluster = full_cluster("1.31.0", audit=AuditLogConfig(policy="kind: Policy"))
    with pytest.raises(ConfigError, match="audit policy"):
        render_kubeadm_config(cluster, CP_NODE, None)
