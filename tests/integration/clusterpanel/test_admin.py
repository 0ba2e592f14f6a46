"""The Django admin over the whole registry of the panel's models: every add, change and delete
made there is audited; what only the panel's checks set cannot be edited there; staff viewers
read every model and change none; secrets never appear."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import models
from django.test import Client, RequestFactory
from django.utils import timezone

from clusterpanel.jobs.models import Job, JobLogChunk, JobStep
from clusterpanel.models import ApiToken, AuditEvent, WorkerHeartbeat
from clusterpanel.security.signals import PANEL_APPS
from clusterpanel.web.panel_admin import PanelModelAdmin, secret_fields
from nodes import etcd_snapshots
from nodes.alerts.models import ExpiryNotice
from nodes.models import (
    AlertDelivery,
    AlertSettings,
    Cluster,
    ComponentHealth,
    Finding,
    HealthEvent,
    HealthSample,
    Node,
    ScannedCertificate,
)
from nodes.renewal.models import RenewalPolicy
from pki.models import (
    Certificate,
    CertificateAuthority,
    ClusterBinarySettings,
    ServiceAccountKey,
)
from pki.services import bootstrap as bootstrap_services
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node, make_personas

pytestmark = pytest.mark.django_db

SSH_PASSWORD = "hunter2-ssh-password"
STATIC_TOKEN = "static-token-secret-value"
WEBHOOK_SECRET = "webhook-signing-secret-value"


def panel_admins() -> list[tuple[type[models.Model], Any]]:
    return sorted(
        (
            (model, model_admin)
            for model, model_admin in admin.site._registry.items()
            if model._meta.app_label in PANEL_APPS
        ),
        key=lambda pair: pair[0]._meta.label,
    )


def _label(model: type[models.Model]) -> str:
    return f"{model._meta.app_label}/{model._meta.model_name}"


class FormFields(HTMLParser):
    """The name/value pairs a browser would submit from the admin's change form."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._multiple = False
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind in ("submit", "button", "file", "image"):
                return
            self.data.setdefault(name, []).append(
                a.get("value", "on" if kind == "checkbox" else "")
            )
        elif tag == "select" and name:
            self._select, self._options, self._multiple = name, [], "multiple" in a
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.data[self._textarea][-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            chosen = [value for value, selected in self._options if selected]
            if not chosen and self._options and not self._multiple:
                chosen = [self._options[0][0]]  # what a browser submits for a plain select
            self.data[self._select] = chosen
            self._select = None
        elif tag == "textarea":
            if self._textarea is not None and self.data[self._textarea][0].startswith("\n"):
                self.data[self._textarea][0] = self.data[self._textarea][0][1:]
            self._textarea = None


def form_data(client: Client, url: str, model: type[models.Model]) -> dict[str, list[str]]:
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    parser = FormFields(f"{model._meta.model_name}_form")
    parser.feed(page.content.decode())
    return parser.data


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    """One row of every panel model, with secrets whose values the pages must never show."""
    users = make_personas()
    root = User.objects.create_superuser("root", password="root-Passw0rd!")
    users["viewer"].is_staff = True
    users["viewer"].save(update_fields=["is_staff"])
    cluster = make_cluster("prod", key_algorithm="ECDSA-P256")
    node = make_node(cluster, name="cp-1", ssh_password=SSH_PASSWORD)
    certificate_services.issue_missing(cluster, actor=SETUP)
    request = bootstrap_services.validate_token_request()
    token = bootstrap_services.create_token(cluster, request, actor=SETUP)
    key, _ = bootstrap_services.ensure_certificate_key(cluster, actor=SETUP)
    bootstrap_services.add_static_token(
        cluster, token=STATIC_TOKEN, user="alice", uid="1", actor=SETUP
    )
    bootstrap_services.save_settings(cluster, {"audit_enabled": False}, actor=SETUP)
    ClusterBinarySettings.objects.create(cluster=cluster)
    ApiToken.issue(users["admin"], "automation")
    WorkerHeartbeat.objects.create(hostname="worker-1", seen_at=timezone.now())
    job = Job.objects.create(kind="facts", cluster=cluster, cluster_name="prod")
    step = JobStep.objects.create(job=job, position=1, phase="gather", name="facts")
    JobLogChunk.objects.create(job=job, step=step, seq=1, stream="stdout", text="out")
    etcd_snapshots.store_snapshot(cluster, b"snapshot", {"revision": 3}, actor=SETUP, job_id=None)
    health = {"cluster": cluster, "node": node, "component": "kubelet", "target": "127.0.0.1:10248"}
    ComponentHealth.objects.create(**health, status="healthy", message="ok")
    HealthSample.objects.create(**health, status="healthy", latency_ms=2.0)
    HealthEvent.objects.create(**health, from_status="unknown", to_status="healthy")
    Finding.objects.create(
        cluster=cluster, node=node, kind="expiring", severity="warning", path="pki/ca.crt",
        message="expires in 20 days",
    )  # fmt: skip
    AlertSettings.objects.create(
        cluster=cluster, webhook_url="http://127.0.0.1:9/hook", webhook_secret=WEBHOOK_SECRET
    )
    AlertDelivery.objects.create(
        cluster=cluster, key="test", channel="webhook", target="http://127.0.0.1:9/hook",
        subject="test alert",
    )  # fmt: skip
    ScannedCertificate.objects.create(
        cluster=cluster, node=node, path="pki/ca.crt", subject="CN=kubernetes",
        not_after=timezone.now(), fingerprint="AB" * 32,
    )  # fmt: skip
    ExpiryNotice.objects.create(
        cluster=cluster, key="expiry:cert:1:band:30", digest_key="expiry:digest:1"
    )
    RenewalPolicy.objects.create(cluster=cluster, acting_user=users["admin"], last_job=job)
    secrets = [SSH_PASSWORD, STATIC_TOKEN, WEBHOOK_SECRET, token.secret, key.key]
    secrets += [ca.private_key_pem for ca in CertificateAuthority.objects.all()]
    secrets += [c.private_key_pem for c in Certificate.objects.exclude(private_key_pem="")]
    secrets += [sa.private_key_pem for sa in ServiceAccountKey.objects.all()]
    return {"users": {**users, "root": root}, "cluster": cluster, "node": node, "secrets": secrets}


def _client(world: dict[str, Any], persona: str) -> Client:
    client = Client()
    client.force_login(world["users"][persona])
    return client


def _request(world: dict[str, Any], persona: str) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = world["users"][persona]
    return request


def test_every_panel_model_has_an_admin_built_on_the_panel_base() -> None:
    models_of_the_panel = {
        m for label in PANEL_APPS for m in apps.get_app_config(label).get_models()
    }
    registered = dict(panel_admins())
    assert set(registered) == models_of_the_panel
    for model, model_admin in registered.items():
        assert isinstance(model_admin, PanelModelAdmin), model


# The one field each editable admin changes in the test below; an admin that may change rows
# must be listed here, so that its audit trail is tested.
EDITS: dict[str, tuple[str, str]] = {
    "nodes/cluster": ("description", "edited in the admin"),
    "nodes/node": ("ssh_port", "2222"),
    "clusterpanel/apitoken": ("name", "renamed"),
}


def test_every_change_in_the_admin_writes_an_audit_event(world: dict[str, Any]) -> None:
    client = _client(world, "root")
    request = _request(world, "root")
    editable = set()
    for model, model_admin in panel_admins():
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"the fixture has no {model._meta.label}"
        url = f"/admin/{_label(model)}/{obj.pk}/change/"
        before = AuditEvent.objects.count()
        if not model_admin.has_change_permission(request, obj):
            refused = client.post(url, {})
            assert refused.status_code == 403, (url, refused.status_code)
            assert AuditEvent.objects.count() == before, url
            continue
        editable.add(_label(model))
        field, value = EDITS[_label(model)]
        data = form_data(client, url, model)
        data[field] = [value]
        response = client.post(url, data)
        assert response.status_code == 302, (url, response.content[:2000])
        event = AuditEvent.objects.order_by("-pk").first()
        assert AuditEvent.objects.count() == before + 1, url
        assert event is not None and event.action == "admin.change"
        assert (event.via, event.actor_name) == ("admin", "root")
        assert (event.object_type, event.object_id) == (model._meta.label_lower, str(obj.pk))
        assert event.details == {"fields": [field]}
    assert editable == set(EDITS)


def test_what_only_the_panels_checks_set_cannot_be_set_in_the_admin(
    world: dict[str, Any],
) -> None:
    """A node's status, facts and pinned host key; a certificate's status."""
    client = _client(world, "root")
    node: Node = world["node"]
    url = f"/admin/nodes/node/{node.pk}/change/"
    data = form_data(client, url, Node)
    for field in ("status", "facts", "host_key", "host_key_type", "host_key_fingerprint"):
        assert field not in data, field
    forged = {
        **data,
        "ssh_port": ["2200"],
        "status": ["ready"],
        "facts": ['{"os": "forged"}'],
        "host_key_fingerprint": ["SHA256:" + "A" * 43],
        "host_key_approved_at_0": ["2030-01-01"],
    }
    assert client.post(url, forged).status_code == 302
    node.refresh_from_db()
    assert (node.ssh_port, node.status, node.facts) == (2200, "new", {})
    assert node.host_key_fingerprint == "" and node.host_key_approved_at is None
    event = AuditEvent.objects.get(action="admin.change")
    assert event.details == {"fields": ["ssh_port"]}
    cert = Certificate.objects.order_by("pk").first()
    assert cert is not None
    data = form_data(client, f"/admin/pki/certificate/{cert.pk}/change/", Certificate)
    assert "status" not in data


def _disposable(world: dict[str, Any]) -> dict[str, Callable[[], models.Model]]:
    """A fresh row per model whose admin may delete, built the way the panel builds it."""

    def ca() -> models.Model:
        cluster = make_cluster(key_algorithm="ECDSA-P256")
        return certificate_services.ensure_cluster_cas(cluster)["ca"]

    def certificate() -> models.Model:
        cluster = make_cluster(key_algorithm="ECDSA-P256")
        return certificate_services.user_kubeconfig(cluster, "bob", [], 1, actor=SETUP)[1]

    def sa_key() -> models.Model:
        cluster = make_cluster(key_algorithm="ECDSA-P256")
        certificate_services.ensure_cluster_cas(cluster)
        return ServiceAccountKey.objects.get(cluster=cluster)

    return {
        "nodes/cluster": lambda: make_cluster(),
        "nodes/node": lambda: make_node(world["cluster"], "worker"),
        "clusterpanel/apitoken": lambda: ApiToken.issue(world["users"]["operator"])[0],
        "clusterpanel/workerheartbeat": lambda: WorkerHeartbeat.objects.create(
            hostname="old-worker", seen_at=timezone.now() - dt.timedelta(days=3)
        ),
        "pki/certificateauthority": ca,
        "pki/certificate": certificate,
        "pki/serviceaccountkey": sa_key,
    }


def test_every_delete_in_the_admin_writes_an_audit_event(world: dict[str, Any]) -> None:
    client = _client(world, "root")
    request = _request(world, "root")
    factories = _disposable(world)
    deletable = set()
    for model, model_admin in panel_admins():
        sample = model._default_manager.order_by("pk").first()
        if not model_admin.has_delete_permission(request, sample):
            url = f"/admin/{_label(model)}/{sample.pk}/delete/"
            assert client.post(url, {"post": "yes"}).status_code == 403, url
            continue
        deletable.add(_label(model))
        obj = factories[_label(model)]()
        before = AuditEvent.objects.count()
        response = client.post(f"/admin/{_label(model)}/{obj.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302, _label(model)
        assert not model._default_manager.filter(pk=obj.pk).exists()
        event = AuditEvent.objects.order_by("-pk").first()
        assert AuditEvent.objects.count() == before + 1, _label(model)
        assert event is not None and (event.action, event.via) == ("admin.delete", "admin")
        assert (event.object_type, event.object_id) == (model._meta.label_lower, str(obj.pk))
    assert deletable == set(factories)


def test_a_bulk_delete_and_an_add_in_the_admin_are_audited_row_by_row(
    world: dict[str, Any],
) -> None:
    client = _client(world, "root")
    cluster = world["cluster"]
    doomed = [make_node(cluster, "worker"), make_node(cluster, "worker")]
    response = client.post(
        "/admin/nodes/node/",
        {"action": "delete_selected", "_selected_action": [n.pk for n in doomed], "post": "yes"},
    )
    assert response.status_code == 302
    events = AuditEvent.objects.filter(action="admin.delete", object_type="nodes.node")
    assert sorted(e.object_id for e in events) == sorted(str(n.pk) for n in doomed)

    data = form_data(client, "/admin/nodes/cluster/add/", Cluster)
    data.update(name=["from-admin"], control_plane_endpoint=["10.9.0.1:6443"])
    added = client.post("/admin/nodes/cluster/add/", data)
    assert added.status_code == 302, added.content[:2000]
    created = Cluster.objects.get(name="from-admin")
    event = AuditEvent.objects.get(action="admin.add")
    assert (event.object_type, event.object_id) == ("nodes.cluster", str(created.pk))
    assert "name" in event.details["fields"]


def test_a_staff_viewer_reads_every_panel_model_and_changes_none(world: dict[str, Any]) -> None:
    client = _client(world, "viewer")
    index = client.get("/admin/").content.decode()
    before = AuditEvent.objects.count()
    for model, _model_admin in panel_admins():
        label = _label(model)
        assert f'href="/admin/{label}/"' in index, label
        listing = client.get(f"/admin/{label}/")
        assert listing.status_code == 200, label
        for obj in model._default_manager.order_by("pk")[:3]:
            url = f"/admin/{label}/{obj.pk}/change/"
            page = client.get(url)
            assert page.status_code == 200, url
            html = page.content.decode()
            assert 'name="_save"' not in html, url
            for secret in world["secrets"]:
                assert secret not in html, (url, "shows a secret")
            assert client.post(url, form_data(client, url, model)).status_code == 403, url
            delete = client.post(f"/admin/{label}/{obj.pk}/delete/", {"post": "yes"})
            assert delete.status_code == 403, url
        assert client.get(f"/admin/{label}/add/").status_code == 403, label
    assert AuditEvent.objects.count() == before


def test_no_admin_form_or_list_holds_an_encrypted_field(world: dict[str, Any]) -> None:
    request = _request(world, "root")
    for model, model_admin in panel_admins():
        hidden = set(secret_fields(model))
        obj = model._default_manager.order_by("pk").first()
        form = model_admin.get_form(request, obj)
        assert not hidden & set(form.base_fields), model
        assert not hidden & set(model_admin.get_list_display(request)), model
        assert not hidden & set(model_admin.get_fields(request, obj)), model
    root = _client(world, "root")
    for model, _model_admin in panel_admins():
        obj = model._default_manager.order_by("pk").first()
        html = root.get(f"/admin/{_label(model)}/{obj.pk}/change/").content.decode()
        html += root.get(f"/admin/{_label(model)}/").content.decode()
        for secret in world["secrets"]:
            assert secret not in html, (model, "shows a secret")


def test_the_role_groups_hold_the_view_permission_of_every_panel_model() -> None:
    """Granted after every app's migrations, so the inventory and PKI models are not missed."""
    from django.contrib.auth.models import Group, Permission

    for name in ("viewer", "operator"):
        group = Group.objects.get(name=name)
        for model, _admin in panel_admins():
            codename = f"view_{model._meta.model_name}"
            assert group.permissions.filter(
                codename=codename, content_type__app_label=model._meta.app_label
            ).exists(), (name, codename)
    admins = Group.objects.get(name="admin").permissions
    assert admins.filter(codename="change_node").exists()
    assert Permission.objects.filter(codename="delete_certificateauthority").exists()
