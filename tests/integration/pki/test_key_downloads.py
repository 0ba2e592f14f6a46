"""What carries CA keys is an admin download: control-plane and etcd bundles, the certificate key
(in control-plane join commands and kubeadm files) and kubeadm-certs. Operators keep workers:
their bundles, join commands and join files. Refusals are 403s that say why, write nothing and
record nothing; the pages show operators no link to them and never render a certificate key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from clusterpanel.models import AuditEvent
from nodes.models import Cluster, Node
from pki.models.tokens import BootstrapToken, CertificateKey
from pki.services import bootstrap as bootstrap_services
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_nodes

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def keys_cluster(db: Any) -> Cluster:
    """Two control-plane nodes and a worker, the tree issued (ECDSA: instant), a usable token
    and a certificate key (downloads never make one)."""
    cluster = make_cluster(
        "keys", control_plane_endpoint="lb.example.internal", key_algorithm="ECDSA-P256"
    )
    make_nodes(
        cluster,
        [
            ("cp-1", "10.0.0.11", "control-plane"),
            ("cp-2", "10.0.0.12", "control-plane"),
            ("w-1", "10.0.1.1", "worker"),
        ],
    )
    certificate_services.issue_missing(cluster, actor=SETUP)
    bootstrap_services.create_token(
        cluster, bootstrap_services.validate_token_request(), actor=SETUP
    )
    bootstrap_services.ensure_certificate_key(cluster, actor=SETUP)
    return cluster


@pytest.fixture
def etcd_cluster(db: Any) -> Cluster:
    cluster = make_cluster(
        "ext",
        control_plane_endpoint="10.2.0.1",
        etcd_topology="external",
        key_algorithm="ECDSA-P256",
    )
    make_nodes(cluster, [("cp-1", "10.2.0.11", "control-plane"), ("etcd-1", "10.2.0.31", "etcd")])
    certificate_services.issue_missing(cluster, actor=SETUP)
    return cluster


@dataclass(frozen=True)
class KeyRoute:
    """A route that hands out keys; ``node`` names the node it is about (if any)."""

    name: str
    url: Callable[[Cluster, dict[str, Node]], str]
    params: Callable[[dict[str, Node]], dict[str, Any]]
    operator: int  # what an operator gets
    admin: int
    says: str = ""  # part of the operator's refusal
    action: str = ""  # the audit event of a download
    page: bool = False
    etcd: bool = False  # the route is about the external-etcd cluster


def _api(path: str) -> Callable[[Cluster, dict[str, Node]], str]:
    return lambda cluster, nodes: f"/api/v1/clusters/{cluster.pk}/{path}"


def _node(name: str) -> Callable[[dict[str, Node]], dict[str, Any]]:
    return lambda nodes: {"node": nodes[name].pk}


def _config_page(name: str) -> Callable[[Cluster, dict[str, Node]], str]:
    return lambda cluster, nodes: f"/clusters/{cluster.pk}/config/nodes/{nodes[name].pk}/"


CP_JOIN = "control-plane joins carry the certificate key"
CP_FILE = "control-plane kubeadm files (init and join) carry the certificate key"
KEY_ROUTES = (
    KeyRoute(
        "bundle-worker", _api("bundle/"), _node("w-1"), 200, 200, action="pki.bundle.download"
    ),
    KeyRoute(
        "bundle-control-plane",
        _api("bundle/"),
        _node("cp-1"),
        403,
        200,
        "a control-plane bundle carries the cluster's CA keys and sa.key",
        "pki.bundle.download",
    ),
    KeyRoute(
        "bundle-etcd-member",
        _api("bundle/"),
        _node("etcd-1"),
        403,
        200,
        "an etcd member's bundle carries keys that etcd trusts",
        "pki.bundle.download",
        etcd=True,
    ),
    KeyRoute(
        "join-command-worker",
        _api("join-command/"),
        lambda nodes: {"role": "worker"},
        200,
        200,
        action="join_command.reveal",
    ),
    KeyRoute(
        "join-command-control-plane",
        _api("join-command/"),
        lambda nodes: {"role": "control-plane"},
        403,
        200,
        CP_JOIN,
        "join_command.reveal",
    ),
    KeyRoute(
        "join-command-control-plane-new-token",
        _api("join-command/"),
        lambda nodes: {"role": "control-plane", "new_token": "1"},
        403,
        200,
        CP_JOIN,
        "join_command.reveal",
    ),
    KeyRoute(
        "kubeadm-config-worker",
        _api("kubeadm-config/"),
        _node("w-1"),
        200,
        200,
        action="kubeadm_config.download",
    ),
    KeyRoute(
        "kubeadm-config-init",
        _api("kubeadm-config/"),
        _node("cp-1"),
        403,
        200,
        CP_FILE,
        "kubeadm_config.download",
    ),
    KeyRoute(
        "kubeadm-config-control-plane-join",
        _api("kubeadm-config/"),
        lambda nodes: {"node": nodes["cp-2"].pk, "new_token": "1"},
        403,
        200,
        CP_FILE,
        "kubeadm_config.download",
    ),
    KeyRoute(
        "kubeadm-certs",
        _api("kubeadm-certs/"),
        lambda nodes: {},
        403,
        200,
        "You do not have permission",
        "kubeadm_certs.download",
    ),
    KeyRoute(
        "config-page-worker",
        _config_page("w-1"),
        lambda nodes: {"download": "1"},
        200,
        200,
        action="kubeadm_config.download",
        page=True,
    ),
    KeyRoute(
        "config-page-init",
        _config_page("cp-1"),
        lambda nodes: {"download": "1"},
        403,
        200,
        CP_FILE,
        "kubeadm_config.download",
        page=True,
    ),
    KeyRoute(
        "config-page-control-plane-download",
        _config_page("cp-2"),
        lambda nodes: {"download": "1"},
        403,
        200,
        CP_FILE,
        "kubeadm_config.download",
        page=True,
    ),
    KeyRoute(
        "kubeadm-certs-page",
        lambda cluster, nodes: f"/clusters/{cluster.pk}/config/kubeadm-certs.yaml",
        lambda nodes: {},
        403,
        200,
        action="kubeadm_certs.download",
        page=True,
    ),
)


def _nodes(cluster: Cluster) -> dict[str, Node]:
    return {node.name: node for node in cluster.nodes.all()}


def _rows() -> tuple[int, int, int]:
    return (
        CertificateKey.objects.count(),
        BootstrapToken.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.mark.parametrize("persona", ["operator", "admin"])
@pytest.mark.parametrize("route", KEY_ROUTES, ids=[r.name for r in KEY_ROUTES])
def test_keys_are_admin_downloads_and_workers_stay_operator_downloads(
    route: KeyRoute,
    persona: str,
    keys_cluster: Cluster,
    etcd_cluster: Cluster,
    web_client: Callable[[str], Any],
    api_client: Callable[[str], Any],
) -> None:
    cluster = etcd_cluster if route.etcd else keys_cluster
    nodes = _nodes(cluster)
    client = (web_client if route.page else api_client)(persona)
    before = _rows()
    response = client.get(route.url(cluster, nodes), route.params(nodes))
    expected = route.operator if persona == "operator" else route.admin
    assert response.status_code == expected, response.content[:300]
    if expected == 403:
        if route.says:
            text = response.content.decode() if route.page else response.json()["detail"]
            assert route.says in text
        assert _rows() == before, "a refused download wrote something"
        return
    event = AuditEvent.objects.filter(action=route.action).latest("pk")
    assert event.actor_name == persona


def _operator_answers(client: Any, cluster: Cluster, nodes: dict[str, Node]) -> list[str]:
    """Everything an operator's browser and API client can fetch about joining the cluster."""
    c = cluster.pk
    pages = [
        client.get(f"/clusters/{c}/join/", **HTMX),
        client.get(f"/clusters/{c}/join/"),
        client.post(f"/clusters/{c}/join/new-token/", **HTMX),
        client.post(f"/clusters/{c}/join/reveal/", {"role": "worker"}, **HTMX),
        client.post(f"/clusters/{c}/join/reveal/", {"role": "control-plane"}, **HTMX),
        client.get(f"/clusters/{c}/config/"),
        client.get(f"/clusters/{c}/certificates/"),
    ]
    pages += [client.get(f"/clusters/{c}/config/nodes/{node.pk}/") for node in nodes.values()]
    return [response.content.decode() for response in pages]


