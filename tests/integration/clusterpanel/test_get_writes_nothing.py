"""A GET changes nothing: every GET route of the panel (pages, htmx fragments, the API, the
admin), enumerated from the URL resolver and filled in with ids of real rows, writes no row.

Four clusters cover the states in which a GET used to make what it lacked: ``full`` has CAs,
the issued tree, tokens, a certificate key, static tokens, kubeadm settings and a user
certificate; ``bare`` has nodes and nothing else (no CA, no token, no certificate key);
``stale`` has its CAs and a usable token but no certificate key with time left; ``binary`` is a
binary install with its certificates, whose nodes' rendered files render. Every write
statement of every request is caught (``CaptureQueriesContext``), including writes that a
failing request rolled back.

The only exceptions are the routes that are the download of a secret: opening them is the act
that the audit log records, so they write that one audit event and nothing else.

Since the sweep opens every GET route anyway, it also checks that each answer, whatever its
status, carries the panel's Content-Security-Policy.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from clusterpanel.jobs.models import Job, JobLogChunk, JobStep
from clusterpanel.models import ApiToken, AuditEvent, WorkerHeartbeat
from clusterpanel.web.middleware import CONTENT_SECURITY_POLICY
from nodes import etcd_snapshots
from nodes.health.findings import Finding, ScannedCertificate
from nodes.models import Cluster, EtcdSnapshot
from pki.models import Certificate, CertificateKey
from pki.models.tokens import BootstrapToken, StaticToken
from pki.services import bootstrap as bootstrap_services
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.binary_certs import issue_binary_certs
from tests.factories import make_cluster, make_node, make_personas

# Which GET writes is decided by the views, not the database: SQLite pass only (tests/run.py).
pytestmark = [pytest.mark.django_db, pytest.mark.above_the_database]

# Routes whose GET is the audited handing-out of a secret, with the one event each may write.
SECRET_DOWNLOADS: dict[str, tuple[str, str]] = {
    "config_node?download=1": (
        "kubeadm_config.download",
        "?download=1 is the node's kubeadm file with its token and certificate key in clear",
    ),
    "api-kubeadm-config": ("kubeadm_config.download", "the node's kubeadm file, in clear"),
    "config_kubeadm_certs": (
        "kubeadm_certs.download",
        "the kubeadm-certs Secret: CA and sa keys under the certificate key",
    ),
    "api-kubeadm-certs": ("kubeadm_certs.download", "the same Secret through the API"),
    "static_token_file": ("static_token.download", "tokens.csv holds every static token"),
    "api-static-token-file": ("static_token.download", "the same file through the API"),
    "pki_bundle": ("pki.bundle.download", "a node's /etc/kubernetes with its private keys"),
    "config_binary_file": (
        "pki.binary_file.download",
        "a binary install's kubeconfig (its private key) or tokens.csv, in clear",
    ),
    "api-pki-bundle": ("pki.bundle.download", "the same bundle through the API"),
    "api-join-command": (
        "join_command.reveal",
        "the API's join command carries the token (and the certificate key) in clear",
    ),
    "etcd-snapshot-download": ("etcd.snapshot.download", "an etcd snapshot holds every Secret"),
    "backup_download": ("etcd.snapshot.download", "the same snapshot from the Backups tab"),
}

# Query strings that make a route do its real work, besides the bare GET.
VARIANTS: dict[str, list[str]] = {
    "config_node": ["", "?download=1"],
    "api-kubeadm-config": ["?node={cp1}", "?node={cp2}", "?node={w1}"],
    "api-pki-bundle": ["?node={cp1}", "?node={w1}"],
    "api-join-command": ["?role=worker", "?role=control-plane"],
    "pki_certificates": ["", "?status=all&band=ok&q=api&node=cp-1"],
    "pki_check_san": ["", "?host=10.0.0.11", "?host=lb.example.internal"],
    "token_list": ["", "?status=active"],
    "api-pki-expiration": ["", "?output=text"],
    "certificate-list": ["", "?cluster={cluster}&expiring_within_days=30&status=all"],
    "bootstrap-token-list": ["", "?cluster={cluster}&status=active"],
    "node-list": ["", "?cluster={cluster}"],
    "static-token-list": ["", "?cluster={cluster}"],
    "etcd-snapshot-list": ["", "?cluster={cluster}"],
    "findings": ["", "?cluster={cluster}&severity=warning&kind=expiring&show_silenced=1"],
    "finding-list": ["", "?cluster={cluster}&severity=warning&kind=expiring&show_silenced=1"],
    "certificate_fleet": ["", "?expiring_within_days=30"],
    "certificate-fleet": ["", "?expiring_within_days=30"],
    "api-schema": [""],
}

# Where a ``pk`` after a path segment points.
PK_SEGMENTS = {
    "clusters": "cluster",
    "nodes": "node",
    "tokens": "token",
    "certificates": "certificate",
    "static-tokens": "static_token",
    "jobs": "job",
    "etcd-snapshots": "etcd_snapshot",
    "findings": "finding",
}
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
TABLE = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+"?(\w+)"?', re.I)


@dataclass
class Ids:
    """The rows one pass of the sweep points its URLs at."""

    cluster: int
    node: int
    cp1: int
    cp2: int
    w1: int
    token: int
    certificate: int
    static_token: int
    job: int
    etcd_snapshot: int
    finding: int


def _full(name: str) -> Cluster:
    cluster = make_cluster(name, key_algorithm="ECDSA-P256")
    make_node(cluster, name="cp-1")
    make_node(cluster, name="cp-2")
    make_node(cluster, "worker", name="w-1", labels={"disk": "ssd"})
    certificate_services.issue_missing(cluster, actor=SETUP)
    request = bootstrap_services.validate_token_request(description="sweep")
    bootstrap_services.create_token(cluster, request, actor=SETUP)
    revoked = bootstrap_services.create_token(cluster, request, actor=SETUP)
    bootstrap_services.revoke_token(revoked, actor=SETUP)
    bootstrap_services.ensure_certificate_key(cluster, actor=SETUP)
    bootstrap_services.add_static_token(
        cluster, token="sweep-token", user="sweep", uid="1", actor=SETUP
    )
    bootstrap_services.save_settings(
        cluster, {"apiserver_extra_args": {"max-requests-inflight": "800"}}, actor=SETUP
    )
    certificate_services.user_kubeconfig(cluster, "carol", ["dev"], 30, actor=SETUP)
    # A running job with a step, a check and output: its page, log and poll read them.
    job = Job.objects.create(kind="sweep", cluster=cluster, status="running", mutating=True)
    check = {"node": "cp-1", "name": "swap", "status": "pass", "message": ""}
    step = JobStep.objects.create(
        job=job, position=1, phase="p", name="s", status="running", result={"checks": [check]}
    )
    JobLogChunk.objects.create(job=job, step=step, seq=1, stream="stdout", text="out\n")
    etcd_snapshots.store_snapshot(cluster, b"snapshot", {}, actor=SETUP, job_id=None)
    # What a certificate scan keeps: a finding and a scanned certificate (the fleet table).
    w1 = cluster.nodes.get(name="w-1")
    Finding.objects.create(
        cluster=cluster, node=w1, kind="expiring", severity="warning", path="/p", message="m"
    )
    ScannedCertificate.objects.create(
        cluster=cluster,
        node=w1,
        path="/p",
        subject="CN=p",
        not_after=timezone.now(),
        fingerprint="F",
    )
    return cluster


def _bare(name: str) -> Cluster:
    cluster = make_cluster(name, key_algorithm="ECDSA-P256")
    make_node(cluster, name="cp-1")
    make_node(cluster, name="cp-2")
    make_node(cluster, "worker", name="w-1")
    return cluster


def _binary(name: str) -> Cluster:
    """A binary install with its certificates and a static token: its rendered files render."""
    cluster = make_cluster(name, key_algorithm="ECDSA-P256", flavor="binary")
    make_node(cluster, name="cp-1")
    make_node(cluster, name="cp-2")
    make_node(cluster, "worker", name="w-1")
    issue_binary_certs(cluster)
    bootstrap_services.add_static_token(
        cluster, token="binary-token", user="binary", uid="1", actor=SETUP
    )
    return cluster


def _stale(name: str) -> Cluster:
    cluster = _bare(name)
    certificate_services.ensure_cluster_cas(cluster)
    bootstrap_services.create_token(
        cluster, bootstrap_services.validate_token_request(), actor=SETUP
    )
    long_ago = timezone.now() - dt.timedelta(days=1)
    CertificateKey.objects.create(
        cluster=cluster, key="0" * 64, created_at=long_ago, expires_at=long_ago
    )
    return cluster


def _ids(cluster: Cluster, full: Cluster) -> Ids:
    def first(model: Any) -> int:
        row = model.objects.filter(cluster=cluster).order_by("pk").first()
        row = row or model.objects.filter(cluster=full).order_by("pk").first()
        return int(row.pk)

    nodes = {n.name: n.pk for n in cluster.nodes.all()}
    return Ids(
        cluster=cluster.pk,
        node=nodes["w-1"],
        cp1=nodes["cp-1"],
        cp2=nodes["cp-2"],
        w1=nodes["w-1"],
        token=first(BootstrapToken),
        certificate=first(Certificate),
        static_token=first(StaticToken),
        job=first(Job),
        etcd_snapshot=first(EtcdSnapshot),
        finding=first(Finding),
    )


def _routes(
    patterns: list[Any], prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str]]:
    """(route, name) of every URL pattern; unnamed ones get the name of their view."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}" if pattern.namespace else namespace
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = pattern.name or f"<unnamed {pattern.lookup_str}>"
            yield prefix + str(pattern.pattern), f"{namespace}:{name}".lstrip(":")


