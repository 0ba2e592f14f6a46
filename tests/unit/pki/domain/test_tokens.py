"""Bootstrap tokens: format, validation, status over time, Secret manifest and CLI line."""

from __future__ import annotations

import random
import re
import shlex
from datetime import UTC, datetime, timedelta, timezone

import pytest
import time_machine
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pki.domain.tokens import (
    DEFAULT_GROUP,
    VALID_USAGES,
    BootstrapToken,
    TokenError,
    expiry_for,
    format_expiration,
    format_go_duration,
    generate_token,
    kubeadm_token_create_command,
    parse_token,
    parse_ttl,
    render_secret_manifest,
    token_status,
    validate_extra_group,
    validate_token_id,
    validate_usages,
)

KUBEADM_TOKEN_RE = re.compile(r"\A([a-z0-9]{6})\.([a-z0-9]{16})\Z")
TOKEN = "abcdef.0123456789abcdef"


@settings(max_examples=300)
@given(st.randoms(use_true_random=False))
def test_generated_tokens_match_kubeadm_pattern(rng: random.Random) -> None:
    token = generate_token(rng)
    assert KUBEADM_TOKEN_RE.match(str(token))
    assert parse_token(str(token)) == token


def test_csprng_tokens_match_pattern_and_differ() -> None:
    tokens = [str(generate_token()) for _ in range(500)]
    assert all(KUBEADM_TOKEN_RE.match(token) for token in tokens)
    assert len(set(tokens)) == len(tokens)
    # Over 500 tokens every one of the 36 characters shows up: the whole alphabet is used.
    assert set("".join(tokens).replace(".", "")) == set("0123456789abcdefghijklmnopqrstuvwxyz")


def test_repr_hides_secret() -> None:
    token = parse_token(TOKEN)
    assert "0123456789abcdef" not in repr(token)
    assert token.secret_name == "bootstrap-token-abcdef"
    assert token.username == "system:bootstrap:abcdef"


@pytest.mark.parametrize(
    "value",
    [
        "abcdef0123456789abcdef",
        "ABCDEF.0123456789abcdef",
        "abcde.0123456789abcdef",
        "abcdef.0123456789abcde",
        "abcdef.0123456789abcdef\n",
        "abcdef.0123456789abcdef ",
        " abcdef.0123456789abcdef",
        "abcdef.0123456789abcdeg0",
        "abc-ef.0123456789abcdef",
    ],
)
def test_parse_token_rejects_malformed(value: str) -> None:
    with pytest.raises(TokenError, match="token"):
        parse_token(value)


@given(st.text(max_size=30))
def test_parse_token_accepts_exactly_the_pattern(value: str) -> None:
    if KUBEADM_TOKEN_RE.match(value):
        assert str(parse_token(value)) == value
    else:
        with pytest.raises(TokenError):
            parse_token(value)


def test_token_error_does_not_echo_secret() -> None:
    with pytest.raises(TokenError) as info:
        parse_token("abcdef.0123456789ABCDEF")
    assert "0123456789ABCDEF" not in str(info.value)


def test_validate_token_id() -> None:
    assert validate_token_id("a1b2c3") == "a1b2c3"
    for bad in ("a1b2c", "a1b2c34", "A1B2C3", "a1b2c\n"):
        with pytest.raises(TokenError, match="token id"):
            validate_token_id(bad)
    with pytest.raises(TokenError, match="token secret"):
        BootstrapToken("abcdef", "short")


@pytest.mark.parametrize(
    "group",
    [
        DEFAULT_GROUP,
        "system:bootstrappers:a",
        "system:bootstrappers:my-team:workers1",
        "system:bootstrappers:" + "a" * 256,
    ],
)
def test_valid_extra_groups(group: str) -> None:
    assert validate_extra_group(group) == group


@pytest.mark.parametrize(
    "group",
    [
        "system:bootstrappers:",
        "system:bootstrappers:workers-",
        "system:bootstrappers:workers:",
        "system:bootstrappers:Workers",
        "system:masters",
        "system:bootstrappers:" + "a" * 257,
        "system:bootstrappers:ok\n",
    ],
)
def test_invalid_extra_groups(group: str) -> None:
    with pytest.raises(TokenError, match="groups"):
        validate_extra_group(group)


