"""PKI pages: the cluster's Certificates tab, the inspector, SAN checks, the CA page and imports.

Thin: the access check first, one service call (which owns the transaction and the audit event),
render. Every refusal is an ``InputError``, shown as a message or on the form field it names.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from clusterpanel.api.params import is_object_id
from clusterpanel.errors import InputError
from clusterpanel.security.audit import Actor
from clusterpanel.web.access import get_for_user, require
from clusterpanel.web.htmx import HtmxHttpRequest
from clusterpanel.web.responses import download
from clusterpanel.web.tables import Column, Table
from nodes.models import Cluster, Node
from nodes.recipes.cert_rollout import DEFAULT_WAIT
from pki.domain import expiry
from pki.forms.certificates import (
    CfsslCAForm,
    CfsslCsrForm,
    InspectForm,
    KubeadmImportForm,
    KubeconfigForm,
    SanCheckForm,
)
from pki.models.certificates import Certificate, CertificateAuthority, CertificateStatus
from pki.services import certificates as certificate_services

BANDS = (expiry.OK, expiry.WARNING, expiry.CRITICAL, expiry.EXPIRED)


CERTIFICATE_COLUMNS = [
    Column("File", "name", ("name", "node_name"), css="nowrap"),
    Column("Node", "node", ("node_name", "name")),
    Column("CN", "cn", ("common_name",)),
    Column("Issuer", "issuer", ("issuer",)),
    Column("Expires", "expires", ("not_after",)),
    Column("Days left", "days", ("not_after",), css="nowrap"),
    Column("Status", "status", ("status",)),
    Column(""),
]
AUTHORITY_COLUMNS = [
    Column("CA", "name", ("name",)),
    Column("CN", "cn", ("common_name",)),
    Column("Source", "source", ("source",)),
    Column("Expires", "expires", ("not_after",)),
    Column("Days left", "days", ("not_after",), css="nowrap"),
    Column("Status", "status", ("status", "name")),
    Column("SHA-256 fingerprint / discovery hash"),
]


def _filtered(
    cluster: Cluster, params: Any, table: Table
) -> tuple[list[Certificate], dict[str, str]]:
    """The table's rows after the GET filters (status, band, name, node), in the table's order
    (by expiry unless a header asked for another)."""
    filters = {k: str(params.get(k, "")) for k in ("status", "band", "q", "node")}
    queryset: QuerySet[Certificate] = Certificate.objects.filter(cluster=cluster).select_related(
        "authority"
    )
    status = filters["status"] or CertificateStatus.ACTIVE
    filters["status"] = status
    if status != "all":
        queryset = queryset.filter(status=status)
    if filters["node"]:
        queryset = queryset.filter(node_name=filters["node"])
    if filters["q"]:
        queryset = queryset.filter(name__icontains=filters["q"]) | queryset.filter(
            common_name__icontains=filters["q"]
        )
    rows = list(table.order(queryset.order_by("not_after", "name", "node_name")))
    if filters["band"] in BANDS:
        rows = [r for r in rows if r.band == filters["band"]]
    return rows, filters


def _bar_percent(row: Certificate) -> int:
    """How much of the certificate's life is left, for the expiry bar."""
    total = (row.not_after - row.not_before).total_seconds()
    left = row.days_left() * 86400
    return max(0, min(100, round(100 * left / total))) if total > 0 else 0


def _certificates_context(request: HttpRequest, cluster: Cluster, **extra: Any) -> dict[str, Any]:
    """Everything the Certificates tab shows; ``extra`` replaces a part (a bound form)."""
    table = Table(request, CERTIFICATE_COLUMNS, default="expires", fragment="certificates")
    rows, filters = _filtered(cluster, request.GET, table)
    page = table.paginate(rows)
    for row in page:
        row.bar = _bar_percent(row)  # type: ignore[attr-defined]
    try:
        report: certificate_services.CoverageReport | None = certificate_services.coverage(cluster)
        problem = ""
    except InputError as exc:
        report, problem = None, str(exc)
    context: dict[str, Any] = {
        "cluster": cluster,
        "rows": page,
        "table": table,
        # What "Renew all" renews: the active kubeadm files (user certificates are reissued).
        "renewable_count": Certificate.objects.tree().filter(cluster=cluster).count(),
        "filters": filters,
        "bands": BANDS,
        "statuses": ["active", "superseded", "revoked", "all"],
        "report": report,
        "problem": problem,
        "expiration": certificate_services.expiration(cluster),
        "nodes": cluster.nodes.order_by("name"),
        "has_cas": bool(certificate_services.active_cas(cluster)),
        "san_form": SanCheckForm(),
        "kubeconfig_form": KubeconfigForm(initial={"validity": cluster.certificate_validity_days}),
    }
    context["now"] = timezone.now()
    context.update(extra)
    return context


def certificates(request: HttpRequest, pk: int) -> HttpResponse:
    """The cluster's Certificates tab."""
    cluster = get_for_user(request, Cluster, pk)
    return render(request, "pki/certificates.html", _certificates_context(request, cluster))