def _admin_objects() -> dict[str, list[str]]:
    """One object id per model the admin lists, by its ``app/model`` path."""
    from django.contrib import admin

    ids: dict[str, list[str]] = {}
    for model in admin.site._registry:
        row = model._default_manager.order_by("pk").first()
        path = f"{model._meta.app_label}/{model._meta.model_name}"
        ids[path] = [str(row.pk) if row is not None else "1"]
    return ids


def _fill(route: str, ids: Ids, admin_ids: dict[str, list[str]]) -> list[str]:
    """Every concrete path for ``route``: its parameters replaced by real ids."""
    route = route.replace("^", "").replace("$", "")
    parameter = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")
    choices: list[list[str]] = []
    for match in parameter.finditer(route):
        name = match.group(1) or match.group(2)
        before = route[: match.start()].rstrip("/").split("/")[-1]
        admin_model = "/".join(route[: match.start()].split("/")[1:3])
        if name == "pk":
            choices.append([str(getattr(ids, PK_SEGMENTS[before]))])
        elif name == "node_pk":
            choices.append([str(ids.cp1), str(ids.cp2), str(ids.w1)])
        elif name == "snapshot_pk":
            choices.append([str(ids.etcd_snapshot)])
        elif name == "token_pk":
            choices.append([str(ids.static_token)])
        elif name == "kind":
            choices.append(["nginx", "haproxy"])
        elif name == "name" and "/files/" in route:
            # A unit (no secret), a kubeconfig and the token file (secrets, audited).
            choices.append(["kube-apiserver.service", "admin.kubeconfig", "tokens.csv"])
        elif name == "content_type_id":
            choices.append([str(ContentType.objects.get_for_model(Cluster).pk)])
        elif name == "object_id" and route.startswith("admin/r/"):
            choices.append([str(ids.cluster)])
        elif name in ("object_id", "id"):
            choices.append(admin_ids[admin_model])
        elif name == "app_label":
            choices.append(["auth", "axes", "clusterpanel", "nodes", "pki"])
        elif name == "url":
            choices.append(["no-such-page/"])
        else:
            raise AssertionError(f"no value for <{name}> in {route}: add one to the sweep")
    paths = []
    for values in itertools.product(*choices):
        filled = iter(values)
        paths.append("/" + parameter.sub(lambda _, filled=filled: next(filled), route))
    return paths


