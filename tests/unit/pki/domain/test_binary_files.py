"""The rendered files of a binary-installed cluster: units, kubelet and kube-proxy configuration,
kubeconfigs.

The kubeconfigs are compared with what the real ``kubectl config set-cluster/set-credentials/
set-context/use-context`` write for the same inputs, and every unit goes through the real
``systemd-analyze verify`` (with the install prefix in a temporary directory holding stub
executables, since verify checks that ExecStart's binary exists).
"""

from __future__ import annotations

import configparser
import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pki.domain import binary_configs, binary_kubeconfig, binary_node, binary_units
from pki.domain.binary_layout import (
    CA_FILES,
    CERTS,
    ETCD,
    KUBE_APISERVER,
    KUBE_CONTROLLER_MANAGER,
    KUBE_PROXY,
    KUBE_SCHEDULER,
    KUBELET,
    SERVICE_ACCOUNT,
    BinaryLayout,
    holds,
)
from pki.domain.binary_spec import BinarySpec, cluster_dns_ip, is_etcd_member
from pki.domain.kubeadm import (
    CA,
    ETCD_CA,
    FRONT_PROXY_CA,
    ROLE_CONTROL_PLANE,
    ROLE_ETCD,
    ROLE_WORKER,
    TOPOLOGY_EXTERNAL,
    ClusterSpec,
    NodeSpec,
)
from pki.domain.x509 import PKIError
from tests.unit.pki.domain.binary_pems import pems

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
needs_kubectl = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl is not installed")
needs_systemd_analyze = pytest.mark.skipif(
    not Path(SYSTEMD_ANALYZE).exists(), reason="systemd-analyze is not installed"
)

STACKED = (
    NodeSpec("cp-1", "10.0.0.11"),
    NodeSpec("cp-2", "10.0.0.12"),
    NodeSpec("cp-3", "10.0.0.13"),
    NodeSpec("w-1", "10.0.0.21", ROLE_WORKER),
    NodeSpec("w-2", "10.0.0.22", ROLE_WORKER),
)
EXTERNAL = (
    NodeSpec("cp-1", "10.0.0.11"),
    NodeSpec("w-1", "10.0.0.21", ROLE_WORKER),
    NodeSpec("etcd-1", "10.0.0.31", ROLE_ETCD),
    NodeSpec("etcd-2", "10.0.0.32", ROLE_ETCD),
    NodeSpec("etcd-3", "10.0.0.33", ROLE_ETCD),
)
POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"
TOKENS = "secret-token,kubelet-bootstrap,10001,system:node-bootstrapper\n"


def make_spec(
    nodes: tuple[NodeSpec, ...] = STACKED, layout: BinaryLayout | None = None, **changes: object
) -> BinarySpec:
    external = any(node.role == ROLE_ETCD for node in nodes)
    cluster = ClusterSpec(
        cluster_name="prod",
        control_plane_endpoint="lb.example.internal:8443",
        service_subnet="10.96.0.0/12",
        dns_domain="corp.local",
        etcd_topology=TOPOLOGY_EXTERNAL if external else "stacked",
        nodes=nodes,
    )
    spec = BinarySpec(
        layout=layout or BinaryLayout(),
        cluster=cluster,
        pod_subnet="10.244.0.0/16",
        static_tokens=True,
        audit=True,
    )
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


def files_of(spec: BinarySpec, node: NodeSpec) -> list[binary_node.RenderedFile]:
    return binary_node.node_files(spec, node, pems(), audit_policy=POLICY, token_csv=TOKENS)


# --------------------------------------------------------------------------- kube-apiserver


