"""Destructive and wide actions ask first, in Chromium: renewing every certificate, reissuing,
deleting a static token; deleting a cluster takes its typed name. Declining changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nodes.models import Cluster
from pki.models import Certificate
from pki.models.tokens import StaticToken
from pki.services import bootstrap as bootstrap_services
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lab(transactional_db: Any) -> Cluster:
    cluster = make_cluster(
        "lab", control_plane_endpoint="lb.example.internal", key_algorithm="ECDSA-P256"
    )
    make_nodes(cluster, [("cp-1", "10.0.0.11", "control-plane"), ("w-1", "10.0.1.1", "worker")])
    certificate_services.issue_missing(cluster, actor=SETUP)
    return cluster


def _serials(cluster: Cluster) -> set[str]:
    return set(Certificate.objects.tree().filter(cluster=cluster).values_list("serial", flat=True))


class Dialogs:
    """Answers the page's confirm() dialogs one by one and keeps their messages."""

    def __init__(self, page: Any) -> None:
        self.messages: list[str] = []
        self.answers: list[bool] = []
        page.on("dialog", self._answer)

    def _answer(self, dialog: Any) -> None:
        self.messages.append(dialog.message)
        if self.answers.pop(0):
            dialog.accept()
        else:
            dialog.dismiss()


def test_renew_selected_with_nothing_ticked_renews_nothing_and_renew_all_asks_first(
    lab: Cluster, page_as: Callable[[str], Any]
) -> None:
    before = _serials(lab)
    page = page_as("operator")
    dialogs = Dialogs(page)
    page.goto(f"/clusters/{lab.pk}/certificates/")

    page.click("#renew-button")
    page.wait_for_selector(".messages >> text=No certificate is ticked")
    assert _serials(lab) == before and not dialogs.messages

    # Renew all: a separate button that asks, naming how many files it renews.
    dialogs.answers.append(False)
    page.click("#renew-all-button")
    assert dialogs.messages == [
        f"Renew all {len(before)} active kubeadm certificates of lab, not only the ticked ones? "
        "Every file on every node must then be replaced with its renewed copy."
    ]
    page.wait_for_load_state("networkidle")
    assert _serials(lab) == before
    assert "Renewed" not in page.locator(".messages").inner_text()  # no request was sent

    dialogs.answers.append(True)
    page.click("#renew-all-button")
    page.wait_for_selector(f".messages >> text=Renewed {len(before)} certificates.")
    assert not _serials(lab) & before

    # Ticking one and choosing "Renew selected" renews that one only, without asking.
    apiserver = Certificate.objects.tree().get(cluster=lab, name="apiserver")
    page.check(f"#cert-{apiserver.pk} input[name=certificates]")
    page.click("#renew-button")
    page.wait_for_selector(".messages >> text=Renewed 1 certificates.")
    assert len(dialogs.messages) == 2


def test_reissue_asks_first(lab: Cluster, page_as: Callable[[str], Any]) -> None:
    lab.extra_sans = ["api.example.com"]
    lab.save()
    page = page_as("operator")
    dialogs = Dialogs(page)
    page.goto(f"/clusters/{lab.pk}/certificates/")
    before = _serials(lab)

    dialogs.answers.append(False)
    page.click("#reissue-button")
    assert dialogs.messages[0].startswith("Reissue 1 certificate of lab?")
    page.wait_for_load_state("networkidle")
    assert _serials(lab) == before and page.locator("#stale-list").count() == 1

    dialogs.answers.append(True)
    page.click("#reissue-button")
    page.wait_for_selector(".messages >> text=Reissued 1 certificates")
    assert page.locator("#stale-list").count() == 0


def test_deleting_a_static_token_asks_first(lab: Cluster, page_as: Callable[[str], Any]) -> None:
    row = bootstrap_services.add_static_token(
        lab, token="s3cret", user="deployer", uid="1", actor=SETUP
    )
    page = page_as("operator")
    dialogs = Dialogs(page)
    page.goto(f"/clusters/{lab.pk}/config/")
    entry = page.locator(f"#static-token-{row.pk}")

    dialogs.answers.append(False)
    entry.get_by_role("button", name="Delete").click()
    assert dialogs.messages[0].startswith("Delete the static token of deployer?")
    page.wait_for_load_state("networkidle")
    assert StaticToken.objects.filter(pk=row.pk).exists()

    dialogs.answers.append(True)
    entry.get_by_role("button", name="Delete").click()
    page.wait_for_selector(".messages >> text=Static token of deployer deleted.")
    assert not StaticToken.objects.filter(pk=row.pk).exists()


