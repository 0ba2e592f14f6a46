"""Which certificate of an existing binary-installed cluster belongs to which service.

The operator uploads the certificate directory (``/etc/k8s/ssl``: ``ca.pem``, ``kubernetes.pem``
…, any file names) and the systemd unit files. ``plan_import`` reads the units' flags
(``pki.domain.systemd_units``), follows every flag that names a certificate, key or kubeconfig to
the uploaded file, and decides what the ledger gets:

1. every uploaded file is parsed: certificates, private keys, public keys, kubeconfigs (their
   embedded ``*-data`` decoded; file references followed like a flag), component config files
   (kubelet's ``--config`` names the client CA and serving pair; kube-proxy's its kubeconfig);
2. each flag of ``binary_flags.FLAGS`` is resolved to an uploaded file by path (the longest
   matching tail of the path wins, so ``/etc/k8s/ssl/ca.pem`` finds ``ssl/ca.pem`` or ``ca.pem``);
3. the CAs: a flag that trusts a CA (``--etcd-cafile``, ``--requestheader-client-ca-file`` …)
   gives it its ledger role; a role nobody named is filled by the CA that signed a certificate of
   that role; a single CA that signs everything fills every role (said in ``notes``);
4. the leaves take the ledger names of ``pki.domain.binary_layout.CERTS``; each needs its key
   (the key flag, else ``<base>-key.pem``, else any uploaded key of the same public key) and a
   signature by the CA of its role; per-node ones are placed on the inventory node their CN or
   SANs name;
5. everything that cannot be placed becomes a ``Finding``: a file no unit uses, a file a flag
   names but the upload lacks, a key that does not match its certificate, a certificate no
   uploaded CA signed, a CA without its key, a variable of an environment file not uploaded.

Pure Python: no Django, no I/O; nothing is stored here.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from pki.domain import kubeadm
from pki.domain.binary_flags import (
    CA_CERT,
    CA_ROLES,
    CERT,
    CONFIG,
    CONFIG_KEYS,
    FLAGS,
    KEY,
    KUBECONFIG,
    SA_PRIVATE,
    SA_PUBLIC,
    SIGNING_CERT,
    SIGNING_KEY,
    Use,
)
from pki.domain.binary_layout import (
    CA_FILES,
    CERTS_BY_NAME,
    SERVICE_ACCOUNT,
)
from pki.domain.systemd_units import Unit, parse_unit
from pki.domain.x509 import (
    PKIError,
    PrivateKey,
    PublicKey,
    cert_dns_names,
    cert_ip_addresses,
    fingerprint_sha256,
    key_matches_certificate,
    load_certificates,
    load_private_key,
    load_public_key,
    public_key_to_pem,
    verify_issued_by,
)
from pki.domain.yaml import load_document

# Finding kinds (at most 32 characters: nodes.health.findings.Finding.kind).
UNKNOWN = "import-unknown-file"
MISSING = "import-missing-file"
KEY_MISMATCH = "import-key-mismatch"
NOT_SIGNED = "import-not-signed"
NO_KEY = "import-no-key"
UNRESOLVED = "import-unresolved-variable"
UNPLACED = "import-unplaced"
UNREADABLE = "import-unreadable"
KINDS = (UNKNOWN, MISSING, KEY_MISMATCH, NOT_SIGNED, NO_KEY, UNRESOLVED, UNPLACED, UNREADABLE)
INFO, WARNING, CRITICAL = "info", "warning", "critical"


@dataclass(frozen=True)
class Finding:
    """Something the import could not place, with what the operator should do about it."""

    kind: str
    severity: str
    path: str
    message: str
    suggestion: str = ""


@dataclass(frozen=True)
class Placement:
    """One row of the mapping table: an uploaded file, who uses it with which flag, its ledger
    name (``""`` when it has none) and whether it is stored."""

    file: str
    service: str
    flag: str
    ledger: str
    stored: bool


@dataclass(frozen=True)
class PlacedCA:
    role: str
    file: str
    cert: x509.Certificate
    key: PrivateKey


@dataclass(frozen=True)
class PlacedLeaf:
    name: str
    file: str
    cert: x509.Certificate
    key: PrivateKey
    signer: str
    node: str | None


@dataclass(frozen=True)
class NodeRef:
    """An inventory node, to place per-node certificates (``kubelet-client``, ``etcd-server`` …)."""

    name: str
    address: str


@dataclass
class ImportPlan:
    """Everything the import decided; the service stores ``cas``, ``leaves`` and ``sa_key``."""

    units: list[Unit] = field(default_factory=list)
    cas: dict[str, PlacedCA] = field(default_factory=dict)
    leaves: list[PlacedLeaf] = field(default_factory=list)
    sa_key: PrivateKey | None = None
    sa_file: str = ""
    mappings: list[Placement] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add_finding(self, finding: Finding) -> None:
        # One finding per (kind, path): a file named by several flags is reported once.
        if all((f.kind, f.path) != (finding.kind, finding.path) for f in self.findings):
            self.findings.append(finding)


# --------------------------------------------------------------------------- uploaded files


@dataclass
class _File:
    path: str
    certs: list[x509.Certificate] = field(default_factory=list)
    key: PrivateKey | None = None
    public_key: PublicKey | None = None
    kubeconfig: dict[str, Any] | None = None
    document: Any = None
    used: bool = False

    @property
    def cert(self) -> x509.Certificate | None:
        return self.certs[0] if self.certs else None


def _parse_file(path: str, data: bytes) -> _File:
    parsed = _File(path)
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            parsed.certs = load_certificates(data)
        except PKIError:
            parsed.certs = []
    elif b"PRIVATE KEY-----" in data:
        with contextlib.suppress(PKIError):
            parsed.key = load_private_key(data)
    elif b"-----BEGIN PUBLIC KEY-----" in data:
        with contextlib.suppress(PKIError):
            parsed.public_key = load_public_key(data)
    elif path.endswith((".kubeconfig", ".conf", ".yaml", ".yml", ".json")) or b"kind:" in data:
        try:
            document = load_document(data)
        except (yaml.YAMLError, PKIError, ValueError):
            document = None
        if isinstance(document, dict) and document.get("kind") == "Config":
            parsed.kubeconfig = document
        parsed.document = document
    return parsed


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


class _Files:
    """The uploaded files, found by the paths the units name."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.raw = dict(files)
        self.parsed = {path: _parse_file(path, data) for path, data in sorted(files.items())}

    def find(self, path: str) -> str | None:
        """The uploaded file ``path`` names: the one sharing the longest tail of components."""
        wanted = [part for part in path.split("/") if part not in ("", ".")]
        best, best_len = None, 0
        for name in self.raw:
            have = name.split("/")
            length = 0
            while length < min(len(have), len(wanted)) and have[-1 - length] == wanted[-1 - length]:
                length += 1
            if length > best_len:
                best, best_len = name, length
        return best

    def data(self, path: str) -> bytes | None:
        found = self.find(path)
        return self.raw[found] if found is not None else None