def _writes(queries: list[dict[str, str]]) -> list[str]:
    return [q["sql"] for q in queries if WRITE.match(q["sql"])]


def _sweep(client: Client, ids: Ids, label: str, scope: str = "all") -> list[str]:
    """Request every GET route; return what went wrong (empty: nothing was written).

    ``scope`` "cluster" keeps the routes of one cluster (the admin and the lists do not depend
    on its state); "pages" keeps the pages and asks for them as htmx would.
    """
    problems: list[str] = []
    admin_ids = _admin_objects()
    headers = {"HX-Request": "true"} if scope == "pages" else {}
    for route, name in _routes(get_resolver().url_patterns):
        if scope == "cluster" and "<int:pk>" not in route and "<int:node_pk>" not in route:
            continue
        if scope == "pages" and route.startswith(("admin/", "api/")):
            continue
        url_name = name.split(":")[-1]
        for path in _fill(route, ids, admin_ids):
            for query in VARIANTS.get(url_name, [""]):
                url = path + query.format(**vars(ids))
                before = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
                with CaptureQueriesContext(connection) as captured:
                    response = client.get(url, headers=headers)
                if response.get("Content-Security-Policy") != CONTENT_SECURITY_POLICY:
                    problems.append(f"{label}: GET {url} ({response.status_code}) has no CSP")
                writes = _writes(captured.captured_queries)
                if not writes:
                    continue
                tables = sorted({m.group(1) for w in writes if (m := TABLE.match(w))})
                allowed = SECRET_DOWNLOADS.get(url_name + query) or SECRET_DOWNLOADS.get(url_name)
                events = list(
                    AuditEvent.objects.filter(pk__gt=before or 0).values_list("action", flat=True)
                )
                if (
                    allowed is not None
                    and response.status_code == 200
                    and tables == ["clusterpanel_auditevent"]
                    and len(writes) == 1
                    and events == [allowed[0]]
                ):
                    continue
                problems.append(
                    f"{label}: GET {url} ({response.status_code}) wrote {tables}; events {events}"
                )
    return problems


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    users = make_personas()
    root = User.objects.create_superuser("root", password="root-Passw0rd!")
    full = _full("full")
    clusters = {
        "full": full,
        "bare": _bare("bare"),
        "stale": _stale("stale"),
        "binary": _binary("binary"),
    }
    ApiToken.issue(users["admin"], "sweep")
    WorkerHeartbeat.objects.create(hostname="worker-1", seen_at=timezone.now())
    users["viewer"].is_staff = True
    users["viewer"].save()
    return {
        "users": {**users, "root": root},
        "ids": {name: _ids(cluster, full) for name, cluster in clusters.items()},
    }


