"""What ``kubeadm init phase upload-certs --upload-certs`` stores in the cluster.

kubeadm (cmd/kubeadm/app/phases/copycerts) encrypts the shared control-plane files with the
certificate key and stores them in the Secret ``kube-system/kubeadm-certs``. Each value is
AES-256-GCM output laid out as ``nonce (12 bytes) || ciphertext || tag (16 bytes)``, without
additional data (``cryptoutil.EncryptBytes``). The data keys are the file names relative to the
certificates directory with ``/`` replaced by ``-``. The Secret is owned by a bootstrap token with a
two-hour TTL, so the garbage collector removes it when that token expires.

Which files travel (``certsToTransfer``): ``ca.crt``, ``ca.key``, ``front-proxy-ca.crt``,
``front-proxy-ca.key``, ``sa.pub``, ``sa.key`` and, with local etcd, ``etcd/ca.crt`` and
``etcd/ca.key``; with external etcd instead the files named by ``etcd.external`` under the keys
``external-etcd-ca.crt``, ``external-etcd.crt`` and ``external-etcd.key``. An external etcd file
that does not exist (insecure etcd) is uploaded as an empty value.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clusterpanel.errors import InputError
from pki.domain.join import JoinError, validate_certificate_key
from pki.domain.tokens import BootstrapToken, render_secret_manifest
from pki.domain.yaml import dump_document, dump_documents, load_document

# Names of Kubernetes objects, not credentials.
SECRET_NAME = "kubeadm-certs"  # noqa: S105
SECRET_NAMESPACE = "kube-system"  # noqa: S105
RBAC_NAME = "kubeadm:kubeadm-certs"
RBAC_SUBJECT_GROUP = "system:bootstrappers:kubeadm:default-node-token"
NONCE_SIZE = 12
TAG_SIZE = 16

# The short-lived token that owns the Secret, as kubeadm creates it: no usages, no groups.
CERTS_TOKEN_TTL = timedelta(hours=2)
CERTS_TOKEN_DESCRIPTION = "Proxy for managing TTL for the kubeadm-certs secret"  # noqa: S105

SHARED_FILES: tuple[str, ...] = (
    "ca.crt",
    "ca.key",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "sa.pub",
    "sa.key",
)
LOCAL_ETCD_FILES: tuple[str, ...] = ("etcd/ca.crt", "etcd/ca.key")
EXTERNAL_ETCD_FILES: tuple[str, ...] = (
    "external-etcd-ca.crt",
    "external-etcd.crt",
    "external-etcd.key",
)


class UploadCertsError(InputError):
    """Invalid input for, or undecryptable content of, the kubeadm-certs Secret."""


@dataclass(frozen=True)
class SecretOwner:
    """The bootstrap-token Secret that owns ``kubeadm-certs``; its uid comes from the cluster."""

    token_id: str
    uid: str

    def __post_init__(self) -> None:
        BootstrapToken(self.token_id, "0" * 16)  # validates the id only
        try:
            uuid.UUID(self.uid)
        except (ValueError, AttributeError, TypeError):
            raise UploadCertsError(f"owner uid: {self.uid!r} is not a UID") from None


def certs_to_transfer(external_etcd: bool) -> tuple[str, ...]:
    """The file names kubeadm uploads for the given etcd topology."""
    return SHARED_FILES + (EXTERNAL_ETCD_FILES if external_etcd else LOCAL_ETCD_FILES)


def secret_data_key(file_name: str) -> str:
    """The Secret data key for a file name, ``etcd/ca.crt`` → ``etcd-ca.crt``."""
    return file_name.replace("/", "-")


def _key_bytes(certificate_key: str) -> bytes:
    try:
        return bytes.fromhex(validate_certificate_key(certificate_key))
    except JoinError as error:
        raise UploadCertsError(str(error)) from None


def encrypt_bytes(data: bytes, key: bytes) -> bytes:
    """AES-GCM with a fresh random nonce; returns ``nonce || ciphertext || tag``."""
    nonce = os.urandom(NONCE_SIZE)
    return nonce + AESGCM(key).encrypt(nonce, data, None)


def decrypt_bytes(payload: bytes, key: bytes) -> bytes:
    """Inverse of :func:`encrypt_bytes`; raises :class:`UploadCertsError` on a wrong key."""
    if len(payload) < NONCE_SIZE + TAG_SIZE:
        raise UploadCertsError("payload: shorter than nonce and tag")
    try:
        return AESGCM(key).decrypt(payload[:NONCE_SIZE], payload[NONCE_SIZE:], None)
    except InvalidTag:
        raise UploadCertsError("payload: authentication failed (wrong certificate key?)") from None


def _check_files(files: Mapping[str, bytes], external_etcd: bool) -> None:
    expected = set(certs_to_transfer(external_etcd))
    unexpected = sorted(set(files) - expected)
    if unexpected:
        raise UploadCertsError(f"files: {', '.join(unexpected)} are not uploaded by kubeadm")
    required = SHARED_FILES if external_etcd else certs_to_transfer(False)
    missing = [name for name in required if not files.get(name)]
    if missing:
        raise UploadCertsError(f"files: {', '.join(missing)} missing or empty")
    for name, content in files.items():
        if not isinstance(content, bytes):
            raise UploadCertsError(f"files: {name} must be bytes")


def build_payload(
    files: Mapping[str, bytes], certificate_key: str, external_etcd: bool = False
) -> dict[str, bytes]:
    """Encrypt the shared files; returns Secret data key → encrypted bytes, sorted by key.

    With external etcd, its three files may be absent (insecure etcd) and are then stored empty.
    """
    key = _key_bytes(certificate_key)
    _check_files(files, external_etcd)
    payload: dict[str, bytes] = {}
    for name in sorted(certs_to_transfer(external_etcd), key=secret_data_key):
        content = files.get(name)
        payload[secret_data_key(name)] = encrypt_bytes(content, key) if content else b""
    return payload


def decrypt_payload(payload: Mapping[str, bytes], certificate_key: str) -> dict[str, bytes]:
    """Decrypt every value of a kubeadm-certs payload; empty values stay empty, as in kubeadm."""
    key = _key_bytes(certificate_key)
    return {name: decrypt_bytes(value, key) if value else b"" for name, value in payload.items()}


def render_secret(payload: Mapping[str, bytes], owner: SecretOwner | None = None) -> str:
    """Render the ``kube-system/kubeadm-certs`` Secret (type Opaque, base64 ``data``).

    ``owner`` adds the controller owner reference kubeadm sets to the short-lived token's Secret;
    without it the Secret would outlive the two hours, so leave it out only when the caller adds
    the reference itself once the token Secret's uid is known.
    """
    metadata: dict[str, object] = {"name": SECRET_NAME, "namespace": SECRET_NAMESPACE}
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "name": f"bootstrap-token-{owner.token_id}",
                "uid": owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    data = {name: base64.b64encode(value).decode("ascii") for name, value in payload.items()}
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": data,
    }
    return dump_document(manifest)


def parse_secret(text: str) -> dict[str, bytes]:
    """Read the ``data`` of a kubeadm-certs Secret manifest back into raw encrypted bytes."""
    try:
        document = load_document(text)
        data = document["data"]
        return {name: base64.b64decode(value or "", validate=True) for name, value in data.items()}
    except (yaml.YAMLError, KeyError, TypeError, AttributeError, binascii.Error) as error:
        raise UploadCertsError(f"secret: not a kubeadm-certs Secret ({error})") from None


def render_certs_token_secret(token: BootstrapToken, now: datetime) -> str:
    """The short-lived bootstrap-token Secret that owns kubeadm-certs (expires in two hours)."""
    return render_secret_manifest(
        token,
        now + CERTS_TOKEN_TTL,
        usages=(),
        groups=(),
        description=CERTS_TOKEN_DESCRIPTION,
    )


def render_rbac() -> str:
    """Role and RoleBinding that let joining nodes read kubeadm-certs, as kubeadm creates them."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": RBAC_NAME, "namespace": SECRET_NAMESPACE},
        "rules": [
            {
                "verbs": ["get"],
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": [SECRET_NAME],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": RBAC_NAME, "namespace": SECRET_NAMESPACE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RBAC_NAME},
        "subjects": [
            {
                "kind": "Group",
                "apiGroup": "rbac.authorization.k8s.io",
                "name": RBAC_SUBJECT_GROUP,
            }
        ],
    }
    return dump_documents([role, binding])
