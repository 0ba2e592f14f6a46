"""REST endpoints for clusters and nodes. Thin: the serializer validates, a service writes."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clusterpanel.api.instances import unsaved_instance
from clusterpanel.api.params import query_id
from clusterpanel.security.audit import Actor
from clusterpanel.web.responses import download
from nodes import etcd_snapshots, host_keys, services
from nodes.alerts import services as alert_services
from nodes.api.alerts import AlertSettingsSerializer, RenewalPolicySerializer
from nodes.api.serializers import (
    ApproveHostKeySerializer,
    BastionHostKeyStateSerializer,
    ClusterSerializer,
    ComponentHealthSerializer,
    EtcdSnapshotSerializer,
    HealthEventSerializer,
    HostKeyStateSerializer,
    NodeSerializer,
    ScanAnswerSerializer,
)
from nodes.models import Cluster, ComponentHealth, EtcdSnapshot, HealthEvent, Node
from nodes.renewal import services as renewal_services

CLUSTER_NAME_MAX = Cluster._meta.get_field("name").max_length or 63


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "name",
                OpenApiTypes.STR,
                description="Only the cluster of exactly this name (an empty list when none).",
            )
        ]
    )
)
class ClusterViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    """The clusters, sorted by name; the list takes ``?name=<exact name>``."""

    serializer_class = ClusterSerializer
    action_permissions = {
        "destroy": "delete_cluster",
        "scan_bastion_host_key": "edit_cluster_security",
        "approve_bastion_host_key": "edit_cluster_security",
        # Reading: every role; saving: admins (beat then renews and rolls out for them).
        "renewal_policy": "view",
        "update_renewal_policy": "manage_renewal_policy",
        # Reading: every role; saving: operators and admins, as on the Alerts tab.
        "alert_settings": "view",
        "update_alert_settings": "edit_inventory",
    }

    def get_queryset(self) -> QuerySet[Cluster]:
        # The role counts as subqueries: prefetching the page's nodes read 1,000 full node rows
        # (facts, timestamps, credentials decrypted) to count them, most of the list's time.
        queryset = Cluster.objects.with_role_subcounts().order_by("name")
        # Only the list filters: a detail URL names its cluster by id already, and a stray
        # ``?name=`` there must not turn it into a 404.
        name = self.request.query_params.get("name")
        if self.action == "list" and name:
            # A cluster's name is a DNS label: a longer value or one with a NUL byte (which
            # PostgreSQL refuses to bind) names no cluster and needs no query.
            if len(name) > CLUSTER_NAME_MAX or "\0" in name:
                return queryset.none()
            queryset = queryset.filter(name=name)
        return queryset

    def perform_create(self, serializer: Any) -> None:
        services.create_cluster(unsaved_instance(serializer), Actor.from_request(self.request))

    def perform_update(self, serializer: Any) -> None:
        services.update_cluster(unsaved_instance(serializer), Actor.from_request(self.request))

    def perform_destroy(self, instance: Cluster) -> None:
        services.delete_cluster(instance, Actor.from_request(self.request))

    @extend_schema(request=None, responses=ComponentHealthSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def health(self, request: Request, pk: str | None = None) -> Response:
        """The latest result of every check of the cluster, by component, node and target."""
        cluster = self.get_object()
        rows = (
            ComponentHealth.objects.filter(cluster=cluster)
            .select_related("node")
            .order_by("component", "node__name", "target")
        )
        return Response(ComponentHealthSerializer(rows, many=True).data)

    @extend_schema(request=None, responses=AlertSettingsSerializer)
    @action(detail=True, methods=["get"], url_path="alert-settings", pagination_class=None)
    def alert_settings(self, request: Request, pk: str | None = None) -> Response:
        """Where the cluster's alerts go (the webhook secret only as ``has_webhook_secret``)."""
        config = alert_services.settings_of(self.get_object())
        return Response(AlertSettingsSerializer.answer(config))

    @extend_schema(request=AlertSettingsSerializer, responses=AlertSettingsSerializer)
    @alert_settings.mapping.put
    def update_alert_settings(self, request: Request, pk: str | None = None) -> Response:
        """Replace the cluster's alert targets (the Alerts tab's form, audited the same way); a
        webhook host that is or resolves to an internal address is a 400 naming webhook_url."""
        cluster = self.get_object()
        body = AlertSettingsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        config = alert_services.update_alert_settings(
            Actor.from_request(request),
            cluster,
            webhook_url=data["webhook_url"].strip(),
            email_recipients=data["email_recipients"],
            webhook_secret=data.get("webhook_secret"),
        )
        return Response(AlertSettingsSerializer.answer(config))

    @extend_schema(request=None, responses=RenewalPolicySerializer)
    @action(detail=True, methods=["get"], url_path="renewal-policy", pagination_class=None)
    def renewal_policy(self, request: Request, pk: str | None = None) -> Response:
        """The cluster's certificate renewal policy (off, with its defaults, when never saved)."""
        row = renewal_services.policy_of(self.get_object())
        return Response(RenewalPolicySerializer.answer(row))

    @extend_schema(request=RenewalPolicySerializer, responses=RenewalPolicySerializer)
    @renewal_policy.mapping.put
    def update_renewal_policy(self, request: Request, pk: str | None = None) -> Response:
        """Replace the policy (admins only): the saving admin is the one beat acts for."""
        cluster = self.get_object()
        body = RenewalPolicySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row = renewal_services.update_policy(
            Actor.from_request(request), cluster, dict(body.validated_data)
        )
        return Response(RenewalPolicySerializer.answer(row))

    @extend_schema(request=None, responses=BastionHostKeyStateSerializer)
    @action(detail=True, methods=["post"], url_path="bastion-host-key/scan")
    def scan_bastion_host_key(self, request: Request, pk: str | None = None) -> Response:
        """Read the bastion's host key and keep it pending (409 when it cannot be reached)."""
        cluster = self.get_object()
        host_keys.scan_bastion_host_key(Actor.from_request(request), cluster)
        return Response(BastionHostKeyStateSerializer(cluster).data)

    @extend_schema(request=ApproveHostKeySerializer, responses=BastionHostKeyStateSerializer)
    @action(detail=True, methods=["post"], url_path="bastion-host-key/approve")
    def approve_bastion_host_key(self, request: Request, pk: str | None = None) -> Response:
        """Pin the bastion's scanned key: 400 naming ``fingerprint`` unless it is exactly the
        scanned key's, 409 when no scanned key waits."""
        cluster = self.get_object()
        body = ApproveHostKeySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fingerprint = body.validated_data["fingerprint"]
        host_keys.approve_bastion_host_key(Actor.from_request(request), cluster, fingerprint)
        return Response(BastionHostKeyStateSerializer(cluster).data)


class NodeViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    serializer_class = NodeSerializer
    action_permissions = {
        "scan_host_key": "approve_host_keys",
        "approve_host_key": "approve_host_keys",
    }

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

    @extend_schema(request=None, responses=ScanAnswerSerializer)
    @action(detail=True, methods=["post"], url_path="host-key/scan")
    def scan_host_key(self, request: Request, pk: str | None = None) -> Response:
        """Read the key the node presents and keep it pending for approval (409 when the host
        cannot be reached). A key equal to the pinned one leaves the node pinned."""
        node = self.get_object()
        scan = host_keys.scan_host_key(Actor.from_request(request), node)
        data = dict(HostKeyStateSerializer(node).data)
        data.update(scanned_fingerprint=scan.key.fingerprint, matches_pinned=scan.matches_pinned)
        return Response(data)

    @extend_schema(request=ApproveHostKeySerializer, responses=HostKeyStateSerializer)
    @action(detail=True, methods=["post"], url_path="host-key/approve")
    def approve_host_key(self, request: Request, pk: str | None = None) -> Response:
        """Pin the scanned key: 400 naming ``fingerprint`` unless it is exactly the scanned
        key's, 409 when no scanned key waits."""
        node = self.get_object()
        body = ApproveHostKeySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        host_keys.approve_host_key(
            Actor.from_request(request), node, body.validated_data["fingerprint"]
        )
        return Response(HostKeyStateSerializer(node).data)


class EtcdSnapshotViewSet(viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    """The kept etcd snapshots (``?cluster=<id>``), newest first; their content is an admin
    download, audited."""

    serializer_class = EtcdSnapshotSerializer
    action_permissions = {"download": "download_etcd_snapshots"}

    def get_queryset(self) -> QuerySet[EtcdSnapshot]:
        queryset = EtcdSnapshot.objects.select_related("cluster").order_by("-taken_at", "-pk")
        cluster = query_id(self.request, "cluster", "a cluster id")
        if cluster is not None:
            queryset = queryset.filter(cluster_id=cluster)
        return queryset

    @extend_schema(request=None, responses=OpenApiTypes.BINARY)
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The snapshot as ``etcdctl snapshot save`` wrote it (403 unless admin)."""
        snapshot = self.get_object()
        data = etcd_snapshots.download_snapshot(Actor.from_request(request), snapshot)
        name = f"{snapshot.cluster.name}-etcd-{snapshot.taken_at:%Y%m%dT%H%M%SZ}.db"
        return download(data, name, "application/octet-stream")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "cluster", int, description="Only this cluster's transitions (a cluster id)."
            )
        ]
    )
)
class HealthEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Health transitions (``?cluster=<id>``), newest first."""

    serializer_class = HealthEventSerializer

    def get_queryset(self) -> QuerySet[HealthEvent]:
        queryset = HealthEvent.objects.order_by("-at", "-pk")
        cluster = query_id(self.request, "cluster", "a cluster id")
        if cluster is not None:
            queryset = queryset.filter(cluster_id=cluster)
        return queryset
