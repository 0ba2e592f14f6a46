"""REST endpoints for bootstrap tokens and join commands.

Thin: permission and object lookup, one service call, the response. Every response that carries
a secret (a token, a certificate key) is audited by the service; details name ids only.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from clusterpanel.security import audit
from clusterpanel.security.roles import can
from nodes.models import Cluster
from pki.api.serializers.bootstrap import (
    BootstrapTokenCreateSerializer,
    BootstrapTokenSerializer,
)
from pki.api.views.base import (
    ClusterView,
    cluster_filter,
    flag,
    unavailable,
    validation_error,
)
from pki.models.tokens import BootstrapToken, TokenStatus
from pki.services import bootstrap as bootstrap_services

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
        cluster = cluster_filter(self.request)
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
                token = bootstrap_services.create_token(
                    cluster, serializer.validated_data["request"], user=request.user
                )
                audit.record(
                    "token.create",
                    request=request,
                    obj=token,
                    details={"token_id": token.token_id, "ttl_seconds": token.ttl.total_seconds()},
                )
        except DjangoValidationError as error:
            raise validation_error(error) from None
        data = dict(BootstrapTokenSerializer(token).data)
        data["token"] = token.value  # shown this once; later only through an audited reveal
        return Response(data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def reveal(self, request: Request, pk: str | None = None) -> Response:
        token = self.get_object()
        audit.record("token.reveal", request=request, obj=token, details={"token_id": token.pk})
        data = dict(BootstrapTokenSerializer(token).data)
        data["token"] = token.value
        data["secret_manifest"] = bootstrap_services.secret_manifest(token)
        data["kubeadm_command"] = bootstrap_services.token_create_command(token)
        return Response(data)

    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        token = self.get_object()
        if token.revoked_at is None:
            with transaction.atomic():
                token.revoke(request.user)
                audit.record("token.revoke", request=request, obj=token)
        return Response(BootstrapTokenSerializer(token).data)


class JoinCommandView(ClusterView):
    """``GET ?role=worker|control-plane[&new_token=1]``: the join command, as kubeadm prints it.

    Returning it reveals a token (and for a control plane the certificate key): operator only,
    audited. With no usable token and no ``new_token`` the answer is 409 and says so.
    """

    method_permissions = {"GET": "reveal_tokens"}

    @extend_schema(
        parameters=[
            OpenApiParameter("role", OpenApiTypes.STR, enum=["worker", "control-plane"]),
            OpenApiParameter("new_token", OpenApiTypes.BOOL, description="create a fresh token"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, pk: int) -> Response:
        cluster = self.cluster(pk)
        new_token = flag(request, "new_token")
        if new_token and not can(request.user, "manage_tokens"):
            raise PermissionDenied()
        try:
            with transaction.atomic():
                join = bootstrap_services.join_command(
                    cluster,
                    request.query_params.get("role", "worker"),
                    new_token=new_token,
                    user=request.user,
                )
                _audit_join(request, cluster, join)
        except DjangoValidationError as error:
            raise validation_error(error) from None
        except bootstrap_services.JoinUnavailable as error:
            raise unavailable(error) from None
        return Response(join.as_dict())


def _audit_join(request: Any, cluster: Cluster, join: bootstrap_services.JoinCommand) -> None:
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
