"""REST endpoints for clusters and nodes. Thin: the serializer validates, a service writes."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import viewsets

from clusterpanel.api.instances import unsaved_instance
from clusterpanel.api.params import query_id
from clusterpanel.security.audit import Actor
from nodes import services
from nodes.api.serializers import ClusterSerializer, NodeSerializer
from nodes.models import Cluster, Node


class ClusterViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    serializer_class = ClusterSerializer
    action_permissions = {"destroy": "delete_cluster"}

    def get_queryset(self) -> QuerySet[Cluster]:
        return Cluster.objects.prefetch_related("nodes").order_by("name")

    def perform_create(self, serializer: Any) -> None:
        services.create_cluster(unsaved_instance(serializer), Actor.from_request(self.request))

    def perform_update(self, serializer: Any) -> None:
        services.update_cluster(unsaved_instance(serializer), Actor.from_request(self.request))

    def perform_destroy(self, instance: Cluster) -> None:
        services.delete_cluster(instance, Actor.from_request(self.request))


class NodeViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    serializer_class = NodeSerializer

    def get_queryset(self) -> QuerySet[Node]:
        queryset = Node.objects.select_related("cluster").order_by("cluster__name", "name")
        cluster = query_id(self.request, "cluster", "a cluster id")
        if cluster is not None:
            queryset = queryset.filter(cluster_id=cluster)
        return queryset

    def perform_create(self, serializer: Any) -> None:
        services.save_node(unsaved_instance(serializer), Actor.from_request(self.request))

    def perform_update(self, serializer: Any) -> None:
        services.save_node(unsaved_instance(serializer), Actor.from_request(self.request))

    def perform_destroy(self, instance: Node) -> None:
        services.delete_node(instance, Actor.from_request(self.request))
