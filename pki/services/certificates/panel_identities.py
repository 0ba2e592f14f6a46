"""The panel's own client identity for the API server's health endpoints (``clusterpanel:health``,
``pki.domain.health_identity``), kept in the ledger like every certificate: a row of kind
``panel`` without a node, its key encrypted. No bundle, kubeconfig or download reads that kind,
and the user name is reserved by the identity policy, so it stays the panel's alone.

It is issued when a health round first needs it (the cluster CA exists), and issued again when
the cluster CA was replaced or two thirds of its lifetime have passed, so that the health checks
never meet an expired or foreign certificate of their own; renewing the whole tree renews it too
(``issuing.renew``).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes.models import Cluster
from pki.domain import health_identity as rules
from pki.domain import kubeadm
from pki.models.certificates import Certificate, CertificateAuthority, CertificateKind
from pki.services.certificates.issuing import sign_specs
from pki.services.certificates.store import active_cas, lock_cluster, store_leaf

# Issue anew once this share of the lifetime has passed (the renewal policy's rule for leaves).
RENEW_AFTER = 2 / 3


def _active(cluster: Cluster) -> Certificate | None:
    return (
        Certificate.objects.active()
        .filter(cluster=cluster, kind=CertificateKind.PANEL, name=rules.LEDGER_NAME)
        .select_related("authority")
        .order_by("-created_at", "-pk")
        .first()
    )


def _due(row: Certificate, ca: CertificateAuthority, now: dt.datetime) -> bool:
    if row.authority_id != ca.pk:
        return True  # the cluster CA was replaced: the API servers no longer trust it
    return now >= row.not_before + (row.not_after - row.not_before) * RENEW_AFTER


def health_identity(cluster: Cluster, *, now: dt.datetime | None = None) -> Certificate | None:
    """The active health identity of ``cluster``, issued or issued anew when needed; None
    while the cluster has no CA (or one about to expire, which nothing can be signed with)."""
    now = now or timezone.now()
    ca = active_cas(cluster).get(kubeadm.CA)
    if ca is None:
        return None
    row = _active(cluster)
    if row is not None and not _due(row, ca, now):
        return row
    with transaction.atomic():
        lock_cluster(cluster)
        # Again under the cluster's lock: a concurrent round may have issued it meanwhile.
        ca = active_cas(cluster).get(kubeadm.CA)
        row = _active(cluster)
        if ca is None or (row is not None and not _due(row, ca, now)):
            return row
        # Never past the CA: then the new certificate would be refused by sign_specs.
        days = min(cluster.certificate_validity_days, (ca.not_after - now).days - 1)
        if days < 1:
            return row
        spec = rules.certificate_spec(dt.timedelta(days=days))
        ((_, cert, key),) = sign_specs(cluster, {kubeadm.CA: ca}, [spec])
        new = store_leaf(
            cluster, ca, cert, key, name=rules.LEDGER_NAME, kind=CertificateKind.PANEL,
            usages=spec.usages,
        )  # fmt: skip
        if row is not None:
            row.mark_superseded(new)
        audit.record(
            "pki.health_identity.issue",
            Actor.for_schedule(),
            obj=new,
            cluster=cluster,
            details={
                "user": rules.USER,
                "serial": new.serial,
                "replaces": row.serial if row is not None else "",
            },
        )
    return new
