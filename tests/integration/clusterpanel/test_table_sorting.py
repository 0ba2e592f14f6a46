"""The pages' list tables sort by their headers and page through ``?sort=…&dir=…&page=…``.

Each table's rows carry their primary key in an id (``cluster-12``, ``node-3`` …), which is how
these tests read the order a page shows. Unknown sort columns, directions and pages fall back to
the defaults: never a server error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from clusterpanel.web import tables
from nodes.alerts.models import AlertDelivery
from nodes.models import Cluster, EtcdSnapshot, HealthEvent
from pki.models import Certificate
from pki.models.tokens import BootstrapToken
from pki.services import bootstrap as bootstrap_services
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node

pytestmark = pytest.mark.django_db

BAD_PARAMETERS = [
    {"sort": "password"},
    {"sort": "name); DROP TABLE nodes_cluster; --"},
    {"sort": "__class__", "dir": "sideways"},
    {"dir": "DESC"},
    {"page": "abc"},
    {"page": "-1"},
    {"page": "0"},
    {"page": "99999999999999999999"},
    {"sort": "", "dir": "", "page": ""},
]


def _ids(html: str, prefix: str) -> list[int]:
    """Primary keys of the rows with ``id="<prefix>-<pk>"``, in page order."""
    return [int(pk) for pk in re.findall(rf'<tr id="{prefix}-(\d+)"', html)]


def _get(client: Client, url: str, **params: Any) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def _header(html: str, label: str) -> str:
    """The ``<th>`` of the column ``label``."""
    for cell in re.findall(r"<th[^>]*>.*?</th>", html, flags=re.S):
        if re.search(rf">{re.escape(label)}(<span|</a>)", cell):
            return cell
    raise AssertionError(f"no sortable header {label!r}")


@pytest.fixture
def viewer(web_client: Callable[[str | None], Client]) -> Client:
    return web_client("viewer")


# --- clusters ------------------------------------------------------------------------------------


@pytest.fixture
def many_clusters(db: Any) -> list[Cluster]:
    """55 clusters c-00 … c-54: more than one page of 50."""
    return [make_cluster(f"c-{i:02d}") for i in range(55)]


def test_the_cluster_list_pages_by_fifty_in_name_order(viewer, many_clusters) -> None:
    by_name = [c.pk for c in many_clusters]
    first = _get(viewer, "/clusters/")
    assert _ids(first, "cluster") == by_name[:50]
    assert "Page 1 of 2" in first and 'href="?page=2"' in first
    second = _get(viewer, "/clusters/", page=2)
    assert _ids(second, "cluster") == by_name[50:]
    assert 'rel="prev"' in second and 'rel="next"' not in second


def test_the_cluster_list_sorts_descending_and_pages_in_that_order(viewer, many_clusters) -> None:
    newest_first = [c.pk for c in reversed(many_clusters)]
    html = _get(viewer, "/clusters/", sort="name", dir="desc")
    assert _ids(html, "cluster") == newest_first[:50]
    # The next page keeps the order; the header now offers the other direction.
    assert 'href="?sort=name&amp;dir=desc&amp;page=2"' in html
    assert 'aria-sort="descending"' in _header(html, "Name")
    assert 'href="?sort=name&amp;dir=asc"' in _header(html, "Name")
    page_two = _get(viewer, "/clusters/", sort="name", dir="desc", page=2)
    assert _ids(page_two, "cluster") == newest_first[50:]


def test_the_cluster_list_sorts_by_node_counts(viewer) -> None:
    small, big, none = make_cluster("small"), make_cluster("big"), make_cluster("none")
    make_node(small, "worker")
    for _ in range(3):
        make_node(big, "worker")
    html = _get(viewer, "/clusters/", sort="workers", dir="desc")
    assert _ids(html, "cluster") == [big.pk, small.pk, none.pk]
    # etcd members: the control plane of a stacked cluster, the etcd nodes of an external one.
    external = make_cluster("external", etcd_topology="external")
    for _ in range(2):
        make_node(external, "etcd")
    make_node(small)  # one control-plane node, stacked etcd: one member
    html = _get(viewer, "/clusters/", sort="etcd_members", dir="desc")
    assert _ids(html, "cluster")[:2] == [external.pk, small.pk]


@pytest.mark.parametrize("params", BAD_PARAMETERS)
def test_bad_sort_and_page_values_on_the_cluster_list_fall_back(
    viewer, many_clusters, params
) -> None:
    html = _get(viewer, "/clusters/", **params)
    shown = _ids(html, "cluster")
    by_name = [c.pk for c in many_clusters]
    assert shown in (by_name[:50], by_name[50:])  # the default order: first or nearest page


def test_sort_links_start_again_on_page_one(viewer, many_clusters) -> None:
    html = _get(viewer, "/clusters/", sort="version", dir="asc", page=2)
    assert 'href="?sort=name&amp;dir=asc"' in _header(html, "Name")
    assert 'href="?sort=version&amp;dir=desc"' in _header(html, "Version")


# --- nodes ---------------------------------------------------------------------------------------


def test_the_nodes_table_sorts_addresses_as_addresses(viewer, cluster) -> None:
    nine = make_node(cluster, "worker", name="a", address="10.0.1.9")
    hundred = make_node(cluster, "worker", name="b", address="10.0.1.100")
    ten = make_node(cluster, "worker", name="c", address="10.0.1.10")
    url = f"/clusters/{cluster.pk}/"
    assert _ids(_get(viewer, url), "node") == [nine.pk, hundred.pk, ten.pk]
    assert _ids(_get(viewer, url, sort="address"), "node") == [nine.pk, ten.pk, hundred.pk]
    by_address_desc = _ids(_get(viewer, url, sort="address", dir="desc"), "node")
    assert by_address_desc == [hundred.pk, ten.pk, nine.pk]
    html = _get(viewer, url, sort="name", dir="desc")
    assert _ids(html, "node") == [ten.pk, hundred.pk, nine.pk]
    # Header links lead back to the nodes table on the long cluster page.
    assert 'href="?sort=address&amp;dir=asc#nodes"' in _header(html, "Address")


def test_the_nodes_table_pages(viewer, cluster) -> None:
    nodes = [make_node(cluster, "worker", name=f"n-{i:02d}") for i in range(53)]
    url = f"/clusters/{cluster.pk}/"
    assert _ids(_get(viewer, url), "node") == [n.pk for n in nodes[:50]]
    assert _ids(_get(viewer, url, page=2), "node") == [n.pk for n in nodes[50:]]
    for params in BAD_PARAMETERS:
        assert len(_ids(_get(viewer, url, **params), "node")) in (50, 3)


# --- certificates and CAs ------------------------------------------------------------------------


@pytest.fixture
def issued(db: Any) -> Cluster:
    cluster = make_cluster(
        "sorted", control_plane_endpoint="lb.example.internal", key_algorithm="ECDSA-P256"
    )
    make_node(cluster)
    make_node(cluster, "worker")
    certificate_services.issue_missing(cluster, actor=SETUP)
    return cluster


def test_the_certificates_table_sorts_by_file_node_and_expiry(viewer, issued) -> None:
    url = f"/clusters/{issued.pk}/certificates/"
    rows = Certificate.objects.tree().filter(cluster=issued)
    by_name = sorted(rows, key=lambda c: (c.name, c.node_name, c.pk))
    assert _ids(_get(viewer, url, sort="name"), "cert") == [c.pk for c in by_name]
    by_name_desc = sorted(rows, key=lambda c: (c.name, c.node_name), reverse=True)
    assert _ids(_get(viewer, url, sort="name", dir="desc"), "cert") == [c.pk for c in by_name_desc]
    by_expiry = sorted(rows, key=lambda c: (c.not_after, c.name, c.node_name))
    assert _ids(_get(viewer, url), "cert") == [c.pk for c in by_expiry]  # the default
    html = _get(viewer, url, sort="node", dir="desc")
    nodes = [Certificate.objects.get(pk=pk).node_name for pk in _ids(html, "cert")]
    assert nodes == sorted(nodes, reverse=True) and nodes[0] == "w-1"


def test_the_certificates_table_pages_and_keeps_its_filters(viewer, issued, monkeypatch) -> None:
    monkeypatch.setattr(tables, "PAGE_SIZE", 5)
    url = f"/clusters/{issued.pk}/certificates/"
    count = Certificate.objects.tree().filter(cluster=issued).count()
    seen: list[int] = []
    for page in range(1, (count + 4) // 5 + 1):
        html = _get(viewer, url, status="all", sort="name", page=page)
        seen += _ids(html, "cert")
    assert len(seen) == count == len(set(seen))
    html = _get(viewer, url, status="active", q="etcd", sort="name")
    # The header links carry the filters; the filter form carries the sort order.
    assert "status=active&amp;q=etcd&amp;sort=name&amp;dir=desc" in _header(html, "File")
    assert '<input type="hidden" name="sort" value="name">' in html
    for params in BAD_PARAMETERS:
        assert _ids(_get(viewer, url, **params), "cert")


def test_the_ca_page_sorts(viewer, issued) -> None:
    url = f"/clusters/{issued.pk}/authorities/"
    cas = list(issued.certificate_authorities.all())
    by_name = [ca.pk for ca in sorted(cas, key=lambda ca: ca.name)]
    assert _ids(_get(viewer, url, sort="name"), "ca") == by_name
    assert _ids(_get(viewer, url, sort="name", dir="desc"), "ca") == by_name[::-1]
    for params in BAD_PARAMETERS:
        assert sorted(_ids(_get(viewer, url, **params), "ca")) == sorted(by_name)


# --- tokens --------------------------------------------------------------------------------------


@pytest.fixture
def tokens(cluster: Cluster) -> dict[str, BootstrapToken]:
    now = timezone.now()

    def token(description: str, ttl: str, minutes_ago: int) -> BootstrapToken:
        request = bootstrap_services.validate_token_request(ttl=ttl, description=description)
        return bootstrap_services.create_token(
            cluster, request, actor=SETUP, now=now - timedelta(minutes=minutes_ago)
        )

    made = {
        "bravo": token("bravo", "2h", 30),
        "alpha": token("alpha", "0", 20),  # never expires
        "charlie": token("charlie", "1h", 10),
    }
    bootstrap_services.revoke_token(made["bravo"], actor=SETUP)
    return made


def test_the_tokens_table_sorts_by_its_columns(viewer, cluster, tokens) -> None:
    url = f"/clusters/{cluster.pk}/tokens/"
    pks = {name: token.pk for name, token in tokens.items()}
    # Newest first by default.
    assert _ids(_get(viewer, url), "token") == [pks["charlie"], pks["alpha"], pks["bravo"]]
    assert _ids(_get(viewer, url, sort="created", dir="asc"), "token") == [
        pks["bravo"],
        pks["alpha"],
        pks["charlie"],
    ]
    assert _ids(_get(viewer, url, sort="description"), "token") == [
        pks["alpha"],
        pks["bravo"],
        pks["charlie"],
    ]
    # A token that never expires comes last, whichever the direction.
    assert _ids(_get(viewer, url, sort="expires"), "token")[-1] == pks["alpha"]
    assert _ids(_get(viewer, url, sort="expires", dir="desc"), "token")[-1] == pks["alpha"]
    # The status is computed from the clock, not stored: it sorts all the same.
    statuses = _ids(_get(viewer, url, sort="status", dir="desc"), "token")
    assert statuses[0] == pks["bravo"]  # revoked after active
    # The status filter and the sort combine; the filter links keep the sort.
    html = _get(viewer, url, status="active", sort="description", dir="desc")
    assert _ids(html, "token") == [pks["charlie"], pks["alpha"]]
    assert 'href="?status=revoked&amp;sort=description&amp;dir=desc"' in html
    for params in BAD_PARAMETERS:
        assert sorted(_ids(_get(viewer, url, **params), "token")) == sorted(pks.values())


def test_the_tokens_table_pages(viewer, cluster, monkeypatch) -> None:
    monkeypatch.setattr(tables, "PAGE_SIZE", 2)
    request = bootstrap_services.validate_token_request()
    made = [bootstrap_services.create_token(cluster, request, actor=SETUP) for _ in range(3)]
    url = f"/clusters/{cluster.pk}/tokens/"
    shown = _ids(_get(viewer, url, sort="id"), "token") + _ids(
        _get(viewer, url, sort="id", page=2), "token"
    )
    assert shown == [t.pk for t in sorted(made, key=lambda t: (t.token_id, t.pk))]


# --- the configuration tab: two tables, each with its own parameters ----------------------------


def test_the_configuration_tab_sorts_its_two_tables_apart(viewer, cluster) -> None:
    rows = {
        user: bootstrap_services.add_static_token(
            cluster, token=f"t-{user}", user=user, uid=uid, actor=SETUP
        )
        for user, uid in (("bob", "3"), ("alice", "2"), ("carol", "1"))
    }
    cp = make_node(cluster, name="zeta")
    worker = make_node(cluster, "worker", name="alpha")
    url = f"/clusters/{cluster.pk}/config/"
    html = _get(viewer, url)
    assert _ids(html, "static-token") == [rows[u].pk for u in ("alice", "bob", "carol")]
    assert _ids(html, "node-config") == [worker.pk, cp.pk]
    html = _get(viewer, url, static_sort="uid", static_dir="desc", nodes_sort="role")
    assert _ids(html, "static-token") == [rows[u].pk for u in ("bob", "alice", "carol")]
    assert _ids(html, "node-config") == [cp.pk, worker.pk]  # control-plane before worker
    # Each table's header links change only its own parameters and keep the other's.
    assert "static_sort=uid&amp;static_dir=desc&amp;nodes_sort=role&amp;nodes_dir=desc" in html
    for params in BAD_PARAMETERS:
        prefixed = {f"static_{k}": v for k, v in params.items()}
        assert len(_ids(_get(viewer, url, **params, **prefixed), "static-token")) == 3


# --- a cluster's alert deliveries and etcd snapshots: newest first -------------------------------


def test_the_alert_deliveries_page_newest_first_and_sort(viewer, cluster, monkeypatch) -> None:
    monkeypatch.setattr(tables, "PAGE_SIZE", 2)
    now = timezone.now()
    made = [
        AlertDelivery.objects.create(
            cluster=cluster,
            key=f"k-{i}",
            channel="webhook",
            target="https://hooks.example.com/x",
            subject=subject,
            attempts=attempts,
            created_at=now - timedelta(hours=i),
        )
        for i, (subject, attempts) in enumerate((("b", 3), ("c", 1), ("a", 2)))
    ]
    url = f"/clusters/{cluster.pk}/alerts/"
    first = _get(viewer, url)
    assert _ids(first, "delivery") == [made[0].pk, made[1].pk]
    assert "Page 1 of 2" in first and 'href="?page=2#alert-deliveries"' in first
    assert _ids(_get(viewer, url, page=2), "delivery") == [made[2].pk]
    # Older first on request, and by another column, each starting again on page one.
    assert 'href="?sort=created&amp;dir=asc#alert-deliveries"' in first
    assert _ids(_get(viewer, url, sort="created", dir="asc"), "delivery") == [
        made[2].pk,
        made[1].pk,
    ]
    assert _ids(_get(viewer, url, sort="alert"), "delivery") == [made[2].pk, made[0].pk]
    assert _ids(_get(viewer, url, sort="attempts", dir="desc"), "delivery") == [
        made[0].pk,
        made[2].pk,
    ]
    for params in BAD_PARAMETERS:
        assert len(_ids(_get(viewer, url, **params), "delivery")) in (1, 2)


def test_the_etcd_snapshots_page_newest_first_and_sort(viewer, cluster, monkeypatch) -> None:
    monkeypatch.setattr(tables, "PAGE_SIZE", 2)
    now = timezone.now()
    made = [
        EtcdSnapshot.objects.create(
            cluster=cluster,
            token=f"token-{i}",
            size=size,
            sha256=f"{i}" * 64,
            revision=100 + i,
            taken_at=now - timedelta(days=i),
        )
        for i, size in enumerate((2048, 4096, 1024))
    ]
    url = f"/clusters/{cluster.pk}/backups/"
    first = _get(viewer, url)
    assert _ids(first, "snapshot") == [made[0].pk, made[1].pk]
    assert "Page 1 of 2" in first and 'href="?page=2"' in first
    assert _ids(_get(viewer, url, page=2), "snapshot") == [made[2].pk]
    assert _ids(_get(viewer, url, sort="taken", dir="asc"), "snapshot") == [
        made[2].pk,
        made[1].pk,
    ]
    assert _ids(_get(viewer, url, sort="size", dir="desc"), "snapshot") == [
        made[1].pk,
        made[0].pk,
    ]
    assert 'aria-sort="descending"' in _header(_get(viewer, url, sort="size", dir="desc"), "Size")
    for params in BAD_PARAMETERS:
        assert len(_ids(_get(viewer, url, **params), "snapshot")) in (1, 2)


def test_the_health_transitions_page_newest_first_and_sort(viewer, cluster, monkeypatch) -> None:
    """The Health tab's transitions page with their own parameters, and the poller re-fetches
    the page being read, not the first one."""
    monkeypatch.setattr(tables, "PAGE_SIZE", 2)
    now = timezone.now()
    made = [
        HealthEvent.objects.create(
            cluster=cluster,
            component=component,
            target="t",
            from_status="healthy",
            to_status="unhealthy",
            message="m",
            at=now - timedelta(minutes=i),
        )
        for i, component in enumerate(("ssh", "kubelet", "etcd"))
    ]
    url = f"/clusters/{cluster.pk}/health/"
    first = _get(viewer, url)
    assert _ids(first, "health-event") == [made[0].pk, made[1].pk]
    assert 'href="?events_page=2#health-events"' in first
    second = _get(viewer, url, events_page=2)
    assert _ids(second, "health-event") == [made[2].pk]
    assert f'hx-get="/clusters/{cluster.pk}/health/?events_page=2"' in second
    by_component = _get(viewer, url, events_sort="component")
    assert _ids(by_component, "health-event") == [made[2].pk, made[1].pk]
    oldest = _get(viewer, url, events_sort="at", events_dir="asc")
    assert _ids(oldest, "health-event") == [made[2].pk, made[1].pk]
    for params in BAD_PARAMETERS:
        prefixed = {f"events_{name}": value for name, value in params.items()}
        assert len(_ids(_get(viewer, url, **prefixed), "health-event")) in (1, 2)
