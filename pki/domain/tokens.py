"""Bootstrap tokens as kubeadm and the cluster-bootstrap library define them.

A bootstrap token is ``<id>.<secret>``: a public six-character id and a sixteen-character secret,
both from ``[a-z0-9]``. In the cluster it lives in the Secret ``kube-system/bootstrap-token-<id>``
of type ``bootstrap.kubernetes.io/token``; this module renders that Secret with the same keys
kubeadm writes, and the equivalent ``kubeadm token create`` command line.
"""

from __future__ import annotations

import random
import re
import secrets
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from clusterpanel.errors import InputError
from pki.domain import durations, principals
from pki.domain.yaml import DoubleQuoted, dump_document

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
TOKEN_ID_LENGTH = 6
TOKEN_SECRET_LENGTH = 16

# Python's \Z is the absolute end of the string, the same as \z in Go and PCRE.
TOKEN_RE = re.compile(r"\A([a-z0-9]{6})\.([a-z0-9]{16})\Z")
TOKEN_ID_RE = re.compile(r"\A[a-z0-9]{6}\Z")
EXTRA_GROUP_RE = re.compile(r"\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\Z")

VALID_USAGES: tuple[str, ...] = ("signing", "authentication")
DEFAULT_USAGES: tuple[str, ...] = VALID_USAGES
DEFAULT_GROUP = "system:bootstrappers:kubeadm:default-node-token"
DEFAULT_GROUPS: tuple[str, ...] = (DEFAULT_GROUP,)
DEFAULT_TTL = timedelta(hours=24)
# Extra groups of one token: kubeadm sets no limit, a Secret holds them all in one value.
MAX_GROUPS = 32
MAX_DESCRIPTION = 255

# Names and types of Kubernetes objects, not credentials.
SECRET_NAMESPACE = "kube-system"  # noqa: S105
SECRET_NAME_PREFIX = "bootstrap-token-"  # noqa: S105
SECRET_TYPE = "bootstrap.kubernetes.io/token"  # noqa: S105
USAGE_KEY_PREFIX = "usage-bootstrap-"

TokenStatus = Literal["active", "expired", "revoked"]


class TokenError(InputError):
    """An invalid bootstrap token value; the message names the offending field."""


@dataclass(frozen=True)
class BootstrapToken:
    """A parsed bootstrap token. ``str()`` gives ``id.secret``; ``repr()`` hides the secret."""

    id: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        validate_token_id(self.id)
        if not isinstance(self.secret, str) or not re.fullmatch(r"[a-z0-9]{16}", self.secret):
            raise TokenError("token secret: must be 16 characters from [a-z0-9]")

    def __str__(self) -> str:
        return f"{self.id}.{self.secret}"

    @property
    def secret_name(self) -> str:
        """Name of the Secret that holds this token in ``kube-system``."""
        return SECRET_NAME_PREFIX + self.id

    @property
    def username(self) -> str:
        """The user the API server authenticates this token as."""
        return f"system:bootstrap:{self.id}"


def _random_string(length: int, rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(length))


def generate_token(rng: random.Random | None = None) -> BootstrapToken:
    """Return a new token drawn from the operating system's CSPRNG.

    ``rng`` exists for tests that drive the generator with a seeded source; production code never
    passes it.
    """
    source = rng if rng is not None else secrets.SystemRandom()
    return BootstrapToken(
        _random_string(TOKEN_ID_LENGTH, source), _random_string(TOKEN_SECRET_LENGTH, source)
    )


def parse_token(value: str) -> BootstrapToken:
    """Parse ``id.secret``; raise :class:`TokenError` unless it matches kubeadm's pattern."""
    if not isinstance(value, str):
        raise TokenError("token: must be a string")
    match = TOKEN_RE.match(value)
    if match is None:
        # Never echo the value: it may be a real secret with a typo in it.
        raise TokenError(r"token: must match [a-z0-9]{6}\.[a-z0-9]{16}")
    return BootstrapToken(match.group(1), match.group(2))


