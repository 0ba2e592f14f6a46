"""A cluster's Alerts tab: where alerts go, the certificate renewal policy, the deliveries
(newest first, sorted and paged), and a test alert."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from clusterpanel.errors import InputError
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import can
from clusterpanel.web.access import get_for_user, require
from clusterpanel.web.tables import DESC, Column, Table
from nodes.alerts import services
from nodes.alerts.forms import AlertSettingsForm
from nodes.alerts.models import AlertDelivery
from nodes.models import Cluster
from nodes.renewal import policy as renewal_policy
from nodes.renewal import services as renewal_services
from nodes.renewal.forms import RenewalPolicyForm

DELIVERY_COLUMNS = [
    Column("Created", "created", ("created_at",)),
    Column("Alert", "alert", ("subject",)),
    Column("Channel", "channel", ("channel",)),
    Column("To"),
    Column("Status", "status", ("status",)),
    Column("Attempts", "attempts", ("attempts",)),
    Column("Last error"),
    Column("Next attempt", "next", ("next_attempt_at",)),
    Column("Delivered", "delivered", ("delivered_at",)),
]


def _renewal_form(request: HttpRequest, cluster: Cluster) -> RenewalPolicyForm | None:
    if not can(request.user, "manage_renewal_policy"):
        return None
    row = renewal_services.policy_of(cluster)
    return RenewalPolicyForm(
        initial={name: getattr(row, name) for name in renewal_services.EDITABLE}
    )


def _page(
    request: HttpRequest,
    cluster: Cluster,
    form: AlertSettingsForm | None,
    renewal_form: RenewalPolicyForm | None,
    status: int = 200,
) -> HttpResponse:
    config = services.settings_of(cluster)
    row = renewal_services.policy_of(cluster)
    table = Table(
        request, DELIVERY_COLUMNS, default="created", default_dir=DESC, fragment="alert-deliveries"
    )
    deliveries = AlertDelivery.objects.filter(cluster=cluster).order_by("-created_at", "-pk")
    context = {
        "cluster": cluster,
        "config": config,
        "has_secret": bool(config.webhook_secret),
        "form": form,
        "renewal": row,
        "renewal_window": renewal_policy.describe(row.window()),
        "renewal_form": renewal_form,
        "deliveries": table.paginate(table.order(deliveries)),
        "delivery_table": table,
        "now": timezone.now(),
    }
    return render(request, "nodes/cluster_alerts.html", context, status=status)


def cluster_alerts(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk)
    form = None
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
        return _page(request, cluster, form, _renewal_form(request, cluster), 400)
    if can(request.user, "edit_inventory"):
        form = AlertSettingsForm(initial=_alert_initial(cluster))
    return _page(request, cluster, form, _renewal_form(request, cluster))


@require_POST
def cluster_renewal_policy(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the renewal policy (admins): the same service and audit event as the API's PUT."""
    cluster = get_for_user(request, Cluster, pk, "manage_renewal_policy")
    form = RenewalPolicyForm(request.POST)
    if form.is_valid():
        try:
            renewal_services.update_policy(Actor.from_request(request), cluster, form.cleaned_data)
        except InputError as error:
            for field, errors in error.errors.items():
                for message in errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, "Renewal policy saved.")
            return redirect("cluster_alerts", pk=cluster.pk)
    alert_form = AlertSettingsForm(initial=_alert_initial(cluster))
    return _page(request, cluster, alert_form, form, 400)


def _alert_initial(cluster: Cluster) -> dict[str, object]:
    config = services.settings_of(cluster)
    return {
        "webhook_url": config.webhook_url,
        "email_recipients": "\n".join(config.email_recipients),
    }


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
