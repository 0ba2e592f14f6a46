"""kubeconfig rendering in kubeadm's exact shape, and parsing."""

from __future__ import annotations

import base64

import pytest

from pki.domain import x509
from pki.domain.kubeconfig import client_identity, parse_kubeconfig, render_kubeconfig
from pki.domain.x509 import PKIError

CA = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
CERT = b"-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN EC PRIVATE KEY-----\nKEY\n-----END EC PRIVATE KEY-----\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_render_matches_kubeadms_layout() -> None:
    text = render_kubeconfig(
        "kubernetes", "https://lb.example.internal:6443", CA, CERT, KEY, "kubernetes-admin"
    )
    assert text == (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {b64(CA)}\n"
        "    server: https://lb.example.internal:6443\n"
        "  name: kubernetes\n"
        "contexts:\n"
        "- context:\n"
        "    cluster: kubernetes\n"
        "    user: kubernetes-admin\n"
        "  name: kubernetes-admin@kubernetes\n"
        "current-context: kubernetes-admin@kubernetes\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        "- name: kubernetes-admin\n"
        "  user:\n"
        f"    client-certificate-data: {b64(CERT)}\n"
        f"    client-key-data: {b64(KEY)}\n"
    )


def test_long_data_stays_on_one_line() -> None:
    big = b"x" * 3000
    text = render_kubeconfig("kubernetes", "https://10.0.0.1:6443", big, big, big, "u")
    assert f"    certificate-authority-data: {b64(big)}\n" in text


def test_colons_in_user_names_survive_a_round_trip() -> None:
    text = render_kubeconfig("prod", "https://[fd00::1]:6443", CA, CERT, KEY, "system:node:cp-1")
    parsed = parse_kubeconfig(text)
    assert parsed.cluster_name == "prod"
    assert parsed.server == "https://[fd00::1]:6443"
    assert parsed.user == "system:node:cp-1"
    assert parsed.context == "system:node:cp-1@prod"
    assert (parsed.ca_cert_pem, parsed.client_cert_pem, parsed.client_key_pem) == (CA, CERT, KEY)


def test_parse_follows_the_current_context() -> None:
    text = f"""
apiVersion: v1
kind: Config
current-context: b@two
clusters:
- name: one
  cluster: {{server: "https://one:6443", certificate-authority-data: {b64(b"ca1")}}}
- name: two
  cluster: {{server: "https://two:6443", certificate-authority-data: {b64(b"ca2")}}}
contexts:
- name: a@one
  context: {{cluster: one, user: a}}
- name: b@two
  context: {{cluster: two, user: b}}
users:
- name: a
  user: {{client-certificate-data: {b64(b"c1")}, client-key-data: {b64(b"k1")}}}
- name: b
  user: {{client-certificate-data: {b64(b"c2")}, client-key-data: {b64(b"k2")}}}
"""
    parsed = parse_kubeconfig(text)
    assert (parsed.server, parsed.user, parsed.ca_cert_pem, parsed.client_key_pem) == (
        "https://two:6443",
        "b",
        b"ca2",
        b"k2",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not: yaml", "not valid YAML"),
        ("kind: Pod\n", "expected a mapping with kind: Config"),
        ("kind: Config\nclusters: []\n", "has no contexts"),
        (
            "kind: Config\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
            "clusters: [{name: c, cluster: {server: 'https://c'}}]\n"
            "users: [{name: u, user: {token: abc}}]\n",
            "lacks embedded certificate-authority-data",
        ),
        (
            "kind: Config\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
            "clusters: [{name: c, cluster: {server: 'https://c', "
            "certificate-authority-data: '!!notbase64'}}]\n"
            "users: [{name: u, user: {}}]\n",
            "not valid base64",
        ),
    ],
)
def test_malformed_kubeconfigs_are_refused(text: str, message: str) -> None:
    with pytest.raises(PKIError, match=message):
        parse_kubeconfig(text)


def test_plain_http_server_is_refused() -> None:
    with pytest.raises(PKIError, match="https://"):
        render_kubeconfig("kubernetes", "http://10.0.0.1:6443", CA, CERT, KEY, "u")


def test_the_client_identity_is_the_embedded_certificates_cn_and_o() -> None:
    """What the API server reads (CN as user, each O as a group), not the user entry's name."""
    ca_key, key = x509.generate_private_key("ECDSA-P256"), x509.generate_private_key("ECDSA-P256")
    ca_spec = x509.CertSpec(
        "ca", None, "kubernetes", is_ca=True, validity=x509.DEFAULT_CA_VALIDITY
    )  # outlives the leaf however long signing takes
    ca = x509.create_ca(ca_spec, ca_key)
    spec = x509.CertSpec(
        "kubelet-client",
        "ca",
        "system:node:w-1",
        organizations=("system:nodes", "extra"),
        usages=(x509.USAGE_CLIENT,),
    )
    cert = x509.certificate_to_pem(x509.sign_certificate(spec, key.public_key(), ca, ca_key))
    text = render_kubeconfig(
        "kubernetes", "https://lb:6443", x509.certificate_to_pem(ca), cert, KEY, "anything"
    )
    user, groups = client_identity(text)
    # One multi-valued RDN, as Go writes it: DER keeps its values sorted, not in spec order.
    assert (user, sorted(groups)) == ("system:node:w-1", ["extra", "system:nodes"])
    broken = render_kubeconfig("kubernetes", "https://lb:6443", CA, CERT, KEY, "anything")
    with pytest.raises(PKIError):
        client_identity(broken)
