"""The kubeadm-certs Secret: kubeadm's file list, AES-256-GCM layout and a full round trip."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pki.domain.join import generate_certificate_key
from pki.domain.tokens import parse_token
from pki.domain.upload_certs import (
    NONCE_SIZE,
    TAG_SIZE,
    SecretOwner,
    UploadCertsError,
    build_payload,
    certs_to_transfer,
    decrypt_payload,
    parse_secret,
    render_certs_token_secret,
    render_rbac,
    render_secret,
    secret_data_key,
)

LOCAL_FILES = {
    "ca.crt": b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
    "ca.key": b"-----BEGIN RSA PRIVATE KEY-----\nca\n-----END RSA PRIVATE KEY-----\n",
    "front-proxy-ca.crt": b"front-proxy-ca cert",
    "front-proxy-ca.key": b"front-proxy-ca key",
    "sa.pub": b"-----BEGIN PUBLIC KEY-----\nsa\n-----END PUBLIC KEY-----\n",
    "sa.key": b"sa private key",
    "etcd/ca.crt": b"etcd ca cert",
    "etcd/ca.key": b"etcd ca key",
}
OWNER_UID = "0f5e3a36-5d43-4cf8-9a58-cf8fa9a3c5a1"


def independent_decrypt(payload: bytes, key_hex: str) -> bytes:
    """AES-256-GCM decryption written against the low-level primitive, not the module's helper."""
    nonce, body = payload[:12], payload[12:]
    ciphertext, tag = body[:-16], body[-16:]
    decryptor = Cipher(algorithms.AES(bytes.fromhex(key_hex)), modes.GCM(nonce, tag)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def test_kubeadm_file_list() -> None:
    assert set(certs_to_transfer(external_etcd=False)) == set(LOCAL_FILES)
    assert set(certs_to_transfer(external_etcd=True)) == {
        "ca.crt",
        "ca.key",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "sa.pub",
        "sa.key",
        "external-etcd-ca.crt",
        "external-etcd.crt",
        "external-etcd.key",
    }
    assert secret_data_key("etcd/ca.key") == "etcd-ca.key"


def test_round_trip_through_manifest_with_independent_decrypt() -> None:
    key = generate_certificate_key()
    payload = build_payload(LOCAL_FILES, key)
    assert list(payload) == sorted(secret_data_key(name) for name in LOCAL_FILES)
    text = render_secret(payload, SecretOwner("abc123", OWNER_UID))
    document = yaml.safe_load(text)
    assert document["type"] == "Opaque"
    assert document["metadata"]["name"] == "kubeadm-certs"
    assert document["metadata"]["namespace"] == "kube-system"
    assert document["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": "bootstrap-token-abc123",
            "uid": OWNER_UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    for name, content in LOCAL_FILES.items():
        raw = base64.b64decode(document["data"][secret_data_key(name)])
        assert len(raw) == NONCE_SIZE + len(content) + TAG_SIZE
        assert content not in raw
        assert independent_decrypt(raw, key) == content
    decrypted = decrypt_payload(parse_secret(text), key)
    assert decrypted == {secret_data_key(name): content for name, content in LOCAL_FILES.items()}


def test_each_value_has_its_own_nonce() -> None:
    payload = build_payload({**LOCAL_FILES, "sa.key": LOCAL_FILES["sa.pub"]}, "11" * 32)
    nonces = {value[:NONCE_SIZE] for value in payload.values()}
    assert len(nonces) == len(payload)
    assert payload["sa.key"] != payload["sa.pub"]


def test_wrong_key_fails_loudly() -> None:
    payload = build_payload(LOCAL_FILES, "22" * 32)
    with pytest.raises(UploadCertsError, match="authentication failed"):
        decrypt_payload(payload, "33" * 32)
    with pytest.raises(InvalidTag):
        independent_decrypt(payload["ca.key"], "33" * 32)
    tampered = bytearray(payload["ca.key"])
    tampered[NONCE_SIZE] ^= 1
    with pytest.raises(UploadCertsError):
        decrypt_payload({"ca.key": bytes(tampered)}, "22" * 32)


def test_external_etcd_files_may_be_absent() -> None:
    shared = {name: LOCAL_FILES[name] for name in certs_to_transfer(True) if name in LOCAL_FILES}
    key = generate_certificate_key()
    payload = build_payload({**shared, "external-etcd-ca.crt": b"ext ca"}, key, external_etcd=True)
    assert payload["external-etcd.crt"] == b""
    assert payload["external-etcd.key"] == b""
    assert "etcd-ca.crt" not in payload
    round_trip = decrypt_payload(parse_secret(render_secret(payload)), key)
    assert round_trip["external-etcd-ca.crt"] == b"ext ca"
    assert round_trip["external-etcd.key"] == b""


def test_refuses_missing_and_foreign_files() -> None:
    key = generate_certificate_key()
    missing = {name: value for name, value in LOCAL_FILES.items() if name != "sa.key"}
    with pytest.raises(UploadCertsError, match=r"files: sa\.key missing"):
        build_payload(missing, key)
    with pytest.raises(UploadCertsError, match=r"files: apiserver\.key are not uploaded"):
        build_payload({**LOCAL_FILES, "apiserver.key": b"x"}, key)
    with pytest.raises(UploadCertsError, match="etcd"):
        build_payload(LOCAL_FILES, key, external_etcd=True)
    with pytest.raises(UploadCertsError, match="certificate key"):
        build_payload(LOCAL_FILES, "not-hex")


def test_owner_validation() -> None:
    with pytest.raises(UploadCertsError, match="owner uid"):
        SecretOwner("abc123", "not-a-uid")
    with pytest.raises(ValueError, match="token id"):
        SecretOwner("ABC", OWNER_UID)


def test_certs_token_secret_expires_in_two_hours() -> None:
    now = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
    token = parse_token("abc123.0123456789abcdef")
    document = yaml.safe_load(render_certs_token_secret(token, now))
    assert document["metadata"]["name"] == "bootstrap-token-abc123"
    assert document["stringData"] == {
        "token-id": "abc123",
        "token-secret": "0123456789abcdef",
        "description": "Proxy for managing TTL for the kubeadm-certs secret",
        "expiration": "2025-05-01T12:00:00Z",
    }


def test_rbac_lets_bootstrap_tokens_read_only_kubeadm_certs() -> None:
    role, binding = yaml.safe_load_all(render_rbac())
    assert role["kind"] == "Role"
    assert role["metadata"] == {"name": "kubeadm:kubeadm-certs", "namespace": "kube-system"}
    assert role["rules"] == [
        {
            "verbs": ["get"],
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["kubeadm-certs"],
        }
    ]
    assert binding["roleRef"]["name"] == "kubeadm:kubeadm-certs"
    assert binding["subjects"][0]["name"] == "system:bootstrappers:kubeadm:default-node-token"
