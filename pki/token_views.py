"""HTML pages for join commands, bootstrap tokens and kubeadm configuration.

Thin: access helper first, then a form or a call into ``pki.token_services``, an audit event
for anything that shows a secret, and a render. A page that shows a token or a certificate key
is rendered on a POST or behind an explicit link, never as a side effect of browsing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from clusterpanel import audit
from clusterpanel.http import HtmxHttpRequest
from clusterpanel.roles import can
from nodes.models import Cluster, Node
from pki import token_services
from pki.models.tokens import BootstrapToken, TokenStatus
from pki.token_forms import (
    KubeadmSettingsForm,
    StaticTokenForm,
    StaticTokenImportForm,
    TokenForm,
    add_errors,
)


def _require(request: HttpRequest, permission: str) -> None:
    if not can(request.user, permission):
        raise PermissionDenied


def _get_cluster_for_user(request: HttpRequest, pk: int, permission: str = "view") -> Cluster:
    _require(request, permission)
    return get_object_or_404(Cluster, pk=pk)


def _get_token_for_user(request: HttpRequest, pk: int, permission: str) -> BootstrapToken:
    _require(request, permission)
    return get_object_or_404(BootstrapToken.objects.select_related("cluster"), pk=pk)


def _download(text: str, filename: str, content_type: str = "application/yaml") -> HttpResponse:
    response = HttpResponse(text, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _messages(error: ValidationError) -> str:
    return "; ".join(text for texts in error.message_dict.values() for text in texts)


# --- join card -----------------------------------------------------------------------------------


def _join_context(request: HttpRequest, cluster: Cluster, new_token: bool) -> dict[str, Any]:
    """Both join commands, audited once each; or the reason there are none."""
    context: dict[str, Any] = {"cluster": cluster, "join_loaded": True}
    try:
        with transaction.atomic():
            worker = token_services.join_command(
                cluster, "worker", new_token=new_token, user=request.user
            )
            control_plane = token_services.join_command(cluster, "control-plane", user=request.user)
            for join in (worker, control_plane):
                if join.token_created:
                    audit.record("token.create", request=request, obj=join.token)
                audit.record(
                    "join_command.reveal",
                    request=request,
                    obj=join.token,
                    cluster=cluster,
                    details={"role": join.role, "token_id": join.token.token_id},
                )
    except token_services.NoUsableToken as error:
        context["join_error"] = f"{error} Create one with New token."
        return context
    except token_services.JoinUnavailable as error:
        context["join_error"] = str(error)
        return context
    context.update(worker=worker, control_plane=control_plane, now=timezone.now())
    return context


@require_GET
def join_card(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The join card's content (htmx), or a page with it when followed as a plain link."""
    cluster = _get_cluster_for_user(request, pk, "reveal_tokens")
    context = _join_context(request, cluster, new_token=False)
    template = "pki/_join_card.html" if request.htmx else "pki/token_join.html"
    return render(request, template, context)


