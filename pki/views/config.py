"""HTML pages of the Configuration tab: kubeadm files per node, kubeadm settings, the audit
policy, load-balancer configs, kubeadm-certs and the static token file.

Thin: the access check first, then a form or a call into ``pki.services.bootstrap``, and a render.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from clusterpanel.api.params import is_object_id
from clusterpanel.errors import InputError
from clusterpanel.security.audit import Actor
from clusterpanel.web.access import get_for_user, require
from clusterpanel.web.forms import add_errors
from clusterpanel.web.responses import download
from clusterpanel.web.tables import Column, Table
from nodes.models import Cluster, Node, NodeRole
from pki.forms.config import (
    KubeadmSettingsForm,
    StaticTokenForm,
    StaticTokenImportForm,
)
from pki.services import binary_files
from pki.services import bootstrap as bootstrap_services

# --- configuration tab ---------------------------------------------------------------------------


NODE_CONFIG_COLUMNS = [
    Column("Node", "name", ("name",)),
    Column("Role", "role", ("role", "name")),
    Column("File"),
    Column(""),
]
STATIC_TOKEN_COLUMNS = [
    Column("User", "user", ("user",)),
    Column("UID", "uid", ("uid",)),
    Column("Groups"),
    Column(""),
]


def _config_context(request: HttpRequest, cluster: Cluster, **extra: Any) -> dict[str, Any]:
    stored = bootstrap_services.settings_for(cluster)
    # Two tables on one page: each reads its own sort and page parameters.
    node_table = Table(
        request, NODE_CONFIG_COLUMNS, default="name", prefix="nodes_", fragment="node-configs"
    )
    static_table = Table(
        request, STATIC_TOKEN_COLUMNS, default="user", prefix="static_", fragment="static-tokens"
    )
    binary = binary_files.is_binary(cluster)
    # A binary install renders files for its etcd members too; kubeadm has no file for them.
    nodes = cluster.nodes.order_by("pk")
    if not binary:
        nodes = nodes.exclude(role=NodeRole.ETCD)
    static_tokens = cluster.static_tokens.all()
    preview, preview_error = "", None
    try:
        if not binary:
            preview = bootstrap_services.cluster_configuration_preview(cluster)
    except InputError as error:
        preview_error = error.text()
    context: dict[str, Any] = {
        "cluster": cluster,
        "binary": binary,
        "settings_form": KubeadmSettingsForm.for_settings(stored),
        "preview": preview,
        "preview_error": preview_error,
        "init_node": bootstrap_services.init_node(cluster),
        "certificate_key": bootstrap_services.usable_certificate_key(cluster),
        "nodes": node_table.paginate(node_table.order(nodes)),
        "node_table": node_table,
        "static_tokens": static_table.paginate(static_table.order(static_tokens)),
        "static_table": static_table,
        "static_form": StaticTokenForm(),
        "import_form": StaticTokenImportForm(),
        "import_warnings": [],
    }
    context.update(extra)
    return context


def config_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The Configuration tab: settings, previews and downloads."""
    cluster = get_for_user(request, Cluster, pk)
    return render(request, "pki/config.html", _config_context(request, cluster))


@require_POST
def config_settings(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "edit_cluster_security")
    form = KubeadmSettingsForm.for_settings(bootstrap_services.settings_for(cluster), request.POST)
    if form.is_valid():
        try:
            bootstrap_services.save_settings(
                cluster, form.cleaned_data, actor=Actor.from_request(request)
            )
            messages.success(request, "kubeadm settings saved.")
            return redirect("config_page", pk=cluster.pk)
        except InputError as error:
            add_errors(form, error)
    context = _config_context(request, cluster, settings_form=form)
    return render(request, "pki/config.html", context, status=400)


def _unavailable_text(error: bootstrap_services.JoinUnavailable) -> str:
    """The reason with the page's way out."""
    if isinstance(error, bootstrap_services.NoUsableToken):
        return f"{error} Create one with “Create a new token and render” below."
    if isinstance(error, bootstrap_services.NoCertificateKey):
        return f"{error} Make one with “Make a certificate key” below."
    return str(error)