@require_GET
def node_bundle(request: HttpRequest, pk: int, node_pk: int) -> HttpResponse:
    """A node's ``/etc/kubernetes`` as tar.gz, with its keys (audited). Before the node's
    certificates are issued the tab says so, with the way to issue them."""
    cluster = get_for_user(request, Cluster, pk, "download_bundle")
    node = get_object_or_404(Node, pk=node_pk, cluster=cluster)
    try:
        data = certificate_services.download_bundle(
            cluster, node, actor=Actor.from_request(request)
        )
    except InputError:
        messages.error(
            request,
            f"The bundle of {node.name} holds all of its certificates, and they are not all "
            "issued yet. Issue the missing certificates (the button at the top of this page), "
            "then download the bundle again.",
        )
        return redirect(f"{reverse('pki_certificates', args=[cluster.pk])}#bundles")
    filename = f"{cluster.name}-{node.name}-etc-kubernetes.tar.gz"
    return download(data, filename, "application/gzip")


@require_POST
def user_kubeconfig(request: HttpRequest, pk: int) -> HttpResponse:
    """Download a kubeconfig with a user's own client certificate (audited).

    Refusals (a bad name, ``system:masters``, a validity past the CA) re-show the tab with the
    error on the field it names.
    """
    cluster = get_for_user(request, Cluster, pk, "download_bundle")
    form = KubeconfigForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        validity = data["validity"] or cluster.certificate_validity_days
        try:
            text, row = certificate_services.user_kubeconfig(
                cluster,
                data["username"],
                data["groups"],
                validity,
                actor=Actor.from_request(request),
            )
        except InputError as exc:
            form.apply_error(exc)
        else:
            return download(text, f"{row.common_name}.conf")
    context = _certificates_context(request, cluster, kubeconfig_form=form)
    return render(request, "pki/certificates.html", context, status=400)


@require_POST
def issue(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "issue_certificates")
    try:
        result = certificate_services.issue_missing(cluster, actor=Actor.from_request(request))
    except InputError as exc:
        messages.error(request, str(exc))
        return redirect("pki_certificates", pk=cluster.pk)
    for warning in result.warnings:
        messages.warning(request, warning)
    if result.created:
        messages.success(request, f"Issued {len(result.created)} certificates.")
    else:
        messages.info(request, "Nothing to issue: every file of the topology exists.")
    return redirect("pki_certificates", pk=cluster.pk)


@require_POST
def reissue(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "issue_certificates")
    try:
        created = certificate_services.reissue(cluster, actor=Actor.from_request(request))
    except InputError as exc:
        messages.error(request, str(exc))
        return redirect("pki_certificates", pk=cluster.pk)
    messages.success(request, f"Reissued {len(created)} certificates; CAs and sa keys kept.")
    return redirect("pki_certificates", pk=cluster.pk)


@require_POST
def renew(request: HttpRequest, pk: int) -> HttpResponse:
    """Renew the ticked certificates; every active one only when asked for with ``all=1``
    (the "Renew all" button). Nothing ticked and no ``all=1`` renews nothing. With
    ``?then=rollout`` (the "… and roll out" buttons) it goes on to the launch page of the
    ``cert-rollout`` job."""
    cluster = get_for_user(request, Cluster, pk, "issue_certificates")
    renew_all = request.POST.get("all") == "1"
    raw = [] if renew_all else request.POST.getlist("certificates")
    if not all(is_object_id(value) for value in raw):
        messages.error(request, "Certificate ids must be numbers.")
        return redirect("pki_certificates", pk=cluster.pk)
    ids = [int(value) for value in raw] or None
    if ids is None and not renew_all:
        messages.info(
            request,
            "No certificate is ticked, so nothing was renewed. Tick the certificates to renew, "
            "or use Renew all.",
        )
        return redirect("pki_certificates", pk=cluster.pk)
    try:
        created = certificate_services.renew(
            cluster,
            ids,
            reuse_key=request.POST.get("reuse_key") == "on",
            actor=Actor.from_request(request),
        )
    except InputError as exc:
        messages.error(request, str(exc))
        return redirect("pki_certificates", pk=cluster.pk)
    if request.GET.get("then") == "rollout":
        # "Renew and roll out": the renewed files do nothing until written onto the nodes and the
        # components restarted; the launch page previews that job before it is launched.
        messages.success(
            request,
            f"Renewed {len(created)} certificates. The nodes still run the old ones: review the "
            "rollout below and launch it to write the new files and restart the components.",
        )
        launch = reverse("job_new", args=[cluster.pk])
        return redirect(f"{launch}?kind=cert-rollout&param.wait_seconds={DEFAULT_WAIT}")
    messages.success(request, f"Renewed {len(created)} certificates.")
    return redirect("pki_certificates", pk=cluster.pk)


