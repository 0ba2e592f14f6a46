"""Certificate drift: the findings of one certificate scan of a cluster's nodes (pure, no Django).

Input: what each node holds (``nodes.recipes.cert_scan.parse_stream`` per node) and the panel's
ledger (what each node should hold, every fingerprint the panel ever issued, the endpoint names
the apiserver certificates must cover). Output: the scanned certificates as rows and the
findings, at most one per (node, kind, path), so that the store can match a re-scan's findings
with the open ones by that key.

Rules, one finding per file at most per rule:

- ``expired`` (critical) / ``expiring``: within the widest band a warning, within any narrower
  band critical (bands 30/14/7/1 days by default);
- ``fingerprint-mismatch``: a file the panel's bundle has for this node, holding another
  certificate (a CA certificate: critical; else a warning) — the message says whether the panel
  ever issued the one found;
- ``not-issued`` (info): a certificate under ``/etc/kubernetes`` the panel has no record of;
- ``key-mismatch`` (critical, no node): a CA or service-account key that is not the same on
  every control-plane node, naming the nodes; a lone control-plane node whose key is not the
  panel's gets ``fingerprint-mismatch`` for it instead;
- ``san-missing`` (warning): an apiserver certificate that does not cover the control-plane
  endpoint or its node's address, an etcd server or peer certificate that does not cover its
  node's address.

Files under ``/var/lib/kubelet/pki`` are the kubelet's own (self-signed serving certificate,
client certificates from the CSR API): only their expiry is checked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.domain.inspect import inspect_certificate
from pki.domain.x509 import check_host, fingerprint_sha256, load_certificate, load_private_key

DEFAULT_BANDS = (30, 14, 7, 1)
INFO, WARNING, CRITICAL = "info", "warning", "critical"
SEVERITIES = (INFO, WARNING, CRITICAL)

EXPIRED = "expired"
EXPIRING = "expiring"
MISMATCH = "fingerprint-mismatch"
NOT_ISSUED = "not-issued"
KEY_MISMATCH = "key-mismatch"
SAN_MISSING = "san-missing"
KINDS = (EXPIRED, EXPIRING, MISMATCH, NOT_ISSUED, KEY_MISMATCH, SAN_MISSING)

ROOT = "/etc/kubernetes"
KUBELET_PKI = "/var/lib/kubelet/pki"
CA_FILES = frozenset(f"{ROOT}/pki/{name}.crt" for name in ("ca", "front-proxy-ca", "etcd/ca"))
KEY_NAMES = {
    f"{ROOT}/pki/ca.key": "the Kubernetes CA key",
    f"{ROOT}/pki/front-proxy-ca.key": "the front-proxy CA key",
    f"{ROOT}/pki/etcd/ca.key": "the etcd CA key",
    f"{ROOT}/pki/sa.key": "the service-account key",
}
# Which names a serving certificate must cover: the endpoint (apiserver only) and the node.
SAN_FILES = {
    f"{ROOT}/pki/apiserver.crt": True,
    f"{ROOT}/pki/etcd/server.crt": False,
    f"{ROOT}/pki/etcd/peer.crt": False,
}

# The job that fixes each kind (the store links the launch page of it).
DISTRIBUTE = "distribute-pki"
ROLLOUT = "cert-rollout"


@dataclass(frozen=True)
class ScannedNode:
    """One node's scan: ``certificates`` [{path, pem}], ``keys`` [{path, sha256}]."""

    name: str
    role: str
    address: str
    certificates: Sequence[Mapping[str, str]] = ()
    keys: Sequence[Mapping[str, str]] = ()


@dataclass(frozen=True)
class Ledger:
    """What the panel holds. ``expected``: node → path → fingerprint of the certificate its
    bundle puts there; ``expected_keys``: shared-key path → public-key digest (the panel's);
    ``known``: every fingerprint the panel issued or imported, whatever its status."""

    expected: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    expected_keys: Mapping[str, str] = field(default_factory=dict)
    known: frozenset[str] = frozenset()
    endpoint_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class FindingSpec:
    node: str | None
    kind: str
    severity: str
    path: str
    message: str
    action: str = ""  # the job kind that fixes it, "" when none does
    suggestion: str = ""

    @property
    def key(self) -> tuple[str | None, str, str]:
        return (self.node, self.kind, self.path)


@dataclass(frozen=True)
class ScannedRow:
    node: str
    path: str
    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_after: dt.datetime
    fingerprint: str


@dataclass(frozen=True)
class Result:
    rows: tuple[ScannedRow, ...]
    findings: tuple[FindingSpec, ...]


def public_key_digest(private_key_pem: bytes) -> str:
    """What the scan prints for a key: SHA-256 of the DER SubjectPublicKeyInfo, hex."""
    public = load_private_key(private_key_pem).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def parse_bands(text: str) -> tuple[int, ...]:
    """``"30,14,7,1"`` → (30, 14, 7, 1), widest first; refuses anything but positive days."""
    bands = sorted({int(part) for part in text.replace(" ", "").split(",") if part}, reverse=True)
    if not bands or bands[-1] < 1:
        raise ValueError(f"expiry bands must be positive whole days, got {text!r}")
    return tuple(bands)