# --------------------------------------------------------------------------- the plan


@dataclass
class _Candidate:
    """A leaf certificate some flag (or kubeconfig) assigns to ledger name ``name``."""

    name: str
    file: str
    cert: x509.Certificate
    key: PrivateKey | None = None
    key_file: str = ""
    key_problem: str = ""


class _Planner:
    def __init__(
        self,
        cert_files: Mapping[str, bytes],
        unit_files: Mapping[str, bytes],
        nodes: Iterable[NodeRef],
        now: dt.datetime,
    ) -> None:
        self.files = _Files(cert_files)
        self.units_raw = dict(unit_files)
        self.all_files = _Files({**cert_files, **unit_files})
        self.nodes = list(nodes)
        self.now = now
        self.plan = ImportPlan()
        self.ca_claims: dict[str, list[tuple[str, str, str]]] = {}  # role → (file, svc, flag)
        self.signing_keys: dict[str, str] = {}  # role → key file
        self.candidates: dict[str, _Candidate] = {}
        self.pending_keys: dict[str, tuple[str, str, str]] = {}  # name → (key file, svc, flag)
        self.sa_public: tuple[str, str, str] | None = None
        self.sa_private: tuple[str, str, str] | None = None
        self.rows: list[tuple[str, str, str, str]] = []  # file, service, flag, ledger

    # ----------------------------------------------------------------- flags

    def read_units(self) -> None:
        for name in sorted(self.units_raw):
            if not name.endswith(".service"):
                continue
            text = self.units_raw[name].decode("utf-8", "replace")
            unit = parse_unit(name, text, self.all_files.data)
            self.plan.units.append(unit)
            for problem in unit.problems:
                self.plan.add_finding(Finding(UNREADABLE, WARNING, name, f"{name} {problem}"))
            for env_file in unit.missing_env_files:
                self.plan.add_finding(
                    Finding(
                        MISSING,
                        WARNING,
                        env_file,
                        f"{unit.service} reads EnvironmentFile={env_file}, which is not in the "
                        "upload",
                        "upload the environment file too, so its variables can be read",
                    )
                )
            if unit.unresolved:
                names = ", ".join(f"${n}" for n in unit.unresolved)
                self.plan.add_finding(
                    Finding(
                        UNRESOLVED,
                        WARNING,
                        name,
                        f"{name} uses {names}, whose value is unknown (no uploaded "
                        "EnvironmentFile= defines it); the flags inside are not checked",
                        "upload the unit's environment file with the units",
                    )
                )
            for flag, value in unit.flags.items():
                use = FLAGS.get(unit.service, {}).get(flag)
                if use is not None and value:
                    self.follow(unit.service, f"--{flag}", value, use)

    def follow(self, service: str, flag: str, path: str, use: Use) -> None:
        """Resolve one file reference (a flag, a config key, a kubeconfig path)."""
        found = self.files.find(path)
        if found is None:
            severity = INFO if use.what == CONFIG else WARNING
            self.plan.add_finding(
                Finding(
                    MISSING,
                    severity,
                    path,
                    f"{service} {flag} names {path}, which is not in the upload",
                    "add the file to the certificate archive and import again",
                )
            )
            return
        parsed = self.files.parsed[found]
        parsed.used = True
        self.rows.append((found, service, flag, self._ledger_name(use)))
        if use.what in (CA_CERT, SIGNING_CERT):
            self.ca_claims.setdefault(use.target, []).append((found, service, flag))
        elif use.what == SIGNING_KEY:
            self.signing_keys[use.target] = found
        elif use.what == CERT:
            self._candidate(use.target, found, service, flag)
        elif use.what == KEY:
            self.pending_keys[use.target] = (found, service, flag)
        elif use.what == SA_PUBLIC:
            self.sa_public = (found, service, flag)
        elif use.what == SA_PRIVATE:
            self.sa_private = (found, service, flag)
        elif use.what == KUBECONFIG:
            self.kubeconfig(found, service, flag, use.target)
        elif use.what == CONFIG:
            self.component_config(found, service)

    @staticmethod
    def _ledger_name(use: Use) -> str:
        if use.what in (CA_CERT, SIGNING_CERT, SIGNING_KEY):
            return use.target
        if use.what == CONFIG:
            return ""
        return use.target

    def _candidate(self, name: str, path: str, service: str, flag: str) -> None:
        cert = self.files.parsed[path].cert
        if cert is None:
            self.plan.add_finding(
                Finding(
                    UNREADABLE,
                    WARNING,
                    path,
                    f"{service} {flag} names {path}, which holds no readable certificate",
                )
            )
            return
        if name not in self.candidates:
            self.candidates[name] = _Candidate(name, path, cert)
        elif fingerprint_sha256(self.candidates[name].cert) != fingerprint_sha256(cert):
            self.plan.notes.append(
                f"{path} ({service} {flag}) is another certificate for {name}; the ledger keeps "
                f"{self.candidates[name].file}"
            )

    def kubeconfig(self, path: str, service: str, flag: str, name: str) -> None:
        document = self.files.parsed[path].kubeconfig
        if document is None:
            self.plan.add_finding(
                Finding(
                    UNREADABLE,
                    WARNING,
                    path,
                    f"{service} {flag} names {path}, which is not a kubeconfig",
                )
            )
            return
        try:
            cluster, user = _kubeconfig_entries(document)
        except PKIError as exc:
            self.plan.add_finding(Finding(UNREADABLE, WARNING, path, f"{path}: {exc}"))
            return
        ca_data = _decoded(cluster.get("certificate-authority-data"))
        if ca_data is not None:
            self._embedded(path, "certificate-authority-data", ca_data)
            # The embedded CA is trusted like a --client-ca-file of the cluster CA.
            self.ca_claims.setdefault(kubeadm.CA, []).append(
                (f"{path}#certificate-authority-data", service, flag)
            )
        elif isinstance(cluster.get("certificate-authority"), str):
            self.follow(
                service,
                f"{flag} (certificate-authority)",
                cluster["certificate-authority"],
                Use(CA_CERT, kubeadm.CA),
            )
        cert_data = _decoded(user.get("client-certificate-data"))
        key_data = _decoded(user.get("client-key-data"))
        if cert_data is not None:
            virtual = f"{path}#client-certificate-data"
            self._embedded(path, "client-certificate-data", cert_data)
            self.rows.append((virtual, service, flag, name))
            self._candidate(name, virtual, service, flag)
        elif isinstance(user.get("client-certificate"), str):
            self.follow(
                service, f"{flag} (client-certificate)", user["client-certificate"], Use(CERT, name)
            )
        if key_data is not None:
            virtual = f"{path}#client-key-data"
            self._embedded(path, "client-key-data", key_data)
            self.pending_keys[name] = (virtual, service, flag)
        elif isinstance(user.get("client-key"), str):
            self.follow(service, f"{flag} (client-key)", user["client-key"], Use(KEY, name))

    def _embedded(self, path: str, key: str, data: bytes) -> None:
        virtual = f"{path}#{key}"
        parsed = _parse_file(virtual, data)
        parsed.used = True
        self.files.parsed[virtual] = parsed

    def component_config(self, path: str, service: str) -> None:
        document = self.files.parsed[path].document
        if not isinstance(document, dict):
            return
        for keys, use in CONFIG_KEYS.get(service, {}).items():
            value: Any = document
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, str) and value:
                self.follow(service, f"{path}: {'.'.join(keys)}", value, use)

    # ----------------------------------------------------------------- keys and CAs

    def key_for(self, candidate: _Candidate) -> None:
        """Find the key of a leaf: its key flag, ``<base>-key.pem``, or any matching key."""
        explicit = self.pending_keys.get(candidate.name)
        if explicit is not None:
            key_file = explicit[0]
            key = self.files.parsed[key_file].key
            candidate.key_file = key_file
            if key is None:
                candidate.key_problem = f"{key_file} holds no readable private key"
            elif not key_matches_certificate(key, candidate.cert):
                candidate.key_problem = f"{key_file} does not match {candidate.file}"
            else:
                candidate.key = key
            return
        sibling = _sibling_key(candidate.file)
        if sibling in self.files.parsed and self.files.parsed[sibling].key is not None:
            key = self.files.parsed[sibling].key
            candidate.key_file = sibling
            assert key is not None
            if key_matches_certificate(key, candidate.cert):
                candidate.key = key
            else:
                candidate.key_problem = f"{sibling} does not match {candidate.file}"
            return
        found = self._matching_key(candidate.cert)
        if found is not None:
            candidate.key_file, candidate.key = found

    def _matching_key(self, cert: x509.Certificate) -> tuple[str, PrivateKey] | None:
        for path, parsed in self.files.parsed.items():
            if parsed.key is not None and key_matches_certificate(parsed.key, cert):
                return path, parsed.key
        return None

    def ca_files(self) -> dict[str, x509.Certificate]:
        return {
            path: parsed.cert
            for path, parsed in self.files.parsed.items()
            if parsed.cert is not None and _is_ca(parsed.cert) and "#" not in path
        }

    def choose_cas(self) -> dict[str, tuple[str, x509.Certificate]]:
        """Each CA role's certificate: claimed by flags, else the signer of its leaves."""
        uploaded = self.ca_files()
        by_fingerprint = {fingerprint_sha256(c): p for p, c in uploaded.items()}
        chosen: dict[str, tuple[str, x509.Certificate]] = {}
        for role in CA_ROLES:
            for claim_file, service, flag in self.ca_claims.get(role, []):
                cert = self.files.parsed[claim_file].cert
                if cert is None:
                    continue
                # An embedded CA stands for the uploaded file of the same certificate.
                file = by_fingerprint.get(fingerprint_sha256(cert), claim_file)
                if role not in chosen:
                    chosen[role] = (file, cert)
                elif fingerprint_sha256(chosen[role][1]) != fingerprint_sha256(cert):
                    self.plan.notes.append(
                        f"{service} {flag} trusts {claim_file}, another CA than "
                        f"{chosen[role][0]} for {role}"
                    )
        # A role no flag named: the CA that signed a leaf of that role.
        for candidate in self.candidates.values():
            role = CERTS_BY_NAME[candidate.name].signer
            if role in chosen:
                continue
            for path, ca_cert in uploaded.items():
                if verify_issued_by(candidate.cert, ca_cert):
                    chosen[role] = (path, ca_cert)
                    self.plan.notes.append(
                        f"{path} is taken as {role}: it signed {candidate.file} ({candidate.name})"
                    )
                    break
        distinct = {fingerprint_sha256(cert): path for path, cert in chosen.values()}
        if len(distinct) == 1 or (not chosen and len(uploaded) == 1):
            path, cert = next(iter(chosen.values())) if chosen else next(iter(uploaded.items()))
            missing = [role for role in CA_ROLES if role not in chosen]
            for role in CA_ROLES:
                chosen[role] = (path, cert)
            self.plan.notes.append(
                f"single-CA layout: {path} signs everything and fills "
                f"{', '.join(CA_ROLES)}"
                + (f" (no flag named a CA for {', '.join(missing)})" if missing else "")
            )
        return chosen

    def place_cas(self) -> None:
        for role, (path, cert) in self.choose_cas().items():
            self.files.parsed[path].used = True
            key_file = self.signing_keys.get(role)
            key: PrivateKey | None = None
            if key_file is not None:
                key = self.files.parsed[key_file].key
                if key is None or not key_matches_certificate(key, cert):
                    self.plan.add_finding(
                        Finding(
                            KEY_MISMATCH,
                            CRITICAL,
                            key_file,
                            f"{key_file} (--cluster-signing-key-file) does not match {path}",
                            "upload the CA's own key",
                        )
                    )
                    key = None
            if key is None:
                found = self._matching_key(cert)
                if found is not None:
                    key_file, key = found
            if key is None:
                self.plan.add_finding(
                    Finding(
                        NO_KEY,
                        CRITICAL,
                        path,
                        f"no uploaded key belongs to the CA {path} ({role}); the panel cannot "
                        "sign with it, so it and its certificates are not stored",
                        f"upload {_sibling_key(path)} with the certificates",
                    )
                )
                continue
            if key_file is not None:
                self.files.parsed[key_file].used = True
            self.plan.cas[role] = PlacedCA(role, path, cert, key)
        for role, placed in self.plan.cas.items():
            self.rows.append((placed.file, "", "(CA)", role))
        for path, cert in self.ca_files().items():
            if not self.files.parsed[path].used:
                self.plan.add_finding(
                    Finding(
                        UNKNOWN,
                        WARNING,
                        path,
                        f"{path} ({_common_name(cert) or 'no CN'}) is a CA no unit trusts and "
                        "that signed no placed certificate; it is not stored",
                        "remove it if it is unused, or upload the unit that trusts it",
                    )
                )

    # ----------------------------------------------------------------- leaves

    def place_leaves(self) -> None:
        for name in sorted(self.candidates):
            candidate = self.candidates[name]
            self.key_for(candidate)
            if candidate.key_file:
                self._mark_used(candidate.key_file)
            if candidate.key_problem:
                self.plan.add_finding(
                    Finding(
                        KEY_MISMATCH,
                        CRITICAL,
                        candidate.key_file or candidate.file,
                        f"{candidate.key_problem}: {name} is not stored",
                        f"upload the key that belongs to {candidate.file}",
                    )
                )
                continue
            if candidate.key is None:
                self.plan.add_finding(
                    Finding(
                        NO_KEY,
                        WARNING,
                        candidate.file,
                        f"no uploaded key belongs to {candidate.file} ({name}); it is not stored",
                        f"upload {_sibling_key(candidate.file)}",
                    )
                )
                continue
            signer = self._signer(candidate)
            if signer is None:
                continue
            for node in self._nodes_for(candidate):
                self.plan.leaves.append(
                    PlacedLeaf(name, candidate.file, candidate.cert, candidate.key, signer, node)
                )

    def _mark_used(self, path: str) -> None:
        if path in self.files.parsed:
            self.files.parsed[path].used = True

    def _signer(self, candidate: _Candidate) -> str | None:
        """The CA role that signed the leaf, preferring its own role of the layout."""
        wanted = CERTS_BY_NAME[candidate.name].signer
        order = [wanted, *[role for role in CA_ROLES if role != wanted]]
        for role in order:
            placed = self.plan.cas.get(role)
            if placed is not None and verify_issued_by(candidate.cert, placed.cert):
                if role != wanted:
                    self.plan.notes.append(
                        f"{candidate.file} ({candidate.name}) is signed by {role}, not {wanted}"
                    )
                return role
        signed_by_upload = any(
            verify_issued_by(candidate.cert, ca) for ca in self.ca_files().values()
        )
        message = (
            f"{candidate.file} ({candidate.name}) is signed by a CA whose key was not uploaded"
            if signed_by_upload
            else f"{candidate.file} ({candidate.name}) is not signed by any uploaded CA "
            f"(issuer {candidate.cert.issuer.rfc4514_string()!r})"
        )
        self.plan.add_finding(
            Finding(
                NOT_SIGNED,
                CRITICAL if not signed_by_upload else WARNING,
                candidate.file,
                message + "; it is not stored",
                "upload the CA that signed it (certificate and key)",
            )
        )
        return None

    def _nodes_for(self, candidate: _Candidate) -> list[str | None]:
        if not CERTS_BY_NAME[candidate.name].per_node:
            return [None]
        names = {_common_name(candidate.cert).removeprefix("system:node:")}
        names |= set(cert_dns_names(candidate.cert))
        addresses = set(cert_ip_addresses(candidate.cert))
        matched = [n.name for n in self.nodes if n.name in names or n.address in addresses]
        if not matched:
            self.plan.add_finding(
                Finding(
                    UNPLACED,
                    WARNING,
                    candidate.file,
                    f"{candidate.file} ({candidate.name}) is a per-node certificate, but no node "
                    "of the inventory is named in its CN or SANs; it is not stored",
                    "add the nodes to the inventory and import again",
                )
            )
        return list(matched)

    # ----------------------------------------------------------------- the rest

    def place_service_account(self) -> None:
        private = self.sa_private
        public = self.sa_public
        key: PrivateKey | None = None
        if private is not None:
            key = self.files.parsed[private[0]].key
        if key is None and public is not None:
            # --service-account-key-file may name the private key itself (it accepts both).
            key = self.files.parsed[public[0]].key
            private = public if key is not None else private
        if key is None:
            if public is not None or private is not None:
                where = (private or public or ("", "", ""))[0]
                self.plan.add_finding(
                    Finding(
                        NO_KEY,
                        WARNING,
                        where,
                        "the service-account private key is not in the upload; tokens could "
                        "not be signed by the panel's control planes",
                        "upload the file of --service-account-signing-key-file",
                    )
                )
            return
        if public is not None and (private is None or public[0] != private[0]):
            parsed = self.files.parsed[public[0]]
            pub = parsed.public_key or (parsed.cert.public_key() if parsed.cert else None)
            if pub is None or public_key_to_pem(pub) != public_key_to_pem(key):  # type: ignore[arg-type]
                self.plan.add_finding(
                    Finding(
                        KEY_MISMATCH,
                        CRITICAL,
                        public[0],
                        f"{public[0]} (--service-account-key-file) does not match "
                        f"{private[0] if private else 'the signing key'}",
                        "upload the matching service-account key pair",
                    )
                )
                return
        self.plan.sa_key = key
        self.plan.sa_file = private[0] if private else ""

    def leftovers(self) -> None:
        """Files nobody uses: certificates and keys are findings, the rest is noted."""
        uses: dict[str, tuple[str, str, str]] = {}
        for file, service, _flag, ledger in self.rows:
            cert = self.files.parsed[file].cert if file in self.files.parsed else None
            if cert is not None and ledger:
                uses.setdefault(fingerprint_sha256(cert), (service, file, ledger))
        for path, parsed in sorted(self.files.parsed.items()):
            if parsed.used or "#" in path:
                continue
            if parsed.cert is not None and not _is_ca(parsed.cert):
                twin = uses.get(fingerprint_sha256(parsed.cert))
                if twin is not None:
                    # The same certificate as one a unit or kubeconfig uses (kube-proxy.pem
                    # next to the kubeconfig that embeds it).
                    parsed.used = True
                    self.rows.append((path, twin[0], f"same as {twin[1]}", twin[2]))
                    continue
                base = _base(path)
                if base in CERTS_BY_NAME and base not in self.candidates:
                    # No unit names it, but its file name is the layout's (admin.pem …).
                    self.candidates[base] = _Candidate(base, path, parsed.cert)
                    parsed.used = True
                    self.rows.append((path, "", "(file name)", base))
                    continue
                self.plan.add_finding(
                    Finding(
                        UNKNOWN,
                        WARNING,
                        path,
                        f"{path} ({_common_name(parsed.cert) or 'no CN'}) is a certificate no "
                        "unit uses; it is not stored",
                        "remove it from the node if it is unused, or upload the unit that uses it",
                    )
                )

    def leftover_keys(self) -> None:
        for path, parsed in sorted(self.files.parsed.items()):
            if parsed.used or "#" in path or parsed.key is None:
                continue
            owner = next(
                (
                    p
                    for p, other in self.files.parsed.items()
                    if other.cert is not None and key_matches_certificate(parsed.key, other.cert)
                ),
                None,
            )
            if owner is not None:
                continue  # the key of a certificate reported (or stored) on its own
            sibling = path.removesuffix("-key.pem") + ".pem"
            if sibling in self.files.parsed and self.files.parsed[sibling].cert is not None:
                self.plan.add_finding(
                    Finding(
                        KEY_MISMATCH,
                        CRITICAL,
                        path,
                        f"{path} does not match {sibling}",
                        f"upload the key that belongs to {sibling}",
                    )
                )
                continue
            self.plan.add_finding(
                Finding(
                    UNKNOWN,
                    WARNING,
                    path,
                    f"{path} is a private key of no uploaded certificate; it is not stored",
                )
            )

    def notes_for_other_files(self) -> None:
        skipped = [
            path
            for path, parsed in sorted(self.files.parsed.items())
            if not parsed.used and "#" not in path and parsed.cert is None and parsed.key is None
        ]
        if skipped:
            self.plan.notes.append(f"not certificates, ignored: {', '.join(skipped)}")

    def build_mappings(self) -> None:
        stored = {(leaf.name, fingerprint_sha256(leaf.cert)) for leaf in self.plan.leaves}
        stored |= {(ca.role, fingerprint_sha256(ca.cert)) for ca in self.plan.cas.values()}
        stored_names = {name for name, _ in stored}
        if self.plan.sa_key is not None:
            stored_names.add(SERVICE_ACCOUNT)
        seen = set()
        for file, service, flag, ledger in self.rows:
            if (file, service, flag, ledger) in seen:
                continue
            seen.add((file, service, flag, ledger))
            parsed = self.files.parsed.get(file)
            cert = parsed.cert if parsed is not None else None
            # A certificate row is stored when that very certificate went into the ledger; a key
            # or kubeconfig row when its ledger name did.
            done = (
                (ledger, fingerprint_sha256(cert)) in stored
                if cert is not None and ledger != SERVICE_ACCOUNT
                else ledger in stored_names
            )
            self.plan.mappings.append(Placement(file, service, flag, ledger, done))