@require_POST
def join_card_new_token(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    cluster = _get_cluster_for_user(request, pk, "manage_tokens")
    _require(request, "reveal_tokens")
    context = _join_context(request, cluster, new_token=True)
    template = "pki/_join_card.html" if request.htmx else "pki/token_join.html"
    return render(request, template, context)


# --- tokens tab ----------------------------------------------------------------------------------


def _short_duration(left: timedelta | None) -> str:
    """``6d 23h``, ``1h 59m`` or ``42m``: how long a token has left, as the join card counts."""
    if left is None:
        return ""
    minutes = int(left.total_seconds()) // 60
    days, hours, minutes = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def _token_rows(cluster: Cluster) -> list[dict[str, Any]]:
    now = timezone.now()
    return [
        {
            "token": token,
            "status": token.status(now),
            "time_left": _short_duration(token.time_left(now)),
        }
        for token in cluster.bootstrap_tokens.select_related("created_by", "revoked_by")
    ]


def token_list(request: HttpRequest, pk: int) -> HttpResponse:
    """The Tokens tab: list with status, and the create form (operators)."""
    cluster = _get_cluster_for_user(request, pk)
    form = TokenForm(request.POST or None) if can(request.user, "manage_tokens") else None
    created = None
    if request.method == "POST":
        _require(request, "manage_tokens")
        assert form is not None
        if form.is_valid():
            try:
                with transaction.atomic():
                    created = token_services.create_token(
                        cluster, form.cleaned_data["request"], user=request.user
                    )
                    audit.record(
                        "token.create",
                        request=request,
                        obj=created,
                        details={"token_id": created.token_id},
                    )
                form = TokenForm()
            except ValidationError as error:
                add_errors(form, error)
    status = request.GET.get("status", "")
    rows = _token_rows(cluster)
    if status in TokenStatus.values:
        rows = [row for row in rows if row["status"] == status]
    context = {
        "cluster": cluster,
        "form": form,
        "rows": rows,
        "created": created,
        "status_filter": status,
        "statuses": TokenStatus.choices,
    }
    response = render(request, "pki/tokens.html", context)
    if request.method == "POST" and form is not None and form.errors:
        response.status_code = 400
    return response


@require_POST
def token_reveal(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Show one token in full, as its Secret manifest and ``kubeadm token create`` line."""
    token = _get_token_for_user(request, pk, "reveal_tokens")
    audit.record("token.reveal", request=request, obj=token, details={"token_id": token.token_id})
    context = {
        "cluster": token.cluster,
        "token": token,
        "status": token.status(),
        "manifest": token_services.secret_manifest(token),
        "command": token_services.token_create_command(token),
    }
    template = "pki/token_reveal_fragment.html" if request.htmx else "pki/token_reveal.html"
    return render(request, template, context)


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = _get_token_for_user(request, pk, "manage_tokens")
    if token.revoked_at is None:
        with transaction.atomic():
            token.revoke(request.user)
            audit.record("token.revoke", request=request, obj=token)
        messages.success(request, f"Token {token.token_id} revoked.")
    return redirect("token_list", pk=token.cluster_id)


# --- configuration tab ---------------------------------------------------------------------------


def _config_context(request: HttpRequest, cluster: Cluster, **extra: Any) -> dict[str, Any]:
    stored = token_services.settings_for(cluster)
    try:
        preview, preview_error = token_services.cluster_configuration_preview(cluster), None
    except ValidationError as error:
        preview, preview_error = "", _messages(error)
    context: dict[str, Any] = {
        "cluster": cluster,
        "settings_form": KubeadmSettingsForm.for_settings(stored),
        "preview": preview,
        "preview_error": preview_error,
        "init_node": token_services.init_node(cluster),
        "nodes": cluster.nodes.exclude(role="etcd").order_by("pk"),
        "static_tokens": cluster.static_tokens.all(),
        "static_form": StaticTokenForm(),
        "import_form": StaticTokenImportForm(),
        "import_warnings": [],
    }
    context.update(extra)
    return context


def config_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The Configuration tab: settings, previews and downloads."""
    cluster = _get_cluster_for_user(request, pk)
    return render(request, "pki/config.html", _config_context(request, cluster))


@require_POST
def config_settings(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = _get_cluster_for_user(request, pk, "edit_inventory")
    form = KubeadmSettingsForm.for_settings(token_services.settings_for(cluster), request.POST)
    if form.is_valid():
        try:
            with transaction.atomic():
                token_services.save_settings(cluster, form.cleaned_data)
                audit.record(
                    "kubeadm_settings.update",
                    request=request,
                    obj=cluster,
                    details={"fields": form.changed_data},
                )
            messages.success(request, "kubeadm settings saved.")
            return redirect("config_page", pk=cluster.pk)
        except ValidationError as error:
            add_errors(form, error)
    context = _config_context(request, cluster, settings_form=form)
    return render(request, "pki/config.html", context, status=400)


def node_config(request: HttpRequest, pk: int, node_pk: int) -> HttpResponse:
    """One node's kubeadm configuration file; shows a token, so operator only and audited."""
    cluster = _get_cluster_for_user(request, pk, "reveal_tokens")
    node = get_object_or_404(Node, pk=node_pk, cluster=cluster)
    new_token = request.method == "POST" and request.POST.get("new_token") == "1"
    if new_token:
        _require(request, "manage_tokens")
    context: dict[str, Any] = {"cluster": cluster, "node": node}
    try:
        config = token_services.audited_kubeadm_config(request, cluster, node, new_token=new_token)
    except token_services.JoinUnavailable as error:
        context["error"] = str(error)
        if isinstance(error, token_services.NoUsableToken):
            context["error"] += " Create one with “Create a new token and render” below."
        return render(request, "pki/config_node.html", context, status=409)
    except ValidationError as error:
        context["error"] = _messages(error)
        return render(request, "pki/config_node.html", context, status=400)
    if request.GET.get("download") == "1":
        return _download(config.text, f"kubeadm-{node.name}.yaml")
    context["config"] = config
    return render(request, "pki/config_node.html", context)


@require_GET
def audit_policy_download(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = _get_cluster_for_user(request, pk)
    return _download(token_services.audit_policy_text(cluster), "audit-policy.yaml")


@require_GET
def load_balancer_download(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    cluster = _get_cluster_for_user(request, pk)
    try:
        text = token_services.load_balancer_config(cluster, kind)
    except ValidationError as error:
        messages.error(request, _messages(error))
        return redirect("config_page", pk=cluster.pk)
    filename = {"nginx": "nginx.conf", "haproxy": "haproxy.cfg"}[kind]
    return _download(text, filename, "text/plain")


@require_GET
def kubeadm_certs_download(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = _get_cluster_for_user(request, pk, "download_bundle")
    try:
        text = token_services.audited_kubeadm_certs(request, cluster)
    except token_services.JoinUnavailable as error:
        messages.error(request, str(error))
        return redirect("config_page", pk=cluster.pk)
    return _download(text, "kubeadm-certs.yaml")


# --- static token file ---------------------------------------------------------------------------


@require_POST
def static_token_add(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = _get_cluster_for_user(request, pk, "manage_tokens")
    form = StaticTokenForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                row = token_services.add_static_token(
                    cluster,
                    token=data["token"],
                    user=data["user"],
                    uid=data["uid"],
                    groups=token_services.parse_groups(data["groups"]),
                )
                audit.record("static_token.create", request=request, obj=row)
            messages.success(request, f"Static token for {row.user} added.")
            return redirect("config_page", pk=cluster.pk)
        except ValidationError as error:
            add_errors(form, error)
    context = _config_context(request, cluster, static_form=form)
    return render(request, "pki/config.html", context, status=400)


@require_POST
def static_token_import(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = _get_cluster_for_user(request, pk, "manage_tokens")
    form = StaticTokenImportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            with transaction.atomic():
                result = token_services.import_static_tokens(
                    cluster, form.cleaned_data["csv"], replace=form.cleaned_data["replace"]
                )
                audit.record(
                    "static_token.import",
                    request=request,
                    obj=cluster,
                    details={"created": result.created, "replaced": result.replaced},
                )
            messages.success(request, f"{result.created} static token(s) imported.")
            for warning in result.warnings:
                messages.warning(request, warning)
            return redirect("config_page", pk=cluster.pk)
        except ValidationError as error:
            add_errors(form, error)
    context = _config_context(request, cluster, import_form=form)
    return render(request, "pki/config.html", context, status=400)


@require_POST
def static_token_delete(request: HttpRequest, pk: int, token_pk: int) -> HttpResponse:
    cluster = _get_cluster_for_user(request, pk, "manage_tokens")
    row = get_object_or_404(cluster.static_tokens, pk=token_pk)
    with transaction.atomic():
        audit.record("static_token.delete", request=request, obj=row)
        row.delete()
    messages.success(request, f"Static token of {row.user} deleted.")
    return redirect("config_page", pk=cluster.pk)


@require_GET
def static_token_file(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = _get_cluster_for_user(request, pk, "reveal_tokens")
    text = token_services.render_static_tokens(cluster)
    audit.record(
        "static_token.download",
        request=request,
        obj=cluster,
        details={"entries": cluster.static_tokens.count()},
    )
    return _download(text, "tokens.csv", "text/csv")
