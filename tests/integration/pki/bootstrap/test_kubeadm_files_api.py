"""kubeadm configuration, the kubeadm-certs payload and the load balancer configs via the API,
checked by parsing them back, by an independent AES-GCM decrypt, and by nginx -t / haproxy -c."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clusterpanel.models import AuditEvent
from nodes.models import Cluster, Node
from pki.domain.audit_policy import DEFAULT_AUDIT_POLICY
from pki.domain.kubeconfig import parse_kubeconfig
from pki.domain.x509 import spki_sha256
from pki.models import ClusterKubeadmSettings
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node

pytestmark = pytest.mark.django_db
CONFIG = "/api/v1/clusters/{}/kubeadm-config/"
SETTINGS = "/api/v1/clusters/{}/kubeadm-settings/"


def documents(text: str) -> dict[str, dict[str, Any]]:
    return {document["kind"]: document for document in yaml.safe_load_all(text)}


def make_certificate_key(api: Any, cluster: Cluster) -> None:
    """Control-plane files carry the certificate key; the API makes it only on a POST."""
    response = api.post(f"/api/v1/clusters/{cluster.pk}/certificate-key/")
    assert response.status_code in (200, 201), response.content


def test_the_first_control_plane_gets_init_and_cluster_configuration(
    api_client: Callable[[str], Any], cluster: Cluster, nodes: dict[str, Node]
) -> None:
    cluster.extra_sans = ["api.example.internal", "10.0.0.100"]
    cluster.save()
    api = api_client("admin")
    patch = api.patch(
        SETTINGS.format(cluster.pk),
        {
            "apiserver_extra_args": {"max-requests-inflight": "800"},
            "controller_manager_extra_args": {"node-monitor-grace-period": "50s"},
            "scheduler_extra_args": {"bind-address": "0.0.0.0"},
            "etcd_extra_args": {"quota-backend-bytes": "8589934592"},
            "kubelet_extra_args": {"max-pods": "200"},
        },
        format="json",
    )
    assert patch.status_code == 200, patch.json()
    # The init file carries a token and the certificate key; reading it makes neither.
    refused = api.get(CONFIG.format(cluster.pk), {"node": nodes["cp-1"].pk})
    assert refused.status_code == 409 and "certificate-key/" in refused.json()["detail"]
    make_certificate_key(api, cluster)
    refused = api.get(CONFIG.format(cluster.pk), {"node": nodes["cp-1"].pk})
    assert refused.status_code == 409 and "new_token=1" in refused.json()["detail"]
    assert not cluster.bootstrap_tokens.exists()
    response = api.get(CONFIG.format(cluster.pk), {"node": nodes["cp-1"].pk, "new_token": "1"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/yaml")
    docs = documents(response.content.decode())
    assert set(docs) == {"InitConfiguration", "ClusterConfiguration"}
    init, config = docs["InitConfiguration"], docs["ClusterConfiguration"]
    assert init["apiVersion"] == config["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    registration = init["nodeRegistration"]
    assert registration["name"] == "cp-1"
    assert registration["criSocket"] == "unix:///var/run/containerd/containerd.sock"
    assert registration["taints"] == [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    ]
    assert registration["kubeletExtraArgs"] == [{"name": "max-pods", "value": "200"}]
    assert init["localAPIEndpoint"] == {"advertiseAddress": "10.0.0.11", "bindPort": 6443}
    assert len(init["certificateKey"]) == 64
    token = init["bootstrapTokens"][0]["token"]
    assert cluster.bootstrap_tokens.get(token_id=token[:6]).value == token
    # The ClusterConfiguration round-trips the cluster's settings.
    assert config["kubernetesVersion"] == cluster.kubernetes_version
    assert config["controlPlaneEndpoint"] == "lb.example.internal:6443"
    assert config["clusterName"] == cluster.cluster_name
    assert config["networking"] == {
        "serviceSubnet": cluster.service_subnet,
        "podSubnet": cluster.pod_subnet,
        "dnsDomain": cluster.dns_domain,
    }
    assert config["encryptionAlgorithm"] == cluster.key_algorithm
    assert config["certificateValidityPeriod"] == "8760h0m0s"
    assert config["caCertificateValidityPeriod"] == "87600h0m0s"
    assert config["etcd"]["local"]["extraArgs"] == [
        {"name": "quota-backend-bytes", "value": "8589934592"}
    ]
    api_server = config["apiServer"]
    assert api_server["certSANs"] == cluster.extra_sans
    args = {arg["name"]: arg["value"] for arg in api_server["extraArgs"]}
    assert args["max-requests-inflight"] == "800"
    # The default audit policy comes with its flags and volume mounts.
    assert args["audit-policy-file"] == "/etc/kubernetes/audit-policy.yaml"
    assert args["audit-log-path"] == "/var/log/kubernetes/audit/audit.log"
    mounts = {volume["name"]: volume for volume in api_server["extraVolumes"]}
    assert mounts["audit-policy"]["hostPath"] == "/etc/kubernetes/audit-policy.yaml"
    assert mounts["audit-policy"]["readOnly"] is True
    assert mounts["audit-log"]["mountPath"] == "/var/log/kubernetes/audit"
    assert config["controllerManager"]["extraArgs"] == [
        {"name": "node-monitor-grace-period", "value": "50s"}
    ]
    assert config["scheduler"]["extraArgs"] == [{"name": "bind-address", "value": "0.0.0.0"}]
    assert AuditEvent.objects.filter(action="kubeadm_config.download").count() == 1


def test_other_nodes_get_a_join_configuration(
    api_client: Callable[[str], Any], cluster: Cluster, nodes: dict[str, Node]
) -> None:
    certificate_services.ensure_cluster_cas(cluster)
    api = api_client("operator")
    make_certificate_key(api, cluster)
    no_token = api.get(CONFIG.format(cluster.pk), {"node": nodes["w-1"].pk})
    assert no_token.status_code == 409
    worker = api.get(CONFIG.format(cluster.pk), {"node": nodes["w-1"].pk, "new_token": "1"})
    assert worker.status_code == 200, worker.content
    join = documents(worker.content.decode())["JoinConfiguration"]
    discovery = join["discovery"]["bootstrapToken"]
    assert discovery["apiServerEndpoint"] == "lb.example.internal:6443"
    hashes = [spki_sha256(c) for c in certificate_services.ca_certificates(cluster)]
    assert discovery["caCertHashes"] == hashes
    assert join["nodeRegistration"]["taints"] == [
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    ]
    assert "controlPlane" not in join
    # A control-plane join file carries the certificate key: an admin's download.
    second = api_client("admin").get(CONFIG.format(cluster.pk), {"node": nodes["cp-2"].pk})
    join_cp = documents(second.content.decode())["JoinConfiguration"]
    assert join_cp["discovery"]["bootstrapToken"]["token"] == discovery["token"]
    assert join_cp["controlPlane"]["localAPIEndpoint"]["advertiseAddress"] == "10.0.0.12"
    assert len(join_cp["controlPlane"]["certificateKey"]) == 64


def _flags(value: Any) -> dict[str, str]:
    """kubeletExtraArgs as a dict: a list of {name, value} in v1beta4, a map in v1beta3."""
    if isinstance(value, list):
        return {item["name"]: item["value"] for item in value}
    return dict(value)


@pytest.mark.parametrize("version", ["v1.31.2", "v1.30.4"])
def test_every_node_attribute_reaches_its_kubeadm_file(
    api_client: Callable[[str], Any], cluster: Cluster, version: str
) -> None:
    """Name, advertise address, labels, taints and CRI socket of each node, in the init file
    of the first control-plane node and the join files of the others. A worker's
    JoinConfiguration has no field for its address (only controlPlane.localAPIEndpoint)."""
    cluster.kubernetes_version = version
    cluster.container_runtime = "cri-o"
    cluster.save()
    create = make_node
    cp_1 = create(
        cluster=cluster,
        name="cp-1",
        address="10.0.0.11",
        role="control-plane",
        labels={"topology.kubernetes.io/zone": "eu-1a"},
    )
    cp_2 = create(
        cluster=cluster,
        name="cp-2",
        address="10.0.0.12",
        role="control-plane",
        labels={"disk": "ssd"},
        taints=[],
    )
    w_1 = create(
        cluster=cluster,
        name="w-1",
        address="10.0.0.21",
        role="worker",
        labels={"gpu": "nvidia", "node.kubernetes.io/pool": "batch"},
        taints=["dedicated=gpu:NoSchedule", "spot:PreferNoSchedule"],
    )
    certificate_services.ensure_cluster_cas(cluster)
    make_certificate_key(api_client("operator"), cluster)
    expected = {
        "cp-1": (
            "InitConfiguration",
            "topology.kubernetes.io/zone=eu-1a",
            [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
        ),
        "cp-2": ("JoinConfiguration", "disk=ssd", []),
        "w-1": (
            "JoinConfiguration",
            "gpu=nvidia,node.kubernetes.io/pool=batch",
            [
                {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                {"key": "spot", "effect": "PreferNoSchedule"},
            ],
        ),
    }
    api = api_client("admin")
    for node in (cp_1, cp_2, w_1):
        response = api.get(CONFIG.format(cluster.pk), {"node": node.pk, "new_token": "1"})
        assert response.status_code == 200, response.content
        kind, labels, taints = expected[node.name]
        document = documents(response.content.decode())[kind]
        registration = document["nodeRegistration"]
        assert registration["name"] == node.name
        assert registration["criSocket"] == "unix:///var/run/crio/crio.sock"
        assert registration["taints"] == taints
        assert _flags(registration["kubeletExtraArgs"])["node-labels"] == labels
        if node.role == "control-plane":
            local = (
                document["localAPIEndpoint"]
                if kind == "InitConfiguration"
                else document["controlPlane"]["localAPIEndpoint"]
            )
            assert local["advertiseAddress"] == node.address
        else:
            assert "controlPlane" not in document and "localAPIEndpoint" not in document


def test_versions_before_1_31_get_v1beta3_maps(
    api_client: Callable[[str], Any], cluster: Cluster, nodes: dict[str, Node]
) -> None:
    cluster.kubernetes_version = "v1.30.4"
    cluster.save()
    api = api_client("admin")
    api.patch(
        SETTINGS.format(cluster.pk),
        {"apiserver_extra_args": {"max-requests-inflight": "800"}},
        format="json",
    )
    make_certificate_key(api, cluster)
    query = {"node": nodes["cp-1"].pk, "new_token": "1"}
    text = api.get(CONFIG.format(cluster.pk), query).content.decode()
    config = documents(text)["ClusterConfiguration"]
    assert config["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert config["apiServer"]["extraArgs"]["max-requests-inflight"] == "800"
    assert "encryptionAlgorithm" not in config


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"apiserver_extra_args": {"--max-requests-inflight": "800"}}, "apiserver_extra_args"),
        ({"scheduler_extra_args": {"Bind_Address": "x"}}, "scheduler_extra_args"),
        ({"kubelet_extra_args": {"max-pods": "1\n--evil=1"}}, "kubelet_extra_args"),
        ({"etcd_extra_args": {"quota": 5}}, "etcd_extra_args"),
        ({"controller_manager_extra_args": ["a"]}, "controller_manager_extra_args"),
        ({"audit_policy": "apiVersion: v1\nkind: Policy\nrules: []\n"}, "audit_policy"),
        ({"apiserver_extra_args": {"audit-log-path": "/tmp/x"}}, "apiserver_extra_args"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(
    api_client: Callable[[str], Any], cluster: Cluster, fields: dict[str, Any], field: str
) -> None:
    # Component arguments decide who may use the cluster: admins change them.
    response = api_client("admin").patch(SETTINGS.format(cluster.pk), fields, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not cluster.__class__.objects.filter(kubeadm_settings__isnull=False).exists()


def test_settings_show_the_default_audit_policy_to_viewers(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    body = api_client("viewer").get(SETTINGS.format(cluster.pk)).json()
    assert body["audit_policy"] == DEFAULT_AUDIT_POLICY and body["audit_enabled"] is True
    # Never saved: no time of the last change (the schema declares it nullable).
    assert body["updated_at"] is None
    assert api_client("viewer").patch(SETTINGS.format(cluster.pk), {}).status_code == 403


def test_a_missing_or_foreign_node_is_a_400(
    api_client: Callable[[str], Any], cluster: Cluster, nodes: dict[str, Node]
) -> None:
    api = api_client("operator")
    assert "node" in api.get(CONFIG.format(cluster.pk)).json()["errors"]
    other = make_cluster("other", control_plane_endpoint="10.1.0.1")
    response = api.get(CONFIG.format(other.pk), {"node": nodes["cp-1"].pk})
    assert response.status_code == 400 and "node" in response.json()["errors"]


def test_the_kubeadm_certs_secret_decrypts_with_the_certificate_key(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    api = api_client("admin")
    url = f"/api/v1/clusters/{cluster.pk}/kubeadm-certs/"
    # Downloading makes neither the CAs nor the key: each 409 says what is missing.
    no_ca = api.get(url)
    assert no_ca.status_code == 409 and "no CAs yet" in no_ca.json()["detail"]
    certificate_services.ensure_cluster_cas(cluster)
    no_key = api.get(url)
    assert no_key.status_code == 409 and "certificate-key/" in no_key.json()["detail"]
    assert not cluster.certificate_keys.exists()
    make_certificate_key(api, cluster)
    response = api.get(url)
    assert response.status_code == 200, response.content
    secret = yaml.safe_load(response.content)
    assert secret["metadata"] == {"name": "kubeadm-certs", "namespace": "kube-system"}
    assert secret["type"] == "Opaque"
    key = cluster.certificate_keys.get().key
    aes = AESGCM(bytes.fromhex(key))
    plain = {}
    for name, value in secret["data"].items():
        raw = base64.b64decode(value)
        plain[name] = aes.decrypt(raw[:12], raw[12:], None)
    shared = certificate_services.shared_control_plane_files(cluster)
    assert set(plain) == {name.replace("/", "-") for name in shared}
    for name, content in shared.items():
        assert plain[name.replace("/", "-")] == content
    # The control-plane join command hands out the same key.
    certificate_services.ensure_cluster_cas(cluster)
    api.post("/api/v1/tokens/", {"cluster": cluster.pk}, format="json")
    join = api.get(f"/api/v1/clusters/{cluster.pk}/join-command/", {"role": "control-plane"})
    assert join.json()["certificate_key"] == key
    assert AuditEvent.objects.filter(action="kubeadm_certs.download").count() == 1
    viewer = api_client("viewer").get(f"/api/v1/clusters/{cluster.pk}/kubeadm-certs/")
    assert viewer.status_code == 403


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def test_nginx_and_haproxy_accept_the_downloaded_configs(
    api_client: Callable[[str], Any], cluster: Cluster, nodes: dict[str, Node], tmp_path: Path
) -> None:
    for tool in (NGINX, HAPROXY):
        if not Path(tool).exists():
            pytest.fail(f"{tool} is not installed; see docs/TESTING.md")
    api = api_client("viewer")
    nginx = api.get(f"/api/v1/clusters/{cluster.pk}/loadbalancer/nginx/")
    haproxy = api.get(f"/api/v1/clusters/{cluster.pk}/loadbalancer/haproxy/")
    assert nginx.status_code == haproxy.status_code == 200
    nginx_text, haproxy_text = nginx.content.decode(), haproxy.content.decode()
    for text in (nginx_text, haproxy_text):
        assert "10.0.0.11:6443" in text and "10.0.0.12:6443" in text
        assert "10.0.0.21" not in text  # workers are not apiservers
    assert_accepted_by_nginx_and_haproxy(nginx_text, haproxy_text, tmp_path)


def assert_accepted_by_nginx_and_haproxy(
    nginx_text: str, haproxy_text: str, tmp_path: Path
) -> None:
    for tool in (NGINX, HAPROXY):
        if not Path(tool).exists():
            pytest.fail(f"{tool} is not installed; see docs/TESTING.md")
    (tmp_path / "nginx.conf").write_text(nginx_text)
    (tmp_path / "haproxy.cfg").write_text(haproxy_text)
    checked = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    checked = subprocess.run(
        [HAPROXY, "-c", "-f", str(tmp_path / "haproxy.cfg")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_secure_port_in_the_apiserver_arguments_is_the_apiserver_port_everywhere(
    api_client: Callable[[str], Any], cluster: Cluster, nodes: dict[str, Node], tmp_path: Path
) -> None:
    """bindPort of every control-plane node, the balancer's backends, the local kubeconfigs and
    the health endpoints follow ``secure-port``; what goes through the balancer keeps its port."""
    cluster.key_algorithm = "ECDSA-P256"  # fast keys: the whole tree is issued below
    cluster.save()
    api = api_client("admin")
    patch = api.patch(
        SETTINGS.format(cluster.pk),
        {"apiserver_extra_args": {"secure-port": "6444"}},
        format="json",
    )
    assert patch.status_code == 200, patch.content
    certificate_services.issue_missing(cluster, actor=SETUP)
    make_certificate_key(api, cluster)

    def config(node: str) -> dict[str, dict[str, Any]]:
        response = api.get(CONFIG.format(cluster.pk), {"node": nodes[node].pk, "new_token": "1"})
        assert response.status_code == 200, response.content
        return documents(response.content.decode())

    init = config("cp-1")
    assert init["InitConfiguration"]["localAPIEndpoint"] == {
        "advertiseAddress": "10.0.0.11",
        "bindPort": 6444,
    }
    args = init["ClusterConfiguration"]["apiServer"]["extraArgs"]
    assert {"name": "secure-port", "value": "6444"} in args
    assert init["ClusterConfiguration"]["controlPlaneEndpoint"] == "lb.example.internal:6443"
    join_cp = config("cp-2")["JoinConfiguration"]
    assert join_cp["controlPlane"]["localAPIEndpoint"] == {
        "advertiseAddress": "10.0.0.12",
        "bindPort": 6444,
    }
    worker = config("w-1")["JoinConfiguration"]
    assert worker["discovery"]["bootstrapToken"]["apiServerEndpoint"] == "lb.example.internal:6443"

    viewer = api_client("viewer")
    nginx = viewer.get(f"/api/v1/clusters/{cluster.pk}/loadbalancer/nginx/").content.decode()
    haproxy = viewer.get(f"/api/v1/clusters/{cluster.pk}/loadbalancer/haproxy/").content.decode()
    for text in (nginx, haproxy):
        assert "10.0.0.11:6444" in text and "10.0.0.12:6444" in text
        assert ":6443 " not in text.replace("bind :6443", "")  # no backend left on 6443
    assert "listen 6443;" in nginx and "bind :6443" in haproxy
    assert_accepted_by_nginx_and_haproxy(nginx, haproxy, tmp_path)

    files = certificate_services.node_bundle_files(cluster, nodes["cp-1"])
    servers = {
        name: parse_kubeconfig(files[name].content.decode()).server
        for name in ("controller-manager.conf", "scheduler.conf", "admin.conf", "kubelet.conf")
    }
    assert servers == {
        "controller-manager.conf": "https://10.0.0.11:6444",
        "scheduler.conf": "https://10.0.0.11:6444",
        "admin.conf": "https://lb.example.internal:6443",
        "kubelet.conf": "https://lb.example.internal:6443",
    }

    checks = viewer.get(f"/api/v1/clusters/{cluster.pk}/certificates/endpoints/").json()
    assert checks["ok"] is True
    urls = {(r["node"], r["host"]): r["url"] for r in checks["results"]}
    assert urls[("cp-1", "10.0.0.11")] == "https://10.0.0.11:6444/livez"
    assert urls[("cp-2", "10.0.0.12")] == "https://10.0.0.12:6444/livez"
    assert urls[("cp-1", "lb.example.internal")] == "https://lb.example.internal:6443/livez"
    assert urls[("cp-1", "10.96.0.1")] == "https://10.96.0.1:443/livez"


def test_a_secure_port_that_is_no_port_is_refused(
    api_client: Callable[[str], Any], cluster: Cluster, nodes: dict[str, Node]
) -> None:
    api = api_client("admin")
    response = api.patch(
        SETTINGS.format(cluster.pk),
        {"apiserver_extra_args": {"secure-port": "https"}},
        format="json",
    )
    assert response.status_code == 400
    assert "'secure-port' must be a port" in response.json()["errors"]["apiserver_extra_args"][0]
    # A value stored before it was checked stops the kubeadm file with the same reason.
    ClusterKubeadmSettings.objects.create(
        cluster=cluster, apiserver_extra_args={"secure-port": "https"}
    )
    config = api.get(CONFIG.format(cluster.pk), {"node": nodes["cp-1"].pk})
    assert config.status_code == 400
    assert "'secure-port' must be a port" in config.json()["errors"]["config"][0]


def test_a_cluster_without_control_plane_nodes_gets_a_clear_400(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    response = api_client("viewer").get(f"/api/v1/clusters/{cluster.pk}/loadbalancer/nginx/")
    assert response.status_code == 400
    assert "control-plane" in response.json()["errors"]["backends"][0]
    bad = api_client("viewer").get(f"/api/v1/clusters/{cluster.pk}/loadbalancer/envoy/")
    assert bad.status_code == 400 and "kind" in bad.json()["errors"]


def test_with_external_etcd_the_payload_carries_the_etcd_client_files(
    api_client: Callable[[str], Any], db: Any
) -> None:
    external = make_cluster(
        "ext",
        control_plane_endpoint="10.2.0.1",
        etcd_topology="external",
        key_algorithm="ECDSA-P256",
    )
    make_node(external, name="cp-1", address="10.2.0.11")
    make_node(external, "etcd", name="etcd-1", address="10.2.0.31")
    api = api_client("admin")
    url = f"/api/v1/clusters/{external.pk}/kubeadm-certs/"
    certificate_services.ensure_cluster_cas(external)
    before = api.get(url)
    assert before.status_code == 409 and "apiserver-etcd-client" in before.json()["detail"]
    certificate_services.issue_missing(external, actor=SETUP)
    make_certificate_key(api, external)
    secret = yaml.safe_load(api.get(url).content)
    assert set(secret["data"]) == {
        "ca.crt",
        "ca.key",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "sa.key",
        "sa.pub",
        "external-etcd-ca.crt",
        "external-etcd.crt",
        "external-etcd.key",
    }
    aes = AESGCM(bytes.fromhex(external.certificate_keys.get().key))
    raw = base64.b64decode(secret["data"]["external-etcd.key"])
    assert b"PRIVATE KEY" in aes.decrypt(raw[:12], raw[12:], None)
    # The kubeadm configuration points at the same files and the etcd member.
    text = api.get(
        f"/api/v1/clusters/{external.pk}/kubeadm-config/",
        {"node": external.nodes.get(name="cp-1").pk, "new_token": "1"},
    ).content.decode()
    etcd = documents(text)["ClusterConfiguration"]["etcd"]["external"]
    assert etcd["endpoints"] == ["https://10.2.0.31:2379"]
    assert etcd["certFile"] == "/etc/kubernetes/pki/apiserver-etcd-client.crt"
