"""The Findings page (open certificate findings, filtered; a silence per finding) and the
fleet expiry table (every certificate on every node, soonest expiry first)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from clusterpanel.errors import InputError
from clusterpanel.security.audit import Actor
from clusterpanel.web.access import get_for_user, require
from clusterpanel.web.forms import add_errors
from clusterpanel.web.options import options
from clusterpanel.web.tables import Column, Table
from nodes.forms import SilenceFindingForm
from nodes.health import finding_services as findings
from nodes.health.findings import Finding, Severity
from nodes.models import Cluster

FINDING_COLUMNS = [
    Column("Severity"),
    Column("Cluster"),
    Column("Node"),
    Column("Path"),
    Column("Finding"),
    Column("Suggested action"),
    Column("Seen"),
    Column("Silence", key="silence", fields=("silenced_until",)),
]


def findings_page(
    request: HttpRequest,
    failed: Finding | None = None,
    failed_form: SilenceFindingForm | None = None,
    status: int = 200,
) -> HttpResponse:
    require(request, "view")
    filters, errors = findings.parse_finding_filters(request.GET)
    table = Table(request, FINDING_COLUMNS, default="silence")
    page = table.paginate(findings.open_findings(filters))
    rows: list[dict[str, Any]] = []
    for finding in page.object_list:
        form = failed_form if failed is not None and failed.pk == finding.pk else None
        rows.append(
            {
                "finding": finding,
                "fix_url": findings.fix_url(finding),
                "form": form or SilenceFindingForm(prefix=f"f{finding.pk}"),
            }
        )
    context = {
        "rows": rows,
        "table": table,
        "filters": filters,
        "filter_errors": errors,
        "cluster_options": options(
            Cluster.objects.order_by("name").values_list("pk", "name"), filters.cluster
        ),
        "severities": Severity.choices,
        "kinds": findings.FINDING_KINDS,
        "max_days": findings.MAX_SILENCE.days,
        "now": timezone.now(),
    }
    return render(request, "nodes/findings.html", context, status=status)


@require_POST
def finding_silence(request: HttpRequest, pk: int) -> HttpResponse:
    finding = get_for_user(
        request, Finding.objects.select_related("cluster", "node"), pk, "silence_findings"
    )
    form = SilenceFindingForm(request.POST, prefix=f"f{finding.pk}")
    if form.is_valid():
        try:
            findings.silence_finding(
                Actor.from_request(request), finding, form.cleaned_data["until"]
            )
        except InputError as error:
            add_errors(form, error)
        else:
            until = form.cleaned_data["until"]
            messages.success(
                request, f"Finding on {finding.path} silenced until {until:%Y-%m-%d %H:%M} UTC."
            )
            return redirect(
                f"/findings/?{request.GET.urlencode()}" if request.GET else "/findings/"
            )
    return findings_page(request, finding, form, status=400)


def certificate_fleet(request: HttpRequest) -> HttpResponse:
    require(request, "view")
    within, error = findings.parse_within_days(request.GET.get("expiring_within_days"))
    table = Table(
        request, [Column("NotAfter", key="not_after", fields=("not_after",))], "not_after"
    )
    page = table.paginate(findings.fleet_rows(within))
    context = {
        "rows": findings.fleet_page(list(page.object_list)),
        "table": table,
        "within": within,
        "within_error": error,
        "now": timezone.now(),
    }
    return render(request, "nodes/certificate_fleet.html", context, status=200)
