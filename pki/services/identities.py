"""Who may obtain which Kubernetes identity: the one check of every path that signs a certificate
from the cluster's CAs or grants a token.

The rule (which names are privileged, and why) is ``pki.domain.identities``; here the actor's role
decides: privileged identities only for a role holding ``grant_privileged_identities`` (admins),
and what kubeadm itself never hands out (``system:masters`` in a user kubeconfig, a bootstrap
token group outside ``system:bootstrappers:``) for nobody. A refusal is an ``InputError`` on the
field that asked for the identity; a grant returns the privileged parts so that the caller's
audit event records them as ``privileged``.

Paths that go through here: user kubeconfigs, cfssl signing (CSR JSON and PKCS#10), static tokens
(one entry and imports) and bootstrap tokens. kubeadm's own tree (issue, reissue, renew) is signed
from the topology, not from a requested subject; who may download it is the bundles' rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from clusterpanel.errors import NON_FIELD, InputError
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import can
from pki.domain import identities
from pki.domain.identities import Door, Finding

PERMISSION = "grant_privileged_identities"


def refused(actor: Actor, findings: Iterable[Finding]) -> list[Finding]:
    """The findings ``actor`` may not obtain: those nobody gets, and all for a lesser role."""
    allowed = can(actor.user, PERMISSION)
    return [finding for finding in findings if finding.never or not allowed]


def review(
    actor: Actor,
    door: Door,
    *,
    user: str = "",
    groups: Sequence[str] = (),
    authority: str | None = None,
    hosts: Sequence[str] = (),
    serves: bool = False,
    protected_hosts: Iterable[str] = (),
) -> tuple[list[Finding], list[Finding]]:
    """(refused, granted) privileged parts of the identity for ``actor``; no error raised."""
    findings = identities.assess(
        door,
        user=user,
        groups=groups,
        authority=authority,
        hosts=hosts,
        serves=serves,
        protected_hosts=protected_hosts,
    )
    no = refused(actor, findings)
    return no, [finding for finding in findings if finding not in no]


def authorize(
    actor: Actor,
    door: Door,
    fields: Mapping[str, str],
    *,
    user: str = "",
    groups: Sequence[str] = (),
    authority: str | None = None,
    hosts: Sequence[str] = (),
    serves: bool = False,
    protected_hosts: Iterable[str] = (),
) -> list[dict[str, str]]:
    """Refuse what ``actor`` may not obtain: an ``InputError`` on the field that ``fields`` maps
    the refused part's kind to (``user``, ``group``, ``authority``, ``host``). Else the privileged
    parts granted, for the audit event's ``privileged``."""
    no, granted = review(
        actor,
        door,
        user=user,
        groups=groups,
        authority=authority,
        hosts=hosts,
        serves=serves,
        protected_hosts=protected_hosts,
    )
    if no:
        errors: dict[str, list[str]] = {}
        for finding in no:
            field_name = fields.get(finding.kind, NON_FIELD)
            errors.setdefault(field_name, []).append(identities.refusal(finding))
        raise InputError.many(errors)
    return audit_details(granted)


def audit_details(granted: Iterable[Finding], **extra: Any) -> list[dict[str, str]]:
    """The ``privileged`` list of an audit event (``extra`` added to every item)."""
    return [{**finding.as_dict(), **extra} for finding in granted]
