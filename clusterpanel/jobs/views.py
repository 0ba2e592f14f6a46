"""The jobs pages: the list (all, or one cluster's), a job's page with its live log, and the
Cancel and Retry buttons. Thin: access check, one service call, render."""

from __future__ import annotations

import uuid
from typing import Any

from django.apps import apps
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from clusterpanel.errors import Conflict, InputError
from clusterpanel.jobs import registry, services
from clusterpanel.jobs.api import is_admin, job_checks, read_log
from clusterpanel.jobs.models import Job, JobStatus
from clusterpanel.security.audit import Actor
from clusterpanel.web.access import get_for_user, require
from clusterpanel.web.options import options
from clusterpanel.web.tables import DESC, Column, Table

JOB_COLUMNS = [
    Column("Job", "id", ("id",)),
    Column("Kind", "kind", ("kind",)),
    Column("Cluster", "cluster", ("cluster_name",)),
    Column("Status", "status", ("status",)),
    Column("Launched by", "launched_by", ("launched_by_name",), css="nowrap"),
    Column("Created", "created", ("created_at",)),
    Column("Explanation", ""),
]


def _list(request: HttpRequest, cluster: Any = None) -> HttpResponse:
    jobs = Job.objects.all()
    if cluster is not None:
        jobs = jobs.filter(cluster=cluster)
    else:
        wanted_cluster = request.GET.get("cluster", "")
        if wanted_cluster.isascii() and wanted_cluster.isdigit():
            jobs = jobs.filter(cluster_id=int(wanted_cluster))
    kind = request.GET.get("kind", "")
    if kind:
        jobs = jobs.filter(kind=kind[:64])
    status = request.GET.get("status", "")
    if status in JobStatus.values:
        jobs = jobs.filter(status=status)
    table = Table(request, JOB_COLUMNS, default="id", default_dir=DESC)
    page = table.paginate(table.order(jobs))
    wanted = request.GET.get("cluster", "")
    chosen_cluster = int(wanted) if wanted.isascii() and wanted.isdigit() else None
    context = {
        "jobs": page,
        "table": table,
        "cluster": cluster,
        "kinds": registry.kinds(),
        "statuses": JobStatus.choices,
        "now": timezone.now(),
        "chosen": {"cluster": request.GET.get("cluster", ""), "kind": kind, "status": status},
        # The cluster filter (not on a cluster's own page): names only, rendered in Python.
        "cluster_options": ""
        if cluster is not None
        else options(
            apps.get_model("nodes", "Cluster").objects.order_by("name").values_list("pk", "name"),
            chosen_cluster,
        ),
    }
    return render(request, "jobs/list.html", context)


def jobs(request: HttpRequest) -> HttpResponse:
    """Every job, newest first; filters by cluster, kind and status."""
    require(request, "view")
    return _list(request)


def cluster_jobs(request: HttpRequest, pk: int) -> HttpResponse:
    """One cluster's jobs."""
    cluster = get_for_user(request, apps.get_model("nodes", "Cluster"), pk)
    return _list(request, cluster)


def _summary(job: Job) -> dict[str, Any]:
    steps = list(job.steps.all())
    phases: dict[str, list[Any]] = {}
    for step in steps:
        phases.setdefault(step.phase, []).append(step)
    checks = job_checks(job)
    names = list(dict.fromkeys(check["name"] for check in checks))
    rows: dict[str, dict[str, Any]] = {}
    for check in checks:
        rows.setdefault(check["node"] or "cluster", {})[check["name"]] = check
    grid = [(node, [cells.get(name) for name in names]) for node, cells in rows.items()]
    return {
        "phases": phases,
        "done": sum(1 for step in steps if step.is_done),
        "total": len(steps),
        "check_names": names,
        "check_grid": grid,
        "now": timezone.now(),
    }


def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_for_user(request, Job.objects.select_related("cluster", "retry_of"), pk)
    log = read_log(job, 0, limit=10_000)
    context = {
        "job": job,
        **_summary(job),
        "chunks": log["chunks"],
        "next": log["next"],
        "show_traceback": is_admin(request.user),
    }
    return render(request, "jobs/detail.html", context)