def test_deleting_a_cluster_takes_its_typed_name(
    lab: Cluster, page_as: Callable[[str], Any]
) -> None:
    page = page_as("admin")
    dialogs = Dialogs(page)
    page.goto(f"/clusters/{lab.pk}/")
    page.click("#delete-cluster")
    page.wait_for_url(f"**/clusters/{lab.pk}/delete/")
    assert "certificate authorities with their private keys" in page.inner_text("main")

    # The button stays on the page until the name is typed; a wrong one is refused there.
    page.fill("#id_confirm_name", "LAB")
    page.click("#confirm-delete")
    error = page.locator("#confirm_name-error")
    error.wait_for()
    assert "Type lab exactly" in error.inner_text()
    assert Cluster.objects.filter(pk=lab.pk).exists()

    page.fill("#id_confirm_name", "lab")
    page.click("#confirm-delete")
    page.wait_for_url("**/clusters/")
    assert "Cluster lab deleted." in page.locator(".messages").inner_text()
    assert not Cluster.objects.filter(pk=lab.pk).exists()
    assert not dialogs.messages  # a page, not a browser prompt


def test_cancelling_a_job_asks_first(lab: Cluster, page_as: Callable[[str], Any]) -> None:
    from clusterpanel.jobs.models import Job
    from tests.jobkinds import READ_ONLY

    job = Job.objects.create(kind=READ_ONLY, cluster=lab, cluster_name=lab.name)
    page = page_as("operator")
    dialogs = Dialogs(page)
    page.goto(f"/jobs/{job.pk}/")

    dialogs.answers.append(False)
    page.get_by_role("button", name="Cancel").click()
    assert dialogs.messages[0].startswith(f"Cancel job #{job.pk}? Steps that have not run")
    page.wait_for_load_state("networkidle")
    job.refresh_from_db()
    assert job.is_active

    dialogs.answers.append(True)
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_selector(f".messages >> text=Job #{job.pk} cancelled.")
    job.refresh_from_db()
    assert not job.is_active


def test_revoking_a_token_asks_first(lab: Cluster, page_as: Callable[[str], Any]) -> None:
    request = bootstrap_services.validate_token_request()
    token = bootstrap_services.create_token(lab, request, actor=SETUP)
    page = page_as("operator")
    dialogs = Dialogs(page)
    page.goto(f"/clusters/{lab.pk}/tokens/")

    dialogs.answers.append(False)
    page.get_by_role("button", name="Revoke").click()
    assert dialogs.messages[0] == (
        f"Revoke token {token.token_id}? Nodes can no longer join with it."
    )
    page.wait_for_load_state("networkidle")
    token.refresh_from_db()
    assert token.revoked_at is None

    dialogs.answers.append(True)
    page.get_by_role("button", name="Revoke").click()
    page.wait_for_selector(f".messages >> text=Token {token.token_id} revoked.")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_deleting_a_node_asks_first_and_says_what_it_leaves(
    lab: Cluster, page_as: Callable[[str], Any]
) -> None:
    worker = lab.nodes.get(name="w-1")
    page = page_as("operator")
    dialogs = Dialogs(page)
    page.goto(f"/clusters/{lab.pk}/")
    row = page.locator(f"#node-{worker.pk}")

    dialogs.answers.append(False)
    row.get_by_role("button", name="Delete").click()
    assert dialogs.messages[0].startswith(
        "Delete node w-1 from the inventory? Nothing on the machine changes."
    )
    page.wait_for_load_state("networkidle")
    assert lab.nodes.filter(pk=worker.pk).exists()

    dialogs.answers.append(True)
    row.get_by_role("button", name="Delete").click()
    page.wait_for_selector(".messages >> text=Node w-1 deleted.")
    row.wait_for(state="detached")
    assert not lab.nodes.filter(pk=worker.pk).exists()


def test_importing_over_an_active_pki_asks_first(
    lab: Cluster, page_as: Callable[[str], Any]
) -> None:
    page = page_as("admin")
    dialogs = Dialogs(page)
    page.goto(f"/clusters/{lab.pk}/authorities/import/")
    form = page.locator("#import-cfssl-csr")
    typed = '{"CN": "kubernetes", "key": {"algo": "ecdsa", "size": 256}}'
    form.locator("textarea[name='cfssl-csr-ca_csr']").fill(typed)

    dialogs.answers.append(False)
    form.get_by_role("button", name="Import").click()
    assert dialogs.messages[0].startswith("Import over the active PKI of lab (")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/clusters/{lab.pk}/authorities/import/")
    assert form.locator("textarea[name='cfssl-csr-ca_csr']").input_value() == typed
