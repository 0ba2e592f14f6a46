"""Launching facts and preflight from the cluster's pages: preview first (no host contacted),
then launch; errors re-show the page. No worker runs here: a launched job stays queued."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from clusterpanel.jobs.models import Job, JobStatus
from tests.factories import make_cluster, make_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def prod() -> Any:
    cluster = make_cluster("prod")
    make_node(cluster, name="cp-1")
    make_node(cluster, "worker", name="w-1")
    return cluster


def test_the_cluster_page_offers_facts_and_preflight_to_operators_only(
    web_client: Callable[[str], Any], prod: Any
) -> None:
    page = web_client("operator").get(f"/clusters/{prod.pk}/").content.decode()
    assert f"/clusters/{prod.pk}/jobs/new/?kind=facts" in page
    assert f"/clusters/{prod.pk}/jobs/new/?kind=preflight" in page
    assert f"/clusters/{prod.pk}/jobs/" in page  # the Jobs tab
    assert f"/clusters/{prod.pk}/jobs/new/?kind=install" in page
    assert f"/clusters/{prod.pk}/jobs/new/?kind=distribute-pki" in page
    worker = prod.nodes.get(name="w-1")
    # Each node row opens the same page with that node chosen.
    assert f"/clusters/{prod.pk}/jobs/new/?kind=install&amp;nodes={worker.pk}" in page
    assert f"/clusters/{prod.pk}/jobs/new/?kind=distribute-pki&amp;nodes={worker.pk}" in page
    viewer = web_client("viewer").get(f"/clusters/{prod.pk}/").content.decode()
    assert "jobs/new/" not in viewer
    assert web_client("viewer").get(f"/clusters/{prod.pk}/jobs/new/?kind=facts").status_code == 403


def test_the_preview_shows_each_nodes_steps_and_launching_queues_the_job(
    web_client: Callable[[str], Any], prod: Any
) -> None:
    client = web_client("operator")
    preview = client.get(f"/clusters/{prod.pk}/jobs/new/?kind=preflight")
    assert preview.status_code == 200
    body = preview.content.decode()
    assert "connected to no host" in body
    assert "probe on <strong>cp-1</strong>" in body and "probe on <strong>w-1</strong>" in body
    assert Job.objects.count() == 0
    response = client.post(f"/clusters/{prod.pk}/jobs/new/", {"kind": "preflight"})
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.status == JobStatus.QUEUED and job.kind == "preflight"
    assert sorted(job.target_node_ids) == sorted(prod.nodes.values_list("pk", flat=True))


def test_a_chosen_node_limits_the_job_and_a_foreign_node_is_refused(
    web_client: Callable[[str], Any], prod: Any
) -> None:
    client = web_client("operator")
    worker = prod.nodes.get(name="w-1")
    client.post(f"/clusters/{prod.pk}/jobs/new/", {"kind": "facts", "nodes": [worker.pk]})
    assert Job.objects.get().target_node_ids == [worker.pk]
    other = make_node(make_cluster("other"), name="cp-9")
    refused = client.post(f"/clusters/{prod.pk}/jobs/new/", {"kind": "facts", "nodes": [other.pk]})
    assert refused.status_code == 400
    assert "not a node of cluster prod" in refused.content.decode()
    assert Job.objects.count() == 1


def test_an_unknown_kind_is_a_400_page_naming_the_known_kinds(
    web_client: Callable[[str], Any], prod: Any
) -> None:
    response = web_client("operator").post(f"/clusters/{prod.pk}/jobs/new/", {"kind": "rm-rf"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "unknown job kind" in body and "facts" in body
    assert Job.objects.count() == 0


def test_bootstrap_on_the_cluster_page_and_join_on_rows_of_nodes_not_joined_yet(
    web_client: Callable[[str], Any], prod: Any
) -> None:
    from django.utils import timezone

    from pki.services import certificates as certificate_services
    from tests.actors import SETUP

    joined = make_node(prod, "worker", name="w-2", joined_at=timezone.now())
    worker = prod.nodes.get(name="w-1")
    page = web_client("admin").get(f"/clusters/{prod.pk}/").content.decode()
    assert f'href="/clusters/{prod.pk}/jobs/new/?kind=bootstrap"' in page
    assert f'href="/clusters/{prod.pk}/jobs/new/?kind=join&amp;nodes={worker.pk}"' in page
    assert f"kind=join&amp;nodes={joined.pk}" not in page
    assert (
        "kind=bootstrap" not in web_client("viewer").get(f"/clusters/{prod.pk}/").content.decode()
    )
    # The links open the launch page with its preview (nothing made, no host contacted).
    certificate_services.issue_missing(prod, actor=SETUP)
    sent = "param.cni_manifest=&param.cni_manifest_path=/opt/bundle/calico.yaml"
    url = f"/clusters/{prod.pk}/jobs/new/?kind=bootstrap&{sent}&param.ignore_preflight_errors="
    preview = web_client("admin").get(url)
    assert preview.status_code == 200
    body = preview.content.decode()
    assert "kubeadm init on <strong>cp-1</strong>" in body
    assert "kubeadm join on <strong>w-1</strong>" in body
    assert "apply the CNI manifest on <strong>cp-1</strong>" in body
    assert web_client("operator").get(url).status_code == 403
    assert not prod.bootstrap_tokens.exists() and not prod.certificate_keys.exists()


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ("swap,nosuch", "'nosuch' is not a preflight check name"),
        ("probe", "probe cannot be ignored"),
        ("all,swap", "name no other check with it"),
    ],
)
def test_an_unknown_ignored_check_is_a_400_naming_the_field_in_the_api_and_on_the_page(
    web_client: Callable[[str], Any],
    api_client: Callable[[str], Any],
    prod: Any,
    sent: str,
    reason: str,
) -> None:
    body = {"cluster": prod.pk, "kind": "preflight", "params": {"ignore_preflight_errors": sent}}
    for path in ("/api/v1/jobs/plan/", "/api/v1/jobs/"):
        answer = api_client("operator").post(path, body, format="json")
        assert answer.status_code == 400, answer.json()
        assert list(answer.json()["errors"]) == ["ignore_preflight_errors"]
        assert reason in answer.json()["errors"]["ignore_preflight_errors"][0]

    client = web_client("operator")
    posted = {"kind": "preflight", "param.ignore_preflight_errors": sent}
    url = f"/clusters/{prod.pk}/jobs/new/"
    for page in (
        client.get(url, posted),  # a link's preview
        client.post(url, {**posted, "action": "preview"}),
        client.post(url, posted),  # the launch
    ):
        assert page.status_code == 400
        html = page.content.decode()
        # The form comes back with the input kept and the error by its input; no preview.
        assert 'id="param-ignore_preflight_errors" autocomplete="off" aria-invalid="true"' in html
        assert 'value="' + sent + '"' in html
        field_error = html.split('<p class="error" id="param-ignore_preflight_errors-error">')[1]
        assert reason.replace("'", "&#x27;") in field_error.split("</p>", 1)[0]
        assert "ignore_preflight_errors: " in html.split('id="job-error">', 1)[1]
        assert 'id="job-preview"' not in html
    assert Job.objects.count() == 0


def test_preflight_takes_the_ignored_checks_and_its_page_previews_at_once(
    web_client: Callable[[str], Any], api_client: Callable[[str], Any], prod: Any
) -> None:
    client = web_client("operator")
    # The parameter is optional: the page opened for preflight shows the plan straight away.
    opened = client.get(f"/clusters/{prod.pk}/jobs/new/?kind=preflight").content.decode()
    assert 'id="job-preview"' in opened and 'id="param-ignore_preflight_errors"' in opened
    client.post(
        f"/clusters/{prod.pk}/jobs/new/",
        {"kind": "preflight", "param.ignore_preflight_errors": "swap, cpus"},
    )
    assert Job.objects.get().params == {"ignore_preflight_errors": ["cpus", "swap"]}
    body = {"cluster": prod.pk, "kind": "preflight", "params": {"ignore_preflight_errors": "all"}}
    answer = api_client("operator").post("/api/v1/jobs/", body, format="json")
    assert answer.status_code == 201, answer.json()
    assert Job.objects.get(pk=answer.json()["id"]).params == {"ignore_preflight_errors": ["all"]}


def _manifest(size: int) -> str:
    """A CNI manifest of about ``size`` bytes, as a browser's text area posts it (CRLF)."""
    line = "        - name: CALICO_IPV4POOL_CIDR\r\n          value: 10.244.0.0/16\r\n"
    return "apiVersion: v1\r\nkind: ConfigMap\r\n" + line * (size // len(line))


def test_a_pasted_cni_manifest_is_previewed_from_a_post_and_launched_as_previewed(
    web_client: Callable[[str], Any], prod: Any
) -> None:
    from pki.services import certificates as certificate_services
    from tests.actors import SETUP

    certificate_services.issue_missing(prod, actor=SETUP)
    client = web_client("admin")
    url = f"/clusters/{prod.pk}/jobs/new/"
    opened = client.get(url, {"kind": "bootstrap"}).content.decode()
    assert '<textarea name="param.cni_manifest" id="param-cni_manifest"' in opened
    assert '<input type="text" name="param.cni_manifest_path"' in opened

    pasted = _manifest(200_000)  # calico.yaml is about this size: far beyond any URL
    written = pasted.replace("\r\n", "\n").encode()
    form = {"kind": "bootstrap", "param.cni_manifest": pasted, "param.cni_manifest_path": ""}
    form["param.ignore_preflight_errors"] = ""
    preview = client.post(url, {**form, "action": "preview"})
    assert preview.status_code == 200
    assert not Job.objects.exists()  # a preview plans, it stores nothing
    body = preview.content.decode()
    assert f"the CNI manifest ({len(written)} bytes)" in body
    assert not prod.bootstrap_tokens.exists() and not prod.certificate_keys.exists()
    # The launch form carries the previewed text; the text area keeps it too.
    launch = preview.context["param_fields"]
    assert [f["value"] for f in launch if f["name"] == "cni_manifest"] == [pasted]

    response = client.post(url, form)
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.params["cni_manifest"].encode() == written


def test_a_manifest_over_the_limit_is_refused_by_name_and_kept(
    web_client: Callable[[str], Any], prod: Any
) -> None:
    from nodes.recipes.bootstrap import MAX_CNI_MANIFEST
    from pki.services import certificates as certificate_services
    from tests.actors import SETUP

    certificate_services.issue_missing(prod, actor=SETUP)
    client = web_client("admin")
    too_big = _manifest(MAX_CNI_MANIFEST + 100_000)  # over it even with LF line ends
    form = {"kind": "bootstrap", "param.cni_manifest": too_big, "param.cni_manifest_path": ""}
    form |= {"param.ignore_preflight_errors": "", "action": "preview"}
    response = client.post(f"/clusters/{prod.pk}/jobs/new/", form)
    assert response.status_code == 400
    body = response.content.decode()
    assert "cni_manifest: at most 2 MiB" in body  # the page's error line, and by the input:
    assert '<p class="error" id="param-cni_manifest-error">at most 2 MiB;' in body
    assert not Job.objects.exists()
    # The text area keeps the text, to be cut down or replaced by a path.
    assert too_big.replace("\r\n", "\n")[:2000] in body.replace("\r\n", "\n")
