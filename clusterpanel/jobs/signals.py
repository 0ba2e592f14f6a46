"""A cluster or node with an active job cannot be deleted under it.

Connected by model label (``"nodes.Cluster"``), so the platform imports no app. The refusal is
a ``Conflict``: the API and the pages answer 409 naming the job.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import pre_delete

from clusterpanel.errors import Conflict
from clusterpanel.jobs.models import Job


def _refuse_busy_cluster(sender: Any, instance: Any, **kwargs: Any) -> None:
    job = Job.objects.active().filter(cluster_id=instance.pk).order_by("pk").first()
    if job is not None:
        raise Conflict(
            f"Cluster {instance.name} cannot be deleted: {job} is {job.status} on it. "
            "Cancel the job or wait until it ends."
        )


def _refuse_busy_node(sender: Any, instance: Any, **kwargs: Any) -> None:
    job = Job.objects.active().filter(nodes=instance.pk).order_by("pk").first()
    if job is not None:
        raise Conflict(
            f"Node {instance.name} cannot be deleted: {job} is {job.status} on it. "
            "Cancel the job or wait until it ends."
        )


def connect() -> None:
    pre_delete.connect(_refuse_busy_cluster, sender="nodes.Cluster", dispatch_uid="jobs.cluster")
    pre_delete.connect(_refuse_busy_node, sender="nodes.Node", dispatch_uid="jobs.node")
