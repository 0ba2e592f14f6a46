"""REST endpoints for bootstrap tokens, join commands, kubeadm configuration and static tokens.

Thin: permission and object lookup, a call into ``pki.token_services``, an audit event for every
response that carries a secret (a token, a certificate key, the kubeadm-certs payload, the static
token file), and the response. Audit details name ids only, never a secret.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clusterpanel import audit
from clusterpanel.api.params import query_id
from clusterpanel.roles import can
from nodes.models import Cluster, Node
from pki import token_services
from pki.api.token_serializers import (
    BootstrapTokenCreateSerializer,
    BootstrapTokenSerializer,
    KubeadmSettingsSerializer,
    StaticTokenImportSerializer,
    StaticTokenSerializer,
)
from pki.models.tokens import BootstrapToken, StaticToken, TokenStatus

YAML = "application/yaml; charset=utf-8"


class Unavailable(APIException):
    """409: the request is fine but the cluster's state does not allow it (no usable token)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "Not available in the cluster's current state."
    default_code = "unavailable"


def _unavailable(error: token_services.JoinUnavailable) -> Unavailable:
    """The 409 answer; a missing token comes with the API's way out."""
    if isinstance(error, token_services.NoUsableToken):
        return Unavailable(f"{error} Create a token, or ask for a new one with new_token=1.")
    return Unavailable(str(error))