def node_config(request: HttpRequest, pk: int, node_pk: int) -> HttpResponse:
    """One node's kubeadm configuration file (operator only; a control-plane file carries the
    certificate key: admins only, 403 with the reason).

    The page shows it with the token and the certificate key masked and records nothing;
    ``?download=1`` hands out the file in clear, which is the audited act. A POST with
    ``new_token=1`` makes a new token (audited) and shows the page again.
    """
    cluster = get_for_user(request, Cluster, pk, "reveal_tokens")
    node = get_object_or_404(Node, pk=node_pk, cluster=cluster)
    if request.method == "POST":
        require(request, "manage_tokens")
        if request.POST.get("new_token") == "1":
            bootstrap_services.new_join_token(cluster, actor=Actor.from_request(request))
            messages.success(request, "New bootstrap token created.")
        return redirect("config_node", pk=cluster.pk, node_pk=node.pk)
    context: dict[str, Any] = {"cluster": cluster, "node": node}
    try:
        if request.GET.get("download") == "1":
            config = bootstrap_services.kubeadm_config_for(
                cluster, node, actor=Actor.from_request(request)
            )
            return download(config.text, f"kubeadm-{node.name}.yaml")
        context["config"] = bootstrap_services.kubeadm_config_preview(
            cluster, node, actor=Actor.from_request(request)
        )
    except bootstrap_services.JoinUnavailable as error:
        context["error"] = _unavailable_text(error)
        context["missing_token"] = isinstance(error, bootstrap_services.NoUsableToken)
        context["missing_key"] = isinstance(error, bootstrap_services.NoCertificateKey)
        return render(request, "pki/config_node.html", context, status=409)
    except InputError as error:
        context["error"] = error.text()
        return render(request, "pki/config_node.html", context, status=400)
    except PermissionDenied as error:
        context.update(error=str(error), refused=True)
        return render(request, "pki/config_node.html", context, status=403)
    return render(request, "pki/config_node.html", context)


@require_POST
def certificate_key_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Make the certificate key that control-plane joins and kubeadm-certs use (audited), unless
    one has an hour left; back to the node's file when ``node`` names one."""
    cluster = get_for_user(request, Cluster, pk, "manage_tokens")
    key, created = bootstrap_services.ensure_certificate_key(
        cluster, actor=Actor.from_request(request)
    )
    expires = f"{key.expires_at:%Y-%m-%d %H:%M} UTC"
    if created:
        messages.success(request, f"Certificate key made; it expires at {expires}.")
    else:
        messages.info(request, f"The current certificate key is good until {expires}.")
    raw = request.POST.get("node", "")
    node = cluster.nodes.filter(pk=int(raw)).first() if is_object_id(raw) else None
    if node is not None:
        return redirect("config_node", pk=cluster.pk, node_pk=node.pk)
    return redirect("config_page", pk=cluster.pk)


@require_GET
def audit_policy_download(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk)
    return download(bootstrap_services.audit_policy_text(cluster), "audit-policy.yaml")


@require_GET
def load_balancer_download(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk)
    try:
        text = bootstrap_services.load_balancer_config(cluster, kind)
    except InputError as error:
        messages.error(request, error.text())
        return redirect("config_page", pk=cluster.pk)
    filename = {"nginx": "nginx.conf", "haproxy": "haproxy.cfg"}[kind]
    return download(text, filename, "text/plain")


@require_GET
def kubeadm_certs_download(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "download_ca_keys")
    try:
        text = bootstrap_services.download_kubeadm_certs(cluster, actor=Actor.from_request(request))
    except bootstrap_services.JoinUnavailable as error:
        if isinstance(error, bootstrap_services.NoCertificateKey):
            messages.error(request, f"{error} Make one with “Make a certificate key”.")
        else:
            messages.error(request, str(error))
        return redirect(f"{reverse('config_page', args=[cluster.pk])}#load-balancer")
    return download(text, "kubeadm-certs.yaml")


# --- static token file ---------------------------------------------------------------------------


@require_POST
def static_token_add(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "manage_tokens")
    form = StaticTokenForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            row = bootstrap_services.add_static_token(
                cluster,
                token=data["token"],
                user=data["user"],
                uid=data["uid"],
                groups=bootstrap_services.parse_groups(data["groups"]),
                actor=Actor.from_request(request),
            )
            messages.success(request, f"Static token for {row.user} added.")
            return redirect("config_page", pk=cluster.pk)
        except InputError as error:
            add_errors(form, error)
    context = _config_context(request, cluster, static_form=form)
    return render(request, "pki/config.html", context, status=400)


@require_POST
def static_token_import(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "manage_tokens")
    form = StaticTokenImportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            result = bootstrap_services.import_static_tokens(
                cluster,
                form.cleaned_data["csv"],
                replace=form.cleaned_data["replace"],
                actor=Actor.from_request(request),
            )
            messages.success(request, f"{result.created} static token(s) imported.")
            for warning in result.warnings:
                messages.warning(request, warning)
            return redirect("config_page", pk=cluster.pk)
        except InputError as error:
            add_errors(form, error)
    context = _config_context(request, cluster, import_form=form)
    return render(request, "pki/config.html", context, status=400)


@require_POST
def static_token_delete(request: HttpRequest, pk: int, token_pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "manage_tokens")
    row = get_object_or_404(cluster.static_tokens, pk=token_pk)
    bootstrap_services.delete_static_token(row, actor=Actor.from_request(request))
    messages.success(request, f"Static token of {row.user} deleted.")
    return redirect("config_page", pk=cluster.pk)


@require_GET
def static_token_file(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "reveal_tokens")
    text = bootstrap_services.download_static_tokens(cluster, actor=Actor.from_request(request))
    return download(text, "tokens.csv", "text/csv")
