"""REST endpoints for clusters and nodes."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from rest_framework import viewsets

from clusterpanel.api.params import query_id
from clusterpanel.security import audit
from nodes.api.serializers import ClusterSerializer, NodeSerializer
from nodes.models import Cluster, Node


class ClusterViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    serializer_class = ClusterSerializer
    action_permissions = {"destroy": "delete_cluster"}

    def get_queryset(self) -> QuerySet[Cluster]:
        return Cluster.objects.prefetch_related("nodes").order_by("name")

    @transaction.atomic
    def perform_create(self, serializer: Any) -> None:
        cluster = serializer.save()
        audit.record("cluster.create", request=self.request, obj=cluster)

    @transaction.atomic
    def perform_update(self, serializer: Any) -> None:
        cluster = serializer.save()
        audit.record(
            "cluster.update",
            request=self.request,
            obj=cluster,
            details={"fields": sorted(serializer.validated_data)},
        )

    @transaction.atomic
    def perform_destroy(self, instance: Cluster) -> None:
        audit.record("cluster.delete", request=self.request, obj=instance)
        instance.delete()


class NodeViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    serializer_class = NodeSerializer

    def get_queryset(self) -> QuerySet[Node]:
        queryset = Node.objects.select_related("cluster").order_by("cluster__name", "name")
        cluster = query_id(self.request, "cluster", "a cluster id")
        if cluster is not None:
            queryset = queryset.filter(cluster_id=cluster)
        return queryset

    def _save(self, serializer: Any, action: str) -> None:
        """Save and audit; field names only, never credential values."""
        previous = serializer.instance.host_key_fingerprint if serializer.instance else ""
        node: Node = serializer.save()
        pinned = node.host_key_fingerprint != previous
        if pinned:
            node.approve_fingerprint(self.request.user)
            node.save(
                update_fields=[
                    "host_key_approved_at", "host_key_approved_by", "host_key_type", "host_key"
                ]
            )  # fmt: skip
        details = {"fields": sorted(serializer.validated_data)} if action == "node.update" else {}
        audit.record(action, request=self.request, obj=node, details=details)
        if serializer.credential_changed:
            audit.record(
                "node.credential_change",
                request=self.request,
                obj=node,
                details={"credential": node.credential_kind},
            )
        if pinned:
            audit.record(
                "node.host_key_pin",
                request=self.request,
                obj=node,
                details={"fingerprint": node.host_key_fingerprint},
            )

    @transaction.atomic
    def perform_create(self, serializer: Any) -> None:
        self._save(serializer, "node.create")

    @transaction.atomic
    def perform_update(self, serializer: Any) -> None:
        self._save(serializer, "node.update")

    @transaction.atomic
    def perform_destroy(self, instance: Node) -> None:
        audit.record("node.delete", request=self.request, obj=instance)
        instance.delete()
