"""HTML pages for clusters and nodes. Thin: access check, form, one service call, render."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.db.models import Case, F, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import reswap, retarget

from clusterpanel.errors import Conflict, InputError
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import can
from clusterpanel.web.access import get_for_user, require
from clusterpanel.web.forms import add_errors
from clusterpanel.web.htmx import HtmxHttpRequest
from clusterpanel.web.tables import Column, Table
from nodes import host_keys, services
from nodes.forms import ApproveHostKeyForm, ClusterDeleteForm, ClusterForm, NodeForm
from nodes.health import pages as health_pages
from nodes.models import Cluster, EtcdTopology, Node
from pki.domain import expiry


@dataclass(frozen=True)
class ClusterSummary:
    """A dashboard card: the cluster (with its role counts) and its soonest expiry."""

    cluster: Cluster
    next_expiry: datetime | None
    days_left: int | None
    band: str | None


def _summary(cluster: Cluster, now: datetime) -> ClusterSummary:
    # The soonest expiry of an active certificate or CA: what takes the cluster down first.
    candidates = [
        getattr(cluster, "next_leaf_expiry", None),
        getattr(cluster, "next_ca_expiry", None),
    ]
    soonest = min((t for t in candidates if t is not None), default=None)
    if soonest is None:
        return ClusterSummary(cluster, None, None, None)
    days = math.floor((soonest - now) / timedelta(days=1))
    return ClusterSummary(cluster, soonest, days, expiry.band(days))


# The dashboard's health grid re-fetches itself this often while the page is visible.
HEALTH_GRID_POLL_SECONDS = 30


def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    """The dashboard; its health grid's poller (htmx) gets the grid fragment alone."""
    require(request, "view")
    now = timezone.now()
    health = {
        "health_columns": [title for title, _ in health_pages.COLUMNS],
        "health_poll_seconds": HEALTH_GRID_POLL_SECONDS,
    }
    # Paged like the other lists: a fleet of a thousand clusters is a thousand cards. The grid's
    # poller asks for the same page, so it refreshes the clusters on screen.
    table = Table(request, DASHBOARD_COLUMNS, default="name")
    if request.htmx:
        page = table.paginate(Cluster.objects.order_by("name"))
        context = {**health, "health_grid": health_pages.grid(list(page.object_list))}
        return render(request, "nodes/_health_grid.html", context)
    page = table.paginate(Cluster.objects.with_role_counts().with_next_expiry().order_by("name"))
    clusters = list(page.object_list)
    rows = [_summary(c, now) for c in clusters]
    context = {
        "table": table,
        "rows": rows,
        "now": now,
        **health,
        "health_grid": health_pages.grid(clusters),
    }
    return render(request, "dashboard.html", context)


DASHBOARD_COLUMNS = [Column("Name", "name", ("name",))]

CLUSTER_COLUMNS = [
    Column("Name", "name", ("name",)),
    Column("Version", "version", ("kubernetes_version",)),
    Column("Endpoint", "endpoint", ("control_plane_endpoint",)),
    Column("etcd", "etcd", ("etcd_topology",)),
    Column("Keys", "keys", ("key_algorithm",)),
    Column("Control plane", "control_plane", ("control_plane_count",), css="nowrap"),
    Column("Workers", "workers", ("worker_count",)),
    Column("etcd members", "etcd_members", ("etcd_members",), css="nowrap"),
]


def cluster_list(request: HttpRequest) -> HttpResponse:
    require(request, "view")
    table = Table(request, CLUSTER_COLUMNS, default="name")
    clusters = Cluster.objects.with_role_counts().annotate(
        # What etcd_member_count shows, as a column the database can sort by.
        etcd_members=Case(
            When(etcd_topology=EtcdTopology.STACKED, then=F("control_plane_count")),
            default=F("etcd_count"),
        )
    )
    page = table.paginate(table.order(clusters))
    return render(request, "nodes/cluster_list.html", {"clusters": page, "table": table})


def cluster_create(request: HttpRequest) -> HttpResponse:
    require(request, "edit_inventory")
    form = ClusterForm(
        request.POST or None, edit_security=can(request.user, "edit_cluster_security")
    )
    if request.method == "POST" and form.is_valid():
        actor = Actor.from_request(request)
        created = _saved(form, lambda: services.create_cluster(form.save(commit=False), actor))
        if created is not None:
            messages.success(request, f"Cluster {created.name} created.")
            return redirect("cluster_detail", pk=created.pk)
    return render(request, "nodes/cluster_form.html", {"form": form, "cluster": None})


def cluster_edit(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "edit_inventory")
    form = ClusterForm(
        request.POST or None,
        instance=cluster,
        edit_security=can(request.user, "edit_cluster_security"),
    )
    if request.method == "POST" and form.is_valid():
        actor = Actor.from_request(request)
        if _saved(form, lambda: services.update_cluster(form.save(commit=False), actor)):
            messages.success(request, f"Cluster {cluster.name} saved.")
            return redirect("cluster_detail", pk=cluster.pk)
    return render(request, "nodes/cluster_form.html", {"form": form, "cluster": cluster})