def test_apiserver_flags_one_by_one() -> None:
    """Every flag of the list, with the layout's file names; nothing else."""
    spec = make_spec()
    ssl = "/etc/k8s/ssl"
    flags = binary_units.apiserver_flags(spec, STACKED[1])
    assert len(flags) == len(dict(flags)), "a flag is given twice"
    assert dict(flags) == {
        "advertise-address": "10.0.0.12",
        "allow-privileged": "true",
        "audit-log-maxage": "30",
        "audit-log-maxbackup": "10",
        "audit-log-maxsize": "100",
        "audit-log-path": "/var/log/kubernetes/audit/audit.log",
        "audit-policy-file": "/etc/k8s/audit-policy.yaml",
        "authorization-mode": "Node,RBAC",
        "bind-address": "0.0.0.0",
        "client-ca-file": f"{ssl}/ca.pem",
        "enable-admission-plugins": "NodeRestriction",
        "enable-aggregator-routing": "true",
        "etcd-cafile": f"{ssl}/etcd-ca.pem",
        "etcd-certfile": f"{ssl}/apiserver-etcd-client.pem",
        "etcd-keyfile": f"{ssl}/apiserver-etcd-client-key.pem",
        "etcd-servers": "https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379",
        "kubelet-certificate-authority": f"{ssl}/ca.pem",
        "kubelet-client-certificate": f"{ssl}/apiserver-kubelet-client.pem",
        "kubelet-client-key": f"{ssl}/apiserver-kubelet-client-key.pem",
        "kubelet-preferred-address-types": "InternalIP,ExternalIP,Hostname",
        "proxy-client-cert-file": f"{ssl}/proxy-client.pem",
        "proxy-client-key-file": f"{ssl}/proxy-client-key.pem",
        "requestheader-allowed-names": "front-proxy-client",
        "requestheader-client-ca-file": f"{ssl}/front-proxy-ca.pem",
        "requestheader-extra-headers-prefix": "X-Remote-Extra-",
        "requestheader-group-headers": "X-Remote-Group",
        "requestheader-username-headers": "X-Remote-User",
        "secure-port": "6443",
        "service-account-issuer": "https://kubernetes.default.svc.corp.local",
        "service-account-key-file": f"{ssl}/service-account.pem",
        "service-account-signing-key-file": f"{ssl}/service-account-key.pem",
        "service-cluster-ip-range": "10.96.0.0/12",
        "service-node-port-range": "30000-32767",
        "tls-cert-file": f"{ssl}/kubernetes.pem",
        "tls-private-key-file": f"{ssl}/kubernetes-key.pem",
        "token-auth-file": "/etc/k8s/tokens.csv",
    }
    # Sorted, as kubeadm sorts a static pod's flags.
    assert [name for name, _ in flags] == sorted(name for name, _ in flags)


def test_apiserver_without_audit_or_static_tokens_and_never_insecure() -> None:
    """Audit off drops the five audit flags, no static tokens drops --token-auth-file; there is
    never an insecure port, and anonymous auth stays on (the health checks read /livez
    anonymously, as on kubeadm clusters)."""
    spec = make_spec(audit=False, static_tokens=False, service_node_port_range="20000-22767")
    flags = dict(binary_units.apiserver_flags(spec, STACKED[0]))
    assert not [name for name in flags if name.startswith("audit-")]
    assert "token-auth-file" not in flags
    assert flags["service-node-port-range"] == "20000-22767"
    for absent in ("insecure-port", "insecure-bind-address", "port", "address", "anonymous-auth"):
        assert absent not in flags
    text = binary_units.render_unit(spec, STACKED[0], KUBE_APISERVER).text
    assert "insecure" not in text and "anonymous" not in text


def test_apiserver_with_external_etcd_and_custom_layout() -> None:
    layout = BinaryLayout(install_prefix="/usr/local/k8s", cert_dir="/srv/pki", config_dir="/srv/k")
    spec = make_spec(EXTERNAL, layout)
    unit = binary_units.render_unit(spec, EXTERNAL[0], KUBE_APISERVER)
    flags = dict(unit.flags)
    assert flags["etcd-servers"] == (
        "https://10.0.0.31:2379,https://10.0.0.32:2379,https://10.0.0.33:2379"
    )
    assert flags["tls-cert-file"] == "/srv/pki/kubernetes.pem"
    assert flags["audit-policy-file"] == "/srv/k/audit-policy.yaml"
    assert unit.path == "/etc/systemd/system/kube-apiserver.service"
    assert "ExecStart=/usr/local/k8s/bin/kube-apiserver \\\n" in unit.text
    # External etcd runs elsewhere: no ordering after a local etcd.
    assert "etcd.service" not in unit.text


