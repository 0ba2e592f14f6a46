"""Host keys of nodes and bastions: scan, approve, trust on first use, and what jobs met.

A scanned key is only *pending*: nothing connects with it until an operator compares its
fingerprint with the one the machine's console shows and approves exactly that fingerprint.
A job that meets another key than the pinned one stops before authenticating; the key it was
presented is recorded so that the node shows *changed*, with both fingerprints, until someone
approves a key again.

The network is never touched inside a transaction: a scan reads the key first, then locks the
rows (cluster, then node, as ``nodes.services`` does) and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from clusterpanel.errors import Conflict, InputError
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes import ssh
from nodes.models import Cluster, Node, host_key_fingerprint
from nodes.rules import validation
from nodes.services import lock_cluster
from nodes.targets import bastion_target, timeouts


@dataclass(frozen=True)
class Scan:
    """What a scan found: the key, and whether it is the one already pinned."""

    key: ssh.HostKey
    matches_pinned: bool


def _lock_node(node: Node) -> Node:
    lock_cluster(node.cluster_id)
    stored = Node.objects.select_for_update().select_related("cluster").filter(pk=node.pk).first()
    if stored is None:
        raise Conflict(f"{node} was deleted while it was being changed.")
    return stored


def _read_key(address: str, port: int, bastion: ssh.Target | None) -> ssh.HostKey:
    try:
        key = ssh.scan_host_key(address, port, timeout=timeouts().connect, bastion=bastion)
    except ssh.SSHError as error:  # its message names the host and says what failed
        raise Conflict(f"{error}; no host key was read") from None
    except OSError as error:  # the SSH layer wraps these; a stray one is still the host's fault
        reason = error.strerror or type(error).__name__
        raise Conflict(f"could not reach {address}:{port}: {reason}") from None
    # The fingerprint is computed here from the key itself, not taken on trust.
    return ssh.HostKey(key.key_type, key.key_base64, host_key_fingerprint(key.key_base64))


def _checked_fingerprint(fingerprint: Any) -> str:
    if not isinstance(fingerprint, str) or not fingerprint.strip():
        raise InputError("give the SHA256:… fingerprint of the key you approve", "fingerprint")
    try:
        return validation.host_key_fingerprint(fingerprint)
    except ValueError as error:
        raise InputError(str(error), "fingerprint") from None


# --- nodes ---------------------------------------------------------------------------------------


def scan_host_key(actor: Actor, node: Node) -> Scan:
    """Read the key ``node`` presents (through its cluster's bastion, if any) and keep it pending.

    The same key as the pinned one leaves the node pinned, unless a job met another key since:
    then the scanned key is kept pending too, so that approving it settles the doubt.
    """
    cluster = Cluster.objects.filter(pk=node.cluster_id).first()
    if cluster is None:
        raise Conflict(f"{node} was deleted while it was being scanned.")
    key = _read_key(str(node.address), node.ssh_port, bastion_target(cluster))
    with transaction.atomic():
        stored = _lock_node(node)
        matches = key.fingerprint == stored.host_key_fingerprint
        now = timezone.now()
        stored.host_key_scanned_at = now
        if matches and stored.host_key_state != "changed":
            stored.pending_host_key_type = stored.pending_host_key = ""
            stored.pending_host_key_fingerprint = ""
        else:
            stored.pending_host_key_type = key.key_type
            stored.pending_host_key = key.key_base64
            stored.pending_host_key_fingerprint = key.fingerprint
        stored.save(
            update_fields=[
                "pending_host_key_type",
                "pending_host_key",
                "pending_host_key_fingerprint",
                "host_key_scanned_at",
                "updated_at",
            ]
        )
        audit.record(
            "node.host_key.scan",
            actor,
            obj=stored,
            details={
                "key_type": key.key_type,
                "fingerprint": key.fingerprint,
                "pinned": stored.host_key_fingerprint,
                "matches_pinned": matches,
            },
        )
    _copy_host_key_fields(stored, node)
    return Scan(key=key, matches_pinned=matches)


@transaction.atomic
def approve_host_key(actor: Actor, node: Node, fingerprint: str) -> Node:
    """Pin the pending key of ``node`` if ``fingerprint`` is exactly its fingerprint."""
    wanted = _checked_fingerprint(fingerprint)
    stored = _lock_node(node)
    pending = stored.pending_host_key_fingerprint
    if not pending:
        raise Conflict(f"no scanned host key of {stored.name} waits for approval: scan it first")
    if wanted != pending:
        raise InputError(
            f"{wanted} is not the fingerprint of the scanned key ({pending}); "
            "nothing was approved — scan again if the host changed",
            "fingerprint",
        )
    old = stored.host_key_fingerprint
    stored.pin_host_key(stored.pending_host_key_type, stored.pending_host_key, actor.user)
    stored.pending_host_key_type = stored.pending_host_key = ""
    stored.pending_host_key_fingerprint = ""
    # The operator decided on the key: what a job met before is settled.
    stored.presented_host_key_fingerprint = ""
    stored.presented_at = None
    stored.save(update_fields=[*_HOST_KEY_FIELDS, "updated_at"])
    audit.record("node.host_key.approve", actor, obj=stored, details={"old": old, "new": wanted})
    _copy_host_key_fields(stored, node)
    return node


def record_presented_key(node: Node, fingerprint: str, actor: Actor | None = None) -> None:
    """A job met ``fingerprint`` where another key is pinned (it stopped before logging in):
    the node shows *changed* with both fingerprints until a key is approved again."""
    actor = actor or Actor.for_job(None)
    with transaction.atomic():
        stored = _lock_node(node)
        if fingerprint == stored.host_key_fingerprint:
            return
        stored.presented_host_key_fingerprint = fingerprint
        stored.presented_at = timezone.now()
        stored.save(update_fields=["presented_host_key_fingerprint", "presented_at", "updated_at"])
        audit.record(
            "node.host_key.changed",
            actor,
            obj=stored,
            details={"pinned": stored.host_key_fingerprint, "presented": fingerprint},
        )
    _copy_host_key_fields(stored, node)


def learn_host_key(node: Node, key: ssh.HostKey, actor: Actor) -> None:
    """Pin the key a first connection accepted under the cluster's trust on first use.

    Refused (``Conflict``) when the cluster does not trust on first use or when another key was
    pinned meanwhile; learning the key already pinned changes nothing.
    """
    fingerprint = host_key_fingerprint(key.key_base64)
    with transaction.atomic():
        stored = _lock_node(node)
        if not stored.cluster.trust_on_first_use:
            raise Conflict(f"cluster {stored.cluster.name} does not trust host keys on first use")
        if stored.host_key_fingerprint == fingerprint:
            return
        if stored.host_key_fingerprint:
            raise Conflict(
                f"{stored.name} already has the pinned host key {stored.host_key_fingerprint}; "
                f"{fingerprint} was not pinned"
            )
        stored.pin_host_key(key.key_type, key.key_base64, actor.user)
        stored.save(update_fields=[*_HOST_KEY_FIELDS, "updated_at"])
        audit.record(
            "node.host_key.trust_on_first_use",
            actor,
            obj=stored,
            details={"key_type": key.key_type, "fingerprint": fingerprint},
        )
    _copy_host_key_fields(stored, node)


def record_facts(node: Node, facts: dict[str, Any]) -> None:
    """Store what the facts job read from the host, with the time it was read."""
    now = timezone.now()
    Node.objects.filter(pk=node.pk).update(facts=facts, facts_read_at=now, updated_at=now)
    node.facts, node.facts_read_at = facts, now


_HOST_KEY_FIELDS = [
    "host_key_type",
    "host_key",
    "host_key_fingerprint",
    "host_key_approved_at",
    "host_key_approved_by",
    "pending_host_key_type",
    "pending_host_key",
    "pending_host_key_fingerprint",
    "host_key_scanned_at",
    "presented_host_key_fingerprint",
    "presented_at",
]


def _copy_host_key_fields(source: Node, target: Node) -> None:
    """Let the caller's instance show what was written."""
    for name in _HOST_KEY_FIELDS:
        attname = "host_key_approved_by_id" if name == "host_key_approved_by" else name
        setattr(target, attname, getattr(source, attname))


# --- bastions ------------------------------------------------------------------------------------


def scan_bastion_host_key(actor: Actor, cluster: Cluster) -> Scan:
    """Read the key of the cluster's bastion and keep it pending for approval."""
    if not cluster.bastion_address:
        raise Conflict(f"cluster {cluster.name} has no bastion")
    key = _read_key(cluster.bastion_address, cluster.bastion_port, None)
    with transaction.atomic():
        stored = lock_cluster(cluster)
        matches = key.fingerprint == stored.bastion_host_key_fingerprint
        stored.bastion_host_key_scanned_at = timezone.now()
        pending = ("", "", "") if matches else (key.key_type, key.key_base64, key.fingerprint)
        (
            stored.bastion_pending_host_key_type,
            stored.bastion_pending_host_key,
            stored.bastion_pending_host_key_fingerprint,
        ) = pending
        stored.save(update_fields=[*_BASTION_PENDING_FIELDS, "updated_at"])
        audit.record(
            "cluster.bastion_host_key.scan",
            actor,
            obj=stored,
            details={
                "fingerprint": key.fingerprint,
                "pinned": stored.bastion_host_key_fingerprint,
                "matches_pinned": matches,
            },
        )
    for name in _BASTION_PENDING_FIELDS:
        setattr(cluster, name, getattr(stored, name))
    return Scan(key=key, matches_pinned=matches)


@transaction.atomic
def approve_bastion_host_key(actor: Actor, cluster: Cluster, fingerprint: str) -> Cluster:
    """Pin the bastion's pending key if ``fingerprint`` is exactly its fingerprint."""
    wanted = _checked_fingerprint(fingerprint)
    stored = lock_cluster(cluster)
    pending = stored.bastion_pending_host_key_fingerprint
    if not pending:
        raise Conflict(f"no scanned key of the bastion of {stored.name} waits for approval")
    if wanted != pending:
        raise InputError(
            f"{wanted} is not the fingerprint of the scanned key ({pending}); nothing was approved",
            "fingerprint",
        )
    old = stored.bastion_host_key_fingerprint
    stored.bastion_host_key_type = stored.bastion_pending_host_key_type
    stored.bastion_host_key = stored.bastion_pending_host_key
    stored.bastion_host_key_fingerprint = pending
    stored.bastion_pending_host_key_type = stored.bastion_pending_host_key = ""
    stored.bastion_pending_host_key_fingerprint = ""
    fields = [*_BASTION_PENDING_FIELDS, *_BASTION_PINNED_FIELDS]
    stored.save(update_fields=[*fields, "updated_at"])
    audit.record(
        "cluster.bastion_host_key.approve", actor, obj=stored, details={"old": old, "new": wanted}
    )
    for name in fields:
        setattr(cluster, name, getattr(stored, name))
    return cluster


_BASTION_PENDING_FIELDS = [
    "bastion_pending_host_key_type",
    "bastion_pending_host_key",
    "bastion_pending_host_key_fingerprint",
    "bastion_host_key_scanned_at",
]
_BASTION_PINNED_FIELDS = [
    "bastion_host_key_type",
    "bastion_host_key",
    "bastion_host_key_fingerprint",
]
