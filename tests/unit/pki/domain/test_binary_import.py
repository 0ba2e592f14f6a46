"""The mapping of uploaded certificates onto services (``pki.domain.binary_import``), without
Django: a three-CA layout, kubeconfigs naming files, and what cannot be placed."""

from __future__ import annotations

import base64

import pytest
import yaml

from pki.domain import binary_import
from pki.domain.binary_import import NodeRef, plan_import, split_upload
from pki.domain.x509 import (
    DEFAULT_CA_VALIDITY,
    CertSpec,
    PKIError,
    certificate_to_pem,
    create_ca,
    generate_private_key,
    private_key_to_pem,
    public_key_to_pem,
    sign_certificate,
)

ALGO = "ECDSA-P256"


def _ca(name: str) -> tuple[bytes, bytes, object, object]:
    key = generate_private_key(ALGO)
    # Outlives the leaves signed after it, however long that takes (whole seconds).
    cert = create_ca(CertSpec(name, None, name, is_ca=True, validity=DEFAULT_CA_VALIDITY), key)
    return certificate_to_pem(cert), private_key_to_pem(key), cert, key


def _leaf(ca: tuple, cn: str, usages: tuple[str, ...], ips: tuple[str, ...] = ()) -> tuple:
    key = generate_private_key(ALGO)
    spec = CertSpec(cn, "ca", cn, usages=usages, ip_addresses=ips)
    cert = sign_certificate(spec, key.public_key(), ca[2], ca[3])
    return certificate_to_pem(cert), private_key_to_pem(key)


@pytest.fixture(scope="module")
def three_cas() -> dict[str, bytes]:
    """Separate CAs for the cluster, the front proxy and etcd, as kubeadm-minded guides do."""
    ca, fp, etcd = _ca("kubernetes"), _ca("front-proxy-ca"), _ca("etcd-ca")
    files = {"pki/ca.pem": ca[0], "pki/ca-key.pem": ca[1]}
    files |= {"pki/front-proxy-ca.pem": fp[0], "pki/front-proxy-ca-key.pem": fp[1]}
    files |= {"pki/etcd-ca.pem": etcd[0], "pki/etcd-ca-key.pem": etcd[1]}
    for name, signer, cn, usages, ips in (
        ("apiserver", ca, "kube-apiserver", ("server",), ("10.0.0.11",)),
        ("front-proxy-client", fp, "front-proxy-client", ("client",), ()),
        ("apiserver-etcd-client", etcd, "kube-apiserver-etcd-client", ("client",), ()),
        ("etcd", etcd, "etcd-1", ("server", "client"), ("10.0.0.11",)),
        ("kubelet", ca, "system:node:worker-1", ("client",), ()),
    ):
        cert, key = _leaf(signer, cn, usages, ips)
        files[f"pki/{name}.pem"], files[f"pki/{name}-key.pem"] = cert, key
    sa = generate_private_key(ALGO)
    files["pki/sa.key"] = private_key_to_pem(sa)
    files["pki/sa.pub"] = public_key_to_pem(sa)
    # The kubelet's kubeconfig names its certificate files instead of embedding them.
    files["kubelet.kubeconfig"] = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "k",
                    "cluster": {
                        "server": "https://10.0.0.11:6443",
                        "certificate-authority-data": base64.b64encode(ca[0]).decode(),
                    },
                }
            ],
            "users": [
                {
                    "name": "u",
                    "user": {
                        "client-certificate": "/etc/kubernetes/pki/kubelet.pem",
                        "client-key": "/etc/kubernetes/pki/kubelet-key.pem",
                    },
                }
            ],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            "current-context": "c",
        }
    ).encode()
    return files


P = "/etc/kubernetes/pki"
APISERVER = f"""[Service]
ExecStart=/usr/local/bin/kube-apiserver \\
  --tls-cert-file={P}/apiserver.pem --tls-private-key-file={P}/apiserver-key.pem \\
  --client-ca-file={P}/ca.pem \\
  --requestheader-client-ca-file={P}/front-proxy-ca.pem \\
  --proxy-client-cert-file={P}/front-proxy-client.pem \\
  --proxy-client-key-file={P}/front-proxy-client-key.pem \\
  --etcd-cafile={P}/etcd-ca.pem --etcd-certfile={P}/apiserver-etcd-client.pem \\
  --etcd-keyfile={P}/apiserver-etcd-client-key.pem \\
  --service-account-key-file={P}/sa.pub --service-account-signing-key-file={P}/sa.key
"""
ETCD = f"""[Service]
ExecStart=/usr/local/bin/etcd --cert-file={P}/etcd.pem --key-file={P}/etcd-key.pem \\
  --trusted-ca-file={P}/etcd-ca.pem
"""
KUBELET = """[Service]
EnvironmentFile=/etc/kubernetes/kubelet.env
ExecStart=/usr/local/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.kubeconfig $KUBELET_ARGS
"""
UNITS = {
    "kube-apiserver.service": APISERVER.encode(),
    "etcd.service": ETCD.encode(),
    "kubelet.service": KUBELET.encode(),
}
NODES = [NodeRef("master-1", "10.0.0.11"), NodeRef("worker-1", "10.0.0.21")]


