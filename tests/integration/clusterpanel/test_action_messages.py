"""Every page action says what it did: a POST that sends the user on to another page leaves a
message there, for success and refusal alike.

The routes and their data come from the permission matrix, so a new page action is covered as
soon as it is declared there. Each is posted by the role that may use it; the message is read
from the messages framework's storage of the response that follows the redirect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.messages import get_messages

from nodes.models import Cluster
from tests.integration.clusterpanel.test_permissions import (
    PERSONAS,
    _node,
    _restore,
    matrix,
)

pytestmark = pytest.mark.above_the_database

# Posts that end on the login page, not on a page of the panel.
_NOT_ACTIONS = {"/logout/"}


@pytest.mark.django_db
def test_every_page_action_leaves_a_message(
    web_client: Callable[[str | None], Any], cluster: Cluster
) -> None:
    node = _node(cluster)
    silent: list[str] = []
    checked = 0
    for method, url, data, expected in matrix(cluster, node):
        if method != "POST" or url.startswith("/api/") or url in _NOT_ACTIONS:
            continue
        # The least privileged persona that is sent on (302) rather than refused.
        persona = next((p for p, e in zip(PERSONAS, expected, strict=True) if e == 302), None)
        if persona is None:
            continue
        response = web_client(persona).post(url, data)
        assert response.status_code == 302, f"{url}: {response.status_code}"
        said = [str(m) for m in get_messages(response.wsgi_request)]
        if not said:
            silent.append(url)
        checked += 1
        _restore(cluster, node)
    assert checked >= 15
    assert not silent, f"actions that say nothing: {silent}"


@pytest.mark.django_db
def test_saving_a_form_says_so(web_client: Callable[[str | None], Any], cluster: Cluster) -> None:
    """The inventory's create and edit forms, which the matrix reaches only with GET."""
    from tests.integration.nodes.test_inventory_validation import GOOD_CLUSTER

    client = web_client("operator")
    new_cluster = {**GOOD_CLUSTER, "extra_sans": ""}
    node = {"name": "w1", "address": "10.0.0.21", "ssh_port": 22, "ssh_user": "root"}
    node |= {"role": "worker", "taints": ""}
    posts = [
        ("/clusters/new/", new_cluster, "Cluster staging created."),
        (f"/clusters/{cluster.pk}/nodes/new/", node, "Node w1 added."),
    ]
    for url, data, said in posts:
        response = client.post(url, data, follow=True)
        assert response.redirect_chain, (url, response.content[:300])
        assert f'<li class="success">{said}</li>' in response.content.decode(), url
    staging = Cluster.objects.get(name="staging")
    worker = cluster.nodes.get(name="w1")
    edits = [
        (
            f"/clusters/{staging.pk}/edit/",
            {**new_cluster, "description": "x"},
            "Cluster staging saved.",
        ),
        (f"/nodes/{worker.pk}/edit/", {**node, "ssh_port": 2222}, "Node w1 saved."),
    ]
    for url, data, said in edits:
        response = client.post(url, data, follow=True)
        assert response.redirect_chain, (url, response.content[:300])
        assert f'<li class="success">{said}</li>' in response.content.decode(), url


@pytest.mark.django_db
def test_a_refused_form_keeps_what_was_typed(
    web_client: Callable[[str | None], Any], cluster: Cluster
) -> None:
    """One bad field: the page comes back with that field's error and every other value as
    typed, so nothing has to be entered again."""
    from tests.integration.nodes.test_inventory_validation import GOOD_CLUSTER

    client = web_client("operator")
    typed = {**GOOD_CLUSTER, "extra_sans": "api.example.internal\n10.0.0.50"}
    typed |= {"description": "keep this text", "pod_subnet": "10.50.0.0/16", "name": "Bad_Name"}
    page = client.post("/clusters/new/", typed)
    assert page.status_code == 200
    assert list(page.context["form"].errors) == ["name"]
    body = page.content.decode()
    for value in (
        "Bad_Name",
        "keep this text",
        "10.50.0.0/16",
        "api.example.internal",
        "10.0.0.50",
    ):
        assert value in body, value
    assert not Cluster.objects.filter(description="keep this text").exists()

    node = {"name": "w1", "address": "not an address", "ssh_port": 2200, "ssh_user": "deploy"}
    node |= {"role": "worker", "taints": "", "labels": "zone=a"}
    page = client.post(f"/clusters/{cluster.pk}/nodes/new/", node)
    assert page.status_code == 200
    assert list(page.context["form"].errors) == ["address"]
    body = page.content.decode()
    for value in (
        'value="w1"',
        'value="not an address"',
        'value="2200"',
        'value="deploy"',
        "zone=a",
    ):
        assert value in body, value
    assert not cluster.nodes.exists()