def test_usages() -> None:
    assert VALID_USAGES == ("signing", "authentication")
    assert validate_usages(["authentication"]) == ("authentication",)
    with pytest.raises(TokenError, match="usages"):
        validate_usages(["signing", "admin"])
    with pytest.raises(TokenError, match="usages"):
        validate_usages(["signing", "signing"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("24h0m0s", timedelta(hours=24)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("90s", timedelta(seconds=90)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("500ms", timedelta(milliseconds=500)),
    ],
)
def test_parse_ttl(text: str, expected: timedelta) -> None:
    assert parse_ttl(text) == expected


def test_parse_ttl_other_types_and_errors() -> None:
    assert parse_ttl(3600) == timedelta(hours=1)
    assert parse_ttl(timedelta(minutes=5)) == timedelta(minutes=5)
    for bad in ("-1h", -1, timedelta(seconds=-1)):
        with pytest.raises(TokenError, match="ttl: must not be negative"):
            parse_ttl(bad)
    for bad in ("", "1d", "h", "24 h", "1h-5m"):
        with pytest.raises(TokenError, match="ttl"):
            parse_ttl(bad)
    with pytest.raises(TokenError, match="ttl"):
        parse_ttl(True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(hours=24), "24h0m0s"),
        (timedelta(hours=2), "2h0m0s"),
        (timedelta(minutes=90), "1h30m0s"),
        (timedelta(minutes=5), "5m0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(0), "0s"),
        (timedelta(hours=8760), "8760h0m0s"),
    ],
)
def test_format_go_duration(value: timedelta, expected: str) -> None:
    assert format_go_duration(value) == expected


@given(st.integers(min_value=0, max_value=10**7))
def test_go_duration_round_trip(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_ttl(format_go_duration(value)) == value


def test_status_transitions_under_frozen_clock() -> None:
    created = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    expires = expiry_for("24h", created)
    assert expires == datetime(2025, 3, 2, 12, 0, 0, tzinfo=UTC)
    with time_machine.travel(created, tick=False):
        assert token_status(expires, None, datetime.now(UTC)) == "active"
    with time_machine.travel(expires - timedelta(microseconds=1), tick=False):
        assert token_status(expires, None, datetime.now(UTC)) == "active"
    with time_machine.travel(expires, tick=False):
        assert token_status(expires, None, datetime.now(UTC)) == "expired"
    with time_machine.travel(expires + timedelta(days=30), tick=False):
        assert token_status(expires, None, datetime.now(UTC)) == "expired"


def test_revoked_wins_over_active_and_expired() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    revoked = now - timedelta(minutes=1)
    assert token_status(now + timedelta(hours=1), revoked, now) == "revoked"
    assert token_status(now - timedelta(hours=1), revoked, now) == "revoked"
    assert token_status(None, revoked, now) == "revoked"


def test_never_expiring_token_stays_active() -> None:
    created = datetime(2025, 3, 1, tzinfo=UTC)
    assert expiry_for("0", created) is None
    assert token_status(None, None, created + timedelta(days=3650)) == "active"


def test_status_needs_aware_datetimes() -> None:
    with pytest.raises(TokenError, match="now"):
        token_status(None, None, datetime(2025, 1, 1))  # naive on purpose


def test_expiration_is_rfc3339_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_expiration(datetime(2025, 1, 2, 5, 4, 5, 999, tzinfo=plus_two)) == (
        "2025-01-02T03:04:05Z"
    )


def test_secret_manifest_matches_kubeadm_keys() -> None:
    expires = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    text = render_secret_manifest(
        TOKEN,
        expires,
        usages=("signing", "authentication"),
        groups=(DEFAULT_GROUP, "system:bootstrappers:extra"),
        description="workers in rack 2",
    )
    document = yaml.safe_load(text)
    assert document["apiVersion"] == "v1"
    assert document["kind"] == "Secret"
    assert document["type"] == "bootstrap.kubernetes.io/token"
    assert document["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    assert document["stringData"] == {
        "token-id": "abcdef",
        "token-secret": "0123456789abcdef",
        "description": "workers in rack 2",
        "expiration": "2025-01-02T03:04:05Z",
        "usage-bootstrap-signing": "true",
        "usage-bootstrap-authentication": "true",
        "auth-extra-groups": f"{DEFAULT_GROUP},system:bootstrappers:extra",
    }


def test_secret_manifest_omits_what_kubeadm_omits() -> None:
    document = yaml.safe_load(render_secret_manifest(TOKEN, None, usages=("signing",), groups=()))
    assert set(document["stringData"]) == {"token-id", "token-secret", "usage-bootstrap-signing"}


@pytest.mark.parametrize("token_id", ["123456", "123e45", "0x1f2a", "000001"])
def test_numeric_looking_ids_stay_strings(token_id: str) -> None:
    text = render_secret_manifest(f"{token_id}.0123456789012345", None)
    assert f'token-id: "{token_id}"' in text
    assert 'token-secret: "0123456789012345"' in text
    data = yaml.safe_load(text)["stringData"]
    assert data["token-id"] == token_id
    assert data["usage-bootstrap-signing"] == "true"


def test_secret_manifest_rejects_bad_values() -> None:
    with pytest.raises(TokenError, match="groups"):
        render_secret_manifest(TOKEN, None, groups=("system:masters",))
    with pytest.raises(TokenError, match="usages"):
        render_secret_manifest(TOKEN, None, usages=("everything",))
    with pytest.raises(TokenError, match="description"):
        render_secret_manifest(TOKEN, None, description="two\nlines")
    with pytest.raises(TokenError, match="expires_at"):
        render_secret_manifest(TOKEN, datetime(2025, 1, 1))  # naive on purpose


def test_token_create_command() -> None:
    command = kubeadm_token_create_command(TOKEN, "90m", description="rack 2 workers; don't share")
    assert command == (
        "kubeadm token create abcdef.0123456789abcdef --ttl 1h30m0s "
        "--usages signing,authentication "
        "--groups system:bootstrappers:kubeadm:default-node-token "
        "--description 'rack 2 workers; don'\"'\"'t share'"
    )
    assert shlex.split(command)[-1] == "rack 2 workers; don't share"


def test_token_create_command_defaults_and_never_expiring() -> None:
    assert kubeadm_token_create_command(parse_token(TOKEN)) == (
        "kubeadm token create abcdef.0123456789abcdef --ttl 24h0m0s "
        "--usages signing,authentication "
        "--groups system:bootstrappers:kubeadm:default-node-token"
    )
    assert "--ttl 0s" in kubeadm_token_create_command(TOKEN, 0)
