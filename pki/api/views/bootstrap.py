"""REST endpoints for bootstrap tokens and join commands.

Thin: permission and object lookup, one service call, the response. Every response that carries
a secret (a token, a certificate key) is audited by the service; details name ids only.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import can
from nodes.models import NodeRole
from pki.api.serializers.bootstrap import (
    BootstrapTokenCreateSerializer,
    BootstrapTokenSerializer,
)
from pki.api.views.base import (
    ClusterView,
    cluster_filter,
    flag,
    unavailable,
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
        token = bootstrap_services.create_token(
            serializer.validated_data["cluster"],
            serializer.validated_data["request"],
            actor=Actor.from_request(request),
        )
        data = dict(BootstrapTokenSerializer(token).data)
        data["token"] = token.value  # shown this once; later only through an audited reveal
        return Response(data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def reveal(self, request: Request, pk: str | None = None) -> Response:
        token = bootstrap_services.reveal_token(
            self.get_object(), actor=Actor.from_request(request)
        )
        data = dict(BootstrapTokenSerializer(token).data)
        data["token"] = token.value
        data["secret_manifest"] = bootstrap_services.secret_manifest(token)
        data["kubeadm_command"] = bootstrap_services.token_create_command(token)
        return Response(data)

    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        token = bootstrap_services.revoke_token(
            self.get_object(), actor=Actor.from_request(request)
        )
        return Response(BootstrapTokenSerializer(token).data)


class JoinCommandView(ClusterView):
    """``GET ?role=worker|control-plane[&new_token=1]``: the join command, as kubeadm prints it.

    Returning it reveals a token (and for a control plane the certificate key): operator only
    for workers, admin only for control planes (403 with the reason otherwise), audited. With no
    usable token and no ``new_token``, or for a control plane without a certificate key
    (``POST …/certificate-key/`` makes one), the answer is 409 and says so.
    """

    method_permissions = {"GET": "reveal_tokens"}

    @extend_schema(
        parameters=[
            OpenApiParameter("role", OpenApiTypes.STR, enum=list(bootstrap_services.ROLES)),
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
            join = bootstrap_services.join_command(
                cluster,
                request.query_params.get("role", NodeRole.WORKER),
                new_token=new_token,
                actor=Actor.from_request(request),
            )
        except bootstrap_services.JoinUnavailable as error:
            raise unavailable(error) from None
        return Response(join.as_dict())


class CertificateKeyView(ClusterView):
    """``POST``: the certificate key that control-plane joins and kubeadm-certs use, made when
    none has an hour left (201, audited) or the current one (200). Ids and times only: the key
    itself leaves the panel in a join command or a kubeadm file."""

    method_permissions = {"POST": "manage_tokens"}

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT})
    def post(self, request: Request, pk: int) -> Response:
        key, created = bootstrap_services.ensure_certificate_key(
            self.cluster(pk), actor=Actor.from_request(request)
        )
        return Response(
            {"id": key.pk, "created_at": key.created_at, "expires_at": key.expires_at},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