def test_three_cas_fill_their_roles_from_the_flags(three_cas) -> None:
    plan = plan_import(three_cas, UNITS, NODES)
    assert {role: ca.file for role, ca in plan.cas.items()} == {
        "ca": "pki/ca.pem",
        "front-proxy-ca": "pki/front-proxy-ca.pem",
        "etcd/ca": "pki/etcd-ca.pem",
    }
    assert not any("single-CA" in note for note in plan.notes)
    leaves = {(leaf.name, leaf.node): (leaf.file, leaf.signer) for leaf in plan.leaves}
    assert leaves == {
        ("kubernetes", None): ("pki/apiserver.pem", "ca"),
        ("proxy-client", None): ("pki/front-proxy-client.pem", "front-proxy-ca"),
        ("apiserver-etcd-client", None): ("pki/apiserver-etcd-client.pem", "etcd/ca"),
        ("etcd-server", "master-1"): ("pki/etcd.pem", "etcd/ca"),
        # Followed from the kubeconfig's client-certificate path; CN system:node:worker-1.
        ("kubelet-client", "worker-1"): ("pki/kubelet.pem", "ca"),
    }
    assert plan.sa_file == "pki/sa.key" and plan.sa_key is not None
    # The kubelet's $KUBELET_ARGS come from an environment file that was not uploaded.
    kinds = sorted((f.kind, f.path) for f in plan.findings)
    assert kinds == [
        (binary_import.MISSING, "/etc/kubernetes/kubelet.env"),
        (binary_import.UNRESOLVED, "kubelet.service"),
    ]


def test_a_certificate_signed_by_no_uploaded_ca_and_a_mismatched_sa_pair_are_findings(
    three_cas,
) -> None:
    stranger = _ca("someone-else")
    files = dict(three_cas)
    files["pki/apiserver.pem"], files["pki/apiserver-key.pem"] = _leaf(
        stranger, "kube-apiserver", ("server",)
    )
    files["pki/sa.pub"] = public_key_to_pem(generate_private_key(ALGO))
    plan = plan_import(files, UNITS, NODES)
    by_path = {f.path: f for f in plan.findings}
    assert by_path["pki/apiserver.pem"].kind == binary_import.NOT_SIGNED
    assert "not signed by any uploaded CA" in by_path["pki/apiserver.pem"].message
    assert by_path["pki/sa.pub"].kind == binary_import.KEY_MISMATCH
    assert plan.sa_key is None
    assert "kubernetes" not in {leaf.name for leaf in plan.leaves}


def test_a_per_node_certificate_naming_no_inventory_node_is_not_placed(three_cas) -> None:
    plan = plan_import(three_cas, UNITS, [NodeRef("other", "10.9.9.9")])
    unplaced = {f.path for f in plan.findings if f.kind == binary_import.UNPLACED}
    assert unplaced == {"pki/etcd.pem", "pki/kubelet.pem"}
    assert not any(leaf.name in ("etcd-server", "kubelet-client") for leaf in plan.leaves)


def test_without_a_ca_key_nothing_can_be_imported(three_cas) -> None:
    files = {k: v for k, v in three_cas.items() if not k.endswith("ca-key.pem")}
    with pytest.raises(PKIError, match="no CA certificate with its key"):
        plan_import(files, UNITS, NODES)


def test_one_archive_splits_into_certificates_and_a_units_folder() -> None:
    certs, units = split_upload(
        {"ssl/ca.pem": b"x", "units/cfg/etcd.conf": b"y", "units/etcd.service": b"z"}
    )
    assert certs == {"ssl/ca.pem": b"x"}
    assert set(units) == {"units/cfg/etcd.conf", "units/etcd.service"}