# --------------------------------------------------------------------------- the other units


def test_other_components_flags() -> None:
    spec = make_spec()
    ssl = "/etc/k8s/ssl"
    cm = dict(binary_units.controller_manager_flags(spec))
    assert cm == {
        "allocate-node-cidrs": "true",
        "authentication-kubeconfig": "/etc/k8s/kube-controller-manager.kubeconfig",
        "authorization-kubeconfig": "/etc/k8s/kube-controller-manager.kubeconfig",
        "bind-address": "127.0.0.1",
        "client-ca-file": f"{ssl}/ca.pem",
        "cluster-cidr": "10.244.0.0/16",
        "cluster-name": "prod",
        "cluster-signing-cert-file": f"{ssl}/ca.pem",
        "cluster-signing-key-file": f"{ssl}/ca-key.pem",
        "kubeconfig": "/etc/k8s/kube-controller-manager.kubeconfig",
        "leader-elect": "true",
        "requestheader-client-ca-file": f"{ssl}/front-proxy-ca.pem",
        "root-ca-file": f"{ssl}/ca.pem",
        "service-account-private-key-file": f"{ssl}/service-account-key.pem",
        "service-cluster-ip-range": "10.96.0.0/12",
        "use-service-account-credentials": "true",
    }
    no_pods = dict(binary_units.controller_manager_flags(make_spec(pod_subnet="")))
    assert "cluster-cidr" not in no_pods and "allocate-node-cidrs" not in no_pods
    assert dict(binary_units.scheduler_flags(spec)) == {
        "authentication-kubeconfig": "/etc/k8s/kube-scheduler.kubeconfig",
        "authorization-kubeconfig": "/etc/k8s/kube-scheduler.kubeconfig",
        "bind-address": "127.0.0.1",
        "kubeconfig": "/etc/k8s/kube-scheduler.kubeconfig",
        "leader-elect": "true",
    }
    etcd = dict(binary_units.etcd_flags(spec, STACKED[2]))
    assert etcd == {
        "advertise-client-urls": "https://10.0.0.13:2379",
        "cert-file": f"{ssl}/etcd-server.pem",
        "client-cert-auth": "true",
        "data-dir": "/var/lib/etcd",
        "initial-advertise-peer-urls": "https://10.0.0.13:2380",
        "initial-cluster": (
            "cp-1=https://10.0.0.11:2380,cp-2=https://10.0.0.12:2380,cp-3=https://10.0.0.13:2380"
        ),
        "initial-cluster-state": "new",
        "key-file": f"{ssl}/etcd-server-key.pem",
        "listen-client-urls": "https://10.0.0.13:2379,https://127.0.0.1:2379",
        "listen-metrics-urls": "http://127.0.0.1:2381",
        "listen-peer-urls": "https://10.0.0.13:2380",
        "name": "cp-3",
        "peer-cert-file": f"{ssl}/etcd-peer.pem",
        "peer-client-cert-auth": "true",
        "peer-key-file": f"{ssl}/etcd-peer-key.pem",
        "peer-trusted-ca-file": f"{ssl}/etcd-ca.pem",
        "trusted-ca-file": f"{ssl}/etcd-ca.pem",
    }
    joining = binary_units.node_units(spec, STACKED[2], initial_cluster_state="existing")[0]
    assert dict(joining.flags)["initial-cluster-state"] == "existing"
    with pytest.raises(PKIError, match="initial cluster state"):
        binary_units.etcd_flags(spec, STACKED[2], initial_cluster_state="old")
    kubelet = dict(binary_units.kubelet_flags(make_spec(container_runtime="cri-o"), STACKED[3]))
    assert kubelet == {
        "config": "/etc/k8s/kubelet-config.yaml",
        "container-runtime-endpoint": "unix:///var/run/crio/crio.sock",
        "hostname-override": "w-1",
        "kubeconfig": "/etc/k8s/kubelet.kubeconfig",
        "node-ip": "10.0.0.21",
    }
    assert binary_units.kube_proxy_flags(spec) == [("config", "/etc/k8s/kube-proxy-config.yaml")]


