"""Validation of an existing PKI before the panel takes it over.

Two sources are supported:

- a kubeadm tree (``/etc/kubernetes/pki`` plus the ``*.conf`` kubeconfigs), given as the file map
  that ``archive.read_archive`` returns: ``validate_kubeadm_pki`` checks every file and says,
  per file, what is wrong (unparsable, key not matching its certificate, a CA that is not a CA or
  has expired, a leaf or kubeconfig not signed by the CA kubeadm signs it with, ``sa.pub`` not
  matching ``sa.key``). Files kubeadm does not write are listed with a note and otherwise ignored.
- a cfssl CA (``ca.pem`` + ``ca-key.pem``): ``import_cfssl_ca`` applies the same CA checks.

Nothing here stores anything: the caller imports ``report.cas`` (and the rest) only when
``report.ok`` is true, so a half-broken tree never becomes the panel's truth.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from pki.domain.x509 import (
    MIN_RSA_BITS,
    PKIError,
    PrivateKey,
    PublicKey,
    fingerprint_sha256,
    key_description,
    key_matches_certificate,
    load_certificate,
    load_private_key,
    load_public_key,
    public_key_to_pem,
    verify_issued_by,
)
from pki.domain.yaml import load_document

# docs/kubeadm.md section 1: the CAs, and for each leaf the CA that signs it.
CA_NAMES = ("ca", "front-proxy-ca", "etcd/ca")
LEAF_SIGNERS = {
    "apiserver": "ca",
    "apiserver-kubelet-client": "ca",
    "front-proxy-client": "front-proxy-ca",
    "etcd/server": "etcd/ca",
    "etcd/peer": "etcd/ca",
    "etcd/healthcheck-client": "etcd/ca",
    "apiserver-etcd-client": "etcd/ca",
}
# docs/kubeadm.md section 2: the client CN of each kubeconfig (kubelet.conf names its node).
KUBECONFIG_CNS = {
    "admin.conf": "kubernetes-admin",
    "super-admin.conf": "kubernetes-super-admin",
    "kubelet.conf": "system:node:",
    "controller-manager.conf": "system:kube-controller-manager",
    "scheduler.conf": "system:kube-scheduler",
}
SA_KEY = "sa.key"
SA_PUB = "sa.pub"
# The curves the panel signs with (pki.x509.KEY_ALGORITHMS).
SUPPORTED_CURVES = ("secp256r1", "secp384r1")

KIND_CA_CERT = "ca-certificate"
KIND_CA_KEY = "ca-key"
KIND_CERT = "certificate"
KIND_KEY = "key"
KIND_SA_KEY = "service-account-key"
KIND_SA_PUB = "service-account-public-key"
KIND_KUBECONFIG = "kubeconfig"
KIND_UNKNOWN = "unknown"


@dataclass
class FileResult:
    """What the import found in one file; ``ok`` when it has no problems (notes are harmless)."""

    name: str
    kind: str
    problems: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class ImportReport:
    """Outcome of validating a kubeadm tree.

    ``cas`` and ``leaves`` map kubeadm base names (``ca``, ``etcd/peer``) to certificate and key
    and hold only pairs that passed every check; ``problems`` holds what concerns the tree as a
    whole (a missing ``ca.crt``, say) rather than one file.
    """

    files: list[FileResult]
    cas: dict[str, tuple[x509.Certificate, PrivateKey]]
    leaves: dict[str, tuple[x509.Certificate, PrivateKey]]
    service_account: tuple[PrivateKey, PublicKey] | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(f.ok for f in self.files)

    def file(self, name: str) -> FileResult:
        """The result for one file name (KeyError when the tree had no such file)."""
        for result in self.files:
            if result.name == name:
                return result
        raise KeyError(name)


# --------------------------------------------------------------------------- kubeadm tree


class _Validation:
    """State of one validation run: the files, their results and what parsed so far."""

    def __init__(self, files: Mapping[str, bytes], now: dt.datetime) -> None:
        self.files = files
        self.now = now
        self.results: dict[str, FileResult] = {}
        self.ca_certs: dict[str, x509.Certificate] = {}
        self.report = ImportReport([], {}, {}, None)

    def result(self, name: str, kind: str) -> FileResult:
        if name not in self.results:
            self.results[name] = FileResult(name, kind)
        return self.results[name]

    def certificate(self, name: str, kind: str) -> x509.Certificate | None:
        result = self.result(name, kind)
        try:
            cert = load_certificate(self.files[name])
        except PKIError as exc:
            result.problems.append(f"cannot be parsed: {exc}")
            return None
        result.fingerprint = fingerprint_sha256(cert)
        return cert

    def private_key(self, name: str, kind: str) -> PrivateKey | None:
        result = self.result(name, kind)
        try:
            key = load_private_key(self.files[name])
        except PKIError as exc:
            result.problems.append(f"cannot be parsed: {exc}")
            return None
        result.fingerprint = _public_key_fingerprint(key)
        return key


def validate_kubeadm_pki(
    files: Mapping[str, bytes], now: dt.datetime | None = None
) -> ImportReport:
    """Check a kubeadm tree given as ``{pki-relative path or conf name: bytes}``."""
    moment = _now(now)
    run = _Validation(files, moment)
    for name in CA_NAMES:
        _check_ca(run, name)
    for name, signer in LEAF_SIGNERS.items():
        _check_leaf(run, name, signer)
    _check_service_account(run)
    for name in sorted(files):
        if "/" not in name and name.endswith(".conf"):
            _check_kubeconfig(run, name)
    for name in sorted(files):
        if name not in run.results:
            run.result(name, KIND_UNKNOWN).notes.append("not a kubeadm PKI file; ignored")
    if "ca.crt" not in files:
        run.report.problems.append("ca.crt is missing: this does not look like a kubeadm PKI")
    run.report.files = [run.results[name] for name in sorted(run.results)]
    return run.report


def _check_ca(run: _Validation, name: str) -> None:
    crt_name, key_name = f"{name}.crt", f"{name}.key"
    if crt_name not in run.files:
        if key_name in run.files:
            run.result(key_name, KIND_CA_KEY).problems.append(f"{crt_name} is missing")
        return
    cert = run.certificate(crt_name, KIND_CA_CERT)
    if cert is None:
        if key_name in run.files:
            run.private_key(key_name, KIND_CA_KEY)
        return
    run.ca_certs[name] = cert
    result = run.result(crt_name, KIND_CA_CERT)
    result.problems += _ca_problems(cert, run.now)
    if key_name not in run.files:
        result.problems.append(f"{key_name} is missing; the panel needs the CA key to sign")
        return
    key = run.private_key(key_name, KIND_CA_KEY)
    if key is None:
        return
    if not key_matches_certificate(key, cert):
        run.result(key_name, KIND_CA_KEY).problems.append(f"does not match {crt_name}")
        return
    if result.ok:
        run.report.cas[name] = (cert, key)


def _ca_problems(cert: x509.Certificate, now: dt.datetime) -> list[str]:
    problems = []
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        problems.append("is not a CA certificate (basicConstraints CA:FALSE or missing)")
    if now > cert.not_valid_after_utc:
        problems.append(f"CA certificate expired on {_day(cert.not_valid_after_utc)}")
    elif now < cert.not_valid_before_utc:
        problems.append(f"CA certificate is not valid before {_day(cert.not_valid_before_utc)}")
    return problems


def _check_leaf(run: _Validation, name: str, signer: str) -> None:
    crt_name, key_name = f"{name}.crt", f"{name}.key"
    if crt_name not in run.files:
        # External etcd trees legitimately lack the etcd files; a lone key is still suspicious.
        if key_name in run.files:
            run.result(key_name, KIND_KEY).problems.append(f"{crt_name} is missing")
        return
    cert = run.certificate(crt_name, KIND_CERT)
    key = run.private_key(key_name, KIND_KEY) if key_name in run.files else None
    if cert is None:
        return
    result = run.result(crt_name, KIND_CERT)
    if key_name not in run.files:
        result.problems.append(f"{key_name} is missing")
    elif key is not None and not key_matches_certificate(key, cert):
        run.result(key_name, KIND_KEY).problems.append(f"does not match {crt_name}")
    problem = _chain_problem(cert, signer, run.ca_certs)
    if problem:
        result.problems.append(problem)
    if run.now > cert.not_valid_after_utc:
        result.notes.append(f"expired on {_day(cert.not_valid_after_utc)}; renew it after import")
    key_result = run.results.get(key_name)
    if key is not None and result.ok and key_result is not None and key_result.ok:
        run.report.leaves[name] = (cert, key)


def _chain_problem(
    cert: x509.Certificate, signer: str, ca_certs: Mapping[str, x509.Certificate]
) -> str | None:
    ca_cert = ca_certs.get(signer)
    if ca_cert is None:
        return f"cannot check who signed it: {signer}.crt is missing or unreadable"
    if not verify_issued_by(cert, ca_cert):
        return (
            f"is not signed by {signer}.crt (issuer {cert.issuer.rfc4514_string()!r}, "
            f"expected {ca_cert.subject.rfc4514_string()!r})"
        )
    return None


def _check_service_account(run: _Validation) -> None:
    has_key, has_pub = SA_KEY in run.files, SA_PUB in run.files
    if not has_key and not has_pub:
        if "ca.crt" in run.files:
            run.report.problems.append(
                "sa.key and sa.pub are missing: service account tokens could not be verified"
            )
        return
    key = run.private_key(SA_KEY, KIND_SA_KEY) if has_key else None
    pub = _sa_public_key(run) if has_pub else None
    if not has_key:
        run.result(SA_PUB, KIND_SA_PUB).problems.append(
            "sa.key is missing; the control plane cannot sign service account tokens"
        )
        return
    if key is None:
        return
    if not has_pub:
        run.result(SA_KEY, KIND_SA_KEY).notes.append("sa.pub is missing; derived from sa.key")
        pub = key.public_key()
    elif pub is None:
        return
    elif public_key_to_pem(pub) != public_key_to_pem(key):
        run.result(SA_PUB, KIND_SA_PUB).problems.append("does not match sa.key")
        return
    run.report.service_account = (key, pub)


def _sa_public_key(run: _Validation) -> PublicKey | None:
    result = run.result(SA_PUB, KIND_SA_PUB)
    try:
        pub = load_public_key(run.files[SA_PUB])
    except PKIError as exc:
        result.problems.append(f"cannot be parsed: {exc}")
        return None
    result.fingerprint = _public_key_fingerprint(pub)
    return pub


# --------------------------------------------------------------------------- kubeconfigs


def _check_kubeconfig(run: _Validation, name: str) -> None:
    result = run.result(name, KIND_KUBECONFIG)
    try:
        cluster, user = _kubeconfig_entries(run.files[name])
    except PKIError as exc:
        result.problems.append(str(exc))
        return
    ca_cert = run.ca_certs.get("ca")
    embedded_ca = _embedded(cluster, "certificate-authority-data", "CA", result, load_certificate)
    if embedded_ca is not None and ca_cert is not None and embedded_ca != ca_cert:
        result.problems.append("its embedded CA is not ca.crt")
    cert = _embedded(
        user, "client-certificate-data", "client certificate", result, load_certificate
    )
    key = _embedded(user, "client-key-data", "client key", result, load_private_key)
    if cert is None:
        _note_other_credentials(user, result)
        return
    result.fingerprint = fingerprint_sha256(cert)
    if key is not None and not key_matches_certificate(key, cert):
        result.problems.append("its client key does not match its client certificate")
    problem = _chain_problem(cert, "ca", run.ca_certs)
    if problem:
        result.problems.append(f"its client certificate {problem}")
    _note_unexpected_cn(name, cert, result)
    if run.now > cert.not_valid_after_utc:
        result.notes.append(f"client certificate expired on {_day(cert.not_valid_after_utc)}")


def _kubeconfig_entries(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cluster and user of the current context (or the first ones when there is none)."""
    try:
        document = load_document(data)
    except yaml.YAMLError as exc:
        raise PKIError(f"not a valid kubeconfig (YAML error: {exc})") from None
    if not isinstance(document, dict) or document.get("kind", "Config") != "Config":
        raise PKIError("not a kubeconfig (expected 'kind: Config')")
    context = _named(document.get("contexts"), document.get("current-context"), "context")
    cluster = _named(document.get("clusters"), context.get("cluster"), "cluster")
    user = _named(document.get("users"), context.get("user"), "user")
    return cluster, user


