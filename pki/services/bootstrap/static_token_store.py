"""The static token file (``--token-auth-file``): add, delete, import and download entries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from clusterpanel.errors import Conflict, InputError
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes import services as inventory
from nodes.models import Cluster
from pki.domain import identities
from pki.domain import static_tokens as static_rules
from pki.domain.identities import Door
from pki.models.tokens import StaticToken
from pki.services import identities as identity_policy


def _field_error(error: ValueError, fields: Mapping[str, str], default: str) -> InputError:
    """Turn ``"groups: 'x' must match ..."`` into ``InputError(..., "groups")``."""
    message = str(error)
    prefix, sep, rest = message.partition(": ")
    name = fields.get(prefix) if sep else None
    return InputError.many({name or default: [rest if name else message]})


def _static_entry(
    token: str, user: str, uid: str, groups: Sequence[str]
) -> static_rules.StaticTokenEntry:
    entry = static_rules.StaticTokenEntry(token, user, uid, tuple(groups))
    try:
        return static_rules.validate_entry(entry)
    except static_rules.StaticTokenError as error:
        raise _field_error(
            error, {"token": "token", "user": "user", "uid": "uid", "groups": "groups"}, "token"
        ) from None


def add_static_token(
    cluster: Cluster,
    *,
    token: str,
    user: str,
    uid: str = "",
    groups: Sequence[str] = (),
    actor: Actor,
) -> StaticToken:
    """Add one entry, audited; a token already in the file is refused (the API server would
    keep only the last one, silently). A privileged user or group needs an admin."""
    if isinstance(groups, str):
        raise InputError("must be a list of strings", "groups")
    entry = _static_entry(token, user, uid, groups)
    privileged = identity_policy.authorize(
        actor,
        Door.STATIC_TOKEN,
        {"user": "user", "group": "groups"},
        user=entry.user,
        groups=entry.groups,
    )
    with transaction.atomic():
        # Locked: two adds of one token at once must not both find it unused.
        inventory.lock_cluster(cluster)
        existing = {row.token: row for row in cluster.static_tokens.all()}
        if entry.token in existing:
            raise InputError.many(
                {"token": [f"this token is already used by {existing[entry.token].user}"]}
            )
        row = StaticToken.objects.create(
            cluster=cluster,
            token=entry.token,
            user=entry.user,
            uid=entry.uid,
            groups=list(entry.groups),
        )
        audit.record(
            "static_token.create",
            actor,
            obj=row,
            details={
                "user": row.user,
                "uid": row.uid,
                "groups": row.groups,
                "privileged": privileged,
            },
        )
    return row


@transaction.atomic
def delete_static_token(row: StaticToken, *, actor: Actor) -> None:
    inventory.lock_cluster(row.cluster_id)
    if not StaticToken.objects.select_for_update().filter(pk=row.pk).exists():
        raise Conflict(f"The static token of {row.user} was already deleted.")
    audit.record("static_token.delete", actor, obj=row)
    row.delete()


@transaction.atomic
def download_static_tokens(cluster: Cluster, *, actor: Actor) -> str:
    """``tokens.csv`` for ``--token-auth-file``; it holds every token, so it is audited.

    Whoever downloads the file obtains every identity in it: the rows are reviewed by
    ``identities.authorize_token_file``, the check a binary node's ``tokens.csv`` shares.
    """
    rows = list(cluster.static_tokens.all())
    granted = identity_policy.authorize_token_file(
        actor, [(row.user, tuple(row.groups)) for row in rows]
    )
    audit.record(
        "static_token.download",
        actor,
        obj=cluster,
        details={"entries": len(rows), **({"privileged": granted} if granted else {})},
    )
    entries = [
        static_rules.StaticTokenEntry(row.token, row.user, row.uid, tuple(row.groups))
        for row in rows
    ]
    return static_rules.render_token_csv(entries)


@dataclass(frozen=True)
class ImportResult:
    """What an import stored, and the warnings the API server would have printed."""

    created: int
    replaced: int
    warnings: list[str]


def import_static_tokens(
    cluster: Cluster, text: str, *, replace: bool = False, actor: Actor
) -> ImportResult:
    """Import an existing ``tokens.csv``; nothing is stored unless every line is good.

    Errors (too few columns, CSV syntax, an entry the file cannot hold) are reported by line
    number under ``csv``; duplicates inside the file are reported as warnings (the last row wins,
    as in the API server); a token already stored is an error unless ``replace`` drops the
    stored entries first.
    """
    if not isinstance(text, str):
        raise InputError("must be the text of a token file", "csv")
    entries, problems = static_rules.parse_token_csv(text)
    errors = [str(problem) for problem in problems if problem.severity == "error"]
    warnings = [str(problem) for problem in problems if problem.severity == "warning"]
    privileged: list[dict[str, Any]] = []
    for entry in entries:
        try:
            static_rules.validate_entry(entry)
        except static_rules.StaticTokenError as error:
            errors.append(f"line {entry.line}: {error}")
            continue
        no, granted = identity_policy.review(
            actor, Door.STATIC_TOKEN, user=entry.user, groups=entry.groups
        )
        errors += [f"line {entry.line}: {identities.refusal(finding)}" for finding in no]
        privileged += identity_policy.audit_details(granted, line=entry.line)
    with transaction.atomic():
        inventory.lock_cluster(cluster)
        stored = {row.token: row for row in cluster.static_tokens.all()}
        if not replace:
            for entry in entries:
                if entry.token in stored:
                    errors.append(
                        f"line {entry.line}: duplicate of the stored token of "
                        f"{stored[entry.token].user}"
                    )
        if errors:
            raise InputError.many({"csv": sorted(errors, key=_line_number)})
        if not entries:
            raise InputError("the file holds no token", "csv")
        replaced = len(stored) if replace else 0
        if replace:
            cluster.static_tokens.all().delete()
        StaticToken.objects.bulk_create(
            StaticToken(
                cluster=cluster,
                token=entry.token,
                user=entry.user,
                uid=entry.uid,
                groups=list(entry.groups),
            )
            for entry in entries
        )
        audit.record(
            "static_token.import",
            actor,
            obj=cluster,
            details={
                "created": len(entries),
                "replaced": replaced,
                "entries": [
                    {"line": entry.line, "user": entry.user, "groups": list(entry.groups)}
                    for entry in entries
                ],
                "privileged": privileged,
            },
        )
    return ImportResult(created=len(entries), replaced=replaced, warnings=warnings)


def _line_number(message: str) -> int:
    head = message.removeprefix("line ").split(":", 1)[0]
    return int(head) if head.isdigit() else 0