def validate_token_id(value: str) -> str:
    """Return ``value`` if it is a valid token id, else raise :class:`TokenError`."""
    if not isinstance(value, str) or TOKEN_ID_RE.match(value) is None:
        raise TokenError(f"token id: {value!r} must be 6 characters from [a-z0-9]")
    return value


def validate_extra_group(group: str) -> str:
    """Return ``group`` if kubeadm accepts it as an extra group, else raise."""
    try:
        principals.group_name(group)
    except principals.PrincipalError as error:
        raise TokenError(f"groups: {error}") from None
    if EXTRA_GROUP_RE.match(group) is None:
        raise TokenError(f"groups: {group!r} must match system:bootstrappers:[a-z0-9:-]*[a-z0-9]")
    return group


def validate_groups(groups: Iterable[str]) -> tuple[str, ...]:
    """Validate every extra group and reject duplicates; order is kept."""
    result = tuple(groups)
    if len(result) > MAX_GROUPS:
        raise TokenError(f"groups: at most {MAX_GROUPS} groups, not {len(result)}")
    result = tuple(validate_extra_group(group) for group in result)
    if len(set(result)) != len(result):
        raise TokenError("groups: each group may be listed only once")
    return result


def validate_usages(usages: Iterable[str]) -> tuple[str, ...]:
    """Validate usages against :data:`VALID_USAGES` and reject duplicates; order is kept."""
    result = tuple(usages)
    for usage in result:
        if usage not in VALID_USAGES:
            raise TokenError(f"usages: {usage!r} is not one of {', '.join(VALID_USAGES)}")
    if len(set(result)) != len(result):
        raise TokenError("usages: each usage may be listed only once")
    return result


def validate_description(description: str) -> str:
    """Reject non-strings and control characters other than tab."""
    if not isinstance(description, str):
        raise TokenError("description: must be a string")
    if any(ord(char) < 32 and char != "\t" for char in description):
        raise TokenError("description: must be a single line without control characters")
    if len(description) > MAX_DESCRIPTION:
        raise TokenError(f"description: must be at most {MAX_DESCRIPTION} characters")
    return description


def _parse_go_duration(text: str) -> timedelta:
    try:
        return durations.parse_go_duration(text)
    except durations.DurationError as error:
        if error.reason == "out of range":
            raise TokenError(
                f"ttl: {text!r} is longer than kubeadm can take (at most {durations.MAX_TEXT}); "
                "use 0 for a token that never expires"
            ) from None
        raise TokenError(f"ttl: {text!r} is not a duration like 24h, 90m or 1h30m") from None


def parse_ttl(value: str | int | timedelta) -> timedelta:
    """Return a TTL as a timedelta; 0 means the token never expires.

    Accepts a timedelta, a whole number of seconds, or a Go duration string as kubeadm's ``--ttl``
    takes it (``24h``, ``1h30m``, ``24h0m0s``, ``0``). Negative TTLs are rejected.
    """
    if isinstance(value, bool):
        raise TokenError("ttl: must be a duration, not a boolean")
    if isinstance(value, timedelta):
        ttl = value
    elif isinstance(value, int):
        if abs(value) > durations.MAX_DURATION.total_seconds():
            raise TokenError(
                f"ttl: {value} seconds is longer than kubeadm can take (at most "
                f"{int(durations.MAX_DURATION.total_seconds())} seconds, {durations.MAX_TEXT}); "
                "use 0 for a token that never expires"
            )
        ttl = timedelta(seconds=value)
    elif isinstance(value, str):
        ttl = _parse_go_duration(value.strip())
    else:
        raise TokenError("ttl: must be a duration string, a number of seconds or a timedelta")
    if ttl < timedelta(0):
        raise TokenError("ttl: must not be negative (use 0 for a token that never expires)")
    if ttl > durations.MAX_DURATION:
        raise TokenError(f"ttl: must be at most {durations.MAX_TEXT}, the longest kubeadm takes")
    return ttl


