"""Import of an existing binary-installed cluster: a real cfssl directory and guide-style units.

The certificates come from the real ``cfssl gencert`` + ``cfssljson -bare`` and the kubeconfigs
from the real ``kubectl config … --embed-certs`` (``cfssl_cluster``); serials are compared with
what ``cfssl certinfo`` prints for the uploaded files.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from clusterpanel.models import AuditEvent
from nodes.health.findings import Finding
from nodes.models import Cluster, ClusterFlavor
from pki.domain.binary_import import KEY_MISMATCH, MISSING, UNKNOWN
from pki.domain.inspect import serial_hex
from pki.models import Certificate, CertificateAuthority, CertificateStatus, ServiceAccountKey
from tests.factories import make_cluster, make_nodes
from tests.integration.pki.certificates.cfssl_cluster import SSL, make_cluster_files, tar_gz
from tests.integration.pki.certificates.conftest import row_counts

HARBOR = ("ssl/harbor.pem", "ssl/harbor-key.pem")
URL = "/api/v1/clusters/{}/binary-import/"


@pytest.fixture(scope="module")
def cluster_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cluster_files(tmp_path_factory.mktemp("binary-cluster"))


@pytest.fixture
def binary_cluster(db: Any) -> Cluster:
    cluster = make_cluster("bin", flavor=ClusterFlavor.BINARY)
    make_nodes(
        cluster,
        [
            ("master-1", "10.0.0.11", "control-plane"),
            ("master-2", "10.0.0.12", "control-plane"),
            ("master-3", "10.0.0.13", "control-plane"),
            ("node-1", "10.0.0.21", "worker"),
        ],
    )
    return cluster


def _upload(name: str, data: bytes) -> io.BytesIO:
    upload = io.BytesIO(data)
    upload.name = name
    return upload


def _cfssl_serial(path: Path) -> str:
    out = subprocess.run(
        ["cfssl", "certinfo", "-cert", str(path)], capture_output=True, check=True, timeout=30
    ).stdout
    return serial_hex(int(json.loads(out)["serial_number"]))


def _post(client: Any, cluster: Cluster, certs: bytes, units: bytes | None) -> Any:
    body: dict[str, Any] = {"certificates": _upload("ssl.tar.gz", certs)}
    if units is not None:
        body["units"] = _upload("units.tar.gz", units)
    return client.post(URL.format(cluster.pk), body, format="multipart")


def test_a_cfssl_directory_is_mapped_to_its_services_and_fills_the_ledger(
    binary_cluster, api_client, cluster_files
) -> None:
    certs, units = cluster_files
    response = _post(api_client("admin"), binary_cluster, tar_gz(certs, skip=HARBOR), tar_gz(units))
    assert response.status_code == 201, response.content[:500]
    body = response.json()
    assert b"PRIVATE KEY" not in response.content

    # Each certificate is mapped to the service and flag that use it.
    mapped = {(m["file"], m["service"], m["flag"]): m["ledger"] for m in body["mappings"]}
    assert mapped[("ssl/kubernetes.pem", "kube-apiserver", "--tls-cert-file")] == "kubernetes"
    assert mapped[("ssl/etcd.pem", "kube-apiserver", "--etcd-certfile")] == "apiserver-etcd-client"
    assert mapped[("ssl/etcd.pem", "etcd", "--cert-file")] == "etcd-server"  # from ETCD_CERT_FILE
    assert mapped[("ssl/etcd.pem", "etcd", "--peer-cert-file")] == "etcd-peer"
    assert mapped[("ssl/ca.pem", "etcd", "--trusted-ca-file")] == "etcd/ca"
    assert mapped[("ssl/admin.pem", "kube-apiserver", "--kubelet-client-certificate")] == (
        "apiserver-kubelet-client"
    )
    assert mapped[("ssl/proxy-client.pem", "kube-apiserver", "--proxy-client-cert-file")] == (
        "proxy-client"
    )
    assert mapped[("ssl/ca.pem", "kube-apiserver", "--requestheader-client-ca-file")] == (
        "front-proxy-ca"
    )
    assert mapped[("ssl/ca.pem", "kube-controller-manager", "--cluster-signing-cert-file")] == "ca"
    # The scheduler's flags live in $KUBE_SCHEDULER_OPTS of its uploaded EnvironmentFile.
    assert mapped[("ssl/kube-scheduler.pem", "kube-scheduler", "--tls-cert-file")] == (
        "kube-scheduler"
    )
    # kubeconfigs: the embedded certificate is decoded; kube-proxy's is named by its --config.
    assert (
        mapped[
            (
                "kube-proxy.kubeconfig#client-certificate-data",
                "kube-proxy",
                "kube-proxy-config.yml: clientConnection.kubeconfig",
            )
        ]
        == "kube-proxy"
    )
    assert (
        mapped[
            (
                "ssl/kube-proxy.pem",
                "kube-proxy",
                "same as kube-proxy.kubeconfig#client-certificate-data",
            )
        ]
        == "kube-proxy"
    )
    assert ("kube-controller-manager.kubeconfig#client-certificate-data") in {
        m["file"] for m in body["mappings"] if m["ledger"] == "kube-controller-manager"
    }
    assert all(
        m["stored"]
        for m in body["mappings"]
        if m["file"].endswith(".pem") and not m["file"].endswith("-key.pem")
    )
    # One CA signs everything: it fills every CA role, and the result says so.
    assert any("single-CA layout" in note for note in body["notes"]), body["notes"]
    assert body["findings"] == [], body["findings"]
    assert body["service_account"] == "ssl/ca-key.pem"

    # The ledger: the CA in all three roles, every leaf with the serial cfssl gave it.
    ca_serial = _cfssl_serial(certs / "ssl/ca.pem")
    cas = CertificateAuthority.objects.filter(cluster=binary_cluster, status="active")
    assert {ca.name: ca.serial for ca in cas} == {
        "ca": ca_serial,
        "front-proxy-ca": ca_serial,
        "etcd/ca": ca_serial,
    }
    rows = Certificate.objects.filter(cluster=binary_cluster, status=CertificateStatus.ACTIVE)
    ledger = {(row.name, row.node_name): row.serial for row in rows}
    expected_files = {
        "kubernetes": "kubernetes",
        "apiserver-etcd-client": "etcd",
        "apiserver-kubelet-client": "admin",
        "proxy-client": "proxy-client",
        "kube-controller-manager": "kube-controller-manager",
        "kube-scheduler": "kube-scheduler",
        "kube-proxy": "kube-proxy",
    }
    for name, base in expected_files.items():
        assert ledger[(name, "")] == _cfssl_serial(certs / f"ssl/{base}.pem"), name
    etcd_serial = _cfssl_serial(certs / "ssl/etcd.pem")
    # The one etcd.pem names all three masters in its SANs: each holds it as server and peer.
    for node in ("master-1", "master-2", "master-3"):
        assert ledger[("etcd-server", node)] == etcd_serial
        assert ledger[("etcd-peer", node)] == etcd_serial
    assert ("etcd-server", "node-1") not in ledger
    # Private keys are stored encrypted and decrypt to the uploaded ones.
    kubernetes = rows.get(name="kubernetes")
    assert kubernetes.private_key_pem.startswith("-----BEGIN")
    assert ServiceAccountKey.objects.filter(cluster=binary_cluster, status="active").count() == 1
    event = AuditEvent.objects.get(action="pki.import.binary")
    assert event.via == "api" and event.details["findings"] == 0
    assert b"PRIVATE KEY" not in json.dumps(event.details).encode()

    # A second import of the same files keeps the CAs and replaces each leaf row once.
    again = _post(api_client("admin"), binary_cluster, tar_gz(certs, skip=HARBOR), tar_gz(units))
    assert again.status_code == 201
    assert CertificateAuthority.objects.filter(cluster=binary_cluster).count() == 3
    assert Certificate.objects.filter(cluster=binary_cluster, status="active").count() == len(rows)


def test_a_missing_file_an_unknown_certificate_and_a_wrong_key_are_findings(
    binary_cluster, api_client, web_client, cluster_files, tmp_path
) -> None:
    certs, units = cluster_files
    # proxy-client.pem is named by --proxy-client-cert-file but left out (its key, named by
    # --proxy-client-key-file, is there); harbor.pem is in the
    # upload but no unit uses it; kubernetes-key.pem is replaced by admin's key.
    broken = tmp_path / "certs"
    for path in certs.rglob("*"):
        if path.is_file() and path.name != "proxy-client.pem":
            target = broken / path.relative_to(certs)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (broken / "ssl/kubernetes-key.pem").write_bytes((certs / "ssl/admin-key.pem").read_bytes())
    response = _post(api_client("admin"), binary_cluster, tar_gz(broken), tar_gz(units))
    assert response.status_code == 201, response.content[:500]
    findings = response.json()["findings"]

    missing = [f for f in findings if f["kind"] == MISSING]
    assert [f["path"] for f in missing] == [f"{SSL}/proxy-client.pem"], findings
    assert "--proxy-client-cert-file" in missing[0]["message"]
    unknown = [f for f in findings if f["kind"] == UNKNOWN]
    assert [f["path"] for f in unknown] == ["ssl/harbor.pem"], findings
    assert "harbor.example.internal" in unknown[0]["message"]
    wrong = [f for f in findings if f["kind"] == KEY_MISMATCH]
    assert [f["path"] for f in wrong] == ["ssl/kubernetes-key.pem"], findings
    assert wrong[0]["severity"] == "critical"
    assert len(findings) == 3, findings
    # The refused pair is not stored; the rest is.
    active = Certificate.objects.filter(cluster=binary_cluster, status="active")
    names = set(active.values_list("name", flat=True))
    assert "kubernetes" not in names and "proxy-client" not in names
    assert {"apiserver-etcd-client", "kube-proxy", "kube-scheduler"} <= names
    # The findings are the cluster's open findings, each with a suggested action.
    rows = Finding.objects.open().filter(cluster=binary_cluster)
    assert sorted(rows.values_list("kind", "path")) == sorted(
        [
            (MISSING, f"{SSL}/proxy-client.pem"),
            (UNKNOWN, "ssl/harbor.pem"),
            (KEY_MISMATCH, "ssl/kubernetes-key.pem"),
        ]
    )
    assert all(row.suggestion for row in rows)
    listed = web_client("viewer").get("/findings/")
    assert listed.status_code == 200
    assert b"import-missing-file" in listed.content and b"ssl/harbor.pem" in listed.content

    # A clean import afterwards resolves them.
    clean = _post(api_client("admin"), binary_cluster, tar_gz(certs, skip=HARBOR), tar_gz(units))
    assert clean.status_code == 201
    assert not Finding.objects.open().filter(cluster=binary_cluster).exists()


def tar_gz_files(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _traversal(certs: Path) -> bytes:
    buffer = io.BytesIO()
    data = (certs / "ssl/ca.pem").read_bytes()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("ssl/../../etc/cron.d/evil")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_bad_uploads_are_a_400_naming_the_field_and_write_nothing(
    binary_cluster, api_client, cluster_files
) -> None:
    certs, units = cluster_files
    good_certs, good_units = tar_gz(certs, skip=HARBOR), tar_gz(units)
    cases = [
        ("traversal", _traversal(certs), good_units, "certificates", "'..'"),
        ("units not an archive", good_certs, b"not an archive", "units", "not a tar"),
        ("no unit files", good_certs, tar_gz(certs), "units", ".service"),
        (
            "no CA key",
            tar_gz(certs, skip=("ssl/ca-key.pem", *HARBOR)),
            good_units,
            "certificates",
            "CA",
        ),
    ]
    client = api_client("admin")
    for label, cert_data, unit_data, field, words in cases:
        before, audits, findings = row_counts(), AuditEvent.objects.count(), Finding.objects.count()
        response = _post(client, binary_cluster, cert_data, unit_data)
        assert response.status_code == 400, (label, response.content[:300])
        errors = response.json()["errors"]
        assert field in errors and words in " ".join(errors[field]), (label, errors)
        assert row_counts() == before, label
        assert AuditEvent.objects.count() == audits, label
        assert Finding.objects.count() == findings, label
    # A NUL byte in a unit's flag reaches a finding's path without it (PostgreSQL refuses NULs).
    nul_units = tar_gz_files(
        {
            "kube-apiserver.service": b"[Service]\n"
            b"ExecStart=/bin/kube-apiserver --tls-cert-file=/x\x00y.pem\n"
        }
    )
    answered = _post(client, binary_cluster, good_certs, nul_units)
    assert answered.status_code == 201, answered.content[:300]
    assert Finding.objects.open().filter(cluster=binary_cluster, path="/xy.pem").exists()
    missing = client.post(URL.format(binary_cluster.pk), {}, format="multipart")
    assert missing.status_code == 400 and "certificates" in missing.json()["errors"]
    # Importing CA keys is for admins only.
    operator = _post(api_client("operator"), binary_cluster, good_certs, good_units)
    assert operator.status_code == 403
    # A kubeadm cluster is imported as a kubeadm tree.
    kubeadm_cluster = make_cluster("kadm")
    refused = _post(client, kubeadm_cluster, good_certs, good_units)
    assert refused.status_code == 400 and "kubeadm" in json.dumps(refused.json())


def test_the_page_imports_one_archive_with_a_units_folder_and_shows_the_mapping(
    binary_cluster, web_client, cluster_files, tmp_path
) -> None:
    certs, units = cluster_files
    client = web_client("admin")
    tab = client.get(f"/clusters/{binary_cluster.pk}/certificates/")
    assert b"Import binary cluster PKI" in tab.content
    assert (
        b"Import binary cluster PKI"
        not in web_client("operator").get(f"/clusters/{binary_cluster.pk}/certificates/").content
    )
    # One archive: the certificate directory plus the units under units/.
    combined = tmp_path / "all"
    for source, prefix in ((certs, ""), (units, "units/")):
        for path in source.rglob("*"):
            if path.is_file() and path.relative_to(source).as_posix() not in HARBOR:
                target = combined / f"{prefix}{path.relative_to(source).as_posix()}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
    page = f"/clusters/{binary_cluster.pk}/certificates/binary-import/"
    assert client.get(page).status_code == 200
    response = client.post(page, {"certificates": _upload("all.zip", tar_gz(combined))})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="binary-import-mappings"' in html, html[-2000:]
    assert "<code>ssl/kubernetes.pem</code></td><td>kube-apiserver</td>" in html
    assert "<code>--tls-cert-file</code>" in html
    assert "Every uploaded certificate was placed." in html
    assert AuditEvent.objects.get(action="pki.import.binary").via == "web"
    assert CertificateAuthority.objects.filter(cluster=binary_cluster, status="active").count() == 3
    # A refused upload shows the problem on its field.
    refused = client.post(page, {"certificates": _upload("x.tar.gz", b"garbage")})
    assert refused.status_code == 200
    assert 'id="certificates-error"' in refused.content.decode()
    # The page exists only for binary clusters.
    kubeadm_cluster = make_cluster("kadm2")
    assert client.get(
        f"/clusters/{kubeadm_cluster.pk}/certificates/binary-import/"
    ).status_code == (404)
