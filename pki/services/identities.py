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

Downloads that hand out an identity already issued are decided here too: a static token file
(``authorize_token_file``, row by row, for the static-token download and a binary node's
``tokens.csv``) and a node's kubeconfig (``authorize_node_identity``, a binary node's files), which
follows kubeadm's bundle rule for a worker's own identities and the grant rule for every other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.core.exceptions import PermissionDenied

from clusterpanel.errors import NON_FIELD, InputError
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import can, require_permission
from pki.domain import identities
from pki.domain.identities import Door, Finding

PERMISSION = "grant_privileged_identities"
# Who may download a worker's bundle (kubeadm: ca.crt and the node's own kubelet.conf); the least
# role that may hold any node's private key.
BUNDLE_PERMISSION = "download_bundle"
# Who may hold a system:masters credential (super-admin.conf, a binary admin.kubeconfig).
SUPER_ADMIN_PERMISSION = "download_super_admin"
# Who may read static token values (the static-token download).
TOKENS_PERMISSION = "reveal_tokens"


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


def identity_text(user: str, groups: Sequence[str]) -> str:
    """``user`` with its groups, as refusals name an identity."""
    return f"{user} (groups: {', '.join(groups)})" if groups else user


def review_node_identity(
    actor: Actor, *, node_name: str, node_role: str, user: str, groups: Sequence[str]
) -> tuple[list[Finding], list[Finding]]:
    """(refused, granted) privileged parts of a client certificate of the cluster CA that one of
    the node's files hands out (a binary node's kubeconfigs); no error raised.

    kubeadm's worker-bundle rule: a worker's own identities (``identities.worker_own_identity``:
    its kubelet's, kube-proxy's) are for whoever may download that worker's bundle, as
    ``download_bundle`` decides for a worker. Every other identity (a control-plane node's
    kubelet, the controller manager, the scheduler, ``system:masters``) is reviewed as a
    certificate of the cluster CA, like a signing request: privileged parts for an admin.
    """
    if identities.worker_own_identity(node_role, node_name, user, groups):
        findings = list(identities.assess(Door.CERTIFICATE, user=user, groups=groups))
        if can(actor.user, BUNDLE_PERMISSION):
            return [], findings
        return findings, []
    return review(actor, Door.CERTIFICATE, user=user, groups=groups)


def _is_masters(group: str) -> bool:
    return group.strip().casefold() == identities.MASTERS


def authorize_node_identity(
    actor: Actor,
    *,
    what: str,
    node_name: str,
    node_role: str,
    user: str,
    groups: Sequence[str],
) -> list[dict[str, str]]:
    """Refuse ``actor`` the file ``what`` of the node, which carries the private key of the
    identity ``user`` in ``groups``: ``PermissionDenied`` (a 403) naming the identity and why.

    A role that may not download any node bundle gets no private key; then
    ``review_node_identity`` decides; a ``system:masters`` identity also needs the permission
    that ``super-admin.conf`` needs. Else the privileged parts granted, for the audit event."""
    identity = identity_text(user, groups)
    require_permission(
        actor.user,
        BUNDLE_PERMISSION,
        f"{what} carries the private key of {identity}: it is for a role that may download "
        "node bundles",
    )
    no, granted = review_node_identity(
        actor, node_name=node_name, node_role=node_role, user=user, groups=groups
    )
    if no:
        reasons = "; ".join(identities.refusal(finding) for finding in no)
        raise PermissionDenied(f"{what} carries the private key of {identity}: {reasons}")
    if any(_is_masters(group) for group in groups):
        require_permission(
            actor.user,
            SUPER_ADMIN_PERMISSION,
            f"{what} carries the private key of {identity}: {identities.MASTERS} bypasses RBAC, "
            "it is for a role that may hold super-admin.conf",
        )
    return audit_details(granted)


def authorize_token_file(
    actor: Actor, entries: Iterable[tuple[str, Sequence[str]]], *, what: str = "tokens.csv"
) -> list[dict[str, str]]:
    """Refuse ``actor`` a static token file whose rows are ``entries`` (user, groups):
    ``PermissionDenied`` (a 403) naming each refused row's identity.

    Whoever downloads the file obtains every identity in it, so each row is reviewed as a static
    token grant (``Door.STATIC_TOKEN``): a file with a privileged row (an admin may grant
    ``system:masters`` to a static token) is only for those who may grant it, and an operator
    cannot read back a cluster-admin token an admin made. Else the privileged parts granted, each
    with its row's ``user``, for the audit event."""
    require_permission(actor.user, TOKENS_PERMISSION, f"{what} holds static token values in clear")
    refused_rows: list[str] = []
    granted: list[dict[str, str]] = []
    for user, groups in entries:
        no, yes = review(actor, Door.STATIC_TOKEN, user=user, groups=tuple(groups))
        refused_rows += [f"{user}: {finding.name}" for finding in no]
        granted += audit_details(yes, user=user)
    if refused_rows:
        raise PermissionDenied(
            f"{what} holds privileged identities ("
            + ", ".join(refused_rows)
            + "); only an admin may download it"
        )
    return granted