def format_go_duration(value: timedelta) -> str:
    """Format like Go's ``time.Duration.String()``: ``24h0m0s``, ``1h30m0s``, ``45s``, ``0s``."""
    total_us = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if total_us == 0:
        return "0s"
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    if total_us < 1_000_000:
        # Go switches to ms/µs below one second; timedelta cannot hold nanoseconds.
        if total_us % 1000 == 0:
            return f"{sign}{total_us // 1000}ms"
        return f"{sign}{_trim_fraction(total_us, 1000)}µs"
    hours, rest = divmod(total_us, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = _trim_fraction(rest, 1_000_000)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def _trim_fraction(amount: int, unit: int) -> str:
    whole, fraction = divmod(amount, unit)
    if not fraction:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")


def _require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise TokenError(f"{name}: must be timezone-aware")
    return value


def expiry_for(ttl: str | int | timedelta, now: datetime) -> datetime | None:
    """Return when a token created at ``now`` expires, or None for a TTL of 0 (never)."""
    duration = parse_ttl(ttl)
    _require_aware(now, "now")
    if duration == timedelta(0):
        return None
    return now + duration


def token_status(
    expires_at: datetime | None, revoked_at: datetime | None, now: datetime
) -> TokenStatus:
    """Return ``revoked``, ``expired`` or ``active``; revocation wins over expiry.

    The token counts as expired from the expiry instant itself, so the panel never shows a
    token as usable at the moment the API server starts refusing it.
    """
    _require_aware(now, "now")
    if revoked_at is not None:
        _require_aware(revoked_at, "revoked_at")
        return "revoked"
    if expires_at is not None and now >= _require_aware(expires_at, "expires_at"):
        return "expired"
    return "active"


def format_expiration(expires_at: datetime) -> str:
    """RFC 3339 in UTC with second precision, as kubeadm writes ``expiration``."""
    _require_aware(expires_at, "expires_at")
    return expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _coerce_token(token: BootstrapToken | str) -> BootstrapToken:
    return token if isinstance(token, BootstrapToken) else parse_token(token)


def render_secret_manifest(
    token: BootstrapToken | str,
    expires_at: datetime | None,
    usages: Sequence[str] = DEFAULT_USAGES,
    groups: Sequence[str] = DEFAULT_GROUPS,
    description: str = "",
) -> str:
    """Render the ``kube-system/bootstrap-token-<id>`` Secret with kubeadm's keys.

    ``expiration`` is omitted when ``expires_at`` is None (never expires), ``auth-extra-groups``
    when there are no groups and ``description`` when it is empty, as kubeadm does.
    """
    parsed = _coerce_token(token)
    usage_list = validate_usages(usages)
    group_list = validate_groups(groups)
    validate_description(description)
    data: dict[str, DoubleQuoted] = {
        "token-id": DoubleQuoted(parsed.id),
        "token-secret": DoubleQuoted(parsed.secret),
    }
    if description:
        data["description"] = DoubleQuoted(description)
    if expires_at is not None:
        data["expiration"] = DoubleQuoted(format_expiration(expires_at))
    for usage in usage_list:
        data[USAGE_KEY_PREFIX + usage] = DoubleQuoted("true")
    if group_list:
        data["auth-extra-groups"] = DoubleQuoted(",".join(group_list))
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": parsed.secret_name, "namespace": SECRET_NAMESPACE},
        "type": SECRET_TYPE,
        "stringData": data,
    }
    return dump_document(manifest)


def kubeadm_token_create_command(
    token: BootstrapToken | str,
    ttl: str | int | timedelta = DEFAULT_TTL,
    usages: Sequence[str] = DEFAULT_USAGES,
    groups: Sequence[str] = DEFAULT_GROUPS,
    description: str = "",
) -> str:
    """Return the ``kubeadm token create`` line that creates the same token.

    The line carries the token secret, so it is meant to be shown to an operator or run through a
    channel that does not log arguments; never write it to a job log.
    """
    parsed = _coerce_token(token)
    arguments = [
        "kubeadm",
        "token",
        "create",
        str(parsed),
        "--ttl",
        format_go_duration(parse_ttl(ttl)),
        "--usages",
        ",".join(validate_usages(usages)),
        "--groups",
        ",".join(validate_groups(groups)),
    ]
    if validate_description(description):
        arguments += ["--description", description]
    return shlex.join(arguments)