def cluster_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Deleting destroys the cluster's CA keys: a page says what goes, and the cluster is
    deleted only when the name typed there is the cluster's."""
    cluster = get_for_user(request, Cluster, pk, "delete_cluster")
    data = request.POST if request.method == "POST" else None
    form = ClusterDeleteForm(data, cluster=cluster)
    if request.method == "POST" and form.is_valid():
        services.delete_cluster(cluster, Actor.from_request(request))
        messages.success(request, f"Cluster {cluster.name} deleted.")
        return redirect("cluster_list")
    context = {
        "cluster": cluster,
        "form": form,
        "node_count": cluster.nodes.count(),
        # Reverse relations of the PKI app, by name, so that this app does not import it.
        "authority_count": cluster.certificate_authorities.count(),
        "certificate_count": cluster.certificates.count(),
        "token_count": cluster.bootstrap_tokens.count(),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "nodes/cluster_confirm_delete.html", context, status=status)


def _address_key(node: Node) -> tuple[int, int]:
    address = ipaddress.ip_address(node.address)
    return (address.version, int(address))


NODE_COLUMNS = [
    Column("Name", "name", ("name",)),
    Column("Address", "address", value=_address_key),
    Column("Role", "role", ("role",)),
    Column("Labels"),
    Column("SSH", "ssh", ("ssh_user", "ssh_port")),
    Column("Credential"),
    Column("Host key", css="nowrap"),
    Column("Status", "status", ("status",)),
    Column(""),
]


def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _cluster_page(request, get_for_user(request, Cluster, pk))


def _cluster_page(request: HttpRequest, cluster: Cluster, status: int = 200) -> HttpResponse:
    table = Table(request, NODE_COLUMNS, default="name", fragment="nodes")
    nodes = table.paginate(table.order(cluster.nodes.all()))
    context: dict[str, Any] = {
        "cluster": cluster,
        "nodes": nodes,
        "table": table,
        # Joining needs the cluster CA: without one the join card says to issue the PKI first.
        "has_cluster_ca": cluster.certificate_authorities.filter(
            name="ca", status="active"
        ).exists(),
    }
    return render(request, "nodes/cluster_detail.html", context, status=status)


@require_POST
def cluster_bastion_scan(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "edit_cluster_security")
    try:
        scan = host_keys.scan_bastion_host_key(Actor.from_request(request), cluster)
    except Conflict as error:
        messages.error(request, str(error))
        return _cluster_page(request, cluster, status=409)
    if scan.matches_pinned:
        messages.success(request, f"The bastion presents its pinned key {scan.key.fingerprint}.")
    else:
        messages.success(
            request,
            f"The bastion presents {scan.key.fingerprint}. Compare it with the fingerprint on "
            "the bastion's console before approving it.",
        )
    return redirect("cluster_detail", pk=cluster.pk)


@require_POST
def cluster_bastion_approve(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "edit_cluster_security")
    form = ApproveHostKeyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the fingerprint of the scanned bastion key.")
        return _cluster_page(request, cluster, status=400)
    fingerprint = form.cleaned_data["fingerprint"]
    try:
        host_keys.approve_bastion_host_key(Actor.from_request(request), cluster, fingerprint)
    except InputError as error:
        messages.error(request, error.text())
        return _cluster_page(request, cluster, status=400)
    except Conflict as error:
        messages.error(request, str(error))
        return _cluster_page(request, cluster, status=409)
    messages.success(request, f"Bastion host key {fingerprint} approved.")
    return redirect("cluster_detail", pk=cluster.pk)


def _node_form_response(
    request: HtmxHttpRequest, form: NodeForm, cluster: Cluster, node: Node | None
) -> HttpResponse:
    context = {"form": form, "cluster": cluster, "node": node}
    template = "nodes/_node_form.html" if request.htmx else "nodes/node_form_page.html"
    return render(request, template, context)


Saved = TypeVar("Saved")


def _saved(form: forms.BaseForm, save: Callable[[], Saved]) -> Saved | None:
    """The service's result, or None with its refusal on the form: a duplicate name or address
    that another request stored in the moment between validation and the write."""
    try:
        return save()
    except InputError as error:
        add_errors(form, error)
        return None


def _save_node(request: HttpRequest, form: NodeForm) -> Node | None:
    actor = Actor.from_request(request)
    return _saved(form, lambda: services.save_node(form.save(commit=False), actor))


def node_create(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk, "edit_inventory")
    form = NodeForm(request.POST or None, request.FILES or None, cluster=cluster)
    if request.method == "POST" and form.is_valid() and (node := _save_node(request, form)):
        if request.htmx:
            # Append the new row to the table and empty the form slot (out of band).
            messages.success(request, f"Node {node.name} added.")
            response = render(
                request, "nodes/_node_row.html", {"node": node, "cluster": cluster, "added": True}
            )
            return reswap(retarget(response, "#node-rows"), "beforeend")
        messages.success(request, f"Node {node.name} added.")
        return redirect("cluster_detail", pk=cluster.pk)
    return _node_form_response(request, form, cluster, None)