def test_no_operator_page_renders_a_certificate_key(
    keys_cluster: Cluster, web_client: Callable[[str], Any]
) -> None:
    """Not even hidden: the key an admin's join uses never reaches an operator's HTML."""
    admin = web_client("admin")
    url = f"/clusters/{keys_cluster.pk}/join/reveal/"
    admin_card = admin.post(url, {"role": "control-plane"}, **HTMX).content.decode()
    key = CertificateKey.objects.get(cluster=keys_cluster).key
    assert f"--certificate-key {key}" in admin_card
    reveals = AuditEvent.objects.filter(action="join_command.reveal").count()
    nodes = _nodes(keys_cluster)
    answers = _operator_answers(web_client("operator"), keys_cluster, nodes)
    for text in answers:
        assert key not in text
        assert "--certificate-key" not in text and "certificateKey" not in text
    card = answers[0]
    assert 'id="join-worker"' in card and "kubeadm join lb.example.internal:6443" in card
    assert 'id="join-control-plane"' not in card and "--control-plane" not in card
    assert "Control-plane joins carry the certificate key" in card
    # The card shows commands masked; only the operator's worker Show was a reveal, and the
    # control-plane Show was refused (403).
    new = AuditEvent.objects.filter(action="join_command.reveal").order_by("-pk")
    assert new.count() == reveals + 1 and new[0].details["role"] == "worker"
    assert "control-plane joins carry the certificate key" in answers[4]
    assert CertificateKey.objects.filter(cluster=keys_cluster).count() == 1
    # The tabs offer operators no link to what they may not download.
    config, certificates = answers[5], answers[6]
    for name in ("cp-1", "cp-2"):
        assert f"/config/nodes/{nodes[name].pk}/" not in config
        assert f"/certificates/bundle/{nodes[name].pk}/" not in certificates
    assert f"/config/nodes/{nodes['w-1'].pk}/" in config
    assert f"/certificates/bundle/{nodes['w-1'].pk}/" in certificates
    assert "kubeadm-certs.yaml" not in config
    # Admins see them all.
    admin_config = admin.get(f"/clusters/{keys_cluster.pk}/config/").content.decode()
    admin_certificates = admin.get(f"/clusters/{keys_cluster.pk}/certificates/").content.decode()
    assert "kubeadm-certs.yaml" in admin_config
    for node in nodes.values():
        assert f"/config/nodes/{node.pk}/" in admin_config
        assert f"/certificates/bundle/{node.pk}/" in admin_certificates
