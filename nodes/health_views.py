"""The cluster's Health tab: every check's last result with a 24 h latency sparkline, the
transitions (newest first, paged and sorted), and "Check now" (the cluster's next round at the
next beat tick).

An htmx request (the page's poller, only while the page is visible) gets the checks and
transitions fragment alone."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from clusterpanel.security.audit import Actor
from clusterpanel.web.access import get_for_user
from clusterpanel.web.htmx import HtmxHttpRequest
from clusterpanel.web.tables import DESC, Column, Table
from nodes.health import pages, services
from nodes.models import Cluster

POLL_SECONDS = 10

EVENT_COLUMNS = [
    Column("At", "at", ("at",), css="nowrap"),
    Column("Component", "component", ("component",)),
    Column("Node", "node", ("node__name",)),
    Column("Target"),
    Column("From", "from", ("from_status",)),
    Column("To", "to", ("to_status",)),
    Column("Message"),
]


def cluster_health(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk)
    now = timezone.now()
    # A page of its own parameters (events_page=2): the checks above stay whole.
    table = Table(
        request, EVENT_COLUMNS, default="at", default_dir=DESC, prefix="events_",
        fragment="health-events",
    )  # fmt: skip
    context = {
        "cluster": cluster,
        "checks": pages.checks(cluster, now),
        "events": table.paginate(table.order(pages.events(cluster))),
        "events_table": table,
        "now": now,
        "poll_seconds": POLL_SECONDS,
    }
    template = "nodes/_health_panel.html" if request.htmx else "nodes/cluster_health.html"
    return render(request, template, context)


@require_POST
def cluster_health_check(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Make the cluster's round due now: beat (every 10 s) sends it, claimed once as always."""
    cluster = get_for_user(request, Cluster, pk, "run_jobs")
    services.request_check(Actor.from_request(request), cluster)
    messages.success(request, "A health round of this cluster starts within 10 seconds.")
    return redirect("cluster_health", pk=cluster.pk)