def plan_import(
    cert_files: Mapping[str, bytes],
    unit_files: Mapping[str, bytes],
    nodes: Iterable[NodeRef] = (),
    now: dt.datetime | None = None,
) -> ImportPlan:
    """Map the uploaded certificates onto the services of the uploaded units (see above)."""
    planner = _Planner(cert_files, unit_files, nodes, now or dt.datetime.now(dt.UTC))
    if not any(name.endswith(".service") for name in unit_files):
        raise PKIError("the units archive holds no .service file")
    planner.read_units()
    planner.leftovers()
    planner.place_cas()
    planner.place_leaves()
    planner.place_service_account()
    planner.leftover_keys()
    planner.notes_for_other_files()
    planner.build_mappings()
    if not planner.plan.cas:
        raise PKIError("no CA certificate with its key was found in the certificate archive")
    return planner.plan


def split_upload(files: Mapping[str, bytes]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """One archive holding both: ``*.service`` files and a ``units/`` folder are the units."""
    units = {
        name: data
        for name, data in files.items()
        if name.endswith(".service") or "units" in name.split("/")[:-1]
    }
    certs = {name: data for name, data in files.items() if name not in units}
    return certs, units


# --------------------------------------------------------------------------- small parts


def _base(path: str) -> str:
    name = posixpath.basename(path)
    return name[: -len(".pem")] if name.endswith(".pem") else name


def _sibling_key(path: str) -> str:
    """cfssl's ``-bare`` naming: the key of ``x.pem`` is ``x-key.pem``."""
    if path.endswith(".pem"):
        return path[: -len(".pem")] + "-key.pem"
    return path + "-key.pem"


def _decoded(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _kubeconfig_entries(document: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cluster and user of the current context (or the first ones)."""
    contexts = document.get("contexts") or []
    wanted = document.get("current-context")
    context: dict[str, Any] = {}
    for entry in contexts if isinstance(contexts, list) else []:
        if isinstance(entry, dict) and (not wanted or entry.get("name") == wanted):
            context = entry.get("context") or {}
            break
    return (
        _entry(document.get("clusters"), context.get("cluster"), "cluster"),
        _entry(document.get("users"), context.get("user"), "user"),
    )


def _entry(entries: Any, wanted: Any, what: str) -> dict[str, Any]:
    if not isinstance(entries, list) or not entries:
        raise PKIError(f"the kubeconfig has no {what}s")
    for entry in entries:
        if isinstance(entry, dict) and (wanted is None or entry.get("name") == wanted):
            body = entry.get(what)
            return body if isinstance(body, dict) else {}
    raise PKIError(f"the kubeconfig has no {what} named {wanted!r}")


__all__ = [
    "CA_FILES",
    "CA_ROLES",
    "FLAGS",
    "KINDS",
    "Finding",
    "ImportPlan",
    "NodeRef",
    "PlacedCA",
    "PlacedLeaf",
    "Placement",
    "plan_import",
    "split_upload",
]
