"""cfssl JSON files are read like cfssl reads them and signed into the certificates cfssl makes.

Each comparison runs the real ``cfssl``/``cfssljson`` (Debian golang-cfssl) on the same input and
compares fields (subject, SANs, usages, validity, algorithms), never bytes: keys and serials are
random.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from pki.domain import cfssl
from pki.domain.importer import import_cfssl_ca
from pki.domain.x509 import PKIError, load_certificate

CA_CSR = {
    "CN": "Kubernetes",
    "hosts": ["ca.example.com", "10.0.0.1"],
    "key": {"algo": "rsa", "size": 2048},
    "names": [
        {"C": "US", "ST": "Oregon", "L": "Portland", "O": "Kubernetes", "OU": "CA"},
        {"O": "Second"},
    ],
    "ca": {"expiry": "87600h"},
}
CA_CONFIG = {
    "signing": {
        "default": {"expiry": "8760h"},
        "profiles": {
            "server": {"usages": ["signing", "key encipherment", "server auth"], "expiry": "8760h"},
            "client": {"usages": ["signing", "key encipherment", "client auth"], "expiry": "8760h"},
            "peer": {
                "usages": ["signing", "key encipherment", "server auth", "client auth"],
                "expiry": "43800h",
            },
        },
    }
}
SERVER_CSR = {
    "CN": "etcd",
    "hosts": ["etcd-0.cluster.local", "127.0.0.1", "10.0.0.5", "fd00::5"],
    "key": {"algo": "ecdsa", "size": 256},
    "names": [{"C": "US", "L": "Portland", "O": "etcd", "OU": "ops"}],
}


def _run(args: list[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    return subprocess.run(args, cwd=cwd, input=stdin, check=True, capture_output=True).stdout


def _cfssl_bare(args: list[str], cwd: Path, name: str) -> None:
    """``cfssl … | cfssljson -bare NAME`` in ``cwd``."""
    _run(["cfssljson", "-bare", name], cwd, _run(["cfssl", *args], cwd))


@dataclass
class CfsslCA:
    """A CA made by the real cfssl, with its files on disk."""

    directory: Path
    cert: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@pytest.fixture(scope="module")
def cfssl_ca(tmp_path_factory: pytest.TempPathFactory) -> CfsslCA:
    directory = tmp_path_factory.mktemp("cfssl")
    (directory / "ca-csr.json").write_text(json.dumps(CA_CSR))
    (directory / "ca-config.json").write_text(json.dumps(CA_CONFIG))
    _cfssl_bare(["gencert", "-initca", "ca-csr.json"], directory, "ca")
    # The panel takes over a cfssl CA through the importer's checks.
    cert, key = import_cfssl_ca(
        (directory / "ca.pem").read_bytes(), (directory / "ca-key.pem").read_bytes()
    )
    return CfsslCA(directory, cert, key)


@pytest.fixture(scope="module")
def config() -> cfssl.SigningConfig:
    return cfssl.parse_ca_config(json.dumps(CA_CONFIG))


def _certinfo(path: Path) -> dict:
    return json.loads(_run(["cfssl", "certinfo", "-cert", str(path)], path.parent))


def _write_pem(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ext(cert: x509.Certificate, kind: type) -> object:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def _validity(cert: x509.Certificate) -> dt.timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def _assert_same_fields(ours: x509.Certificate, theirs: x509.Certificate) -> None:
    """The fields an operator or a TLS peer sees agree (keys and serials are random)."""
    assert ours.subject == theirs.subject
    assert ours.issuer == theirs.issuer
    assert _validity(ours) == _validity(theirs)
    # Both round "now" to the minute; allow for the minute turning between the two runs.
    assert abs(ours.not_valid_before_utc - theirs.not_valid_before_utc) <= dt.timedelta(minutes=1)
    assert ours.signature_algorithm_oid == theirs.signature_algorithm_oid
    assert type(ours.public_key()) is type(theirs.public_key())
    for kind in (
        x509.KeyUsage,
        x509.ExtendedKeyUsage,
        x509.BasicConstraints,
        x509.SubjectAlternativeName,
        x509.AuthorityKeyIdentifier,
    ):
        mine, cfssls = _ext(ours, kind), _ext(theirs, kind)
        assert (mine is None) == (cfssls is None), kind
        if mine is not None:
            assert mine.value == cfssls.value, kind
            assert mine.critical == cfssls.critical, kind
    assert [e.oid for e in ours.extensions] == [e.oid for e in theirs.extensions]


def _openssl_verify(ca: Path, cert: Path) -> None:
    output = _run(["openssl", "verify", "-CAfile", str(ca), str(cert)], cert.parent)
    assert output.decode().strip().endswith(": OK")


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("175200h", dt.timedelta(hours=175200)),
        ("8760h0m0s", dt.timedelta(hours=8760)),
        ("1h30m15s", dt.timedelta(hours=1, minutes=30, seconds=15)),
        ("1.5h", dt.timedelta(minutes=90)),
        ("90m", dt.timedelta(minutes=90)),
        ("2500ms", dt.timedelta(seconds=2.5)),
        ("+24h", dt.timedelta(hours=24)),
    ],
)
def test_parse_duration_reads_go_durations(text: str, expected: dt.timedelta) -> None:
    assert cfssl.parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("8760", "invalid duration"),
        ("10d", "invalid duration"),
        ("1y", "invalid duration"),
        ("h", "invalid duration"),
        ("1h 30m", "invalid duration"),
        ("1.2.3h", "invalid duration"),
        ("forever", "invalid duration"),
        ("-1h", "negative"),
        ("0", "zero"),
        ("0h0m", "zero"),
        ("9999999999h", "out of range"),
    ],
)
def test_parse_duration_rejects_garbage(text: str, message: str) -> None:
    with pytest.raises(PKIError, match=message):
        cfssl.parse_duration(text)


# --------------------------------------------------------------------------- CSR JSON


def test_parse_ca_csr_reads_every_field() -> None:
    req = cfssl.parse_ca_csr(json.dumps(CA_CSR))
    assert req.common_name == "Kubernetes"
    assert req.hosts == ("ca.example.com", "10.0.0.1")
    assert req.key == cfssl.KeyRequest("rsa", 2048)
    assert req.names[0] == cfssl.SubjectName("US", "Oregon", "Portland", "Kubernetes", "CA")
    assert req.names[1].organization == "Second"
    assert req.ca_expiry == dt.timedelta(hours=87600)


def test_parse_ca_csr_defaults_to_an_ecdsa_p256_key_like_cfssl() -> None:
    req = cfssl.parse_ca_csr('{"CN": "x"}')
    assert req.key == cfssl.KeyRequest("ecdsa", 256)
    assert req.ca_expiry is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"CN": 5}', "'CN' must be a string"),
        ('{"key": {"algo": "dsa", "size": 2048}}', "unknown key algorithm 'dsa'"),
        ('{"key": {"algo": "rsa", "size": 1024}}', "RSA key size 1024 is too weak"),
        ('{"key": {"algo": "ecdsa", "size": 521}}', "ECDSA key size 521 is not supported"),
        ('{"key": {"algo": "rsa", "size": "big"}}', "number of bits"),
        ('{"hosts": "a.example"}', "list of strings"),
        ('{"hosts": ["bad host!"]}', "neither an IP address"),
        ('{"names": {"C": "US"}}', "'names' must be a list"),
        ('{"ca": {"expiry": "ten years"}}', "invalid duration"),
    ],
)
def test_parse_ca_csr_explains_what_is_wrong(document: str, message: str) -> None:
    with pytest.raises(PKIError, match=message):
        cfssl.parse_ca_csr(document)


# --------------------------------------------------------------------------- CA


def test_create_ca_from_csr_matches_cfssl_initca(cfssl_ca: CfsslCA, tmp_path: Path) -> None:
    ours, key = cfssl.create_ca_from_csr(cfssl.parse_ca_csr(json.dumps(CA_CSR)))

    _assert_same_fields(ours, cfssl_ca.cert)
    # cfssl's subject order (C, ST, L, O, OU, CN), one RDN per type, as openssl prints both.
    ours_path = _write_pem(ours, tmp_path / "ours.pem")
    subjects = [
        _run(["openssl", "x509", "-noout", "-subject", "-in", str(path)], tmp_path).decode()
        for path in (ours_path, cfssl_ca.directory / "ca.pem")
    ]
    assert subjects[0] == subjects[1]
    # DER sorts the values of a multi-valued RDN (shorter encoding first), in Go as here.
    assert subjects[0].strip() == (
        "subject=C = US, ST = Oregon, L = Portland, O = Second + O = Kubernetes, OU = CA, "
        "CN = Kubernetes"
    )
    # Only the IP host survives on a CA, as with cfssl.
    san = ours.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == []
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    _openssl_verify(tmp_path / "ours.pem", tmp_path / "ours.pem")


def test_create_ca_from_csr_honours_pathlen_and_key_like_cfssl(tmp_path: Path) -> None:
    document = {
        "CN": "inter",
        "key": {"algo": "ecdsa", "size": 384},
        "ca": {"pathlen": 1, "expiry": "1000h"},
    }
    (tmp_path / "csr.json").write_text(json.dumps(document))
    _cfssl_bare(["gencert", "-initca", "csr.json"], tmp_path, "ca")
    theirs = load_certificate((tmp_path / "ca.pem").read_bytes())

    ours, _ = cfssl.create_ca_from_csr(cfssl.parse_ca_csr(json.dumps(document)))

    _assert_same_fields(ours, theirs)
    assert ours.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 1


def test_create_ca_from_csr_uses_cfssl_times() -> None:
    now = dt.datetime(2030, 1, 1, 10, 20, 40, tzinfo=dt.UTC)
    ca, _ = cfssl.create_ca_from_csr(cfssl.parse_ca_csr('{"CN": "x"}'), now)
    # Rounded to 10:21, backdated five minutes; cfssl's default CA expiry is five years (43800h).
    assert ca.not_valid_before_utc == dt.datetime(2030, 1, 1, 10, 16, tzinfo=dt.UTC)
    assert _validity(ca) == dt.timedelta(hours=43800)


def test_create_ca_from_csr_needs_a_subject() -> None:
    with pytest.raises(PKIError, match="no subject"):
        cfssl.create_ca_from_csr(cfssl.parse_ca_csr("{}"))


# --------------------------------------------------------------------------- config


def test_parse_ca_config_maps_cfssl_usages(config: cfssl.SigningConfig) -> None:
    server = config.profile("server")
    assert server.expiry == dt.timedelta(hours=8760)
    assert server.key_usage is not None
    assert server.key_usage.digital_signature
    assert server.key_usage.key_encipherment
    assert not server.key_usage.key_cert_sign
    assert list(server.extended_key_usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert list(config.profile("peer").extended_key_usage) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]


def test_parse_ca_config_maps_the_rarer_usages() -> None:
    profile = cfssl.parse_ca_config(
        json.dumps(
            {
                "signing": {
                    "profiles": {
                        "x": {
                            "usages": [
                                "digital signature",
                                "cert sign",
                                "crl sign",
                                "code signing",
                            ],
                            "expiry": "1h",
                        }
                    }
                }
            }
        )
    ).profile("x")
    assert profile.key_usage is not None
    assert profile.key_usage.digital_signature
    assert profile.key_usage.key_cert_sign
    assert profile.key_usage.crl_sign
    assert not profile.key_usage.key_encipherment
    assert list(profile.extended_key_usage) == [ExtendedKeyUsageOID.CODE_SIGNING]


def test_a_config_without_default_uses_cfssls_default_profile() -> None:
    config = cfssl.parse_ca_config('{"signing": {"profiles": {}}}')
    assert config.profile(None) == cfssl.SigningProfile(
        cfssl.DEFAULT_USAGES, dt.timedelta(hours=8760)
    )


def test_a_default_with_only_an_expiry_loads_but_cannot_sign(config: cfssl.SigningConfig) -> None:
    with pytest.raises(
        PKIError, match="default profile has no usages; pick a profile: client, peer, server"
    ):
        config.profile(None)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            '{"signing": {"profiles": {"a": {"usages": ["frobnicate"], "expiry": "1h"}}}}',
            "unknown usage 'frobnicate'",
        ),
        ('{"signing": {"profiles": {"a": {"usages": ["server auth"]}}}}', "'a' has no expiry"),
        ('{"signing": {"profiles": {"a": {"expiry": "1h"}}}}', "'a' has no usages"),
        ('{"signing": {"default": {"usages": ["server auth"]}}}', "'default' has no expiry"),
        (
            '{"signing": {"profiles": {"a": {"usages": ["cert sign"], "expiry": "1h", '
            '"ca_constraint": {"is_ca": true}}}}}',
            "issue CAs",
        ),
        ('{"nothing": 1}', "no 'signing'"),
    ],
)
def test_parse_ca_config_rejects_what_cfssl_rejects(document: str, message: str) -> None:
    with pytest.raises(PKIError, match=message):
        cfssl.parse_ca_config(document)


# --------------------------------------------------------------------------- signing


def test_sign_csr_json_matches_cfssl_gencert(
    cfssl_ca: CfsslCA, config: cfssl.SigningConfig, tmp_path: Path
) -> None:
    directory = cfssl_ca.directory
    (directory / "server-csr.json").write_text(json.dumps(SERVER_CSR))
    _cfssl_bare(
        [
            "gencert",
            "-ca",
            "ca.pem",
            "-ca-key",
            "ca-key.pem",
            "-config",
            "ca-config.json",
            "-profile",
            "server",
            "server-csr.json",
        ],
        directory,
        "server",
    )
    theirs_path = directory / "server.pem"
    theirs = load_certificate(theirs_path.read_bytes())

    ours, key = cfssl.sign_csr_json(
        cfssl.parse_csr(json.dumps(SERVER_CSR)), "server", config, cfssl_ca.cert, cfssl_ca.key
    )
    ours_path = _write_pem(ours, tmp_path / "ours.pem")

    _assert_same_fields(ours, theirs)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    mine_info, cfssl_info = _certinfo(ours_path), _certinfo(theirs_path)
    for field in ("subject", "issuer", "sans", "sigalg", "authority_key_id"):
        assert mine_info[field] == cfssl_info[field], field
    assert mine_info["sans"] == ["etcd-0.cluster.local", "127.0.0.1", "10.0.0.5", "fd00::5"]
    _openssl_verify(directory / "ca.pem", ours_path)


def test_sign_pkcs10_matches_cfssl_sign(
    cfssl_ca: CfsslCA, config: cfssl.SigningConfig, tmp_path: Path
) -> None:
    _run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "req.key",
            "-out",
            "req.csr",
            "-subj",
            "/CN=node-a/O=system:nodes/emailAddress=ops@example.com",
            "-addext",
            "subjectAltName=IP:10.0.0.7,DNS:node-a,DNS:node-a.example.com",
        ],
        tmp_path,
    )
    theirs_pem = _run(
        [
            "cfssl",
            "sign",
            "-ca",
            str(cfssl_ca.directory / "ca.pem"),
            "-ca-key",
            str(cfssl_ca.directory / "ca-key.pem"),
            "-config",
            str(cfssl_ca.directory / "ca-config.json"),
            "-profile",
            "peer",
            "req.csr",
        ],
        tmp_path,
    )
    theirs = load_certificate(json.loads(theirs_pem)["cert"].encode())
    ours = cfssl.sign_pkcs10(
        (tmp_path / "req.csr").read_bytes(), "peer", config, cfssl_ca.cert, cfssl_ca.key
    )

    _assert_same_fields(ours, theirs)
    # Go re-encodes the subject in its own order and drops emailAddress.
    assert ours.subject.rfc4514_string() == "CN=node-a,O=system:nodes"
    assert _validity(ours) == dt.timedelta(hours=43800)
    ours_path = _write_pem(ours, tmp_path / "ours.pem")
    _openssl_verify(cfssl_ca.directory / "ca.pem", ours_path)
    # The certificate carries the requester's key, which openssl can prove.
    modulus = [
        _run(["openssl", cmd, "-noout", "-modulus", "-in", name], tmp_path)
        for cmd, name in (("x509", "ours.pem"), ("rsa", "req.key"))
    ]
    assert modulus[0] == modulus[1]


def test_sign_pkcs10_refuses_a_csr_with_a_bad_signature(
    cfssl_ca: CfsslCA, config: cfssl.SigningConfig, tmp_path: Path
) -> None:
    _run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k",
            "-out",
            "req.der",
            "-outform",
            "DER",
            "-subj",
            "/CN=x",
        ],
        tmp_path,
    )
    der = bytearray((tmp_path / "req.der").read_bytes())
    der[-3] ^= 0x01  # inside the signature value
    with pytest.raises(PKIError, match="CSR signature is invalid"):
        cfssl.sign_pkcs10(bytes(der), "server", config, cfssl_ca.cert, cfssl_ca.key)


def test_sign_pkcs10_refuses_garbage(cfssl_ca: CfsslCA, config: cfssl.SigningConfig) -> None:
    with pytest.raises(PKIError, match="not a valid PKCS#10"):
        cfssl.sign_pkcs10(
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "server",
            config,
            cfssl_ca.cert,
            cfssl_ca.key,
        )


def test_an_unknown_profile_lists_the_known_ones(
    cfssl_ca: CfsslCA, config: cfssl.SigningConfig
) -> None:
    req = cfssl.parse_csr(json.dumps(SERVER_CSR))
    with pytest.raises(
        PKIError,
        match=re.escape("unknown signing profile 'kubelet'; known profiles: client, peer, server"),
    ):
        cfssl.sign_csr_json(req, "kubelet", config, cfssl_ca.cert, cfssl_ca.key)


def test_it_refuses_a_certificate_that_outlives_its_ca(
    cfssl_ca: CfsslCA, config: cfssl.SigningConfig
) -> None:
    req = cfssl.parse_csr(json.dumps(SERVER_CSR))
    # The CA has ten years; ten years minus a day from now the peer profile's five would overrun.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650 - 30)
    with pytest.raises(PKIError, match="after its CA expires"):
        cfssl.sign_csr_json(req, "peer", config, cfssl_ca.cert, cfssl_ca.key, now=later)
    after = dt.datetime.now(dt.UTC) + dt.timedelta(days=3660)
    with pytest.raises(PKIError, match="the CA expired"):
        cfssl.sign_csr_json(req, "server", config, cfssl_ca.cert, cfssl_ca.key, now=after)


def test_it_refuses_to_sign_with_a_key_that_is_not_the_cas(
    cfssl_ca: CfsslCA, config: cfssl.SigningConfig
) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    req = cfssl.parse_csr(json.dumps(SERVER_CSR))
    with pytest.raises(PKIError, match="does not match the CA certificate"):
        cfssl.sign_csr_json(req, "server", config, cfssl_ca.cert, other)