def expiry_finding(
    node: str, path: str, not_after: dt.datetime, now: dt.datetime, bands: Sequence[int]
) -> FindingSpec | None:
    widest = max(bands)
    remaining = not_after - now
    action, how = ROLLOUT, "renew it in the panel, then roll it out (cert-rollout)"
    if path in CA_FILES or path.endswith("certificate-authority-data"):
        action, how = "", "a CA is not renewed by a rollout: plan a CA rotation"
    if remaining <= dt.timedelta(0):
        return FindingSpec(
            node, EXPIRED, CRITICAL, path, f"expired on {not_after:%Y-%m-%d %H:%M} UTC", action, how
        )
    days = remaining.days
    if days >= widest:
        return None
    band = min(b for b in bands if b > days)
    severity = WARNING if band == widest else CRITICAL
    message = (
        f"expires on {not_after:%Y-%m-%d %H:%M} UTC, in {days} days (inside the {band}-day band)"
    )
    return FindingSpec(node, EXPIRING, severity, path, message, action, how)


def _subject(info: Mapping[str, object]) -> str:
    subject = info["subject"]
    assert isinstance(subject, dict)
    return str(subject["rfc4514"])


def _load(pem: str) -> x509.Certificate | None:
    try:
        return load_certificate(pem.encode())
    except ValueError:
        return None


def evaluate(
    nodes: Sequence[ScannedNode], ledger: Ledger, now: dt.datetime, bands: Sequence[int]
) -> Result:
    rows: list[ScannedRow] = []
    findings: list[FindingSpec] = []
    for node in nodes:
        expected = ledger.expected.get(node.name, {})
        for entry in node.certificates:
            path = entry["path"]
            cert = _load(entry["pem"])
            if cert is None:
                continue
            info = inspect_certificate(cert, now)
            sans = info["sans"]
            fingerprint = fingerprint_sha256(cert)
            not_after = cert.not_valid_after_utc
            rows.append(
                ScannedRow(
                    node.name,
                    path,
                    _subject(info),
                    str(info["issuer"]["rfc4514"]),
                    tuple(sans["dns"]) + tuple(sans["ip"]),
                    not_after,
                    fingerprint,
                )
            )
            found = expiry_finding(node.name, path, not_after, now, bands)
            if found is not None:
                findings.append(found)
            findings.extend(_ledger_findings(node, path, fingerprint, expected, ledger))
            if path in SAN_FILES:
                hosts = (
                    (*ledger.endpoint_hosts, node.address) if SAN_FILES[path] else (node.address,)
                )
                missing = [h for h in dict.fromkeys(hosts) if h and not check_host(cert, h).covered]
                if missing:
                    findings.append(
                        FindingSpec(
                            node.name,
                            SAN_MISSING,
                            WARNING,
                            path,
                            f"does not cover {', '.join(missing)} (SANs: "
                            f"{', '.join(sans['dns'] + sans['ip']) or 'none'})",
                            ROLLOUT,
                            "add the names to the cluster, reissue the certificate in the panel, "
                            "then roll it out (cert-rollout)",
                        )
                    )
    findings.extend(_key_findings(nodes, ledger))
    rows.sort(key=lambda r: (r.not_after, r.node, r.path))
    return Result(tuple(rows), tuple(findings))


def _ledger_findings(
    node: ScannedNode, path: str, fingerprint: str, expected: Mapping[str, str], ledger: Ledger
) -> list[FindingSpec]:
    if path.startswith(KUBELET_PKI + "/"):
        return []
    want = expected.get(path)
    if want is not None:
        if fingerprint == want:
            return []
        origin = (
            "an older certificate the panel issued"
            if fingerprint in ledger.known
            else "a certificate the panel did not issue"
        )
        severity = CRITICAL if path in CA_FILES else WARNING
        return [
            FindingSpec(
                node.name,
                MISMATCH,
                severity,
                path,
                f"holds {origin} ({fingerprint[:23]}…), not the panel's ({want[:23]}…)",
                DISTRIBUTE,
                "distribute the panel's certificates to this node (distribute-pki)",
            )
        ]
    if fingerprint in ledger.known:
        return []
    return [
        FindingSpec(
            node.name,
            NOT_ISSUED,
            INFO,
            path,
            f"a certificate the panel did not issue ({fingerprint[:23]}…)",
            "",
            "import it into the panel, or remove it from the node if nothing uses it",
        )
    ]


def _key_findings(nodes: Sequence[ScannedNode], ledger: Ledger) -> list[FindingSpec]:
    control_planes = [n for n in nodes if n.role == "control-plane"]
    held: dict[str, dict[str, str]] = {}  # path -> node -> digest
    for node in control_planes:
        for entry in node.keys:
            held.setdefault(entry["path"], {})[node.name] = entry["sha256"]
    findings = []
    for path, by_node in sorted(held.items()):
        what = KEY_NAMES.get(path, path)
        panel = ledger.expected_keys.get(path)
        if len(set(by_node.values())) > 1:
            groups: dict[str, list[str]] = {}
            for name, digest in sorted(by_node.items()):
                groups.setdefault(digest, []).append(name)
            parts = []
            for digest, names in groups.items():
                mark = " (the panel's)" if digest == panel else ""
                parts.append(f"{', '.join(names)} hold {digest[:16]}…{mark}")
            findings.append(
                FindingSpec(
                    None,
                    KEY_MISMATCH,
                    CRITICAL,
                    path,
                    f"{what} differs between control-plane nodes: {'; '.join(parts)}",
                    DISTRIBUTE,
                    "distribute the panel's keys to the control-plane nodes (distribute-pki)",
                )
            )
        elif panel is not None:
            for name, digest in sorted(by_node.items()):
                if digest != panel:
                    findings.append(
                        FindingSpec(
                            name,
                            MISMATCH,
                            CRITICAL,
                            path,
                            f"{what} is not the panel's ({digest[:16]}…, the panel's "
                            f"{panel[:16]}…)",
                            DISTRIBUTE,
                            "distribute the panel's keys to this node (distribute-pki)",
                        )
                    )
    return findings
