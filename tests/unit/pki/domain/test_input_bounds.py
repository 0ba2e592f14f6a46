"""Durations and documents from outside stay within what the panel can hold.

A duration longer than Go's ``time.Duration`` (what kubeadm and cfssl parse) is refused by name,
not an overflow; a document nested deeper than its parser can recurse is refused like any other
unreadable document.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pki.domain import audit_policy, cfssl, durations, kubeconfig, tokens, upload_certs
from pki.domain.x509 import PKIError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("0", timedelta(0)),
        ("-2m", -timedelta(minutes=2)),
        ("2562047h", timedelta(hours=2562047)),
        ("1ns", timedelta(0)),
    ],
)
def test_go_durations_parse_exactly(text: str, expected: timedelta) -> None:
    assert durations.parse_go_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["2562048h", "99999999999h", "9999999999999h", "1" + "0" * 60 + "h"]
)
def test_go_durations_beyond_int64_are_out_of_range(text: str) -> None:
    with pytest.raises(durations.DurationError, match="out of range"):
        durations.parse_go_duration(text)


@pytest.mark.parametrize("text", ["", "h", "24", "24d", "1h 2m", "--1h"])
def test_go_durations_with_bad_syntax(text: str) -> None:
    with pytest.raises(durations.DurationError, match="bad syntax"):
        durations.parse_go_duration(text)


@pytest.mark.parametrize(
    "ttl", ["99999999999h", "999999999h", "2562048h", 100000000000000000000, 9223372037]
)
def test_a_token_ttl_longer_than_kubeadm_takes_is_refused(ttl: str | int) -> None:
    with pytest.raises(tokens.TokenError, match=r"ttl: .*(longer than kubeadm|at most)"):
        tokens.parse_ttl(ttl)


def test_the_longest_token_ttl_still_has_an_expiry() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    ttl = tokens.parse_ttl("2562047h")
    assert tokens.expiry_for(ttl, now) == now + timedelta(hours=2562047)


@pytest.mark.parametrize("expiry", ["9999999999999h", "2562048h"])
def test_a_cfssl_expiry_beyond_go_is_out_of_range(expiry: str) -> None:
    config = {"signing": {"default": {"expiry": expiry, "usages": ["client auth"]}}}
    with pytest.raises(PKIError, match="out of range"):
        cfssl.parse_ca_config(json.dumps(config))


def test_a_cfssl_path_length_is_bounded() -> None:
    with pytest.raises(PKIError, match="at most 32"):
        cfssl.parse_ca_csr(json.dumps({"CN": "ca", "ca": {"pathlen": 10**30}}))


DEEP_JSON = '{"CN": ' + "[" * 100_000 + "]" * 100_000 + "}"
DEEP_YAML = "a: " + "[" * 100_000 + "]" * 100_000


def test_deep_cfssl_json_is_refused() -> None:
    with pytest.raises(PKIError, match="nests too deeply"):
        cfssl.parse_ca_csr(DEEP_JSON)


@pytest.mark.parametrize(
    ("parse", "error"),
    [
        (audit_policy.validate_audit_policy, audit_policy.AuditPolicyError),
        (kubeconfig.parse_kubeconfig, PKIError),
        (upload_certs.parse_secret, upload_certs.UploadCertsError),
    ],
)
def test_deep_yaml_is_refused(parse: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse(DEEP_YAML)  # type: ignore[operator]