def node_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    node = get_for_user(request, Node.objects.select_related("cluster"), pk, "edit_inventory")
    cluster = node.cluster
    form = NodeForm(request.POST or None, request.FILES or None, instance=node, cluster=cluster)
    if request.method == "POST" and form.is_valid() and (saved := _save_node(request, form)):
        node = saved
        if request.htmx:
            messages.success(request, f"Node {node.name} saved.")
            context = {"node": node, "cluster": cluster, "changed": True}
            return render(request, "nodes/_node_row.html", context)
        messages.success(request, f"Node {node.name} saved.")
        return redirect("cluster_detail", pk=cluster.pk)
    if request.method == "POST":
        # The in-memory node was changed by the form; show the stored one.
        node.refresh_from_db()
    return _node_form_response(request, form, cluster, node)


def node_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One table row; used by htmx to cancel an inline edit."""
    node = get_for_user(request, Node.objects.select_related("cluster"), pk)
    return render(request, "nodes/_node_row.html", {"node": node, "cluster": node.cluster})


@require_POST
def node_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    node = get_for_user(request, Node.objects.select_related("cluster"), pk, "edit_inventory")
    cluster = node.cluster
    services.delete_node(node, Actor.from_request(request))
    messages.success(request, f"Node {node.name} deleted.")
    if request.htmx:
        # The row goes; only the message comes back (out of band).
        return render(request, "_messages.html", {"oob": True})
    return redirect("cluster_detail", pk=cluster.pk)


def _node_page(
    request: HttpRequest,
    node: Node,
    approve_form: ApproveHostKeyForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "node": node,
        "cluster": node.cluster,
        "approve_form": approve_form
        or ApproveHostKeyForm(initial={"fingerprint": node.pending_host_key_fingerprint}),
        "facts": facts_summary(node.facts),
    }
    return render(request, "nodes/node_detail.html", context, status=status)


def node_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A node: how it is reached, its host key (scan, approve) and the facts last read."""
    node = get_for_user(request, Node.objects.select_related("cluster"), pk)
    return _node_page(request, node)


@require_POST
def node_host_key_scan(request: HttpRequest, pk: int) -> HttpResponse:
    node = get_for_user(request, Node.objects.select_related("cluster"), pk, "approve_host_keys")
    try:
        scan = host_keys.scan_host_key(Actor.from_request(request), node)
    except Conflict as error:
        messages.error(request, str(error))
        return _node_page(request, node, status=409)
    if scan.matches_pinned:
        messages.success(request, f"{node.name} presents its pinned key {scan.key.fingerprint}.")
    else:
        messages.success(
            request,
            f"{node.name} presents {scan.key.fingerprint}. Compare it with the fingerprint on "
            "the machine's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) before "
            "approving it.",
        )
    return redirect("node_detail", pk=node.pk)


@require_POST
def node_host_key_approve(request: HttpRequest, pk: int) -> HttpResponse:
    node = get_for_user(request, Node.objects.select_related("cluster"), pk, "approve_host_keys")
    form = ApproveHostKeyForm(request.POST)
    if form.is_valid():
        fingerprint = form.cleaned_data["fingerprint"]
        try:
            host_keys.approve_host_key(Actor.from_request(request), node, fingerprint)
        except InputError as error:
            add_errors(form, error)
        except Conflict as error:
            messages.error(request, str(error))
            return _node_page(request, node, form, status=409)
        else:
            messages.success(request, f"Host key {fingerprint} of {node.name} approved.")
            return redirect("node_detail", pk=node.pk)
    node.refresh_from_db()
    return _node_page(request, node, form, status=400)


@dataclass(frozen=True)
class FactsSummary:
    """What the node page shows of the facts a job read (missing values are None)."""

    os: str | None
    kernel: str | None
    cpus: Any
    memory: str | None
    product_uuid: str | None
    macs: list[str]
    hostname: str | None


def _memory(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value) if value else None
    return f"{value / 2**30:.1f} GiB"


def facts_summary(facts: Any) -> FactsSummary | None:
    """The facts a job stored (``nodes.recipes.facts``), read defensively: they come from the
    host, not from the panel."""
    if not isinstance(facts, dict) or not facts:
        return None
    os_name = " ".join(str(facts[k]) for k in ("os_id", "os_version") if facts.get(k)) or None
    macs = facts.get("mac_addresses") or {}
    if isinstance(macs, dict):
        mac_list = [f"{name} {mac}" for name, mac in sorted(macs.items())]
    elif isinstance(macs, list):
        mac_list = [str(mac) for mac in macs]
    else:
        mac_list = [str(macs)]
    return FactsSummary(
        os=os_name,
        kernel=facts.get("kernel"),
        cpus=facts.get("cpus"),
        memory=_memory(facts.get("memory_bytes")),
        product_uuid=facts.get("product_uuid"),
        macs=mac_list,
        hostname=facts.get("hostname"),
    )