def _parse_unit(text: str) -> dict[str, dict[str, str]]:
    """systemd's unit syntax as far as these units use it (continuation lines joined)."""
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text.replace("\\\n", ""))
    return {section: dict(parser[section]) for section in parser.sections()}


@pytest.mark.parametrize(
    ("service", "user", "notify", "after"),
    [
        (ETCD, "kube", True, "network-online.target"),
        (KUBE_APISERVER, "kube", True, "network-online.target etcd.service"),
        (KUBE_CONTROLLER_MANAGER, "kube", False, "network-online.target kube-apiserver.service"),
        (KUBE_SCHEDULER, "kube", False, "network-online.target kube-apiserver.service"),
        (KUBELET, "root", False, "network-online.target containerd.service"),
        (KUBE_PROXY, "root", False, "network-online.target"),
    ],
)
def test_unit_sections(service: str, user: str, notify: bool, after: str) -> None:
    spec = make_spec()
    unit = binary_units.render_unit(spec, STACKED[0], service)
    sections = _parse_unit(unit.text)
    assert list(sections) == ["Unit", "Service", "Install"]
    assert sections["Unit"]["After"] == after
    assert sections["Unit"]["Wants"] == after
    assert "Requires" not in sections["Unit"]
    body = sections["Service"]
    assert body["User"] == user
    assert body.get("Type") == ("notify" if notify else None)
    assert body["Restart"] == "on-failure"
    assert body["RestartSec"] == "5"
    assert body["LimitNOFILE"] == "65536"
    assert sections["Install"] == {"WantedBy": "multi-user.target"}
    # ExecStart: the binary on its line, then one flag per continuation line.
    start = unit.text.index("ExecStart=")
    end = unit.text.index("\nRestart=")
    lines = unit.text[start:end].split("\n")
    assert lines[0] == f"ExecStart=/opt/kubernetes/bin/{service} \\"
    assert lines[1:] == [
        f"  --{name}={value}" + (" \\" if index < len(unit.flags) - 1 else "")
        for index, (name, value) in enumerate(unit.flags)
    ]


def test_a_value_systemd_would_split_or_expand_is_refused() -> None:
    for bad in ("/etc/my k8s", "/etc/k8s/$HOME", "/etc/%n", '/etc/"k8s"', "/etc/k\\8s"):
        spec = make_spec(layout=BinaryLayout(config_dir=bad))
        with pytest.raises(PKIError, match="ExecStart"):
            binary_units.render_unit(spec, STACKED[0], KUBE_SCHEDULER)