class NeedsPermission(permissions.BasePermission):
    """For plain API views: the permission named by the view's ``required_permission``."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        needed = getattr(view, "required_permission", {}).get(request.method, "view")
        return can(user, needed)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in {"1", "true", "yes"}


def _cluster_filter(request: Request) -> int | None:
    return query_id(request, "cluster", "a cluster id")


def _text(text: str, filename: str, content_type: str = YAML) -> HttpResponse:
    response = HttpResponse(text, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _validation(error: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(error.message_dict)


# --- bootstrap tokens ----------------------------------------------------------------------------


class BootstrapTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    """Tokens: list and detail show ids only; create returns the full token once; ``reveal``
    shows it again (audited) with its Secret manifest and ``kubeadm token create`` line."""

    serializer_class = BootstrapTokenSerializer
    action_permissions = {
        "create": "manage_tokens",
        "revoke": "manage_tokens",
        "reveal": "reveal_tokens",
    }

    def get_queryset(self) -> QuerySet[BootstrapToken]:
        queryset = BootstrapToken.objects.select_related("cluster", "created_by", "revoked_by")
        cluster = _cluster_filter(self.request)
        if cluster is not None:
            queryset = queryset.filter(cluster_id=cluster)
        wanted = self.request.query_params.get("status")
        if wanted is not None:
            if wanted not in TokenStatus.values:
                raise serializers.ValidationError(
                    {"status": [f"must be one of {', '.join(TokenStatus.values)}"]}
                )
            queryset = queryset.with_status(wanted)
        return queryset

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:  # type: ignore[type-arg]
        if self.action == "create":
            return BootstrapTokenCreateSerializer
        return BootstrapTokenSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cluster = serializer.validated_data["cluster"]
        try:
            with transaction.atomic():
                token = token_services.create_token(
                    cluster, serializer.validated_data["request"], user=request.user
                )
                audit.record(
                    "token.create",
                    request=request,
                    obj=token,
                    details={"token_id": token.token_id, "ttl_seconds": token.ttl.total_seconds()},
                )
        except DjangoValidationError as error:
            raise _validation(error) from None
        data = dict(BootstrapTokenSerializer(token).data)
        data["token"] = token.value  # shown this once; later only through an audited reveal
        return Response(data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def reveal(self, request: Request, pk: str | None = None) -> Response:
        token = self.get_object()
        audit.record("token.reveal", request=request, obj=token, details={"token_id": token.pk})
        data = dict(BootstrapTokenSerializer(token).data)
        data["token"] = token.value
        data["secret_manifest"] = token_services.secret_manifest(token)
        data["kubeadm_command"] = token_services.token_create_command(token)
        return Response(data)

    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        token = self.get_object()
        if token.revoked_at is None:
            with transaction.atomic():
                token.revoke(request.user)
                audit.record("token.revoke", request=request, obj=token)
        return Response(BootstrapTokenSerializer(token).data)


# --- per-cluster views ---------------------------------------------------------------------------


class _ClusterView(APIView):
    permission_classes = [NeedsPermission]
    required_permission: dict[str, str] = {}

    def cluster(self, pk: int) -> Cluster:
        return get_object_or_404(Cluster, pk=pk)


class JoinCommandView(_ClusterView):
    """``GET ?role=worker|control-plane[&new_token=1]``: the join command, as kubeadm prints it.

    Returning it reveals a token (and for a control plane the certificate key): operator only,
    audited. With no usable token and no ``new_token`` the answer is 409 and says so.
    """

    required_permission = {"GET": "reveal_tokens"}

    @extend_schema(
        parameters=[
            OpenApiParameter("role", OpenApiTypes.STR, enum=["worker", "control-plane"]),
            OpenApiParameter("new_token", OpenApiTypes.BOOL, description="create a fresh token"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        new_token = _flag(request, "new_token")
        if new_token and not can(request.user, "manage_tokens"):
            raise PermissionDenied()
        try:
            with transaction.atomic():
                join = token_services.join_command(
                    cluster,
                    request.query_params.get("role", "worker"),
                    new_token=new_token,
                    user=request.user,
                )
                _audit_join(request, cluster, join)
        except DjangoValidationError as error:
            raise _validation(error) from None
        except token_services.JoinUnavailable as error:
            raise _unavailable(error) from None
        return Response(join.as_dict())


def _audit_join(request: Any, cluster: Cluster, join: token_services.JoinCommand) -> None:
    if join.token_created:
        audit.record("token.create", request=request, obj=join.token)
    audit.record(
        "join_command.reveal",
        request=request,
        obj=join.token,
        cluster=cluster,
        details={
            "role": join.role,
            "token_id": join.token.token_id,
            "certificate_key_id": join.certificate_key.pk if join.certificate_key else None,
        },
    )


class KubeadmConfigView(_ClusterView):
    """``GET ?node=<id>[&new_token=1]``: kubeadm's configuration file for that node (YAML)."""

    required_permission = {"GET": "reveal_tokens"}

    @extend_schema(
        parameters=[
            OpenApiParameter("node", OpenApiTypes.INT, required=True),
            OpenApiParameter("new_token", OpenApiTypes.BOOL, description="create a fresh token"),
        ],
        responses={(200, "application/yaml"): OpenApiTypes.STR},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        cluster = self.cluster(pk)
        node_id = query_id(request, "node", "the node's id")
        if node_id is None:
            raise serializers.ValidationError({"node": ["give the node's id: ?node=<id>"]})
        node = Node.objects.filter(pk=node_id, cluster=cluster).first()
        if node is None:
            raise serializers.ValidationError({"node": [f"no node {node_id} in {cluster.name}"]})
        new_token = _flag(request, "new_token")
        if new_token and not can(request.user, "manage_tokens"):
            raise PermissionDenied()
        try:
            config = token_services.audited_kubeadm_config(
                request, cluster, node, new_token=new_token
            )
        except DjangoValidationError as error:
            raise _validation(error) from None
        except token_services.JoinUnavailable as error:
            raise _unavailable(error) from None
        return _text(config.text, f"kubeadm-{node.name}.yaml")


class KubeadmCertsView(_ClusterView):
    """``GET``: the ``kube-system/kubeadm-certs`` Secret (CA keys, AES-GCM encrypted)."""

    required_permission = {"GET": "download_bundle"}

    @extend_schema(responses={(200, "application/yaml"): OpenApiTypes.STR})
    def get(self, request: Request, pk: int) -> HttpResponse:
        cluster = self.cluster(pk)
        try:
            text = token_services.audited_kubeadm_certs(request, cluster)
        except token_services.JoinUnavailable as error:
            raise _unavailable(error) from None
        return _text(text, "kubeadm-certs.yaml")


class KubeadmSettingsView(_ClusterView):
    """``GET`` / ``PUT`` / ``PATCH``: extra args per component and the audit policy."""

    required_permission = {
        "GET": "view",
        "HEAD": "view",
        "OPTIONS": "view",
        "PUT": "edit_inventory",
        "PATCH": "edit_inventory",
    }

    @extend_schema(responses=KubeadmSettingsSerializer)
    def get(self, request: Request, pk: int) -> Response:
        settings = token_services.settings_for(self.cluster(pk))
        return Response(KubeadmSettingsSerializer(settings).data)

    def _write(self, request: Request, pk: int, partial: bool) -> Response:
        cluster = self.cluster(pk)
        serializer = KubeadmSettingsSerializer(
            token_services.settings_for(cluster), data=request.data, partial=partial
        )
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            settings = token_services.save_settings(cluster, serializer.validated_data)
            audit.record(
                "kubeadm_settings.update",
                request=request,
                obj=cluster,
                details={"fields": sorted(serializer.validated_data)},
            )
        return Response(KubeadmSettingsSerializer(settings).data)

    @extend_schema(request=KubeadmSettingsSerializer, responses=KubeadmSettingsSerializer)
    def put(self, request: Request, pk: int) -> Response:
        return self._write(request, pk, partial=False)

    @extend_schema(request=KubeadmSettingsSerializer, responses=KubeadmSettingsSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        return self._write(request, pk, partial=True)


class LoadBalancerView(_ClusterView):
    """``GET``: nginx (stream) or haproxy configuration over the control-plane nodes."""

    required_permission = {"GET": "view"}
    FILES = {"nginx": "nginx.conf", "haproxy": "haproxy.cfg"}

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request: Request, pk: int, kind: str) -> HttpResponse:
        cluster = self.cluster(pk)
        if kind not in self.FILES:
            raise serializers.ValidationError({"kind": ["must be nginx or haproxy"]})
        try:
            text = token_services.load_balancer_config(cluster, kind)
        except DjangoValidationError as error:
            raise _validation(error) from None
        return _text(text, self.FILES[kind], "text/plain; charset=utf-8")


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
        cluster = _cluster_filter(self.request)
        return queryset if cluster is None else queryset.filter(cluster_id=cluster)

    @transaction.atomic
    def perform_create(self, serializer: Any) -> None:
        row = serializer.save()
        audit.record("static_token.create", request=self.request, obj=row)

    @transaction.atomic
    def perform_destroy(self, instance: StaticToken) -> None:
        audit.record("static_token.delete", request=self.request, obj=instance)
        instance.delete()


class StaticTokenImportView(_ClusterView):
    """``POST {csv, replace}``: import an existing token file; bad lines are named by number."""

    required_permission = {"POST": "manage_tokens"}

    @extend_schema(request=StaticTokenImportSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        serializer = StaticTokenImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                result = token_services.import_static_tokens(
                    cluster,
                    serializer.validated_data["csv"],
                    replace=serializer.validated_data["replace"],
                )
                audit.record(
                    "static_token.import",
                    request=request,
                    obj=cluster,
                    details={"created": result.created, "replaced": result.replaced},
                )
        except DjangoValidationError as error:
            raise _validation(error) from None
        return Response(
            {"created": result.created, "replaced": result.replaced, "warnings": result.warnings},
            status=status.HTTP_201_CREATED,
        )


class StaticTokenFileView(_ClusterView):
    """``GET``: ``tokens.csv`` for ``--token-auth-file`` (every token in it: audited)."""

    required_permission = {"GET": "reveal_tokens"}

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, pk: int) -> HttpResponse:
        cluster = self.cluster(pk)
        text = token_services.render_static_tokens(cluster)
        audit.record(
            "static_token.download",
            request=request,
            obj=cluster,
            details={"entries": cluster.static_tokens.count()},
        )
        return _text(text, "tokens.csv", "text/csv; charset=utf-8")
