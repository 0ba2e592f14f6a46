"""HTML pages for join commands and bootstrap tokens (the join card and the Tokens tab).

Thin: the access check first, then a form or a call into ``pki.services.bootstrap``, and a
render. Browsing shows tokens and certificate keys masked; they appear in clear only in answer to
a POST (Show, Copy, Reveal), which is what the audit log records.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from clusterpanel.errors import InputError
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import can
from clusterpanel.web.access import get_for_user, require
from clusterpanel.web.forms import add_errors
from clusterpanel.web.htmx import HtmxHttpRequest
from clusterpanel.web.tables import DESC, Column, Table
from nodes.models import Cluster, NodeRole
from pki.forms.bootstrap import (
    TokenForm,
)
from pki.models.certificates import CAName, CertificateAuthority, CertificateStatus
from pki.models.tokens import BootstrapToken, TokenStatus
from pki.services import bootstrap as bootstrap_services

# --- join card -----------------------------------------------------------------------------------


def _join_context(
    request: HttpRequest, cluster: Cluster, revealed: bootstrap_services.JoinCommand | None = None
) -> dict[str, Any]:
    """Both join commands with the token masked (a reveal replaces its own); or the reason
    there are none. Reads only: showing the card reveals and records nothing."""
    context: dict[str, Any] = {"cluster": cluster, "join_loaded": True}
    try:
        worker, control_plane = bootstrap_services.join_card_preview(
            cluster, actor=Actor.from_request(request)
        )
    except bootstrap_services.NoUsableToken as error:
        context["join_error"] = f"{error} Create one with New token."
        return context
    except bootstrap_services.JoinUnavailable as error:
        context["join_error"] = str(error)
        return context
    if revealed is not None and revealed.role == NodeRole.WORKER:
        worker = revealed
    elif revealed is not None:
        control_plane = revealed
    context.update(worker=worker, control_plane=control_plane, now=timezone.now())
    return context


def _card(request: HtmxHttpRequest, cluster: Cluster) -> HttpResponse:
    template = "pki/_join_card.html" if request.htmx else "pki/token_join.html"
    return render(request, template, _join_context(request, cluster))


@require_GET
def join_card(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The join card's content (htmx), or a page with it when followed as a plain link."""
    cluster = get_for_user(request, Cluster, pk, "reveal_tokens")
    return _card(request, cluster)


@require_POST
def join_card_new_token(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A new join token (audited); the card shows it masked like any other."""
    cluster = get_for_user(request, Cluster, pk, "manage_tokens")
    require(request, "reveal_tokens")
    bootstrap_services.new_join_token(cluster, actor=Actor.from_request(request))
    return _card(request, cluster)


@require_POST
def join_reveal(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Show or Copy on the join card: one command in clear, recorded as its reveal. A
    control-plane command makes the certificate key it carries when none has an hour left."""
    cluster = get_for_user(request, Cluster, pk, "reveal_tokens")
    try:
        role = bootstrap_services.validate_role(request.POST.get("role"))
        join = bootstrap_services.join_command(
            cluster, role, create_key=True, actor=Actor.from_request(request)
        )
    except bootstrap_services.JoinUnavailable:
        # The card's state changed meanwhile (the token was revoked, say): show it anew, with
        # the reason in place of the commands.
        response = _card(request, cluster)
        if request.htmx:
            return reswap(retarget(response, "#join-card"), "outerHTML")
        response.status_code = 409
        return response
    except InputError as error:
        return HttpResponse(error.text(), status=400, content_type="text/plain; charset=utf-8")
    if request.htmx:
        return render(request, "pki/_join_command.html", {"join": join})
    return render(request, "pki/token_join.html", _join_context(request, cluster, revealed=join))


# --- tokens tab ----------------------------------------------------------------------------------


TOKEN_COLUMNS = [
    Column("Id", "id", ("token_id",)),
    Column("Status", "status", value=lambda row: row["status"]),
    Column("Expires", "expires", ("expires_at",)),
    Column("Usages"),
    Column("Groups"),
    Column("Description", "description", ("description",)),
    Column("Created", "created", ("created_at",), css="nowrap"),
    Column(""),
]


def _token_rows(tokens: Any) -> list[dict[str, Any]]:
    now = timezone.now()
    return [{"token": token, "status": token.status(now)} for token in tokens]


def token_list(request: HttpRequest, pk: int) -> HttpResponse:
    """The Tokens tab: list with status, and the create form (operators)."""
    cluster = get_for_user(request, Cluster, pk)
    form = TokenForm(request.POST or None) if can(request.user, "manage_tokens") else None
    created = None
    if request.method == "POST":
        require(request, "manage_tokens")
        assert form is not None
        if form.is_valid():
            try:
                created = bootstrap_services.create_token(
                    cluster, form.cleaned_data["request"], actor=Actor.from_request(request)
                )
                form = TokenForm()
            except InputError as error:
                add_errors(form, error)
    status = request.GET.get("status", "")
    table = Table(request, TOKEN_COLUMNS, default="created", default_dir=DESC, fragment="tokens")
    tokens = cluster.bootstrap_tokens.select_related("created_by", "revoked_by")
    # Stored columns sort in the database; the status (computed from the clock) in Python.
    rows = _token_rows(tokens if table.column.value else table.order(tokens))
    if status in TokenStatus.values:
        rows = [row for row in rows if row["status"] == status]
    if table.column.value:
        rows = list(table.order(rows))
    context = {
        "cluster": cluster,
        "form": form,
        "rows": table.paginate(rows),
        "table": table,
        # A token is for joining, which needs the cluster CA's discovery hash.
        "has_cluster_ca": CertificateAuthority.objects.filter(
            cluster=cluster, name=CAName.CA, status=CertificateStatus.ACTIVE
        ).exists(),
        "created": created,
        "status_filter": status,
        "statuses": TokenStatus.choices,
        "now": timezone.now(),
    }
    response = render(request, "pki/tokens.html", context)
    if request.method == "POST" and form is not None and form.errors:
        response.status_code = 400
    return response


@require_POST
def token_reveal(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Show one token in full, as its Secret manifest and ``kubeadm token create`` line."""
    token = get_for_user(
        request, BootstrapToken.objects.select_related("cluster"), pk, "reveal_tokens"
    )
    bootstrap_services.reveal_token(token, actor=Actor.from_request(request))
    context = {
        "cluster": token.cluster,
        "token": token,
        "status": token.status(),
        "manifest": bootstrap_services.secret_manifest(token),
        "command": bootstrap_services.token_create_command(token),
    }
    template = "pki/token_reveal_fragment.html" if request.htmx else "pki/token_reveal.html"
    return render(request, template, context)


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_for_user(
        request, BootstrapToken.objects.select_related("cluster"), pk, "manage_tokens"
    )
    if token.revoked_at is None:
        bootstrap_services.revoke_token(token, actor=Actor.from_request(request))
        messages.success(request, f"Token {token.token_id} revoked.")
    return redirect("token_list", pk=token.cluster_id)