def _named(entries: Any, wanted: Any, what: str) -> dict[str, Any]:
    if not isinstance(entries, list) or not entries:
        raise PKIError(f"the kubeconfig has no {what}s")
    for entry in entries:
        if isinstance(entry, dict) and (wanted is None or entry.get("name") == wanted):
            body = entry.get(what)
            if isinstance(body, dict):
                return body
            raise PKIError(f"the kubeconfig's {what} {entry.get('name')!r} is empty")
    raise PKIError(f"the kubeconfig has no {what} named {wanted!r}")


def _embedded(
    section: Mapping[str, Any], key: str, what: str, result: FileResult, loader: Any
) -> Any:
    value = section.get(key)
    if value is None:
        return None
    try:
        data = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        result.problems.append(f"its {what} ({key}) is not valid base64")
        return None
    try:
        return loader(data)
    except PKIError as exc:
        result.problems.append(f"its {what} cannot be parsed: {exc}")
        return None


def _note_other_credentials(user: Mapping[str, Any], result: FileResult) -> None:
    # After TLS bootstrap kubelet.conf points at /var/lib/kubelet/pki instead of embedding data.
    path = user.get("client-certificate")
    if path:
        result.notes.append(f"the client certificate is a file on the node ({path}); not checked")
    elif "token" in user or "exec" in user:
        result.notes.append("authenticates with a token or exec plugin; no certificate to check")
    else:
        result.notes.append("holds no client certificate")


