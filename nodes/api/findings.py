"""REST endpoints of the certificate findings and the fleet expiry table."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clusterpanel.security.audit import Actor
from nodes.health import finding_services as findings
from nodes.health.findings import Finding, Severity


class FindingSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """An open finding: what was found where, and the job that fixes it."""

    silenced = serializers.BooleanField(read_only=True)
    fix_url = serializers.SerializerMethodField()

    class Meta:
        model = Finding
        fields = [
            "id",
            "cluster",
            "node",
            "kind",
            "severity",
            "path",
            "message",
            "suggestion",
            "action_kind",
            "fix_url",
            "first_seen",
            "last_seen",
            "silenced_until",
            "silenced",
        ]
        read_only_fields = fields

    def get_fix_url(self, finding: Finding) -> str:
        """The launch page of the job that fixes it ("" when no job does)."""
        return findings.fix_url(finding)


class SilenceSerializer(serializers.Serializer):  # type: ignore[type-arg]
    until = serializers.DateTimeField(
        help_text=f"When the silence ends: in the future, at most "
        f"{findings.MAX_SILENCE.days} days ahead (ISO 8601)."
    )


class FleetCertificateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=[findings.SCANNED, findings.LEDGER],
        help_text="scanned: read on the node; ledger: issued by the panel, node not scanned yet",
    )
    cluster = serializers.IntegerField(source="cluster_id")
    cluster_name = serializers.CharField()
    node = serializers.IntegerField(source="node_id", allow_null=True)
    node_name = serializers.CharField()
    path = serializers.CharField()
    subject = serializers.CharField()
    not_after = serializers.DateTimeField()
    days_left = serializers.IntegerField()
    band = serializers.ChoiceField(choices=["expired", "critical", "warning", "ok"])


def _check_filters(request: Request) -> findings.FindingFilters:
    filters, errors = findings.parse_finding_filters(request.query_params)
    if errors:
        raise serializers.ValidationError({name: [reason] for name, reason in errors.items()})
    return filters


@extend_schema(
    parameters=[
        OpenApiParameter("cluster", OpenApiTypes.INT, description="a cluster id"),
        OpenApiParameter("severity", OpenApiTypes.STR, enum=list(Severity.values)),
        OpenApiParameter("kind", OpenApiTypes.STR, enum=list(findings.FINDING_KINDS)),
        OpenApiParameter(
            "show_silenced", OpenApiTypes.BOOL, description="include silenced findings"
        ),
    ]
)
class FindingViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Open certificate findings, the most severe first; silenced ones only when asked."""

    serializer_class = FindingSerializer
    action_permissions = {"silence": "silence_findings"}

    def get_queryset(self) -> QuerySet[Finding]:
        if self.action == "silence":
            return Finding.objects.open().select_related("cluster", "node")
        return findings.open_findings(_check_filters(self.request))

    @extend_schema(parameters=[], request=SilenceSerializer, responses=FindingSerializer)
    @action(detail=True, methods=["post"])
    def silence(self, request: Request, pk: str | None = None) -> Response:
        """Hide the finding until ``until`` (400 naming ``until`` unless it is in the future
        and at most 90 days ahead)."""
        finding = self.get_object()
        body = SilenceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        silenced = findings.silence_finding(
            Actor.from_request(request), finding, body.validated_data["until"]
        )
        return Response(FindingSerializer(silenced).data)


class FleetCertificateView(generics.GenericAPIView):  # type: ignore[type-arg]
    """Every scanned certificate on every node, plus the ledger's for nodes not scanned yet,
    soonest NotAfter first."""

    serializer_class = FleetCertificateSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "expiring_within_days",
                OpenApiTypes.INT,
                description=f"only those expiring within this many days "
                f"(0 to {findings.MAX_WITHIN_DAYS})",
            )
        ],
        responses=FleetCertificateSerializer(many=True),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        within, error = findings.parse_within_days(request.query_params.get("expiring_within_days"))
        if error:
            raise serializers.ValidationError({"expiring_within_days": [error]})
        page = self.paginate_queryset(findings.fleet_rows(within))
        assert page is not None
        rows = findings.fleet_page(list(page))
        return self.get_paginated_response(FleetCertificateSerializer(rows, many=True).data)
