"""Inventory operations: create, change and delete clusters and nodes, each audited.

Pages and the API validate input with their form or serializer, hand the resulting unsaved
instance to one function here, and render. Each function owns its transaction and its audit
event, so the page and the API record the same action with the same details.

Updates write with ``force_update``: an edit racing a delete finds no row and is refused
(``Conflict``) instead of inserting the deleted row again.

Every write that touches a cluster or one of its rows first locks the cluster row
(``lock_cluster``), so writes to one cluster queue behind each other and behind its deletion, and
all of them take the locks in the same order (cluster, then the row). A write that loses a race on
a unique value (two identical creations at once) is refused naming the field, as validation would
have refused it a moment later.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, models, transaction

from clusterpanel.errors import Conflict, InputError
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import require_permission
from nodes.models import CLUSTER_SECRETS, CLUSTER_SECURITY_SETTINGS, Cluster, Node

# Never compared into audit details by value: credentials (recorded as a credential change) and
# what the panel sets itself.
_CREDENTIALS = ("ssh_private_key", "ssh_key_passphrase", "ssh_password", "sudo_password")
_UNTRACKED = {*_CREDENTIALS, *CLUSTER_SECRETS, "created_at", "updated_at"}


def lock_cluster(cluster: Cluster | int | None) -> Cluster:
    """The cluster row, locked until the transaction ends; Conflict if it was deleted.

    Call it first in the transaction of any write to the cluster or to a row of it (nodes, tokens,
    certificates, settings): the write then waits for a deletion under way and sees the cluster
    gone, and a deletion waits for the write and then deletes what it wrote too.
    """
    pk = cluster.pk if isinstance(cluster, Cluster) else cluster
    stored = Cluster.objects.select_for_update().filter(pk=pk).first() if pk else None
    if stored is None:
        name = cluster.name if isinstance(cluster, Cluster) else f"The cluster {pk}"
        raise Conflict(f"{name} was deleted while it was being changed.")
    return stored


def _stored(row: Cluster | Node) -> models.Model:
    """The stored row, locked until the transaction ends; Conflict if it is gone."""
    stored = type(row).objects.select_for_update().filter(pk=row.pk).first()
    if stored is None:
        raise Conflict(f"{row} was deleted while it was being changed.")
    return stored


def _lost_race(row: Cluster | Node) -> Exception:
    """What to say when the database refused a row that validation had let through: another
    request wrote a clashing row in between. Validating again now names the field."""
    try:
        row.full_clean()
    except ValidationError as error:
        return InputError.many(error.message_dict)
    return Conflict(f"{row} was changed by another request at the same time; reload and retry.")


def _changed(row: models.Model, stored: models.Model) -> list[str]:
    """Names of the fields whose value differs from the stored row, in model order."""
    return [
        field.name
        for field in row._meta.concrete_fields
        if field.name not in _UNTRACKED
        and getattr(row, field.attname) != getattr(stored, field.attname)
    ]


def _save(row: Cluster | Node, created: bool) -> None:
    try:
        with transaction.atomic():
            row.save(force_insert=created, force_update=not created)
    except IntegrityError as error:
        raise _lost_race(row) from error
    except DatabaseError as error:
        if created or type(row).objects.filter(pk=row.pk).exists():
            raise
        raise Conflict(f"{row} was deleted while it was being changed.") from error


def _check_security(cluster: Cluster, stored: Cluster, actor: Actor) -> bool:
    """Refuse (403) a change of how the panel reaches the hosts (trust on first use, the
    bastion and its credential) by a role without ``edit_cluster_security``; True if the
    bastion's credential changes."""
    security = [name for name in CLUSTER_SECURITY_SETTINGS if name in _changed(cluster, stored)]
    secrets = [n for n in CLUSTER_SECRETS if getattr(cluster, n) != getattr(stored, n)]
    if security or secrets:
        require_permission(
            actor.user,
            "edit_cluster_security",
            "Only an admin may change trust on first use, the bastion or its credential.",
        )
    return bool(secrets)


def _bastion_credential_audit(cluster: Cluster, actor: Actor) -> None:
    audit.record(
        "cluster.bastion_credential_change",
        actor,
        obj=cluster,
        details={"credential": cluster.bastion_credential_kind},
    )


FLAVOR_FIXED = (
    "the flavor is chosen when the cluster is created: kubeadm and binary installs keep "
    "different files, so create another cluster for the other flavor"
)


@transaction.atomic
def create_cluster(cluster: Cluster, actor: Actor) -> Cluster:
    credential_changed = _check_security(cluster, Cluster(), actor)
    cluster.pin_bastion_fingerprint()
    _save(cluster, created=True)
    audit.record("cluster.create", actor, obj=cluster)
    if credential_changed:
        _bastion_credential_audit(cluster, actor)
    return cluster


@transaction.atomic
def update_cluster(cluster: Cluster, actor: Actor) -> Cluster:
    stored = lock_cluster(cluster)
    changed = _changed(cluster, stored)
    if "flavor" in changed:
        raise InputError(FLAVOR_FIXED, "flavor")
    credential_changed = _check_security(cluster, stored, actor)
    if cluster.bastion_host_key_fingerprint != stored.bastion_host_key_fingerprint:
        cluster.pin_bastion_fingerprint()
    _save(cluster, created=False)
    audit.record("cluster.update", actor, obj=cluster, details={"fields": changed})
    if credential_changed:
        _bastion_credential_audit(cluster, actor)
    return cluster


@transaction.atomic
def delete_cluster(cluster: Cluster, actor: Actor) -> None:
    """Delete the cluster with its nodes, CA keys, tokens and etcd snapshots (rows, and once the
    deletion is committed their sealed files); the audit trail stays."""
    from nodes import etcd_snapshots

    lock_cluster(cluster)
    audit.record("cluster.delete", actor, obj=cluster)
    etcd_snapshots.remove_cluster_files_on_commit(cluster)
    cluster.delete()


@transaction.atomic
def save_node(node: Node, actor: Actor) -> Node:
    """Create or update a node; field names only are recorded, never credential values.

    A fingerprint set by hand is approved by the actor before the row is written, so the row
    never holds an unapproved pin.
    """
    lock_cluster(node.cluster_id)
    created = node._state.adding
    if created:
        changed: list[str] = []
        credential_changed = any(getattr(node, name) for name in _CREDENTIALS)
        fingerprint_changed = bool(node.host_key_fingerprint)
    else:
        stored = _stored(node)
        changed = _changed(node, stored)
        credential_changed = any(
            getattr(node, name) != getattr(stored, name) for name in _CREDENTIALS
        )
        fingerprint_changed = "host_key_fingerprint" in changed
    if fingerprint_changed:
        node.approve_fingerprint(actor.user)
    _save(node, created=created)
    details = {} if created else {"fields": changed}
    audit.record("node.create" if created else "node.update", actor, obj=node, details=details)
    if credential_changed:
        audit.record(
            "node.credential_change", actor, obj=node, details={"credential": node.credential_kind}
        )
    if fingerprint_changed:
        audit.record(
            "node.host_key_pin", actor, obj=node, details={"fingerprint": node.host_key_fingerprint}
        )
    return node


@transaction.atomic
def delete_node(node: Node, actor: Actor) -> None:
    """Delete the node; its issued certificates stay in the ledger under its name."""
    lock_cluster(node.cluster_id)
    _stored(node)
    audit.record("node.delete", actor, obj=node)
    node.delete()