@pytest.mark.parametrize("persona", ["root", "operator", "viewer"])
def test_no_get_route_writes_anything(world: dict[str, Any], persona: str) -> None:
    """The superuser reaches every page, the admin and the API; the operator is who reveals
    and downloads day to day; the viewer (with the staff flag) reads the admin."""
    client = Client()
    client.force_login(world["users"][persona])
    ids = world["ids"]
    problems = _sweep(client, ids["full"], f"{persona}/full")
    problems += _sweep(client, ids["bare"], f"{persona}/bare", "cluster")
    problems += _sweep(client, ids["stale"], f"{persona}/stale", "cluster")
    problems += _sweep(client, ids["binary"], f"{persona}/binary", "cluster")
    # htmx asks for fragments of the same views: they must not write either.
    problems += _sweep(client, ids["full"], f"{persona}/full/htmx", "pages")
    assert not problems, "GET requests that wrote:\n" + "\n".join(problems)


def test_the_secret_downloads_write_their_audit_event(world: dict[str, Any]) -> None:
    """Each listed download, opened by an operator on the full cluster, is audited once."""
    client = Client()
    client.force_login(world["users"]["admin"])
    ids = world["ids"]["full"]
    binary = world["ids"]["binary"]
    urls = {
        "config_node?download=1": f"/clusters/{ids.cluster}/config/nodes/{ids.cp2}/?download=1",
        "api-kubeadm-config": f"/api/v1/clusters/{ids.cluster}/kubeadm-config/?node={ids.w1}",
        "config_kubeadm_certs": f"/clusters/{ids.cluster}/config/kubeadm-certs.yaml",
        "api-kubeadm-certs": f"/api/v1/clusters/{ids.cluster}/kubeadm-certs/",
        "static_token_file": f"/clusters/{ids.cluster}/config/tokens.csv",
        "api-static-token-file": f"/api/v1/clusters/{ids.cluster}/tokens.csv",
        "pki_bundle": f"/clusters/{ids.cluster}/certificates/bundle/{ids.w1}/",
        "config_binary_file": (
            f"/clusters/{binary.cluster}/config/nodes/{binary.cp1}/files/admin.kubeconfig"
        ),
        "api-pki-bundle": f"/api/v1/clusters/{ids.cluster}/bundle/?node={ids.w1}",
        "api-join-command": f"/api/v1/clusters/{ids.cluster}/join-command/?role=control-plane",
        "etcd-snapshot-download": f"/api/v1/etcd-snapshots/{ids.etcd_snapshot}/download/",
        "backup_download": f"/clusters/{ids.cluster}/backups/{ids.etcd_snapshot}/download/",
    }
    assert set(urls) == set(SECRET_DOWNLOADS)
    for name, url in urls.items():
        before = AuditEvent.objects.count()
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        assert AuditEvent.objects.count() == before + 1, url
        latest = AuditEvent.objects.order_by("-pk").first()
        assert latest is not None and latest.action == SECRET_DOWNLOADS[name][0]
