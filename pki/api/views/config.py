"""REST endpoints for kubeadm configuration: per-node kubeadm files, kubeadm-certs, kubeadm
settings, load-balancer configs and the static token file.

Thin: permission and object lookup, one service call, the response.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from clusterpanel.api.params import query_id
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import can
from clusterpanel.web.responses import download
from nodes.models import Node
from pki.api.serializers.binary_settings import BinarySettingsSerializer
from pki.api.serializers.config import (
    KubeadmSettingsSerializer,
    StaticTokenImportSerializer,
    StaticTokenSerializer,
)
from pki.api.views.base import (
    ClusterView,
    cluster_filter,
    flag,
    unavailable,
)
from pki.models.tokens import StaticToken
from pki.services import binary_settings
from pki.services import bootstrap as bootstrap_services

# YAML files sent as attachments (``application/yaml; charset=utf-8``, Content-Disposition
# attachment), not JSON strings. kubeadm's configuration is a stream of several documents, which
# no single schema value describes: a file. kubeadm-certs is one document, a Secret manifest.
YAML_FILE = OpenApiResponse(
    OpenApiTypes.BINARY, description="A YAML stream, sent as an attachment (UTF-8)."
)
SECRET_MANIFEST = OpenApiResponse(
    {"type": "object", "additionalProperties": True},
    description="A Kubernetes Secret manifest in YAML, sent as an attachment (UTF-8).",
)


class KubeadmConfigView(ClusterView):
    """``GET ?node=<id>[&new_token=1]``: kubeadm's configuration file for that node (YAML).

    It carries the usable token (a new one only with ``new_token``) and for a control-plane
    node the certificate key (made with ``POST …/certificate-key/``); 409 when one is missing.
    Control-plane files carry the certificate key: 403 with the reason for operators.
    """

    method_permissions = {"GET": "reveal_tokens"}

    @extend_schema(
        parameters=[
            OpenApiParameter("node", OpenApiTypes.INT, required=True),
            OpenApiParameter("new_token", OpenApiTypes.BOOL, description="create a fresh token"),
        ],
        responses={(200, "application/yaml"): YAML_FILE},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        cluster = self.cluster(pk)
        node_id = query_id(request, "node", "the node's id")
        if node_id is None:
            raise serializers.ValidationError({"node": ["give the node's id: ?node=<id>"]})
        node = Node.objects.filter(pk=node_id, cluster=cluster).first()
        if node is None:
            raise serializers.ValidationError({"node": [f"no node {node_id} in {cluster.name}"]})
        new_token = flag(request, "new_token")
        if new_token and not can(request.user, "manage_tokens"):
            raise PermissionDenied()
        try:
            config = bootstrap_services.kubeadm_config_for(
                cluster, node, new_token=new_token, actor=Actor.from_request(request)
            )
        except bootstrap_services.JoinUnavailable as error:
            raise unavailable(error) from None
        return download(config.text, f"kubeadm-{node.name}.yaml")


class KubeadmCertsView(ClusterView):
    """``GET``: the ``kube-system/kubeadm-certs`` Secret (CA keys, AES-GCM encrypted with the
    certificate key; 409 without CAs or without a key, which ``POST …/certificate-key/`` makes);
    admins only."""

    method_permissions = {"GET": "download_ca_keys"}

    @extend_schema(responses={(200, "application/yaml"): SECRET_MANIFEST})
    def get(self, request: Request, pk: int) -> HttpResponse:
        cluster = self.cluster(pk)
        try:
            text = bootstrap_services.download_kubeadm_certs(
                cluster, actor=Actor.from_request(request)
            )
        except bootstrap_services.JoinUnavailable as error:
            raise unavailable(error) from None
        return download(text, "kubeadm-certs.yaml")


class KubeadmSettingsView(ClusterView):
    """``GET`` / ``PUT`` / ``PATCH``: extra args per component and the audit policy."""

    method_permissions = {
        "GET": "view",
        "HEAD": "view",
        "OPTIONS": "view",
        "PUT": "edit_cluster_security",
        "PATCH": "edit_cluster_security",
    }

    @extend_schema(responses=KubeadmSettingsSerializer)
    def get(self, request: Request, pk: int) -> Response:
        settings = bootstrap_services.settings_for(self.cluster(pk))
        return Response(KubeadmSettingsSerializer(settings).data)

    def _write(self, request: Request, pk: int, partial: bool) -> Response:
        cluster = self.cluster(pk)
        serializer = KubeadmSettingsSerializer(
            bootstrap_services.settings_for(cluster), data=request.data, partial=partial
        )
        serializer.is_valid(raise_exception=True)
        settings = bootstrap_services.save_settings(
            cluster, serializer.validated_data, actor=Actor.from_request(request)
        )
        return Response(KubeadmSettingsSerializer(settings).data)

    @extend_schema(request=KubeadmSettingsSerializer, responses=KubeadmSettingsSerializer)
    def put(self, request: Request, pk: int) -> Response:
        return self._write(request, pk, partial=False)

    @extend_schema(request=KubeadmSettingsSerializer, responses=KubeadmSettingsSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        return self._write(request, pk, partial=True)


class BinarySettingsView(ClusterView):
    """``GET`` / ``PUT`` / ``PATCH``: a binary install's directories, service user, kube-proxy
    mode and signing profiles (``ca_config``: import them from a cfssl ca-config.json)."""

    method_permissions = {
        "GET": "view",
        "HEAD": "view",
        "OPTIONS": "view",
        "PUT": "edit_inventory",
        "PATCH": "edit_inventory",
    }

    @extend_schema(responses=BinarySettingsSerializer)
    def get(self, request: Request, pk: int) -> Response:
        settings = binary_settings.settings_of(self.cluster(pk))
        return Response(BinarySettingsSerializer(settings).data)

    def _write(self, request: Request, pk: int, partial: bool) -> Response:
        cluster = self.cluster(pk)
        serializer = BinarySettingsSerializer(
            binary_settings.settings_of(cluster), data=request.data, partial=partial
        )
        serializer.is_valid(raise_exception=True)
        settings = binary_settings.update(
            cluster, serializer.validated_data, actor=Actor.from_request(request)
        )
        return Response(BinarySettingsSerializer(settings).data)

    @extend_schema(request=BinarySettingsSerializer, responses=BinarySettingsSerializer)
    def put(self, request: Request, pk: int) -> Response:
        return self._write(request, pk, partial=False)

    @extend_schema(request=BinarySettingsSerializer, responses=BinarySettingsSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        return self._write(request, pk, partial=True)


class LoadBalancerView(ClusterView):
    """``GET``: nginx (stream) or haproxy configuration over the control-plane nodes."""

    method_permissions = {"GET": "view"}
    FILES = {"nginx": "nginx.conf", "haproxy": "haproxy.cfg"}

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request: Request, pk: int, kind: str) -> HttpResponse:
        cluster = self.cluster(pk)
        if kind not in self.FILES:
            raise serializers.ValidationError({"kind": ["must be nginx or haproxy"]})
        text = bootstrap_services.load_balancer_config(cluster, kind)
        return download(text, self.FILES[kind], "text/plain")


# --- static tokens -------------------------------------------------------------------------------


class StaticTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    """Rows of a cluster's static token file; the token values are write-only."""

    serializer_class = StaticTokenSerializer
    write_permission = "manage_tokens"

    def get_queryset(self) -> QuerySet[StaticToken]:
        queryset = StaticToken.objects.select_related("cluster")
        cluster = cluster_filter(self.request)
        return queryset if cluster is None else queryset.filter(cluster_id=cluster)

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        serializer.instance = bootstrap_services.add_static_token(
            data["cluster"],
            token=data["token"],
            user=data["user"],
            uid=data.get("uid", ""),
            groups=data.get("groups", []),
            actor=Actor.from_request(self.request),
        )

    def perform_destroy(self, instance: StaticToken) -> None:
        bootstrap_services.delete_static_token(instance, actor=Actor.from_request(self.request))


class StaticTokenImportView(ClusterView):
    """``POST {csv, replace}``: import an existing token file; bad lines are named by number."""

    method_permissions = {"POST": "manage_tokens"}

    @extend_schema(request=StaticTokenImportSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        serializer = StaticTokenImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = bootstrap_services.import_static_tokens(
            cluster,
            serializer.validated_data["csv"],
            replace=serializer.validated_data["replace"],
            actor=Actor.from_request(request),
        )
        return Response(
            {"created": result.created, "replaced": result.replaced, "warnings": result.warnings},
            status=status.HTTP_201_CREATED,
        )


class StaticTokenFileView(ClusterView):
    """``GET``: ``tokens.csv`` for ``--token-auth-file`` (every token in it: audited)."""

    method_permissions = {"GET": "reveal_tokens"}

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, pk: int) -> HttpResponse:
        cluster = self.cluster(pk)
        text = bootstrap_services.download_static_tokens(cluster, actor=Actor.from_request(request))
        return download(text, "tokens.csv", "text/csv")
