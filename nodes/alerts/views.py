"""A cluster's Alerts tab: where alerts go, the latest deliveries, and a test alert."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import can
from clusterpanel.web.access import get_for_user, require
from nodes.alerts import services
from nodes.alerts.forms import AlertSettingsForm
from nodes.alerts.models import AlertDelivery
from nodes.models import Cluster

RECENT_DELIVERIES = 20


def cluster_alerts(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk)
    config = services.settings_of(cluster)
    form = None
    status = 200
    if request.method == "POST":
        require(request, "edit_inventory")
        form = AlertSettingsForm(request.POST)
        if form.is_valid():
            services.update_alert_settings(
                Actor.from_request(request),
                cluster,
                webhook_url=form.cleaned_data["webhook_url"],
                email_recipients=form.cleaned_data["email_recipients"],
                webhook_secret=form.secret(),
            )
            messages.success(request, "Alert settings saved.")
            return redirect("cluster_alerts", pk=cluster.pk)
        status = 400
    elif can(request.user, "edit_inventory"):
        form = AlertSettingsForm(
            initial={
                "webhook_url": config.webhook_url,
                "email_recipients": "\n".join(config.email_recipients),
            }
        )
    deliveries = AlertDelivery.objects.filter(cluster=cluster).order_by("-created_at", "-pk")
    context = {
        "cluster": cluster,
        "config": config,
        "has_secret": bool(config.webhook_secret),
        "form": form,
        "deliveries": deliveries[:RECENT_DELIVERIES],
    }
    return render(request, "nodes/cluster_alerts.html", context, status=status)


@require_POST
def cluster_alert_test(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "edit_inventory")
    deliveries = services.send_test_alert(Actor.from_request(request), cluster)
    if deliveries:
        channels = ", ".join(d.get_channel_display() for d in deliveries)
        messages.success(request, f"Test alert queued ({channels}).")
    else:
        messages.error(request, "No webhook or e-mail recipients are set: nothing was sent.")
    return redirect("cluster_alerts", pk=cluster.pk)
