"""The issued PKI judged by the real tools: openssl, cfssl, kubectl (Go TLS) and an etcd cluster.

Every address used is a loopback address (127.0.2.x for control-plane nodes); nothing leaves the
machine. Trees are issued once per session for each topology and key algorithm.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pki.domain.kubeadm import (
    ClusterSpec,
    IssuedTree,
    NodeSpec,
    issue,
    node_files,
    plan,
)
from pki.domain.x509 import check_host, fingerprint_sha256, spki_sha256

# The trees come from pki.domain (pure); nothing here reads or writes a database.
pytestmark = [pytest.mark.integration, pytest.mark.no_database]

ENDPOINT_HOST = "lb.example.internal"
CONTROL_PLANES = tuple(NodeSpec(f"cp-{i}", f"127.0.2.{i}") for i in (1, 2, 3))
WORKERS = tuple(NodeSpec(f"w-{i}", f"127.0.3.{i}", "worker") for i in (1, 2, 3))
ETCD_NODES = tuple(NodeSpec(f"etcd-{i}", f"127.0.4.{i}", "etcd") for i in (1, 2, 3))
TOPOLOGIES = {
    "stacked": (CONTROL_PLANES + WORKERS, "stacked"),
    "external": (CONTROL_PLANES + WORKERS + ETCD_NODES, "external"),
}
ALGORITHMS = ("RSA-2048", "ECDSA-P256")
CASES = [(t, a) for t in TOPOLOGIES for a in ALGORITHMS]
CASE_IDS = [f"{t}-{a}" for t, a in CASES]


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; see docs/TESTING.md for the Debian packages")
    return path


def run(
    *args: str, check: bool = True, timeout: float = 30, **kwargs
) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


@dataclass
class Issued:
    """A written tree: its cluster, the issued objects and the per-node directories."""

    cluster: ClusterSpec
    tree: IssuedTree
    root: Path

    def node_dir(self, node: str) -> Path:
        return self.root / node

    def flat(self) -> dict[tuple[str, str | None], Path]:
        """Every certificate written once under flat/, keyed like the tree."""
        out = {}
        for issued in self.tree.all():
            stem = issued.spec.name.replace("/", "-")
            if issued.spec.node is not None:
                stem += f"@{issued.spec.node}"
            path = self.root / "flat" / f"{stem}.crt"
            out[issued.spec.key] = path
        return out


def write_tree(cluster: ClusterSpec, tree: IssuedTree, root: Path) -> Issued:
    for node in cluster.nodes:
        for rel, item in node_files(cluster, tree, node).items():
            path = root / node.name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(item.content)
            path.chmod(item.mode)
    written = Issued(cluster, tree, root)
    (root / "flat").mkdir()
    for key, path in written.flat().items():
        path.write_bytes(tree.get(*key).cert_pem)
    return written


@pytest.fixture(scope="session")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Issued]:
    out = {}
    for topology, algorithm in CASES:
        nodes, etcd_topology = TOPOLOGIES[topology]
        cluster = ClusterSpec(
            control_plane_endpoint=f"{ENDPOINT_HOST}:6443",
            etcd_topology=etcd_topology,
            key_algorithm=algorithm,
            nodes=nodes,
        )
        tree = issue(plan(cluster))
        root = tmp_path_factory.mktemp(f"pki-{topology}-{algorithm}")
        out[(topology, algorithm)] = write_tree(cluster, tree, root)
    return out


# --------------------------------------------------------------------------- expectations

# docs/kubeadm.md sections 1 and 2, written out independently of pki.kubeadm.
# name -> (signer, CN, O, extended key usages as openssl prints them)
SERVER = "TLS Web Server Authentication"
CLIENT = "TLS Web Client Authentication"
TABLE = {
    "ca": (None, "kubernetes", None, None),
    "front-proxy-ca": (None, "front-proxy-ca", None, None),
    "etcd/ca": (None, "etcd-ca", None, None),
    "apiserver": ("ca", "kube-apiserver", None, SERVER),
    "apiserver-kubelet-client": (
        "ca",
        "kube-apiserver-kubelet-client",
        "kubeadm:cluster-admins",
        CLIENT,
    ),
    "front-proxy-client": ("front-proxy-ca", "front-proxy-client", None, CLIENT),
    "etcd/server": ("etcd/ca", "{node}", None, f"{SERVER}, {CLIENT}"),
    "etcd/peer": ("etcd/ca", "{node}", None, f"{SERVER}, {CLIENT}"),
    "etcd/healthcheck-client": ("etcd/ca", "kube-etcd-healthcheck-client", None, CLIENT),
    "apiserver-etcd-client": ("etcd/ca", "kube-apiserver-etcd-client", None, CLIENT),
    "admin.conf": ("ca", "kubernetes-admin", "kubeadm:cluster-admins", CLIENT),
    "super-admin.conf": ("ca", "kubernetes-super-admin", "system:masters", CLIENT),
    "kubelet.conf": ("ca", "system:node:{node}", "system:nodes", CLIENT),
    "controller-manager.conf": ("ca", "system:kube-controller-manager", None, CLIENT),
    "scheduler.conf": ("ca", "system:kube-scheduler", None, CLIENT),
}


def expected_sans(name: str, node: NodeSpec | None) -> tuple[list[str], list[str]]:
    """(DNS, IP) SANs the table requires for a 127.0.2.x cluster behind lb.example.internal."""
    if name in ("ca", "front-proxy-ca", "etcd/ca"):
        return [TABLE[name][1]], []
    if name == "apiserver" and node is not None:
        dns = [
            node.name,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            ENDPOINT_HOST,
        ]
        return sorted(dns), ["10.96.0.1", node.address]
    if name in ("etcd/server", "etcd/peer") and node is not None:
        return [node.name, "localhost"], [node.address, "127.0.0.1", "::1"]
    return [], []


def node_by_name(name: str | None) -> NodeSpec | None:
    for node in CONTROL_PLANES + WORKERS + ETCD_NODES:
        if node.name == name:
            return node
    return None


def openssl_text(path: Path) -> dict[str, str]:
    """Subject and the extensions that matter, as openssl prints them."""
    out = run(
        "openssl",
        "x509",
        "-noout",
        "-subject",
        "-ext",
        "keyUsage,extendedKeyUsage,basicConstraints",
        "-in",
        str(path),
    ).stdout
    info: dict[str, str] = {}
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("subject="):
            info["subject"] = line.removeprefix("subject=").strip()
        for label, key in (
            ("X509v3 Key Usage", "ku"),
            ("X509v3 Extended Key Usage", "eku"),
            ("X509v3 Basic Constraints", "bc"),
        ):
            if line.strip().startswith(label):
                info[key] = lines[i + 1].strip()
                info[key + "_critical"] = str("critical" in line)
    return info


# --------------------------------------------------------------------------- openssl & cfssl


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_openssl_verifies_every_certificate_for_its_purpose(trees, case) -> None:
    require_tool("openssl")
    written = trees[case]
    flat = written.flat()
    assert len(flat) == len(plan(written.cluster).specs)
    for ca_name in ("ca", "front-proxy-ca", "etcd/ca"):
        ca_file = flat[(ca_name, None)]
        issued = [i for i in written.tree.all() if i.spec.signer == ca_name]
        groups = {
            "sslserver": [flat[i.spec.key] for i in issued if "server" in i.spec.usages],
            "sslclient": [flat[i.spec.key] for i in issued if "client" in i.spec.usages],
            "any": [ca_file],
        }
        for purpose, files in groups.items():
            if not files:
                continue
            args = ["-purpose", purpose] if purpose != "any" else []
            result = run(
                "openssl",
                "verify",
                "-x509_strict",
                *args,
                "-CAfile",
                str(ca_file),
                *map(str, files),
            )
            assert result.stdout.splitlines() == [f"{f}: OK" for f in files]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_subjects_usages_and_sans_match_the_kubeadm_table(trees, case) -> None:
    require_tool("cfssl")
    written = trees[case]
    for (name, node_name), path in written.flat().items():
        signer, cn, org, eku = TABLE[name]
        cn = cn.format(node=node_name)
        info = json.loads(run("cfssl", "certinfo", "-cert", str(path)).stdout)
        assert info["subject"]["common_name"] == cn
        assert info["subject"].get("organization") == org
        if signer is not None:
            assert info["issuer"]["common_name"] == TABLE[signer][1]
        dns, ips = expected_sans(name, node_by_name(node_name))
        assert info.get("sans", []) == dns + ips, (name, node_name)

        text = openssl_text(path)
        assert text["subject"] == (f"O = {org}, CN = {cn}" if org else f"CN = {cn}")
        assert text["ku_critical"] == "True"
        assert text["bc_critical"] == "True"
        if signer is None:
            assert text["ku"] == "Digital Signature, Key Encipherment, Certificate Sign"
            assert text["bc"] == "CA:TRUE"
            assert "eku" not in text
        else:
            assert text["ku"] == "Digital Signature, Key Encipherment"
            assert text["bc"] == "CA:FALSE"
            assert text["eku"] == eku


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_discovery_hash_matches_the_openssl_pipeline(trees, algorithm: str) -> None:
    require_tool("openssl")
    written = trees[("stacked", algorithm)]
    for ca_name in ("ca", "front-proxy-ca", "etcd/ca"):
        ca_file = written.flat()[(ca_name, None)]
        pubkey = run("openssl", "x509", "-pubkey", "-noout", "-in", str(ca_file)).stdout
        der = subprocess.run(
            ["openssl", "pkey", "-pubin", "-outform", "der"],
            input=pubkey.encode(),
            capture_output=True,
            check=True,
        ).stdout
        digest = subprocess.run(
            ["openssl", "dgst", "-sha256", "-hex"], input=der, capture_output=True, check=True
        ).stdout.decode()
        assert spki_sha256(written.tree.cas[ca_name].cert) == "sha256:" + digest.split()[-1]
        fp = run("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(ca_file))
        assert fp.stdout.strip().split("=", 1)[1] == fingerprint_sha256(
            written.tree.cas[ca_name].cert
        )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_node_files_hold_matching_keys_with_kubeadm_modes(trees, algorithm: str) -> None:
    require_tool("openssl")
    written = trees[("stacked", algorithm)]
    pki = written.node_dir("cp-1") / "pki"
    header = "RSA PRIVATE KEY" if algorithm.startswith("RSA") else "EC PRIVATE KEY"
    keys = sorted(pki.rglob("*.key"))
    assert len(keys) == 11  # 3 CAs, sa, 7 leaves: the 22 files of a kubeadm pki dir
    for key in keys:
        assert (key.stat().st_mode & 0o777) == 0o600
        assert key.read_text().startswith(f"-----BEGIN {header}-----")
        from_key = run("openssl", "pkey", "-in", str(key), "-pubout").stdout
        partner = key.with_suffix(".pub" if key.name == "sa.key" else ".crt")
        if partner.suffix == ".crt":
            assert (partner.stat().st_mode & 0o777) == 0o644
            from_cert = run("openssl", "x509", "-pubkey", "-noout", "-in", str(partner)).stdout
        else:
            from_cert = partner.read_text()
        assert from_key == from_cert, key
    worker = sorted(
        p.relative_to(written.node_dir("w-1")) for p in written.node_dir("w-1").rglob("*")
    )
    assert [str(p) for p in worker] == ["kubelet.conf", "pki", "pki/ca.crt"]


# --------------------------------------------------------------------------- kubectl


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers like the apiserver's /livez and records the client certificate's subject."""

    def do_GET(self) -> None:
        # kubectl appends ?timeout=... for --request-timeout.
        found = urlsplit(self.path).path == "/livez"
        peer = self.connection.getpeercert()  # type: ignore[attr-defined]
        if found:
            # Some kubectl builds probe /version first; only the /livez calls are recorded.
            subject = dict(item for rdn in peer["subject"] for item in rdn) if peer else {}
            self.server.clients.append(subject)  # type: ignore[attr-defined]
        body = b"ok" if found else b"not found"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, cert: Path, key: Path, ca: Path) -> None:
        super().__init__((address, 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.load_verify_locations(ca)
        context.verify_mode = ssl.CERT_REQUIRED
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.clients: list[dict[str, str]] = []

    def handle_error(self, request: object, client_address: object) -> None:
        # Failed handshakes are the expected outcome of the negative cases.
        pass


@pytest.fixture(scope="module", params=ALGORITHMS)
def apiservers(request, trees) -> Iterator[tuple[Issued, dict[str, _TLSServer]]]:
    """One TLS server per control-plane address, plus 127.0.2.99 serving cp-1's certificate."""
    written = trees[("stacked", request.param)]
    servers: dict[str, _TLSServer] = {}
    placements = [(n.address, n.name) for n in CONTROL_PLANES] + [("127.0.2.99", "cp-1")]
    for address, node in placements:
        pki = written.node_dir(node) / "pki"
        server = _TLSServer(address, pki / "apiserver.crt", pki / "apiserver.key", pki / "ca.crt")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers[address] = server
    yield written, servers
    for server in servers.values():
        server.shutdown()
        server.server_close()


def kubectl(kubeconfig: Path, url: str, *extra: str, home: Path) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "NO_PROXY": "*", "no_proxy": "*"}
    return run(
        "kubectl",
        "--kubeconfig",
        str(kubeconfig),
        "--server",
        url,
        "--request-timeout",
        "5s",
        *extra,
        "get",
        "--raw",
        "/livez",
        check=False,
        env=env,
    )


def test_kubectl_reaches_every_loopback_san(apiservers, tmp_path: Path) -> None:
    require_tool("kubectl")
    written, servers = apiservers
    for node in CONTROL_PLANES:
        server = servers[node.address]
        url = f"https://{node.address}:{server.server_address[1]}"
        kubeconfig = written.node_dir(node.name) / "admin.conf"
        result = kubectl(kubeconfig, url, home=tmp_path)
        assert (result.returncode, result.stdout) == (0, "ok"), result.stderr
        # Every DNS SAN, the endpoint host included, reached through the node's address.
        dns, _ = expected_sans("apiserver", node)
        for name in dns:
            result = kubectl(kubeconfig, url, "--tls-server-name", name, home=tmp_path)
            assert (result.returncode, result.stdout) == (0, "ok"), (name, result.stderr)
    assert {c["commonName"] for c in servers["127.0.2.1"].clients} == {"kubernetes-admin"}
    assert {c["organizationName"] for c in servers["127.0.2.1"].clients} == {
        "kubeadm:cluster-admins"
    }


def test_every_kubeconfig_authenticates_with_its_identity(apiservers, tmp_path: Path) -> None:
    require_tool("kubectl")
    written, servers = apiservers
    server = servers["127.0.2.2"]
    url = f"https://127.0.2.2:{server.server_address[1]}"
    server.clients.clear()
    names = ["admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf"]
    for name in [*names, "kubelet.conf"]:
        result = kubectl(written.node_dir("cp-2") / name, url, home=tmp_path)
        assert result.returncode == 0, (name, result.stderr)
    result = kubectl(written.node_dir("w-3") / "kubelet.conf", url, home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [c["commonName"] for c in server.clients] == [
        "kubernetes-admin",
        "kubernetes-super-admin",
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:node:cp-2",
        "system:node:w-3",
    ]


def test_kubectl_refuses_names_outside_the_sans_as_check_host_predicts(
    apiservers, tmp_path: Path
) -> None:
    require_tool("kubectl")
    written, servers = apiservers
    cert = written.tree.get("apiserver", "cp-1").cert
    kubeconfig = written.node_dir("cp-1") / "admin.conf"
    server = servers["127.0.2.99"]
    url = f"https://127.0.2.99:{server.server_address[1]}"
    result = kubectl(kubeconfig, url, home=tmp_path)
    predicted = check_host(cert, "127.0.2.99")
    assert not predicted.covered
    assert predicted.message == (
        "x509: certificate is valid for 10.96.0.1, 127.0.2.1, not 127.0.2.99"
    )
    assert result.returncode != 0
    assert predicted.message in result.stderr
    assert predicted.san_to_add == "127.0.2.99"

    result = kubectl(kubeconfig, url, "--tls-server-name", "api.other.example", home=tmp_path)
    predicted = check_host(cert, "api.other.example")
    assert result.returncode != 0
    assert predicted.message.startswith("x509: certificate is valid for cp-1, kubernetes,")
    assert predicted.message in result.stderr


# --------------------------------------------------------------------------- etcd


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


@dataclass
class EtcdMember:
    name: str
    address: str
    client_port: int
    peer_port: int
    pki: Path

    @property
    def client_url(self) -> str:
        return f"https://{self.address}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"https://{self.address}:{self.peer_port}"


def etcd_command(m: EtcdMember, initial_cluster: str, data_dir: Path) -> list[str]:
    """etcd with client and peer TLS, both requiring certificates from the etcd CA."""
    flags = {
        "name": m.name,
        "data-dir": str(data_dir),
        "listen-client-urls": m.client_url,
        "advertise-client-urls": m.client_url,
        "listen-peer-urls": m.peer_url,
        "initial-advertise-peer-urls": m.peer_url,
        "initial-cluster": initial_cluster,
        "initial-cluster-state": "new",
        "initial-cluster-token": "panel-test",
        "trusted-ca-file": str(m.pki / "ca.crt"),
        "cert-file": str(m.pki / "server.crt"),
        "key-file": str(m.pki / "server.key"),
        "peer-trusted-ca-file": str(m.pki / "ca.crt"),
        "peer-cert-file": str(m.pki / "peer.crt"),
        "peer-key-file": str(m.pki / "peer.key"),
        "logger": "zap",
        "log-outputs": "stderr",
    }
    args = [f"--{name}={value}" for name, value in flags.items()]
    return ["etcd", *args, "--client-cert-auth", "--peer-client-cert-auth"]


ETCD_CASES = [("stacked", "RSA-2048", CONTROL_PLANES), ("external", "ECDSA-P256", ETCD_NODES)]


@pytest.fixture(scope="module", params=ETCD_CASES, ids=["stacked-RSA-2048", "external-ECDSA-P256"])
def etcd_cluster(request, trees, tmp_path_factory) -> Iterator[tuple[Issued, list[EtcdMember]]]:
    """Three etcd 3.4 members on 127.0.2.x / 127.0.4.x with the panel's certificates."""
    require_tool("etcd")
    topology, algorithm, nodes = request.param
    written = trees[(topology, algorithm)]
    data = tmp_path_factory.mktemp("etcd-data")
    members = [
        EtcdMember(
            n.name,
            n.address,
            free_port(n.address),
            free_port(n.address),
            written.node_dir(n.name) / "pki" / "etcd",
        )
        for n in nodes
    ]
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    processes = []
    try:
        for m in members:
            log = (data / f"{m.name}.log").open("w")
            processes.append(
                subprocess.Popen(
                    etcd_command(m, initial, data / m.name),
                    stdout=log,
                    stderr=log,
                )
            )
        yield written, members
    finally:
        # The data dirs are throw-away, so there is no graceful shutdown to wait for.
        for process in processes:
            process.kill()
        for process in processes:
            process.wait(timeout=10)


def etcdctl(members: list[EtcdMember], pki: Path, cert: str, *args: str, timeout: str = "3s"):
    env = {"PATH": os.environ["PATH"], "ETCDCTL_API": "3", "NO_PROXY": "*", "no_proxy": "*"}
    return run(
        "etcdctl",
        "--endpoints",
        ",".join(m.client_url for m in members),
        "--cacert",
        str(pki / "etcd" / "ca.crt"),
        "--cert",
        str(pki / f"{cert}.crt"),
        "--key",
        str(pki / f"{cert}.key"),
        "--dial-timeout",
        timeout,
        "--command-timeout",
        timeout,
        *args,
        check=False,
        env=env,
    )


def test_etcd_cluster_is_healthy_with_panel_certificates(etcd_cluster) -> None:
    require_tool("etcdctl")
    written, members = etcd_cluster
    pki = written.node_dir(members[0].name) / "pki"
    deadline = time.monotonic() + 30
    while True:
        result = etcdctl(members, pki, "etcd/healthcheck-client", "endpoint", "health")
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert result.returncode == 0, result.stdout + result.stderr
    healthy = [line for line in result.stdout.splitlines() + result.stderr.splitlines()]
    for m in members:
        assert any(line.startswith(f"{m.client_url} is healthy") for line in healthy), healthy
    listed = etcdctl(members, pki, "etcd/healthcheck-client", "member", "list", "-w", "json")
    assert listed.returncode == 0, listed.stderr
    names = sorted(m["name"] for m in json.loads(listed.stdout)["members"])
    assert names == sorted(m.name for m in members)


def test_etcd_refuses_a_client_certificate_from_another_ca(etcd_cluster, tmp_path: Path) -> None:
    require_tool("etcdctl")
    written, members = etcd_cluster
    # A valid client certificate, but signed by the cluster CA rather than the etcd CA.
    pki = tmp_path / "pki"
    (pki / "etcd").mkdir(parents=True)
    (pki / "etcd" / "ca.crt").write_bytes(written.tree.cas["etcd/ca"].cert_pem)
    foreign = written.tree.get("apiserver-kubelet-client")
    (pki / "foreign.crt").write_bytes(foreign.cert_pem)
    (pki / "foreign.key").write_bytes(foreign.key_pem)
    good = written.node_dir(members[0].name) / "pki"
    deadline = time.monotonic() + 30
    while etcdctl(members[:1], good, "etcd/healthcheck-client", "endpoint", "health").returncode:
        assert time.monotonic() < deadline, "etcd did not become healthy"
        time.sleep(0.3)
    result = etcdctl(members[:1], pki, "foreign", "endpoint", "health", timeout="1s")
    assert result.returncode != 0
    assert "is unhealthy" in result.stdout + result.stderr
