"""The permission matrix: every route x anonymous / outsider / viewer / operator / admin.

Pages send anonymous users to the login page; the API answers 401. A logged-in
user without the needed role gets 403 on both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from nodes.models import Cluster, Node
from tests.actors import SETUP
from tests.factories import make_node

# Who may open which route is decided above the database: SQLite pass only (tests/run.py).
pytestmark = pytest.mark.above_the_database

PERSONAS = ("anonymous", "outsider", "viewer", "operator", "admin")
LOGIN = "login"

# Expected status per persona, in PERSONAS order. "login" = redirect to the login page.
READ_PAGE = (LOGIN, 403, 200, 200, 200)
EDIT_PAGE = (LOGIN, 403, 403, 200, 200)
EDIT_POST = (LOGIN, 403, 403, 302, 302)
ADMIN_POST = (LOGIN, 403, 403, 403, 302)
OPEN = (200, 200, 200, 200, 200)
API_READ = (401, 403, 200, 200, 200)
API_CREATE = (401, 403, 403, 201, 201)
API_UPDATE = (401, 403, 403, 200, 200)
API_DELETE = (401, 403, 403, 204, 204)
API_ADMIN_DELETE = (401, 403, 403, 403, 204)
API_ADMIN_UPDATE = (401, 403, 403, 403, 200)
NO_PENDING_POST = (LOGIN, 403, 403, 409, 409)
API_NO_PENDING = (401, 403, 403, 409, 409)
FP = "SHA256:" + "A" * 43
STAFF_ONLY = ("admin-login", "admin-login", "admin-login", "admin-login", 200)


def matrix(cluster: Cluster, node: Node) -> list[tuple[str, str, dict[str, Any], tuple[Any, ...]]]:
    c, n = cluster.pk, node.pk
    new_node = {"cluster": c, "name": "w9", "address": "10.0.0.99"}
    return [
        ("GET", "/healthz", {}, OPEN),
        ("GET", "/login/", {}, (200, 302, 302, 302, 302)),
        ("POST", "/logout/", {}, (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN)),
        ("GET", "/", {}, READ_PAGE),
        ("GET", "/clusters/", {}, READ_PAGE),
        ("GET", f"/clusters/{c}/", {}, READ_PAGE),
        ("GET", f"/nodes/{n}/row/", {}, READ_PAGE),
        ("GET", f"/nodes/{n}/", {}, READ_PAGE),
        # No key was scanned: an operator or admin is let through to the 409 that says so.
        ("POST", f"/nodes/{n}/host-key/approve/", {"fingerprint": FP}, NO_PENDING_POST),
        # Scanning reaches the network; it is checked per persona in test_host_keys.
        ("GET", f"/nodes/{n}/host-key/scan/", {}, (LOGIN, 405, 405, 405, 405)),
        # The fixture cluster has no bastion: an admin is let through to the 409 saying so.
        ("POST", f"/clusters/{c}/bastion-host-key/scan/", {}, (LOGIN, 403, 403, 403, 409)),
        (
            "POST",
            f"/clusters/{c}/bastion-host-key/approve/",
            {"fingerprint": FP},
            (LOGIN, 403, 403, 403, 409),
        ),
        ("GET", "/jobs/", {}, READ_PAGE),
        # Scrapers send a bearer token (test_metrics); a logged-in viewer may read it too.
        ("GET", "/metrics", {}, API_READ),
        ("GET", f"/clusters/{c}/alerts/", {}, READ_PAGE),
        (
            "POST",
            f"/clusters/{c}/alerts/",
            {"webhook_url": "https://hooks.example.com/a"},
            EDIT_POST,
        ),
        ("POST", f"/clusters/{c}/alerts/test/", {}, EDIT_POST),
        *_alert_api_rows(cluster),
        *_job_rows(),
        *_etcd_snapshot_rows(cluster),
        *_finding_rows(cluster, node),
        *_health_rows(cluster),
        *_pki_rows(cluster, node),
        *_token_rows(cluster, node),
        *_key_rows(),
        *_binary_rows(cluster),
        ("GET", "/clusters/new/", {}, EDIT_PAGE),
        ("GET", f"/clusters/{c}/edit/", {}, EDIT_PAGE),
        ("GET", f"/clusters/{c}/nodes/new/", {}, EDIT_PAGE),
        ("GET", f"/nodes/{n}/edit/", {}, EDIT_PAGE),
        ("POST", f"/nodes/{n}/delete/", {}, EDIT_POST),
        ("GET", f"/clusters/{c}/delete/", {}, (LOGIN, 403, 403, 403, 200)),
        ("POST", f"/clusters/{c}/delete/", {"confirm_name": cluster.name}, ADMIN_POST),
        ("GET", "/admin/", {}, STAFF_ONLY),
        ("GET", "/api/schema/", {}, API_READ),
        ("GET", "/api/docs/", {}, API_READ),
        ("GET", "/api/v1/", {}, API_READ),
        ("GET", "/api/v1/clusters/", {}, API_READ),
        ("GET", f"/api/v1/clusters/{c}/", {}, API_READ),
        ("GET", "/api/v1/nodes/", {}, API_READ),
        ("GET", f"/api/v1/nodes/{n}/", {}, API_READ),
        ("POST", "/api/v1/nodes/", new_node, API_CREATE),
        ("PATCH", f"/api/v1/nodes/{n}/", {"ssh_port": 2222}, API_UPDATE),
        ("PATCH", f"/api/v1/clusters/{c}/", {"description": "x"}, API_UPDATE),
        ("DELETE", f"/api/v1/nodes/{n}/", {}, API_DELETE),
        ("POST", f"/api/v1/nodes/{n}/host-key/approve/", {"fingerprint": FP}, API_NO_PENDING),
        ("GET", f"/api/v1/nodes/{n}/host-key/scan/", {}, (401, 403, 405, 405, 405)),
        ("POST", f"/api/v1/clusters/{c}/bastion-host-key/scan/", {}, (401, 403, 403, 403, 409)),
        (
            "POST",
            f"/api/v1/clusters/{c}/bastion-host-key/approve/",
            {"fingerprint": FP},
            (401, 403, 403, 403, 409),
        ),
        ("DELETE", f"/api/v1/clusters/{c}/", {}, API_ADMIN_DELETE),
        (
            "POST",
            "/api/v1/clusters/",
            {"name": "new", "control_plane_endpoint": "10.9.0.1"},
            API_CREATE,
        ),
    ]


def _check(response: Any, expected: Any) -> None:
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
    elif expected == "admin-login":
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    elif expected == 302:
        assert response.status_code == 302
        assert not response["Location"].startswith("/login/")
    else:
        assert response.status_code == expected, response.content[:300]


@pytest.mark.django_db
@pytest.mark.parametrize("persona_index", range(len(PERSONAS)), ids=PERSONAS)
def test_permission_matrix(
    web_client: Callable[[str | None], Any], cluster: Cluster, persona_index: int
) -> None:
    persona = PERSONAS[persona_index]
    node = _node(cluster)
    for method, url, data, expected in matrix(cluster, node):
        client = web_client(None if persona == "anonymous" else persona)
        call = getattr(client, method.lower())
        if url.startswith("/api/") and method != "GET":
            response = call(url, data, content_type="application/json")
        else:
            response = call(url, data)
        try:
            _check(response, expected[persona_index])
        except AssertionError as exc:
            raise AssertionError(f"{persona} {method} {url}: {exc}") from None
        _restore(cluster, node)


def _node(cluster: Cluster) -> Node:
    # A worker despite its name: the PKI and token rows expect a cluster without a control plane.
    return make_node(cluster, "worker", name="cp-1", address="10.0.0.11")


def _restore(cluster: Cluster, node: Node) -> None:
    """Put back what a successful request removed or added, keeping primary keys,
    so that every row of the matrix starts from the same state."""
    if not Cluster.objects.filter(pk=cluster.pk).exists():
        cluster.save(force_insert=True)
    if not Node.objects.filter(pk=node.pk).exists():
        node.save(force_insert=True)
    Node.objects.filter(cluster=cluster, name="w9").delete()
    Cluster.objects.filter(name="new").delete()


def _route_names(patterns: list[Any]) -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if str(pattern.pattern).startswith("admin/"):
                continue  # Django's own admin, guarded by the staff flag
            names |= _route_names(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(pattern.name)
    return names


@pytest.mark.django_db
def test_every_route_is_in_the_matrix(cluster: Cluster) -> None:
    """A new route must be added to the matrix above before it can ship."""
    resolver = get_resolver()
    covered = {resolver.resolve(url).url_name for _, url, _, _ in matrix(cluster, _node(cluster))}
    missing = _route_names(resolver.url_patterns) - covered
    assert not missing, f"routes missing from the permission matrix: {sorted(missing)}"


def _job_rows() -> list[tuple[str, str, dict[str, Any], tuple[Any, ...]]]:
    """Job routes, on a cluster of their own (a queued job would keep the matrix's cluster from
    being deleted). Cancel ends the queued job; retry then starts a new attempt of it."""
    from clusterpanel.jobs.models import Job
    from tests.factories import make_cluster
    from tests.jobkinds import READ_ONLY

    other = make_cluster("jobs-matrix")
    job = Job.objects.create(kind=READ_ONLY, cluster=other, cluster_name=other.name)
    j = job.pk
    launch = {"cluster": other.pk, "kind": READ_ONLY, "params": {"phases": []}}
    return [
        ("GET", f"/jobs/{j}/", {}, READ_PAGE),
        ("GET", f"/jobs/{j}/log/", {}, READ_PAGE),
        ("GET", f"/clusters/{other.pk}/jobs/", {}, READ_PAGE),
        ("GET", "/api/v1/jobs/", {}, API_READ),
        ("GET", f"/api/v1/jobs/{j}/", {}, API_READ),
        ("GET", f"/api/v1/jobs/{j}/log/", {}, API_READ),
        ("POST", "/api/v1/jobs/plan/", launch, (401, 403, 403, 200, 200)),
        ("POST", f"/api/v1/jobs/{j}/cancel/", {}, (401, 403, 403, 200, 200)),
        ("POST", f"/api/v1/jobs/{j}/retry/", {}, API_CREATE),
        ("POST", "/api/v1/jobs/", launch, API_CREATE),
        ("POST", f"/jobs/{j}/cancel/", {}, EDIT_POST),
        ("POST", f"/jobs/{j}/retry/", {}, EDIT_POST),
        ("GET", f"/clusters/{other.pk}/jobs/new/", {"kind": READ_ONLY}, EDIT_PAGE),
        ("POST", f"/clusters/{other.pk}/jobs/new/", {"kind": READ_ONLY}, EDIT_POST),
    ]


def _etcd_snapshot_rows(cluster: Cluster) -> list[tuple[str, str, dict[str, Any], tuple[Any, ...]]]:
    """Kept etcd snapshots: listed for every role, downloaded by admins only."""
    from nodes import etcd_snapshots
    from nodes.models import EtcdSnapshot

    snapshot = EtcdSnapshot.objects.filter(cluster=cluster).first()
    if snapshot is None:
        snapshot = etcd_snapshots.store_snapshot(cluster, b"snap", {}, actor=SETUP, job_id=None)
    s = snapshot.pk
    return [
        ("GET", "/api/v1/etcd-snapshots/", {"cluster": cluster.pk}, API_READ),
        ("GET", f"/api/v1/etcd-snapshots/{s}/", {}, API_READ),
        ("GET", f"/api/v1/etcd-snapshots/{s}/download/", {}, (401, 403, 403, 403, 200)),
        ("GET", f"/clusters/{cluster.pk}/backups/", {}, READ_PAGE),
        ("GET", f"/clusters/{cluster.pk}/backups/{s}/download/", {}, (LOGIN, 403, 403, 403, 200)),
    ]


def _finding_rows(
    cluster: Cluster, node: Node
) -> list[tuple[str, str, dict[str, Any], tuple[Any, ...]]]:
    """Certificate findings and the fleet expiry table: read by every role, a finding silenced
    by operators and admins."""
    import datetime as dt

    from django.utils import timezone

    from nodes.health.findings import Finding

    finding = Finding.objects.filter(cluster=cluster).first() or Finding.objects.create(
        cluster=cluster, node=node, kind="expiring", severity="warning", path="/p", message="m"
    )
    f = finding.pk
    until = (timezone.now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    return [
        ("GET", "/findings/", {"cluster": cluster.pk}, READ_PAGE),
        ("POST", f"/findings/{f}/silence/", {f"f{f}-until": until}, EDIT_POST),
        ("GET", "/certificates/fleet/", {"expiring_within_days": 30}, READ_PAGE),
        ("GET", "/api/v1/findings/", {"cluster": cluster.pk}, API_READ),
        ("POST", f"/api/v1/findings/{f}/silence/", {"until": until + "Z"}, API_UPDATE),
        ("GET", "/api/v1/certificates/fleet/", {"expiring_within_days": 30}, API_READ),
    ]


RENEWAL_POLICY = {
    "enabled": False, "days_before": 90, "weekdays": ["mon"], "start_hour": 2, "end_hour": 6,
    "time_zone": "UTC",
}  # fmt: skip


def _alert_api_rows(cluster: Cluster) -> list[tuple[str, str, dict[str, Any], tuple[Any, ...]]]:
    """Alert settings: every role reads them, operators and admins save them. The renewal
    policy: every role reads it, only admins save it (beat then rolls out control-plane
    certificates on their behalf)."""
    c = cluster.pk
    alerts = {"webhook_url": "https://hooks.example.com/a", "email_recipients": []}
    page_policy = {k: v for k, v in RENEWAL_POLICY.items() if k != "enabled"}
    return [
        ("POST", f"/clusters/{c}/alerts/renewal/", page_policy, ADMIN_POST),
        ("GET", f"/api/v1/clusters/{c}/alert-settings/", {}, API_READ),
        ("PUT", f"/api/v1/clusters/{c}/alert-settings/", alerts, API_UPDATE),
        ("GET", f"/api/v1/clusters/{c}/renewal-policy/", {}, API_READ),
        ("PUT", f"/api/v1/clusters/{c}/renewal-policy/", RENEWAL_POLICY, API_ADMIN_UPDATE),
    ]


def _health_rows(cluster: Cluster) -> list[tuple[str, str, dict[str, Any], tuple[Any, ...]]]:
    c = cluster.pk
    return [
        ("GET", f"/clusters/{c}/health/", {}, READ_PAGE),
        # Makes the cluster's round due at the next beat tick; operators and admins.
        ("POST", f"/clusters/{c}/health/check/", {}, EDIT_POST),
        ("GET", f"/api/v1/clusters/{c}/health/", {}, API_READ),
        ("GET", "/api/v1/health-events/", {"cluster": c}, API_READ),
    ]


def _pki_rows(
    cluster: Cluster, node: Node
) -> list[tuple[str, str, dict[str, Any], tuple[Any, ...]]]:
    """Certificate routes. The fixture cluster has no control-plane node, so issuing answers 400
    after the permission check; one user certificate (ECDSA, fast) backs the detail routes."""
    from pki.models import Certificate
    from pki.services import certificates as certificate_services

    cert = Certificate.objects.filter(cluster=cluster).order_by("pk").first()
    if cert is None:
        Cluster.objects.filter(pk=cluster.pk).update(key_algorithm="ECDSA-P256")
        cluster.refresh_from_db()
        cert = certificate_services.user_kubeconfig(
            cluster, "matrix-user", ["dev"], 30, actor=SETUP
        )[1]
    c, n, k = cluster.pk, node.pk, cert.pk
    operator_400 = (401, 403, 403, 400, 400)
    admin_400 = (401, 403, 403, 403, 400)
    viewer_ok = (401, 403, 200, 200, 200)
    admin_page = (LOGIN, 403, 403, 403, 200)
    api = f"/api/v1/clusters/{c}"
    return [
        ("GET", f"/clusters/{c}/certificates/", {}, READ_PAGE),
        ("POST", f"/clusters/{c}/certificates/issue/", {}, EDIT_POST),
        ("POST", f"/clusters/{c}/certificates/reissue/", {}, EDIT_POST),
        ("POST", f"/clusters/{c}/certificates/renew/", {"certificates": [k]}, EDIT_POST),
        ("GET", f"/clusters/{c}/certificates/check-san/", {"host": "x.example"}, READ_PAGE),
        (
            "POST",
            f"/clusters/{c}/certificates/kubeconfig/",
            {"username": "m"},
            (LOGIN, 403, 403, 200, 200),
        ),
        ("GET", f"/clusters/{c}/certificates/bundle/{n}/", {}, (LOGIN, 403, 403, 302, 302)),
        ("GET", f"/clusters/{c}/authorities/", {}, READ_PAGE),
        ("GET", f"/clusters/{c}/authorities/import/", {}, admin_page),
        # The binary import exists only for binary clusters: this one is a kubeadm cluster.
        ("GET", f"/clusters/{c}/certificates/binary-import/", {}, (LOGIN, 403, 403, 403, 404)),
        ("GET", f"/certificates/{k}/inspect/", {}, READ_PAGE),
        ("GET", "/pki/inspect/", {}, READ_PAGE),
        ("POST", f"{api}/certificates/issue/", {}, operator_400),
        ("GET", f"{api}/certificates/coverage/", {}, (401, 403, 400, 400, 400)),
        ("POST", f"{api}/certificates/reissue/", {}, operator_400),
        ("POST", f"{api}/certificates/renew/", {}, API_UPDATE),
        ("POST", f"{api}/certificates/check-san/", {"host": "x.example"}, viewer_ok),
        ("GET", f"{api}/certificates/endpoints/", {}, API_READ),
        ("GET", f"{api}/certificates/expiration/", {}, API_READ),
        ("GET", f"{api}/authorities/", {}, API_READ),
        ("GET", f"{api}/bundle/", {"node": n}, operator_400),
        ("POST", f"{api}/kubeconfigs/", {"username": "m"}, API_CREATE),
        ("POST", f"{api}/import/kubeadm/", {}, admin_400),
        ("POST", f"{api}/binary-import/", {}, admin_400),
        ("POST", f"{api}/import/cfssl-ca/", {}, admin_400),
        ("POST", f"{api}/import/cfssl-csr/", {}, admin_400),
        ("POST", f"{api}/cfssl/sign/", {}, operator_400),
        ("POST", "/api/v1/pki/inspect/", {"pem": cert.certificate_pem}, viewer_ok),
        ("GET", "/api/v1/certificates/", {"cluster": c}, API_READ),
        ("GET", f"/api/v1/certificates/{k}/", {}, API_READ),
        ("GET", f"/api/v1/certificates/{k}/pem/", {}, API_READ),
        ("GET", f"/api/v1/certificates/{k}/inspect/", {}, API_READ),
    ]


def _token_rows(
    cluster: Cluster, node: Node
) -> list[tuple[str, str, dict[str, Any], tuple[Any, ...]]]:
    """Token, join-command and kubeadm-configuration routes. Showing a token (join commands,
    reveals, kubeadm files, tokens.csv) is an operator action. Token ``t`` is revealed and
    revoked; ``j`` keeps join commands working. The fixture cluster has no control-plane node,
    so the load balancer answers 400 (API) or sends the page back with the reason (302)."""
    from pki.domain.audit_policy import DEFAULT_AUDIT_POLICY
    from pki.services import bootstrap as bootstrap_services
    from pki.services import certificates as certificate_services

    certificate_services.ensure_cluster_cas(cluster)
    request = bootstrap_services.validate_token_request()
    t = bootstrap_services.create_token(cluster, request, actor=SETUP).pk
    bootstrap_services.create_token(cluster, request, actor=SETUP)
    s = bootstrap_services.add_static_token(
        cluster, token="mx-page", user="page", uid="1", actor=SETUP
    ).pk
    s2 = bootstrap_services.add_static_token(
        cluster, token="mx-api", user="api", uid="2", actor=SETUP
    ).pk
    bootstrap_services.ensure_certificate_key(cluster, actor=SETUP)
    c, n = cluster.pk, node.pk
    operator_page = (LOGIN, 403, 403, 200, 200)
    operator_api = (401, 403, 403, 200, 200)
    api = f"/api/v1/clusters/{c}"
    return [
        ("GET", f"/clusters/{c}/join/", {}, operator_page),
        ("POST", f"/clusters/{c}/join/new-token/", {}, operator_page),
        ("POST", f"/clusters/{c}/join/reveal/", {"role": "worker"}, operator_page),
        ("GET", f"/clusters/{c}/tokens/", {}, READ_PAGE),
        ("POST", f"/tokens/{t}/reveal/", {}, operator_page),
        ("POST", f"/tokens/{t}/revoke/", {}, EDIT_POST),
        ("GET", f"/clusters/{c}/config/", {}, READ_PAGE),
        (
            "POST",
            f"/clusters/{c}/config/settings/",
            {"audit_policy": DEFAULT_AUDIT_POLICY},
            ADMIN_POST,
        ),
        ("GET", f"/clusters/{c}/config/nodes/{n}/", {}, operator_page),
        # A kubeadm cluster has no rendered files: who may see the cluster hears so (409);
        # tests/integration/pki/test_binary_files.py covers a binary install per persona.
        ("GET", f"/clusters/{c}/config/nodes/{n}/files/", {}, (LOGIN, 403, 409, 409, 409)),
        (
            "GET",
            f"/clusters/{c}/config/nodes/{n}/files/kubelet.kubeconfig",
            {},
            (LOGIN, 403, 409, 409, 409),
        ),
        ("GET", f"/clusters/{c}/config/audit-policy.yaml", {}, READ_PAGE),
        ("GET", f"/clusters/{c}/config/loadbalancer/nginx/", {}, (LOGIN, 403, 302, 302, 302)),
        ("GET", f"/clusters/{c}/config/kubeadm-certs.yaml", {}, (LOGIN, 403, 403, 403, 200)),
        ("POST", f"/clusters/{c}/config/certificate-key/", {}, EDIT_POST),
        (
            "POST",
            f"/clusters/{c}/config/static-tokens/add/",
            {"token": "mx-add", "user": "u", "uid": "3"},
            EDIT_POST,
        ),
        ("POST", f"/clusters/{c}/config/static-tokens/import/", {"csv": "mx-i,u,1\n"}, EDIT_POST),
        ("POST", f"/clusters/{c}/config/static-tokens/{s}/delete/", {}, EDIT_POST),
        ("GET", f"/clusters/{c}/config/tokens.csv", {}, operator_page),
        ("GET", "/api/v1/tokens/", {}, API_READ),
        ("POST", "/api/v1/tokens/", {"cluster": c}, API_CREATE),
        ("GET", f"/api/v1/tokens/{t}/", {}, API_READ),
        ("POST", f"/api/v1/tokens/{t}/reveal/", {}, operator_api),
        ("POST", f"/api/v1/tokens/{t}/revoke/", {}, API_UPDATE),
        ("GET", f"{api}/join-command/", {}, operator_api),
        ("GET", f"{api}/kubeadm-config/", {"node": n}, operator_api),
        ("GET", f"{api}/kubeadm-certs/", {}, (401, 403, 403, 403, 200)),
        ("POST", f"{api}/certificate-key/", {}, operator_api),
        ("GET", f"{api}/kubeadm-settings/", {}, API_READ),
        ("PATCH", f"{api}/kubeadm-settings/", {}, API_ADMIN_UPDATE),
        ("GET", f"{api}/loadbalancer/nginx/", {}, (401, 403, 400, 400, 400)),
        ("POST", f"{api}/static-tokens/import/", {"csv": "mx-ai,u,1\n"}, API_CREATE),
        ("GET", f"{api}/tokens.csv", {}, operator_api),
        ("GET", "/api/v1/static-tokens/", {}, API_READ),
        (
            "POST",
            "/api/v1/static-tokens/",
            {"cluster": c, "token": "mx-a", "user": "u", "uid": "4"},
            API_CREATE,
        ),
        ("GET", f"/api/v1/static-tokens/{s2}/", {}, API_READ),
        ("DELETE", f"/api/v1/static-tokens/{s2}/", {}, API_DELETE),
    ]


def _binary_rows(cluster: Cluster) -> list[tuple[str, str, dict[str, Any], tuple[Any, ...]]]:
    """A binary install's layout settings: viewers read them, operators and admins edit them.
    On the (kubeadm) fixture cluster an operator is let through to the 400 that says they apply
    to binary installs only; an empty page form is a 400 for its required fields."""
    from nodes.models import ClusterFlavor
    from tests.factories import make_cluster

    other = Cluster.objects.filter(name="matrix-binary").first() or make_cluster(
        "matrix-binary", flavor=ClusterFlavor.BINARY
    )
    c, b = cluster.pk, other.pk
    edit_400 = (LOGIN, 403, 403, 400, 400)
    return [
        ("GET", f"/clusters/{c}/binary-settings/", {}, READ_PAGE),
        ("POST", f"/clusters/{b}/binary-settings/", {}, edit_400),
        ("GET", f"/api/v1/clusters/{b}/binary-settings/", {}, API_READ),
        ("PATCH", f"/api/v1/clusters/{b}/binary-settings/", {}, API_UPDATE),
        ("PATCH", f"/api/v1/clusters/{c}/binary-settings/", {}, (401, 403, 403, 400, 400)),
    ]


def _key_rows() -> list[tuple[str, str, dict[str, Any], tuple[Any, ...]]]:
    """What carries CA keys or the certificate key is an admin download: the control-plane
    bundle, join command and kubeadm file of a second cluster, which has a control-plane node,
    its CAs and a usable token. (Its tree is not issued, so the admin's bundle answers 400
    after the permission check.) The worker rows above stay operator rows."""
    from pki.services import bootstrap as bootstrap_services
    from pki.services import certificates as certificate_services
    from tests.factories import make_cluster

    other = Cluster.objects.filter(name="matrix-cp").first()
    if other is None:
        other = make_cluster("matrix-cp", key_algorithm="ECDSA-P256")
        certificate_services.ensure_cluster_cas(other)
        request = bootstrap_services.validate_token_request()
        bootstrap_services.create_token(other, request, actor=SETUP)
        bootstrap_services.ensure_certificate_key(other, actor=SETUP)
    cp = Node.objects.filter(cluster=other).first() or make_node(other, "control-plane")
    o, n = other.pk, cp.pk
    admin_api = (401, 403, 403, 403, 200)
    api = f"/api/v1/clusters/{o}"
    return [
        ("GET", f"{api}/bundle/", {"node": n}, (401, 403, 403, 403, 400)),
        ("GET", f"{api}/join-command/", {"role": "control-plane"}, admin_api),
        ("GET", f"{api}/kubeadm-config/", {"node": n}, admin_api),
        ("GET", f"/clusters/{o}/config/nodes/{n}/", {}, (LOGIN, 403, 403, 403, 200)),
    ]


def test_operators_cannot_open_the_cluster_through_component_arguments(
    api_client: Callable[[str], Any], web_client: Callable[[str], Any], cluster: Cluster
) -> None:
    """authorization-mode=AlwaysAllow (or anonymous-auth, a token file) would let anyone in:
    changing component arguments or the audit policy is an admin's action, on both doors."""
    opened = {"apiserver_extra_args": {"authorization-mode": "AlwaysAllow"}}
    url = f"/api/v1/clusters/{cluster.pk}/kubeadm-settings/"
    assert api_client("operator").patch(url, opened, format="json").status_code == 403
    page = web_client("operator").post(
        f"/clusters/{cluster.pk}/config/settings/",
        {"apiserver_extra_args": "authorization-mode=AlwaysAllow"},
    )
    assert page.status_code == 403
    assert not cluster.__class__.objects.filter(kubeadm_settings__isnull=False).exists()
    assert api_client("admin").patch(url, opened, format="json").status_code == 200