def check_san(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The SAN check form's answer (an htmx fragment, or the fragment in a page)."""
    cluster = get_for_user(request, Cluster, pk)
    form = SanCheckForm(request.GET or None)
    results: list[dict[str, Any]] = []
    if form.is_valid():
        host = form.cleaned_data["host"]
        rows = Certificate.objects.tree().filter(cluster=cluster, name="apiserver")
        if form.cleaned_data.get("certificate"):
            rows = Certificate.objects.filter(cluster=cluster, pk=form.cleaned_data["certificate"])
        try:
            results = [
                {"row": row, "check": certificate_services.check_san(row, host)} for row in rows
            ]
        except InputError as exc:
            form.apply_error(exc)
    context = {
        "cluster": cluster,
        "san_form": form,
        "results": results,
        "endpoint_checks": certificate_services.endpoint_checks(cluster) if not request.GET else [],
    }
    template = "pki/_san_check.html" if request.htmx else "pki/san_check_page.html"
    return render(request, template, context)


def _with_moments(info: dict[str, Any]) -> dict[str, Any]:
    """The inspector's dict with its validity bounds as datetimes: the domain keeps them as ISO
    text (JSON-serialisable for the API); the page shows them through ``|when``."""
    moments = {
        key: dt.datetime.fromisoformat(str(info[key]))
        for key in ("not_before", "not_after")
        if info.get(key)
    }
    return {**info, **{f"{key}_at": value for key, value in moments.items()}}


def inspect_certificate(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The inspector panel of one stored certificate."""
    row = get_for_user(request, Certificate.objects.select_related("cluster", "authority"), pk)
    info = _with_moments(certificate_services.inspect_stored(row))
    context = {"cluster": row.cluster, "row": row, "info": info}
    template = "pki/_inspector.html" if request.htmx else "pki/inspect_page.html"
    return render(request, template, context)


def inspect_upload(request: HttpRequest) -> HttpResponse:
    """Inspect a pasted or uploaded certificate; nothing is stored."""
    require(request, "view")
    form = InspectForm(request.POST or None, request.FILES or None)
    infos: list[dict[str, Any]] = []
    if request.method == "POST" and form.is_valid():
        try:
            uploaded = certificate_services.inspect_upload(form.file_or_text("pem_file", "pem"))
            infos = [_with_moments(info) for info in uploaded]
        except InputError as exc:
            form.apply_error(exc)
    return render(request, "pki/inspect_upload.html", {"form": form, "infos": infos})


def authorities(request: HttpRequest, pk: int) -> HttpResponse:
    """The CA page: active CAs with fingerprints and discovery hashes, then their history."""
    cluster = get_for_user(request, Cluster, pk)
    table = Table(request, AUTHORITY_COLUMNS, default="status")
    queryset = CertificateAuthority.objects.filter(cluster=cluster).order_by("status", "name")
    rows = table.paginate(table.order(queryset))
    sa = cluster.service_account_keys.filter(status=CertificateStatus.ACTIVE).first()
    context = {"cluster": cluster, "authorities": rows, "table": table, "sa": sa}
    context["now"] = timezone.now()
    return render(request, "pki/authorities.html", context)


_IMPORT_FORMS = {"kubeadm": KubeadmImportForm, "cfssl-ca": CfsslCAForm, "cfssl-csr": CfsslCsrForm}


def import_pki(request: HttpRequest, pk: int) -> HttpResponse:
    """Three imports on one page; the POSTed ``form`` field says which one was sent."""
    cluster = get_for_user(request, Cluster, pk, "manage_ca")
    kind = request.POST.get("form", "") if request.method == "POST" else ""
    forms: dict[str, Any] = {}
    for name, form_class in _IMPORT_FORMS.items():
        data = (request.POST, request.FILES) if name == kind else (None, None)
        extra = {"cluster": cluster} if form_class is KubeadmImportForm else {}
        forms[name] = form_class(*data, **extra, prefix=name)
    if kind in forms and forms[kind].is_valid():
        form = forms[kind]
        try:
            result = _run_import(cluster, kind, form, Actor.from_request(request))
        except InputError as exc:
            form.apply_error(exc)
        else:
            names = ", ".join(ca.name for ca in result.authorities)
            messages.success(request, f"Imported {names}; {result.superseded} superseded.")
            return redirect("pki_authorities", pk=cluster.pk)
    # An import over a live PKI supersedes what nodes run on: the button asks first.
    active = CertificateAuthority.objects.filter(cluster=cluster, status=CertificateStatus.ACTIVE)
    context = {"cluster": cluster, "forms": forms}
    context["active_cas"] = list(active.order_by("name").values_list("name", flat=True))
    return render(request, "pki/import.html", context)


def _run_import(
    cluster: Cluster, kind: str, form: Any, actor: Actor
) -> certificate_services.ImportResult:
    data = form.cleaned_data
    if kind == "kubeadm":
        return certificate_services.import_kubeadm_archive(
            cluster, data["archive"].read(), data.get("node"), actor=actor
        )
    if kind == "cfssl-ca":
        return certificate_services.import_cfssl_ca(
            cluster, data["ca_pem"].read(), data["ca_key_pem"].read(), data["name"], actor=actor
        )
    return certificate_services.create_ca_from_cfssl_csr(
        cluster, data["ca_csr"], data["name"], actor=actor
    )
