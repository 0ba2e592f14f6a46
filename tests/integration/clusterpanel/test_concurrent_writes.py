"""Writes that race each other: every pair is fired at the same moment, ten times.

Whatever the order the database puts them in, a deleted row never comes back, a duplicate is
refused naming the field (400) or the loser is told the state changed (409), and nothing answers
500. Each request runs in its own thread with its own database connection (``at_once``), on
SQLite's test database file and on PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from nodes.models import Cluster, Node
from pki.models import BootstrapToken, ClusterKubeadmSettings, StaticToken
from pki.services import bootstrap as bootstrap_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node, make_personas
from tests.races import at_once

ROUNDS = 10

CLUSTER_PAGE = {
    "kubernetes_version": "v1.31.2",
    "control_plane_endpoint": "10.0.0.10:6443",
    "cluster_name": "kubernetes",
    "pod_subnet": "10.244.0.0/16",
    "service_subnet": "10.96.0.0/12",
    "dns_domain": "cluster.local",
    "etcd_topology": "stacked",
    "key_algorithm": "RSA-2048",
    "certificate_validity_days": 365,
    "ca_validity_days": 3650,
    "container_runtime": "containerd",
    "extra_sans": "",
    "description": "edited",
}


@dataclass
class Round:
    """One firing: the two requests, and what must hold once both are answered."""

    calls: tuple[Callable[[], Any], Callable[[], Any]]
    check: Callable[[list[Any]], None]


def _api(user: User) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(user)
    return client


def _web(user: User) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _gone(model: type[Any], **lookup: Any) -> Callable[[list[Any]], None]:
    def check(responses: list[Any]) -> None:
        assert not model.objects.filter(**lookup).exists(), f"{model.__name__} came back"

    return check


def _one_created(
    fields: tuple[str, ...], model: type[Any], **lookup: Any
) -> Callable[[list[Any]], None]:
    """One request created the row; the other was refused naming a field that clashes."""

    def check(responses: list[Any]) -> None:
        codes = sorted(r.status_code for r in responses)
        assert codes == [201, 400], codes
        refused = next(r for r in responses if r.status_code == 400).json()
        assert set(fields) & set(refused["errors"]), refused
        assert model.objects.filter(**lookup).count() == 1

    return check


# --- D: an edit racing a delete must not bring the row back --------------------------------------


def delete_node_vs_patch_node(user: User) -> Round:
    node = make_node(make_cluster())
    return Round(
        (
            lambda: _api(user).delete(f"/api/v1/nodes/{node.pk}/"),
            lambda: _api(user).patch(f"/api/v1/nodes/{node.pk}/", {"ssh_port": 2222}),
        ),
        _gone(Node, pk=node.pk),
    )


def delete_node_page_vs_node_edit_page(user: User) -> Round:
    node = make_node(make_cluster(), "worker")
    data = {"name": node.name, "address": "10.0.0.99", "ssh_port": 22, "ssh_user": "root"}
    data |= {"role": "worker", "labels": "", "taints": ""}
    return Round(
        (
            lambda: _web(user).post(f"/nodes/{node.pk}/delete/"),
            lambda: _web(user).post(f"/nodes/{node.pk}/edit/", data),
        ),
        _gone(Node, pk=node.pk),
    )


def delete_cluster_vs_patch_cluster(user: User) -> Round:
    cluster = make_cluster()
    return Round(
        (
            lambda: _api(user).delete(f"/api/v1/clusters/{cluster.pk}/"),
            lambda: _api(user).patch(f"/api/v1/clusters/{cluster.pk}/", {"description": "x"}),
        ),
        _gone(Cluster, pk=cluster.pk),
    )


def delete_cluster_page_vs_cluster_edit_page(user: User) -> Round:
    cluster = make_cluster()
    data = {**CLUSTER_PAGE, "name": cluster.name}
    return Round(
        (
            lambda: _web(user).post(
                f"/clusters/{cluster.pk}/delete/", {"confirm_name": cluster.name}
            ),
            lambda: _web(user).post(f"/clusters/{cluster.pk}/edit/", data),
        ),
        _gone(Cluster, pk=cluster.pk),
    )


def delete_cluster_vs_kubeadm_settings(user: User) -> Round:
    cluster = make_cluster()
    body = {"scheduler_extra_args": {"v": "2"}}
    return Round(
        (
            lambda: _api(user).delete(f"/api/v1/clusters/{cluster.pk}/"),
            lambda: _api(user).patch(f"/api/v1/clusters/{cluster.pk}/kubeadm-settings/", body),
        ),
        _gone(ClusterKubeadmSettings, cluster_id=cluster.pk),
    )


def delete_cluster_vs_settings_page(user: User) -> Round:
    cluster = make_cluster()
    bootstrap_services.save_settings(cluster, {"audit_enabled": False}, actor=SETUP)
    data = {
        "scheduler_extra_args": "v=2",
        "audit_policy": bootstrap_services.settings_for(cluster).audit_policy,
    }
    return Round(
        (
            lambda: _web(user).post(
                f"/clusters/{cluster.pk}/delete/", {"confirm_name": cluster.name}
            ),
            lambda: _web(user).post(f"/clusters/{cluster.pk}/config/settings/", data),
        ),
        _gone(ClusterKubeadmSettings, cluster_id=cluster.pk),
    )


def delete_cluster_vs_static_token(user: User) -> Round:
    cluster = make_cluster()
    body = {"cluster": cluster.pk, "token": "s3cret-token", "user": "alice", "uid": "1"}
    return Round(
        (
            lambda: _api(user).delete(f"/api/v1/clusters/{cluster.pk}/"),
            lambda: _api(user).post("/api/v1/static-tokens/", body),
        ),
        _gone(StaticToken, cluster_id=cluster.pk),
    )


def delete_cluster_vs_token_revoke(user: User) -> Round:
    cluster = make_cluster()
    token = bootstrap_services.create_token(
        cluster, bootstrap_services.validate_token_request(), actor=SETUP
    )
    return Round(
        (
            lambda: _api(user).delete(f"/api/v1/clusters/{cluster.pk}/"),
            lambda: _api(user).post(f"/api/v1/tokens/{token.pk}/revoke/"),
        ),
        _gone(BootstrapToken, pk=token.pk),
    )


def delete_cluster_vs_token_revoke_page(user: User) -> Round:
    cluster = make_cluster()
    token = bootstrap_services.create_token(
        cluster, bootstrap_services.validate_token_request(), actor=SETUP
    )
    return Round(
        (
            lambda: _web(user).post(
                f"/clusters/{cluster.pk}/delete/", {"confirm_name": cluster.name}
            ),
            lambda: _web(user).post(f"/tokens/{token.pk}/revoke/"),
        ),
        _gone(BootstrapToken, pk=token.pk),
    )


# --- E: races the database refuses must not be 500s ----------------------------------------------


def delete_cluster_vs_patch_node(user: User) -> Round:
    cluster = make_cluster()
    node = make_node(cluster)
    return Round(
        (
            lambda: _api(user).delete(f"/api/v1/clusters/{cluster.pk}/"),
            lambda: _api(user).patch(f"/api/v1/nodes/{node.pk}/", {"ssh_port": 2222}),
        ),
        _gone(Node, pk=node.pk),
    )


def delete_cluster_vs_post_node(user: User) -> Round:
    cluster = make_cluster()
    body = {"cluster": cluster.pk, "name": "w-9", "address": "10.0.0.99", "role": "worker"}
    return Round(
        (
            lambda: _api(user).delete(f"/api/v1/clusters/{cluster.pk}/"),
            lambda: _api(user).post("/api/v1/nodes/", body),
        ),
        _gone(Node, cluster_id=cluster.pk),
    )


def delete_cluster_vs_new_token(user: User) -> Round:
    cluster = make_cluster()
    return Round(
        (
            lambda: _api(user).delete(f"/api/v1/clusters/{cluster.pk}/"),
            lambda: _api(user).post("/api/v1/tokens/", {"cluster": cluster.pk}),
        ),
        _gone(BootstrapToken, cluster_id=cluster.pk),
    )


_serial = iter(range(10**6))


def two_identical_clusters(user: User) -> Round:
    name = f"twin-{next(_serial)}"
    body = {"name": name, "control_plane_endpoint": "10.0.0.10:6443"}
    return Round(
        (
            lambda: _api(user).post("/api/v1/clusters/", body),
            lambda: _api(user).post("/api/v1/clusters/", body),
        ),
        _one_created(("name",), Cluster, name=name),
    )


def two_identical_clusters_page(user: User) -> Round:
    name = f"twin-{next(_serial)}"
    data = {**CLUSTER_PAGE, "name": name}

    def check(responses: list[Any]) -> None:
        codes = sorted(r.status_code for r in responses)
        # A page re-shows its form (200) with the error on the field.
        assert codes == [200, 302], codes
        page = next(r for r in responses if r.status_code == 200)
        assert "name" in page.context["form"].errors
        assert Cluster.objects.filter(name=name).count() == 1

    return Round(
        (
            lambda: _web(user).post("/clusters/new/", data),
            lambda: _web(user).post("/clusters/new/", data),
        ),
        check,
    )


def two_identical_nodes(user: User) -> Round:
    cluster = make_cluster()
    body = {"cluster": cluster.pk, "name": "w-1", "address": "10.0.0.21", "role": "worker"}
    return Round(
        (
            lambda: _api(user).post("/api/v1/nodes/", body),
            lambda: _api(user).post("/api/v1/nodes/", body),
        ),
        _one_created(("name", "address"), Node, cluster=cluster),
    )


def two_identical_static_tokens(user: User) -> Round:
    cluster = make_cluster()
    body = {"cluster": cluster.pk, "token": "s3cret-token", "user": "alice", "uid": "1"}
    return Round(
        (
            lambda: _api(user).post("/api/v1/static-tokens/", body),
            lambda: _api(user).post("/api/v1/static-tokens/", body),
        ),
        _one_created(("token",), StaticToken, cluster=cluster),
    )


def two_identical_tokens(user: User) -> Round:
    cluster = make_cluster()
    body = {"cluster": cluster.pk, "token": "abcdef.0123456789abcdef"}
    return Round(
        (
            lambda: _api(user).post("/api/v1/tokens/", body),
            lambda: _api(user).post("/api/v1/tokens/", body),
        ),
        _one_created(("token",), BootstrapToken, cluster=cluster),
    )


def two_first_kubeadm_settings(user: User) -> Round:
    cluster = make_cluster()
    body = {"scheduler_extra_args": {"v": "2"}}
    url = f"/api/v1/clusters/{cluster.pk}/kubeadm-settings/"

    def check(responses: list[Any]) -> None:
        assert [r.status_code for r in responses] == [200, 200]
        assert ClusterKubeadmSettings.objects.filter(cluster=cluster).count() == 1

    return Round((lambda: _api(user).patch(url, body), lambda: _api(user).patch(url, body)), check)


def one_launch_sent_twice(user: User) -> Round:
    """A client that sends its launch again (a timeout, a proxy's retry) with its key."""
    from clusterpanel.jobs.models import Job
    from tests.jobkinds import READ_ONLY

    cluster = make_cluster()
    body = {"cluster": cluster.pk, "kind": READ_ONLY, "params": {"phases": []}}
    key = {"HTTP_IDEMPOTENCY_KEY": f"launch-{cluster.pk}"}

    def check(responses: list[Any]) -> None:
        assert sorted(r.status_code for r in responses) == [200, 201]
        assert len({r.json()["id"] for r in responses}) == 1
        assert Job.objects.filter(cluster=cluster).count() == 1

    return Round(
        (
            lambda: _api(user).post("/api/v1/jobs/", body, format="json", **key),
            lambda: _api(user).post("/api/v1/jobs/", body, format="json", **key),
        ),
        check,
    )


def launch_button_clicked_twice(user: User) -> Round:
    from clusterpanel.jobs.models import Job
    from tests.jobkinds import READ_ONLY

    cluster = make_cluster()
    form = {"kind": READ_ONLY, "request_key": f"form-{cluster.pk}"}
    url = f"/clusters/{cluster.pk}/jobs/new/"

    def check(responses: list[Any]) -> None:
        assert [r.status_code for r in responses] == [302, 302]
        job = Job.objects.get(cluster=cluster)
        assert {r["Location"] for r in responses} == {f"/jobs/{job.pk}/"}

    return Round((lambda: _web(user).post(url, form), lambda: _web(user).post(url, form)), check)


def one_job_retried_twice(user: User) -> Round:
    from clusterpanel.jobs.models import Job, JobStatus
    from tests.jobkinds import READ_ONLY

    cluster = make_cluster()
    failed = Job.objects.create(
        kind=READ_ONLY, cluster=cluster, params={"phases": []}, status=JobStatus.FAILED
    )
    url = f"/api/v1/jobs/{failed.pk}/retry/"

    def check(responses: list[Any]) -> None:
        assert sorted(r.status_code for r in responses) == [201, 409]
        assert Job.objects.filter(retry_of=failed).count() == 1

    return Round((lambda: _api(user).post(url), lambda: _api(user).post(url)), check)


RACES = [
    delete_node_vs_patch_node,
    delete_node_page_vs_node_edit_page,
    delete_cluster_vs_patch_cluster,
    delete_cluster_page_vs_cluster_edit_page,
    delete_cluster_vs_kubeadm_settings,
    delete_cluster_vs_settings_page,
    delete_cluster_vs_static_token,
    delete_cluster_vs_token_revoke,
    delete_cluster_vs_token_revoke_page,
    delete_cluster_vs_patch_node,
    delete_cluster_vs_post_node,
    delete_cluster_vs_new_token,
    two_identical_clusters,
    two_identical_clusters_page,
    two_identical_nodes,
    two_identical_static_tokens,
    two_identical_tokens,
    two_first_kubeadm_settings,
    one_launch_sent_twice,
    launch_button_clicked_twice,
    one_job_retried_twice,
]


@pytest.mark.parametrize("race", RACES, ids=[race.__name__ for race in RACES])
def test_racing_writes_neither_resurrect_nor_fail(
    transactional_db: Any, race: Callable[[User], Round]
) -> None:
    admin = make_personas()["admin"]
    for _ in range(ROUNDS):
        firing = race(admin)
        responses = at_once(*firing.calls)
        for response in responses:
            assert not isinstance(response, Exception), repr(response)
            assert response.status_code < 500, (response.status_code, response.content[:300])
        firing.check(responses)