def job_log(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of a job's page, polled by htmx: new log chunks after ``?after=``, the
    steps and the status. An ended job answers 286, which stops the polling."""
    job = get_for_user(request, Job, pk)
    after = request.GET.get("after", "0")
    log = read_log(job, int(after) if after.isascii() and after.isdigit() else 0)
    job.refresh_from_db()
    context = {"job": job, **_summary(job), "chunks": log["chunks"], "next": log["next"]}
    body = render(request, "jobs/_live.html", context).content
    if log["done"]:
        return HttpResponseStopPolling(body)
    return HttpResponse(body)


@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_for_user(request, Job, pk, "launch_jobs")
    try:
        job = services.cancel_job(Actor.from_request(request), job)
    except Conflict as exc:
        messages.error(request, str(exc))
    else:
        if job.status == JobStatus.CANCELLED:
            messages.success(request, f"Job #{job.pk} cancelled.")
        else:
            messages.success(
                request, f"Job #{job.pk} is stopping: its running commands are being killed."
            )
    return redirect("job_detail", pk=job.pk)


@require_POST
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_for_user(request, Job, pk, "launch_jobs")
    try:
        retry = services.retry_job(Actor.from_request(request), job)
    except Conflict as exc:
        messages.error(request, str(exc))
        return redirect("job_detail", pk=job.pk)
    messages.success(request, f"Job #{retry.pk} retries job #{job.pk}.")
    return redirect("job_detail", pk=retry.pk)


PARAM_PREFIX = "param."


def _form_params(source: Any) -> dict[str, str]:
    """The kind's parameters as the page posts them: fields ``param.<name>``, strings."""
    return {
        key[len(PARAM_PREFIX) :]: value
        for key, value in source.items()
        if key.startswith(PARAM_PREFIX) and len(key) > len(PARAM_PREFIX)
    }


def _declared(kind: str) -> tuple[registry.ParamField, ...]:
    try:
        return registry.get(kind).param_fields if kind else ()
    except InputError:
        return ()


def _typed(kind: str, params: dict[str, str]) -> dict[str, Any]:
    """The posted strings as the kind takes them: a number field's decimal as an int, a text
    area's CRLF line ends as LF (the preview's checksums are those of the file written); the
    rest as sent, for ``validate_params`` to refuse (an unknown name, a wrong value) by name."""
    numbers = {f.name for f in _declared(kind) if f.number}
    multiline = {f.name for f in _declared(kind) if f.multiline}
    typed: dict[str, Any] = {}
    for name, value in params.items():
        if name in numbers and value.isascii() and value.isdigit():
            typed[name] = int(value)
        elif name in multiline:
            typed[name] = value.replace("\r\n", "\n")
        else:
            typed[name] = value
    return typed


def _param_fields(
    kind: str, params: dict[str, str], errors: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """The inputs the page shows: the kind's declared parameters, then any other one sent (so
    that a refused name is shown back with the error naming it), each with its errors."""
    declared = [(f.name, f.label, f.multiline) for f in _declared(kind)]
    names = {name for name, _, _ in declared}
    declared += [(name, name, False) for name in params if name not in names]
    return [
        {
            "name": name,
            "label": label,
            "field": PARAM_PREFIX + name,
            "value": params.get(name, ""),
            "multiline": multiline,
            "errors": errors.get(name, []),
        }
        for name, label, multiline in declared
    ]


def _error_text(exc: InputError, params: dict[str, str], kind: str) -> str:
    """The page's error line: a parameter's message names the parameter (it is also shown by
    its input); the others (kind, nodes, the cluster's state) say what they are about."""
    shown = {f.name for f in _declared(kind)} | set(params)
    return "; ".join(
        f"{field}: {message}" if field in shown else message
        for field, messages in exc.errors.items()
        for message in messages
    )


def job_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Preview a job on one cluster (``kind``, optional ``nodes`` ids, the kind's parameters
    as ``param.<name>`` fields), then launch it.

    The preview connects to no host and stores nothing. It is posted (``action=preview``: a
    manifest does not fit in a URL) or, for the links from other pages, opened with ``?kind=``.
    Any other post launches the job and goes to its page. An error re-shows the page with the
    message and the choices kept."""
    cluster = get_for_user(request, apps.get_model("nodes", "Cluster"), pk, "launch_jobs")
    source = request.POST if request.method == "POST" else request.GET
    kind = source.get("kind", "")
    # Ids as numbers; anything else goes on as sent, for the service to refuse by name.
    node_ids: list[Any] | None = [
        int(n) if n.isascii() and n.isdigit() else n for n in source.getlist("nodes") if n
    ] or None
    params = _form_params(source)
    actor = Actor.from_request(request)
    status = 200
    error = ""
    field_errors: dict[str, list[str]] = {}
    preview: dict[str, Any] | None = None
    launching = request.method == "POST" and request.POST.get("action") != "preview"
    if launching:
        key = request.POST.get(services.REQUEST_KEY_FIELD, "")
        try:
            job, launched = services.launch_job_once(
                actor, cluster, kind, node_ids, _typed(kind, params), request_key=key
            )
        except InputError as exc:
            error, status, field_errors = _error_text(exc, params, kind), 400, exc.errors
        except Conflict as exc:
            error, status = str(exc), 409
        else:
            if launched:
                messages.success(request, f"Job #{job.pk} ({job.kind}) launched.")
            else:
                messages.info(
                    request,
                    f"Job #{job.pk} ({job.kind}) was already launched from this form; "
                    "nothing was launched again.",
                )
            return redirect("job_detail", pk=job.pk)
    fields: list[dict[str, Any]] = []
    # A link that opens the page for a kind with parameters (Restore… on the Backups tab) shows
    # the inputs to fill in first; the preview comes once they are sent, empty or not.
    asked = launching or all(
        PARAM_PREFIX + f.name in source for f in _declared(kind) if not f.optional
    )
    if asked:
        try:
            preview = services.plan_job(actor, cluster, kind, node_ids, _typed(kind, params))
        except InputError as exc:
            if not error:
                error, field_errors = _error_text(exc, params, kind), exc.errors
            status = 400
    fields = _param_fields(kind, params, field_errors)
    context = {
        "cluster": cluster,
        "kind": kind,
        # The kinds this cluster's flavor runs (a binary cluster has no kubeadm jobs).
        "kinds": [
            k
            for k in registry.kinds()
            if k.cluster_flavor in (None, getattr(cluster, "flavor", None))
        ],
        "nodes": cluster.nodes.order_by("name"),
        "chosen_nodes": {str(n) for n in node_ids or []},
        "param_fields": fields,
        "params": params,
        "preview": preview,
        "error": error,
        # Sent back by the Launch button: a second click, or the form posted again, finds the
        # job the first one launched instead of launching another.
        "request_key": uuid.uuid4().hex,
    }
    return render(request, "jobs/new.html", context, status=status)
