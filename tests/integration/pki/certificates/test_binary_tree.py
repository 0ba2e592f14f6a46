"""A binary-installed cluster's certificates, issued through the services and judged by the real
tools: openssl verifies every file for its purpose, cfssl reads back what the ledger says, and a
real three-member etcd runs on the panel's etcd files in the binary layout (loopback only).

The cluster (3 control-plane nodes behind a load-balancer name, 2 workers) is issued once for the
module; tests that change it run inside their own rolled-back transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from clusterpanel.security.audit import Actor
from nodes.models import Cluster, ClusterFlavor
from pki.domain import binary_layout
from pki.models import Certificate, ClusterBinarySettings
from pki.services import bootstrap as bootstrap_services
from pki.services import certificates as certificate_services
from pki.services.certificates.errors import PKIInputError
from tests.actors import SETUP
from tests.factories import make_user
from tests.integration.pki.certificates.conftest import committed_cluster, openssl, untar

pytestmark = pytest.mark.integration

CERT_DIR = "/etc/k8s/ssl"
CONTROL_PLANES = [(f"cp-{i}", f"127.0.100.{i}", "control-plane") for i in (1, 2, 3)]
WORKERS = [(f"w-{i}", f"127.0.101.{i}", "worker") for i in (1, 2)]
LB = "lb.example.internal"
SERVICE_NAMES = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
]
SERVER, CLIENT = "TLS Web Server Authentication", "TLS Web Client Authentication"
# name -> (CA file, CN ("{node}" per node), O, extended key usages): the table of the layout.
EXPECTED = {
    "etcd-server": ("etcd-ca", "{node}", None, f"{SERVER}, {CLIENT}"),
    "etcd-peer": ("etcd-ca", "{node}", None, f"{SERVER}, {CLIENT}"),
    "etcd-healthcheck-client": ("etcd-ca", "kube-etcd-healthcheck-client", None, CLIENT),
    "apiserver-etcd-client": ("etcd-ca", "kube-apiserver-etcd-client", None, CLIENT),
    "kubernetes": ("ca", "kube-apiserver", None, SERVER),
    # Least privilege: bound to system:kubelet-api-admin by RBAC, never in system:masters.
    "apiserver-kubelet-client": ("ca", "kube-apiserver-kubelet-client", None, CLIENT),
    "proxy-client": ("front-proxy-ca", "front-proxy-client", None, CLIENT),
    "kube-controller-manager": ("ca", "system:kube-controller-manager", None, CLIENT),
    "kube-scheduler": ("ca", "system:kube-scheduler", None, CLIENT),
    "kube-proxy": ("ca", "system:kube-proxy", None, CLIENT),
    "admin": ("ca", "admin", "system:masters", CLIENT),
    "kubelet-client": ("ca", "system:node:{node}", "system:nodes", CLIENT),
    "kubelet-server": ("ca", "system:node:{node}", "system:nodes", SERVER),
}
ADDRESSES = dict((name, address) for name, address, _ in CONTROL_PLANES + WORKERS)


def expected_sans(name: str, node: str | None) -> tuple[set[str], set[str]]:
    """(DNS, IP) SANs a file must hold, from the task's rules rather than the plan's code."""
    if name in ("etcd-server", "etcd-peer"):
        return {node or "", "localhost"}, {ADDRESSES[node or ""], "127.0.0.1", "::1"}
    if name == "kubernetes":
        cps = [n for n, _, _ in CONTROL_PLANES]
        ips = {a for _, a, _ in CONTROL_PLANES} | {"10.96.0.1", "127.0.0.1", "10.9.9.9"}
        return {*SERVICE_NAMES, LB, "api.example.internal", *cps}, ips
    if name == "kubelet-server":
        return {node or ""}, {ADDRESSES[node or ""]}
    return set(), set()


def require_tool(name: str) -> None:
    if shutil.which(name) is None:
        pytest.fail(f"{name} is not installed; see docs/TESTING.md for the Debian packages")


@pytest.fixture(scope="module")
def binary(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The issued cluster and every node's files written under <tmp>/<node>/<cert_dir>."""
    with committed_cluster(
        django_db_blocker,
        "binary",
        CONTROL_PLANES + WORKERS,
        flavor=ClusterFlavor.BINARY,
        control_plane_endpoint=f"{LB}:6443",
        extra_sans=["api.example.internal", "10.9.9.9"],
    ) as (cluster, client):
        with django_db_blocker.unblock():
            ClusterBinarySettings.objects.create(
                cluster=cluster,
                signing_profiles={
                    "server": {"usages": ["signing", "key encipherment", "server auth"],
                               "expiry": "17520h"},
                    "client": {"usages": ["signing", "key encipherment", "client auth"],
                               "expiry": "8760h"},
                    "peer": {"usages": ["signing", "key encipherment", "server auth",
                                        "client auth"], "expiry": "43800h"},
                },
            )  # fmt: skip
            # Committed for the module, so no audit event: those are append-only and would be
            # seen by other modules' tests that count them (issuing's own event is tested there).
            with mock.patch("clusterpanel.security.audit.record"):
                certificate_services.issue_missing(cluster, actor=SETUP)
            root = tmp_path_factory.mktemp("binary")
            files = certificate_services.binary_nodes_bundle_files(
                cluster, list(cluster.nodes.order_by("name"))
            )
            for node, node_files in files.items():
                for path, item in node_files.items():
                    target = root / node / path.lstrip("/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(item.content)
                    target.chmod(item.mode)
            rows = list(Certificate.objects.tree().filter(cluster=cluster))
        yield {"cluster": cluster, "client": client, "root": root, "files": files, "rows": rows}


def ssl_dir(binary: dict[str, Any], node: str) -> Path:
    return binary["root"] / node / CERT_DIR.lstrip("/")


def test_every_file_matches_the_plan_for_openssl_and_cfssl(binary) -> None:
    """Names, subjects, usages, SANs and validity of the ledger, checked in the files each node
    holds by openssl (verify for the purpose, subject, SANs, CSR) and by cfssl certinfo."""
    require_tool("cfssl")
    rows = {(r.name, r.node_name or None): r for r in binary["rows"]}
    per_node = {c.name for c in binary_layout.CERTS if c.per_node}
    wanted = set()
    for cert in binary_layout.CERTS:
        if cert.name in ("etcd-server", "etcd-peer"):
            wanted |= {(cert.name, n) for n, _, _ in CONTROL_PLANES}
        elif cert.per_node:
            wanted |= {(cert.name, n) for n in ADDRESSES}
        else:
            wanted.add((cert.name, None))
    assert set(rows) == wanted
    validity = {"server": 730, "client": 365, "peer": 1825}
    checked = 0
    for node, _, role in CONTROL_PLANES + WORKERS:
        directory = ssl_dir(binary, node)
        names = {p.name for p in directory.iterdir()}
        if role == "worker":
            # A worker trusts the cluster CA and holds its kubelet and kube-proxy files: no CA
            # key, no other CA, no service-account key.
            assert names == {
                "ca.pem",
                *(f"{n}{s}" for n in ("kubelet-client", "kubelet-server", "kube-proxy")
                  for s in (".pem", "-key.pem", ".csr")),
            }  # fmt: skip
        else:
            for base in ("ca", "front-proxy-ca", "etcd-ca", "service-account"):
                assert {f"{base}.pem", f"{base}-key.pem"} <= names
        for pem in sorted(directory.glob("*.pem")):
            base = pem.name.removesuffix(".pem")
            mode = pem.stat().st_mode & 0o777
            assert mode == (0o600 if base.endswith("-key") else 0o644), pem
            if base.endswith("-key") or base in ("ca", "front-proxy-ca", "etcd-ca"):
                continue
            if base == "service-account":
                openssl("pkey", "-pubin", "-in", str(pem), "-noout")
                continue
            name, key = base, (base, node if base in per_node else None)
            row = rows[key]
            ca_file, cn, org, eku = EXPECTED[name]
            purpose = "sslserver" if eku == SERVER else "sslclient"
            ca_pem = directory / f"{ca_file}.pem"
            verified = openssl("verify", "-purpose", purpose, "-CAfile", str(ca_pem), str(pem))
            assert verified.stdout.strip() == f"{pem}: OK"
            text = openssl("x509", "-in", str(pem), "-noout", "-subject", "-ext",
                           "extendedKeyUsage", "-nameopt", "RFC2253").stdout  # fmt: skip
            subject = f"CN={cn.format(node=node)}" + (f",O={org}" if org else "")
            assert f"subject={subject}" in text.splitlines()[0].replace(" ", "")
            assert eku in text
            info = json.loads(
                subprocess.run(
                    ["cfssl", "certinfo", "-cert", str(pem)],
                    capture_output=True, text=True, timeout=30, check=True,
                ).stdout
            )  # fmt: skip
            assert info["subject"]["common_name"] == row.common_name == cn.format(node=node)
            assert info["subject"].get("organization", "") == (org or "")
            dns, ips = expected_sans(name, key[1])
            assert set(info.get("sans") or []) == dns | ips
            assert set(row.dns_names) == dns and set(row.ip_addresses) == ips
            not_after = dt.datetime.fromisoformat(info["not_after"].replace("Z", "+00:00"))
            assert not_after == row.not_after
            profile = binary_layout.CERTS_BY_NAME[name].profile
            assert abs((row.not_after - row.not_before).days - validity[profile]) <= 1
            # The request beside it: same key, same subject and SANs, a valid signature.
            csr = directory / f"{base}.csr"
            req = openssl("req", "-in", str(csr), "-noout", "-verify", "-subject", "-nameopt",
                          "RFC2253").stdout  # fmt: skip
            assert subject in req.replace(" ", "")
            csr_info = json.loads(
                subprocess.run(["cfssl", "certinfo", "-csr", str(csr)], capture_output=True,
                               text=True, timeout=30, check=True).stdout
            )  # fmt: skip
            assert set(csr_info.get("sans") or csr_info.get("DNSNames") or []) <= dns | ips
            key_pub = openssl("pkey", "-in", str(directory / f"{base}-key.pem"), "-pubout").stdout
            assert openssl("x509", "-in", str(pem), "-noout", "-pubkey").stdout == key_pub
            assert openssl("req", "-in", str(csr), "-noout", "-pubkey").stdout == key_pub
            checked += 1
    assert checked == 3 * 13 + 2 * 3


def test_services_follow_the_flavor(binary, db, tmp_path: Path) -> None:
    """Coverage, expiry tables, endpoint checks, renewal and reissue read the binary plan; the
    kubeadm-only files refuse the cluster instead of writing wrong ones."""
    cluster: Cluster = binary["cluster"]
    report = certificate_services.coverage(cluster)
    assert report.ok and not report.orphaned, report
    tables = {t["node"]: t for t in certificate_services.expiration(cluster)}
    assert sorted(tables) == sorted(ADDRESSES)
    assert [r["name"] for r in tables["w-1"]["certificates"]] == [
        "kube-proxy",
        "kubelet-client",
        "kubelet-server",
    ]
    assert [r["name"] for r in tables["w-1"]["authorities"]] == ["ca"]
    assert len(tables["cp-1"]["certificates"]) == 13 and "!MISSING!" not in tables["cp-1"]["text"]
    checks = certificate_services.endpoint_checks(cluster)
    assert checks and all(c["covered"] for c in checks), checks
    assert {c["host"] for c in checks} >= {a for _, a, _ in CONTROL_PLANES} | {LB}

    # A new name for the API: the one serving certificate is stale, and reissued with it.
    cluster.extra_sans = [*cluster.extra_sans, "api2.example.internal"]
    cluster.save()
    stale = certificate_services.coverage(cluster).stale
    assert [(s.certificate.name, s.missing_sans) for s in stale] == [
        ("kubernetes", ["api2.example.internal"])
    ]
    (new,) = certificate_services.reissue(cluster, actor=SETUP)
    assert new.name == "kubernetes" and "api2.example.internal" in new.dns_names

    # Renewal keeps the names and signs for the profile's expiry.
    kubelet = Certificate.objects.tree().get(
        cluster=cluster, name="kubelet-server", node_name="w-2"
    )
    (renewed,) = certificate_services.renew(cluster, [kubelet.pk], actor=SETUP)
    assert (renewed.name, renewed.node_name, renewed.common_name) == (
        "kubelet-server",
        "w-2",
        "system:node:w-2",
    )
    assert abs((renewed.not_after - renewed.not_before).days - 730) <= 1

    node = cluster.nodes.get(name="cp-1")
    with pytest.raises(PKIInputError, match="binary install"):
        certificate_services.node_bundle_files(cluster, node)
    with pytest.raises(PKIInputError, match="binary install"):
        bootstrap_services.cluster_configuration_preview(cluster)
    with pytest.raises(PKIInputError, match="binary install"):
        bootstrap_services.kubeadm_config_preview(cluster, node, actor=SETUP)
    with pytest.raises(bootstrap_services.JoinUnavailable, match="binary install"):
        bootstrap_services.join_command_preview(cluster)
    admin = Actor.for_command(make_user("binary-admin-2", "admin"))
    with pytest.raises(bootstrap_services.JoinUnavailable, match="binary install"):
        bootstrap_services.download_kubeadm_certs(cluster, actor=admin)
    # The download is the node's certificate directory, relative to /.
    worker = cluster.nodes.get(name="w-1")
    members = untar(certificate_services.build_bundle(cluster, worker), tmp_path)
    files = {name for name, info in members.items() if info.isfile()}
    assert files == {
        p.lstrip("/") for p in certificate_services.binary_bundle_files(cluster, worker)
    }
    assert "etc/k8s/ssl/ca.pem" in files and "etc/k8s/ssl/ca-key.pem" not in files


# --------------------------------------------------------------------------- etcd


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def test_a_real_etcd_cluster_runs_on_the_binary_layout(binary, tmp_path: Path) -> None:
    """Three etcd members on 127.0.100.x, each with only its own node's files: etcd-server and
    etcd-peer, etcd-ca.pem as the trust for clients and peers; etcdctl with
    etcd-healthcheck-client finds all three healthy, and a cluster-CA client is refused."""
    require_tool("etcd")
    require_tool("etcdctl")
    members = []
    for name, address, _ in CONTROL_PLANES:
        members.append((name, address, _free_port(address), _free_port(address)))
    initial = ",".join(f"{n}=https://{a}:{peer}" for n, a, _, peer in members)
    processes = []
    try:
        for name, address, client_port, peer_port in members:
            ssl = ssl_dir(binary, name)
            flags = {
                "name": name,
                "data-dir": str(tmp_path / name),
                "listen-client-urls": f"https://{address}:{client_port}",
                "advertise-client-urls": f"https://{address}:{client_port}",
                "listen-peer-urls": f"https://{address}:{peer_port}",
                "initial-advertise-peer-urls": f"https://{address}:{peer_port}",
                "initial-cluster": initial,
                "initial-cluster-state": "new",
                "initial-cluster-token": "binary-test",
                "trusted-ca-file": str(ssl / "etcd-ca.pem"),
                "cert-file": str(ssl / "etcd-server.pem"),
                "key-file": str(ssl / "etcd-server-key.pem"),
                "peer-trusted-ca-file": str(ssl / "etcd-ca.pem"),
                "peer-cert-file": str(ssl / "etcd-peer.pem"),
                "peer-key-file": str(ssl / "etcd-peer-key.pem"),
                "logger": "zap",
                "log-outputs": "stderr",
            }
            args = [f"--{k}={v}" for k, v in flags.items()]
            log = (tmp_path / f"{name}.log").open("w")
            processes.append(
                subprocess.Popen(
                    ["etcd", *args, "--client-cert-auth", "--peer-client-cert-auth"],
                    stdout=log,
                    stderr=log,
                )
            )
        ssl = ssl_dir(binary, "cp-1")
        endpoints = ",".join(f"https://{a}:{c}" for _, a, c, _ in members)

        def etcdctl(cert: str, *args: str) -> subprocess.CompletedProcess:
            env = {"PATH": os.environ["PATH"], "ETCDCTL_API": "3", "NO_PROXY": "*"}
            return subprocess.run(
                ["etcdctl", "--endpoints", endpoints, "--cacert", str(ssl / "etcd-ca.pem"),
                 "--cert", str(ssl / f"{cert}.pem"), "--key", str(ssl / f"{cert}-key.pem"),
                 "--dial-timeout", "3s", "--command-timeout", "3s", *args],
                capture_output=True, text=True, timeout=30, env=env,
            )  # fmt: skip

        deadline = time.monotonic() + 30
        while True:
            result = etcdctl("etcd-healthcheck-client", "endpoint", "health")
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert result.returncode == 0, result.stdout + result.stderr
        for _, address, client_port, _ in members:
            assert f"https://{address}:{client_port} is healthy" in result.stdout + result.stderr
        listed = etcdctl("apiserver-etcd-client", "member", "list", "-w", "json")
        assert listed.returncode == 0, listed.stderr
        assert sorted(m["name"] for m in json.loads(listed.stdout)["members"]) == [
            "cp-1",
            "cp-2",
            "cp-3",
        ]
        # admin is a cluster-CA client: etcd trusts only etcd-ca.
        refused = etcdctl("admin", "endpoint", "health")
        assert refused.returncode != 0
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait(timeout=10)
