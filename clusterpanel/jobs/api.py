"""REST endpoints of jobs: launch, preview, list, detail, log, cancel, retry.

Thin: the serializer checks types, a service validates and writes. ``traceback`` is shown to
admins only (null for everyone else); the log is read in pieces, ``?after=<seq>``.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import Prefetch, QuerySet
from django.utils.functional import lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from clusterpanel.api.fields import StrictCharField, StrictIntegerField
from clusterpanel.api.params import MAX_ID, query_id, query_int
from clusterpanel.jobs import registry, services
from clusterpanel.jobs.models import TERMINAL_STATUSES, Job, JobLogChunk, JobStatus, JobStep
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import Role, role_of


def is_admin(user: Any) -> bool:
    """Tracebacks are for admins: they may name paths and internals of the panel."""
    return role_of(user) >= Role.ADMIN


# Chunks per log answer; a reader asks again from ``next``.
LOG_PAGE = 500


def _params_help() -> str:
    """Each registered kind and its parameters, read when the schema is generated (the apps
    register their kinds after this module is imported)."""
    lines = ["The kind's parameters (an unknown one is a 400 naming it). By kind:"]
    for kind in registry.kinds():
        fields = "; ".join(
            f"`{f.name}`{' (integer)' if f.number else ''}: {f.label}" for f in kind.param_fields
        )
        lines.append(f"- `{kind.name}` ({kind.label}): {fields or 'none'}")
    return "\n".join(lines)


class JobLaunchSerializer(serializers.Serializer):  # type: ignore[type-arg]
    cluster = StrictIntegerField(min_value=1, max_value=MAX_ID)
    kind = StrictCharField(max_length=64)
    nodes = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        max_length=services.MAX_NODES,
        help_text="Node ids of the cluster; all its nodes when left out.",
    )
    params = serializers.DictField(required=False, help_text=lazy(_params_help, str)())

    def validate_params(self, value: Any) -> Any:
        if not isinstance(self.initial_data.get("params", {}), dict):
            raise serializers.ValidationError("must be an object")
        return value


class JobStepSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    node = serializers.CharField(source="node_name", allow_null=True)
    node_id = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    exit_code = serializers.IntegerField(allow_null=True)

    class Meta:
        model = JobStep
        fields = [
            "position", "phase", "name", "node", "node_id", "status", "exit_code", "started_at",
            "finished_at", "message", "stdout_bytes", "stderr_bytes", "dropped_bytes",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, instance: JobStep) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        data["node"] = instance.node_name or None
        return data


class CheckSerializer(serializers.Serializer):  # type: ignore[type-arg]
    node = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    status = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    ignored = serializers.BooleanField(
        help_text="it failed and the job was told to ignore it: shown as a warning"
    )


class JobSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    cluster = serializers.IntegerField(source="cluster_id", allow_null=True)
    nodes = serializers.SerializerMethodField()
    launched_by = serializers.CharField(source="launched_by_name")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    retry_of = serializers.IntegerField(source="retry_of_id", allow_null=True)
    cancel_requested_at = serializers.DateTimeField(allow_null=True)
    steps_done = serializers.SerializerMethodField()
    steps_total = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "kind", "cluster", "cluster_name", "nodes", "params", "mutating", "status",
            "explanation", "launched_by", "via", "created_at", "started_at", "finished_at",
            "attempt", "retry_of", "cancel_requested_at", "deadline_seconds", "steps_done",
            "steps_total",
        ]  # fmt: skip
        read_only_fields = fields

    def get_nodes(self, job: Job) -> list[int]:
        return job.target_node_ids

    def get_steps_done(self, job: Job) -> int:
        return sum(1 for step in job.steps.all() if step.is_done)

    def get_steps_total(self, job: Job) -> int:
        return len(job.steps.all())


class JobDetailSerializer(JobSerializer):
    plan = serializers.JSONField()
    steps = JobStepSerializer(many=True)
    checks = serializers.SerializerMethodField()
    traceback = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "plan", "steps", "checks", "traceback"]
        read_only_fields = fields

    @extend_schema_field(CheckSerializer(many=True))
    def get_checks(self, job: Job) -> list[dict[str, Any]]:
        return job_checks(job)

    @extend_schema_field(serializers.CharField(allow_null=True, help_text="admins only"))
    def get_traceback(self, job: Job) -> str | None:
        request = self.context.get("request")
        return job.traceback if is_admin(getattr(request, "user", None)) else None


def job_checks(job: Job) -> list[dict[str, Any]]:
    """Every check of the job's steps, in step order."""
    found = []
    for step in job.steps.all():
        for check in (step.result or {}).get("checks", []):
            found.append(
                {
                    "node": check.get("node"),
                    "name": str(check.get("name", "")),
                    "status": str(check.get("status", "")),
                    "message": str(check.get("message", "")),
                    "ignored": bool(check.get("ignored", False)),
                }
            )
    return found


class LogChunkSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    step = serializers.IntegerField(source="step_id", allow_null=True)
    node = serializers.CharField(source="node_name")

    class Meta:
        model = JobLogChunk
        fields = ["seq", "step", "node", "stream", "text", "created_at"]
        read_only_fields = fields


class JobLogSerializer(serializers.Serializer):  # type: ignore[type-arg]
    chunks = LogChunkSerializer(many=True)
    next = serializers.IntegerField(help_text="Ask again with after=next.")
    done = serializers.BooleanField(help_text="The job has ended and every chunk was sent.")


def read_log(job: Job, after: int, limit: int = LOG_PAGE) -> dict[str, Any]:
    """Chunks after ``after``; ``done`` when the job had ended before they were read (the
    runner writes every chunk before it ends a job) and nothing is left."""
    ended = Job.objects.filter(pk=job.pk, status__in=TERMINAL_STATUSES).exists()
    chunks = list(job.chunks.filter(seq__gt=after).order_by("seq")[:limit])
    last = chunks[-1].seq if chunks else after
    return {"chunks": chunks, "next": last, "done": ended and len(chunks) < limit}


LIST_PARAMETERS = [
    OpenApiParameter("cluster", OpenApiTypes.INT, description="only this cluster's jobs"),
    OpenApiParameter("status", OpenApiTypes.STR, enum=JobStatus.values),
    OpenApiParameter("kind", OpenApiTypes.STR),
]


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Jobs: everyone with a role reads them; operators and admins launch, cancel and retry."""

    serializer_class = JobSerializer
    action_permissions = {
        "create": "launch_jobs",
        "plan": "launch_jobs",
        "cancel": "launch_jobs",
        "retry": "launch_jobs",
    }

    def get_queryset(self) -> QuerySet[Job]:
        # Only the nodes' ids: the rows also hold encrypted credentials, decrypted when read
        # (the model by name: this app imports no other app).
        node_ids = apps.get_model("nodes", "Node")._default_manager.only("pk")
        nodes: Prefetch[Any, Any, Any] = Prefetch("nodes", queryset=node_ids)
        queryset = Job.objects.prefetch_related("steps", nodes).order_by("-created_at", "-id")
        if self.action != "list":
            return queryset
        cluster = query_id(self.request, "cluster", "a cluster id")
        if cluster is not None:
            queryset = queryset.filter(cluster_id=cluster)
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted not in JobStatus.values:
                raise serializers.ValidationError(
                    {"status": [f"must be one of {', '.join(JobStatus.values)}"]}
                )
            queryset = queryset.filter(status=wanted)
        kind = self.request.query_params.get("kind")
        if kind:
            queryset = queryset.filter(kind=kind[:64])
        return queryset

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:  # type: ignore[type-arg]
        if self.action == "list":
            return JobSerializer
        return JobDetailSerializer

    @extend_schema(parameters=LIST_PARAMETERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def _launch_args(self, request: Request) -> dict[str, Any]:
        serializer = JobLaunchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return {
            "cluster": data["cluster"],
            "kind": data["kind"],
            "node_ids": data.get("nodes"),
            "params": data.get("params", {}),
        }

    def _detail(self, job: Job, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=job.pk)
        return Response(JobDetailSerializer(fresh, context={"request": self.request}).data, code)

    @extend_schema(
        request=JobLaunchSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description=(
                    "Your own name for this launch (1 to 64 of A-Z a-z 0-9 . _ : -, a UUID "
                    "serves): sent again by the same user, it answers 200 with the job launched "
                    "the first time instead of launching another; with another kind, cluster, "
                    "nodes or params it is a 409."
                ),
            )
        ],
        responses={201: JobDetailSerializer, 200: JobDetailSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key", "")
        job, launched = services.launch_job_once(
            Actor.from_request(request),
            **self._launch_args(request),
            request_key=key,
            key_field="Idempotency-Key",
        )
        return self._detail(job, status.HTTP_201_CREATED if launched else status.HTTP_200_OK)

    @extend_schema(request=JobLaunchSerializer, responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"])
    def plan(self, request: Request) -> Response:
        """What a launch would run: the plan, the nodes, the deadline; nothing is written."""
        preview = services.plan_job(Actor.from_request(request), **self._launch_args(request))
        return Response(preview)

    @extend_schema(
        parameters=[OpenApiParameter("after", OpenApiTypes.INT, description="last seq seen")],
        responses={200: JobLogSerializer},
    )
    @action(detail=True, methods=["get"])
    def log(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        after = query_int(request, "after", 0, 2**31 - 1) or 0
        return Response(JobLogSerializer(read_log(job, after)).data)

    @extend_schema(request=None, responses={200: JobDetailSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = services.cancel_job(Actor.from_request(request), self.get_object())
        return self._detail(job)

    @extend_schema(request=None, responses={201: JobDetailSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        job = services.retry_job(Actor.from_request(request), self.get_object())
        return self._detail(job, status.HTTP_201_CREATED)


router = SimpleRouter()
router.register("jobs", JobViewSet, basename="job")
urlpatterns = router.urls
