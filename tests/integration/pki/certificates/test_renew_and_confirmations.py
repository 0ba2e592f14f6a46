"""Renewing every certificate is an explicit action, and the page's destructive buttons ask first.

"Renew selected" with nothing ticked renews nothing and says so; only ``all=1`` (the separate
"Renew all" button, which asks for confirmation in the browser) renews every file of the tree.
"""

from __future__ import annotations

from typing import Any

import pytest

from nodes.models import Cluster
from pki.models import Certificate
from pki.services import bootstrap as bootstrap_services
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(db: Any) -> Cluster:
    cluster = make_cluster(
        "renewals", control_plane_endpoint="lb.example.internal", key_algorithm="ECDSA-P256"
    )
    make_node(cluster)
    certificate_services.issue_missing(cluster, actor=SETUP)
    return cluster


def _active_serials(cluster: Cluster) -> set[str]:
    return set(Certificate.objects.tree().filter(cluster=cluster).values_list("serial", flat=True))


@pytest.mark.parametrize("data", [{}, {"reuse_key": "on"}, {"all": "0"}, {"all": "yes"}])
def test_renew_with_nothing_ticked_renews_nothing(issued, web_client, data) -> None:
    before = _active_serials(issued)
    client = web_client("operator")
    response = client.post(f"/clusters/{issued.pk}/certificates/renew/", data)
    assert response.status_code == 302
    assert _active_serials(issued) == before
    page = client.get(response["Location"]).content.decode()
    assert "No certificate is ticked, so nothing was renewed." in page


def test_renew_all_needs_all_1_and_renews_every_file(issued, web_client) -> None:
    before = _active_serials(issued)
    client = web_client("operator")
    response = client.post(f"/clusters/{issued.pk}/certificates/renew/", {"all": "1"})
    after = _active_serials(issued)
    assert len(after) == len(before) and not after & before
    assert (
        f"Renewed {len(before)} certificates." in client.get(response["Location"]).content.decode()
    )


def test_renew_all_renews_all_even_with_some_ticked(issued, web_client) -> None:
    before = _active_serials(issued)
    one = Certificate.objects.tree().filter(cluster=issued).first()
    assert one is not None
    web_client("operator").post(
        f"/clusters/{issued.pk}/certificates/renew/", {"all": "1", "certificates": [one.pk]}
    )
    assert not _active_serials(issued) & before


def test_renew_selected_renews_only_the_ticked_ones(issued, web_client) -> None:
    before = _active_serials(issued)
    one = Certificate.objects.tree().get(cluster=issued, name="apiserver")
    web_client("operator").post(
        f"/clusters/{issued.pk}/certificates/renew/", {"certificates": [one.pk]}
    )
    after = _active_serials(issued)
    assert before - after == {one.serial} and len(after - before) == 1


def test_the_tab_offers_renew_selected_and_a_separate_confirmed_renew_all(
    issued, web_client
) -> None:
    count = Certificate.objects.tree().filter(cluster=issued).count()
    html = web_client("operator").get(f"/clusters/{issued.pk}/certificates/").content.decode()
    assert ">Renew selected</button>" in html and "(or all)" not in html
    assert 'name="all" value="1"' in html and f"Renew all {count}…" in html
    assert f'data-confirm="Renew all {count} active kubeadm certificates of renewals' in html
    viewer = web_client("viewer").get(f"/clusters/{issued.pk}/certificates/").content.decode()
    assert "Renew all" not in viewer


def test_reissue_asks_first(issued, web_client) -> None:
    issued.extra_sans = ["api.example.com"]
    issued.save()
    html = web_client("operator").get(f"/clusters/{issued.pk}/certificates/").content.decode()
    form = html[html.index(f'action="/clusters/{issued.pk}/certificates/reissue/"') :]
    form = form[: form.index("</form>")]
    assert 'data-confirm="Reissue 1 certificate of renewals?' in form


def test_static_token_delete_and_token_revoke_ask_first(issued, web_client) -> None:
    bootstrap_services.add_static_token(
        issued, token="s3cret", user="deployer", uid="1", actor=SETUP
    )
    client = web_client("operator")
    config = client.get(f"/clusters/{issued.pk}/config/").content.decode()
    assert 'data-confirm="Delete the static token of deployer?' in config
    request = bootstrap_services.validate_token_request()
    token = bootstrap_services.create_token(issued, request, actor=SETUP)
    tokens = client.get(f"/clusters/{issued.pk}/tokens/").content.decode()
    assert f'data-confirm="Revoke token {token.token_id}?' in tokens
    # No inline script handlers: the pages run under a strict Content-Security-Policy.
    for html in (config, tokens):
        assert "onsubmit=" not in html and "onclick=" not in html


def test_renew_and_roll_out_renews_then_previews_the_rollout_for_admins_only(
    issued, web_client
) -> None:
    before = _active_serials(issued)
    admin = web_client("admin")
    tab = admin.get(f"/clusters/{issued.pk}/certificates/").content.decode()
    assert 'id="renew-all-rollout-button"' in tab and 'id="renew-rollout-button"' in tab
    response = admin.post(f"/clusters/{issued.pk}/certificates/renew/?then=rollout", {"all": "1"})
    assert response.status_code == 302
    assert response["Location"] == (
        f"/clusters/{issued.pk}/jobs/new/?kind=cert-rollout&param.wait_seconds=180"
    )
    assert not _active_serials(issued) & before
    page = admin.get(response["Location"])
    assert page.status_code == 200
    text = page.content.decode()
    assert "The nodes still run the old ones" in text
    assert "roll out cp-1" in text and "mv /etc/kubernetes/manifests/kube-apiserver.yaml" in text
    # Operators may renew, but rolling out to control-plane nodes copies CA keys: not offered.
    operator_tab = web_client("operator").get(f"/clusters/{issued.pk}/certificates/")
    assert "renew-all-rollout-button" not in operator_tab.content.decode()