def _note_unexpected_cn(name: str, cert: x509.Certificate, result: FileResult) -> None:
    expected = KUBECONFIG_CNS.get(name)
    if expected is None:
        return
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else ""
    matches = (
        common_name.startswith(expected) if expected.endswith(":") else common_name == expected
    )
    if not matches:
        result.notes.append(f"client CN is {common_name!r}; kubeadm uses {expected!r}")


# --------------------------------------------------------------------------- cfssl CA


def import_cfssl_ca(
    ca_pem: bytes, ca_key_pem: bytes, now: dt.datetime | None = None
) -> tuple[x509.Certificate, PrivateKey]:
    """Load and check a cfssl CA (``ca.pem`` + ``ca-key.pem``); PKIError lists every problem."""
    moment = _now(now)
    try:
        cert = load_certificate(ca_pem)
    except PKIError as exc:
        raise PKIError(f"ca.pem: {exc}") from None
    try:
        key = load_private_key(ca_key_pem)
    except PKIError as exc:
        raise PKIError(f"ca-key.pem: {exc}") from None
    problems = [f"ca.pem {problem}" for problem in _ca_problems(cert, moment)]
    if not key_matches_certificate(key, cert):
        problems.append("ca-key.pem does not match ca.pem")
    strength = _key_strength_problem(key)
    if strength:
        problems.append(f"ca-key.pem {strength}")
    if problems:
        raise PKIError("; ".join(problems))
    return cert, key


def _key_strength_problem(key: PrivateKey) -> str | None:
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        return f"is RSA {key.key_size}; RSA CA keys need at least {MIN_RSA_BITS} bits"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in SUPPORTED_CURVES:
        return f"is {key_description(key)}; use ECDSA P-256 or P-384, or RSA"
    return None


# --------------------------------------------------------------------------- small parts


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise PKIError("'now' must be timezone-aware")
    return now.astimezone(dt.UTC)


def _day(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _public_key_fingerprint(key: PrivateKey | PublicKey) -> str:
    """``sha256:`` hash of the public key, to match a key file with its certificate by eye."""
    public = (
        key.public_key() if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) else key
    )
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()