@needs_systemd_analyze
@pytest.mark.parametrize("nodes", [STACKED, EXTERNAL], ids=["stacked", "external"])
def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path, nodes: tuple) -> None:
    """Every unit of every node, through the real ``systemd-analyze verify``. The install prefix
    is a temporary directory holding stub executables: verify refuses an ExecStart whose binary
    does not exist, and the real binaries are not installed here."""
    layout = BinaryLayout(install_prefix=str(tmp_path / "opt"))
    spec = make_spec(nodes, layout)
    (tmp_path / "opt" / "bin").mkdir(parents=True)
    for service in binary_units.SERVICES:
        stub = tmp_path / "opt" / "bin" / service
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    checked = set()
    for node in nodes:
        unit_dir = tmp_path / "units" / node.name
        unit_dir.mkdir(parents=True)
        paths = []
        for unit in binary_units.node_units(spec, node):
            path = unit_dir / Path(unit.path).name
            path.write_text(unit.text)
            paths.append(str(path))
            checked.add(unit.service)
        result = subprocess.run(
            [SYSTEMD_ANALYZE, "verify", "--man=no", *paths],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (result.returncode, result.stderr, result.stdout) == (0, "", ""), node.name
    assert checked == set(binary_units.SERVICES)


# --------------------------------------------------------------------------- files a flag names

# Which nodes hold the CA files, the service-account pair and the CA key (controller-manager signs
# with it): the certificate bundle's rule, stated here for the check below.
_CA_FILES_BY_ROLE = {
    ROLE_CONTROL_PLANE: {CA_FILES[CA], CA_FILES[FRONT_PROXY_CA], CA_FILES[ETCD_CA]},
    ROLE_WORKER: {CA_FILES[CA]},
    ROLE_ETCD: {CA_FILES[ETCD_CA]},
}


def _distributed(spec: BinarySpec, node: NodeSpec) -> set[str]:
    """The certificate files the node receives (binary_layout's table) and its rendered files."""
    layout = spec.layout
    member = is_etcd_member(spec, node)
    paths = {path for path, *_ in files_of(spec, node)}
    for cert in CERTS:
        if holds(cert, node.role, etcd_member=member):
            paths |= {layout.pem(cert.name), layout.key(cert.name)}
    cas = set(_CA_FILES_BY_ROLE[node.role])
    if member:
        cas.add(CA_FILES[ETCD_CA])
    paths |= {layout.pem(base) for base in cas}
    if node.role == ROLE_CONTROL_PLANE:
        paths |= {
            layout.key(CA_FILES[CA]),
            layout.pem(SERVICE_ACCOUNT),
            layout.key(SERVICE_ACCOUNT),
        }
    return paths


@pytest.mark.parametrize("nodes", [STACKED, EXTERNAL], ids=["stacked", "external"])
def test_every_file_a_flag_names_is_distributed(nodes: tuple[NodeSpec, ...]) -> None:
    spec = make_spec(nodes)
    for node in nodes:
        distributed = _distributed(spec, node)
        for unit in binary_units.node_units(spec, node):
            named = binary_units.flag_files(unit)
            assert named, unit.service
            assert named <= distributed, (node.name, unit.service, sorted(named - distributed))
        # The configuration files name files too.
        kubelet = binary_configs.kubelet_config(spec, node)
        if node.role != ROLE_ETCD:
            doc = yaml.safe_load(kubelet)
            for path in (
                doc["authentication"]["x509"]["clientCAFile"],
                doc["tlsCertFile"],
                doc["tlsPrivateKeyFile"],
            ):
                assert path in distributed, (node.name, path)
            proxy = yaml.safe_load(binary_configs.kube_proxy_config(spec, node))
            assert proxy["clientConnection"]["kubeconfig"] in distributed


def test_every_flag_naming_a_file_is_known() -> None:
    """A flag whose value is a path must be in FILE_FLAGS, or the check above would miss it."""
    spec = make_spec()
    for node in STACKED:
        for unit in binary_units.node_units(spec, node):
            for name, value in unit.flags:
                if value.startswith("/"):
                    assert name in binary_units.FILE_FLAGS | {"data-dir", "audit-log-path"}, name


# --------------------------------------------------------------------------- configuration files


def test_kubelet_config() -> None:
    spec = make_spec()
    doc = yaml.safe_load(binary_configs.kubelet_config(spec, STACKED[3]))
    assert doc["apiVersion"] == "kubelet.config.k8s.io/v1beta1"
    assert doc["kind"] == "KubeletConfiguration"
    assert doc["authentication"] == {
        "anonymous": {"enabled": False},
        "webhook": {"enabled": True, "cacheTTL": "2m0s"},
        "x509": {"clientCAFile": "/etc/k8s/ssl/ca.pem"},
    }
    assert doc["authorization"]["mode"] == "Webhook"
    assert doc["tlsCertFile"] == "/etc/k8s/ssl/kubelet-server.pem"
    assert doc["tlsPrivateKeyFile"] == "/etc/k8s/ssl/kubelet-server-key.pem"
    assert doc["clusterDNS"] == ["10.96.0.10"]
    assert doc["clusterDomain"] == "corp.local"
    assert doc["cgroupDriver"] == "systemd"
    assert (doc["healthzBindAddress"], doc["healthzPort"]) == ("127.0.0.1", 10248)
    assert doc["rotateCertificates"] is False


def test_cluster_dns_ip_is_the_tenth_address() -> None:
    assert cluster_dns_ip("10.96.0.0/12") == "10.96.0.10"
    assert cluster_dns_ip("172.20.0.0/16,fd00:10::/108") == "172.20.0.10"
    assert cluster_dns_ip("fd00:10::/108") == "fd00:10::a"
    with pytest.raises(PKIError, match="no room"):
        cluster_dns_ip("10.96.0.0/29")


def test_kube_proxy_config_modes() -> None:
    spec = make_spec(ipvs_scheduler="wrr")
    doc = yaml.safe_load(binary_configs.kube_proxy_config(spec, STACKED[4]))
    assert doc == {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "bindAddress": "0.0.0.0",
        "clientConnection": {"kubeconfig": "/etc/k8s/kube-proxy.kubeconfig"},
        "clusterCIDR": "10.244.0.0/16",
        "healthzBindAddress": "0.0.0.0:10256",
        "hostnameOverride": "w-2",
        "metricsBindAddress": "127.0.0.1:10249",
        "mode": "ipvs",
        "ipvs": {"scheduler": "wrr"},
    }
    iptables = yaml.safe_load(
        binary_configs.kube_proxy_config(make_spec(kube_proxy_mode="iptables"), STACKED[4])
    )
    assert iptables["mode"] == "iptables" and "ipvs" not in iptables
    with pytest.raises(PKIError, match="kube-proxy mode"):
        make_spec(kube_proxy_mode="userspace")


# --------------------------------------------------------------------------- kubeconfigs


def _kubectl(kubeconfig: Path, *args: str) -> str:
    result = subprocess.run(
        [KUBECTL, "config", *args, f"--kubeconfig={kubeconfig}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


@needs_kubectl
def test_kubeconfigs_match_kubectl_config(tmp_path: Path) -> None:
    """The real ``kubectl config set-*`` commands, with the same certificates, server and names,
    write what the panel renders: the same document field by field, and the same bytes."""
    spec = make_spec()
    expected_servers = {
        KUBELET: "https://lb.example.internal:8443",
        KUBE_PROXY: "https://lb.example.internal:8443",
        "admin": "https://lb.example.internal:8443",
        KUBE_CONTROLLER_MANAGER: "https://127.0.0.1:6443",
        KUBE_SCHEDULER: "https://127.0.0.1:6443",
    }
    seen = set()
    for node in (STACKED[0], STACKED[3]):
        for kubeconfig in binary_kubeconfig.node_kubeconfigs(node):
            seen.add(kubeconfig.name)
            ca, pair = pems()[CA_FILES[CA]], pems()[kubeconfig.cert]
            ours = binary_kubeconfig.render(
                spec, kubeconfig, node, ca_pem=ca.cert, cert_pem=pair.cert, key_pem=pair.key
            )
            work = tmp_path / node.name / kubeconfig.name
            work.mkdir(parents=True)
            (work / "ca.pem").write_bytes(ca.cert)
            (work / "cert.pem").write_bytes(pair.cert)
            (work / "key.pem").write_bytes(pair.key)
            target = work / f"{kubeconfig.name}.kubeconfig"
            server = binary_kubeconfig.server(spec, kubeconfig)
            assert server == expected_servers[kubeconfig.name]
            user = kubeconfig.user(node)
            _kubectl(
                target, "set-cluster", "prod", f"--certificate-authority={work / 'ca.pem'}",
                "--embed-certs=true", f"--server={server}",
            )  # fmt: skip
            _kubectl(
                target, "set-credentials", user, f"--client-certificate={work / 'cert.pem'}",
                f"--client-key={work / 'key.pem'}", "--embed-certs=true",
            )  # fmt: skip
            _kubectl(target, "set-context", "default", "--cluster=prod", f"--user={user}")
            _kubectl(target, "use-context", "default")
            theirs = target.read_text()
            assert yaml.safe_load(ours) == yaml.safe_load(theirs), kubeconfig.name
            assert ours == theirs, kubeconfig.name
            # kubectl reads the panel's file back.
            (work / "ours.kubeconfig").write_text(ours)
            viewed = yaml.safe_load(_kubectl(work / "ours.kubeconfig", "view", "--raw"))
            assert viewed == yaml.safe_load(ours)
            assert viewed["current-context"] == "default"
    assert seen == {kubeconfig.name for kubeconfig in binary_kubeconfig.KUBECONFIGS}
    assert binary_kubeconfig.KUBECONFIGS_BY_NAME[KUBELET].user(STACKED[3]) == "system:node:w-1"


def test_redacted_kubeconfig_keeps_everything_but_the_key() -> None:
    spec = make_spec()
    kubeconfig = binary_kubeconfig.KUBECONFIGS_BY_NAME["admin"]
    pair = pems()["admin"]
    text = binary_kubeconfig.render(
        spec, kubeconfig, STACKED[0], ca_pem=pems()["ca"].cert, cert_pem=pair.cert,
        key_pem=pair.key,
    )  # fmt: skip
    redacted = yaml.safe_load(binary_node.redact_kubeconfig(text))
    original = yaml.safe_load(text)
    assert redacted["users"][0]["user"]["client-key-data"] == "REDACTED"
    original["users"][0]["user"]["client-key-data"] = "REDACTED"
    assert redacted == original


# --------------------------------------------------------------------------- a node's files


def test_node_files_by_role() -> None:
    spec = make_spec(EXTERNAL)
    by_node = {node.name: files_of(spec, node) for node in EXTERNAL}
    names = {name: [Path(f.path).name for f in files] for name, files in by_node.items()}
    assert names["cp-1"] == [
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
    assert names["w-1"] == [
        "kubelet.service",
        "kube-proxy.service",
        "kubelet-config.yaml",
        "kube-proxy-config.yaml",
        "kubelet.kubeconfig",
        "kube-proxy.kubeconfig",
    ]
    assert names["etcd-1"] == ["etcd.service"]
    modes = {Path(f.path).name: (f.mode, f.secret, f.owner) for f in by_node["cp-1"]}
    assert modes["kube-apiserver.service"] == (0o644, False, "root")
    assert modes["admin.kubeconfig"] == (0o600, True, "root")
    assert modes["kubelet.kubeconfig"] == (0o600, True, "root")
    assert modes["kube-scheduler.kubeconfig"] == (0o600, True, "kube")
    assert modes["tokens.csv"] == (0o600, True, "kube")
    assert modes["audit-policy.yaml"] == (0o644, False, "kube")
    files = {Path(f.path).name: f.content for f in by_node["cp-1"]}
    assert files["audit-policy.yaml"] == POLICY.encode()
    assert files["tokens.csv"] == TOKENS.encode()
    plain = make_spec(EXTERNAL, audit=False, static_tokens=False)
    plain_names = [Path(f.path).name for f in binary_node.node_files(plain, EXTERNAL[0], pems())]
    assert "audit-policy.yaml" not in plain_names and "tokens.csv" not in plain_names


def test_a_missing_certificate_is_named() -> None:
    spec = make_spec()
    partial = {name: pair for name, pair in pems().items() if name != "kubelet-client"}
    with pytest.raises(binary_node.MissingCertificate, match="kubelet-client") as caught:
        binary_node.node_files(spec, STACKED[3], partial)
    assert caught.value.name == "kubelet-client"
    assert "w-1" in str(caught.value)
