"""The jobs API and pages without a worker: launching writes a queued job (the message goes
out on commit, which these tests' transactions never reach), permissions, the 409 of a second
mutating job, audit rows, the log read "after N", polling that stops, tracebacks for admins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from clusterpanel.jobs.models import Job, JobLogChunk, JobStatus, JobStep, StepStatus
from clusterpanel.models import AuditEvent
from tests.empty_state import action_link, empty_state
from tests.factories import make_cluster, make_node
from tests.jobkinds import READ_ONLY, SHELL

pytestmark = pytest.mark.django_db

ONE_STEP = {"phases": [{"name": "main", "steps": [{"name": "s", "node": "cp-1"}]}]}


@pytest.fixture
def prod() -> Any:
    cluster = make_cluster("prod")
    make_node(cluster, name="cp-1")
    make_node(cluster, "worker", name="w-1")
    return cluster


def launch(client: Any, cluster: Any, kind: str = SHELL, **extra: Any) -> Any:
    body = {"cluster": cluster.pk, "kind": kind, "params": ONE_STEP, **extra}
    return client.post("/api/v1/jobs/", body, format="json")


def test_an_operator_launches_a_job_on_every_node_by_default(
    api_client: Callable[[str], Any], prod: Any
) -> None:
    response = launch(api_client("operator"), prod)
    assert response.status_code == 201, response.json()
    body = response.json()
    job = Job.objects.get(pk=body["id"])
    assert body["status"] == "queued" and body["nodes"] == sorted(
        prod.nodes.values_list("pk", flat=True)
    )
    assert job.plan["phases"][0]["steps"][0]["commands"][0]["command"] == "true"
    assert job.launched_by_name == "operator" and job.via == "api" and job.task_id
    event = AuditEvent.objects.get(action="job.launch")
    assert event.actor_name == "operator" and event.cluster_id == prod.pk
    assert event.details["job"] == job.pk and event.details["kind"] == SHELL
    assert body["traceback"] is None


def test_the_plan_preview_writes_nothing(api_client: Callable[[str], Any], prod: Any) -> None:
    node = prod.nodes.get(name="w-1")
    body = {"cluster": prod.pk, "kind": SHELL, "nodes": [node.pk], "params": ONE_STEP}
    response = api_client("operator").post("/api/v1/jobs/plan/", body, format="json")
    assert response.status_code == 200, response.json()
    preview = response.json()
    assert preview["nodes"] == [{"id": node.pk, "name": "w-1"}]
    assert preview["plan"]["phases"][0]["name"] == "main" and preview["mutating"] is True
    assert (
        not Job.objects.exists()
        and not AuditEvent.objects.filter(action__startswith="job.").exists()
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "no-such-kind"}, "kind"),
        ({"cluster": 999999}, "cluster"),
        ({"nodes": [999999]}, "nodes"),
        ({"nodes": []}, "nodes"),
        ({"params": {"phases": "x"}}, "params.phases"),
        ({"params": []}, "params"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    api_client: Callable[[str], Any], prod: Any, change: dict[str, Any], field: str
) -> None:
    body = {"cluster": prod.pk, "kind": SHELL, "params": ONE_STEP, **change}
    response = api_client("operator").post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]


def test_a_node_of_another_cluster_is_refused(api_client: Callable[[str], Any], prod: Any) -> None:
    stranger = make_node(make_cluster("other"), name="cp-9")
    response = launch(api_client("operator"), prod, nodes=[stranger.pk])
    assert response.status_code == 400
    assert "not a node of cluster prod" in response.json()["errors"]["nodes"][0]


def test_a_second_mutating_job_is_a_409_naming_the_first(
    api_client: Callable[[str], Any], prod: Any
) -> None:
    client = api_client("operator")
    first = launch(client, prod).json()["id"]
    second = launch(client, prod)
    assert second.status_code == 409
    assert f"Job #{first} ({SHELL}) is queued on cluster prod" in second.json()["detail"]
    # Read-only jobs are not held back, and other clusters are free.
    assert launch(client, prod, kind=READ_ONLY).status_code == 201
    other = make_cluster("other")
    assert launch(client, other, params={"phases": []}).status_code == 201


@pytest.mark.parametrize("persona", ["viewer", "outsider"])
def test_viewers_and_outsiders_cannot_launch_cancel_or_retry(
    api_client: Callable[[str], Any], prod: Any, persona: str
) -> None:
    job = Job.objects.create(kind=SHELL, cluster=prod, status=JobStatus.FAILED, explanation="x")
    client = api_client(persona)
    assert launch(client, prod).status_code == 403
    assert client.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 403
    assert client.post(f"/api/v1/jobs/{job.pk}/retry/").status_code == 403
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == (
        200 if persona == "viewer" else 403
    )
    assert Job.objects.count() == 1


def test_cancel_of_a_queued_job_ends_it_at_once_and_is_audited(
    api_client: Callable[[str], Any], prod: Any
) -> None:
    client = api_client("operator")
    job_id = launch(client, prod).json()["id"]
    response = client.post(f"/api/v1/jobs/{job_id}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["explanation"] == "cancelled by operator before it started"
    assert AuditEvent.objects.filter(action="job.cancel", details__job=job_id).exists()
    again = client.post(f"/api/v1/jobs/{job_id}/cancel/")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]


def test_cancel_of_a_running_job_asks_the_worker(
    api_client: Callable[[str], Any], prod: Any
) -> None:
    job = Job.objects.create(kind=SHELL, cluster=prod, status=JobStatus.RUNNING, mutating=True)
    response = api_client("admin").post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "running"
    job.refresh_from_db()
    assert job.cancel_requested_at is not None and job.cancel_requested_by_name == "admin"


def test_retry_starts_a_new_attempt_of_a_failed_job(
    api_client: Callable[[str], Any], prod: Any
) -> None:
    node = prod.nodes.get(name="cp-1")
    failed = Job.objects.create(kind=SHELL, cluster=prod, params=ONE_STEP, mutating=True,
                                status=JobStatus.FAILED, explanation="a step failed")  # fmt: skip
    failed.nodes.set([node])
    client = api_client("operator")
    response = client.post(f"/api/v1/jobs/{failed.pk}/retry/")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["retry_of"] == failed.pk and body["attempt"] == 2 and body["nodes"] == [node.pk]
    assert AuditEvent.objects.filter(action="job.retry", details__retry_of=failed.pk).exists()
    # A queued job cannot be retried.
    assert client.post(f"/api/v1/jobs/{body['id']}/retry/").status_code == 409
    # Nor the same job twice (a double click, a request sent again): the attempt is named.
    again = client.post(f"/api/v1/jobs/{failed.pk}/retry/")
    assert again.status_code == 409
    assert f"was already retried by job #{body['id']}" in again.json()["detail"]
    assert Job.objects.filter(retry_of=failed).count() == 1


def ended_job(prod: Any) -> Job:
    job = Job.objects.create(kind=SHELL, cluster=prod, status=JobStatus.ERRORED,
                             explanation="the job hit an internal error: ValueError; the "
                             "traceback is kept for administrators",
                             traceback="Traceback:\n  secret-internal-path")  # fmt: skip
    step = JobStep.objects.create(job=job, position=1, phase="check", name="swap",
                                  node_name="cp-1", status=StepStatus.FAILED, exit_code=3,
                                  result={"data": {}, "checks": [
                                      {"node": "cp-1", "name": "swap", "status": "fail",
                                       "message": "swap is on"}]})  # fmt: skip
    for seq in (1, 2, 3):
        JobLogChunk.objects.create(job=job, step=step, seq=seq, node_name="cp-1",
                                   stream="stdout", text=f"line {seq}\n")  # fmt: skip
    return job


def test_the_log_is_read_after_a_sequence_number(
    api_client: Callable[[str], Any], prod: Any
) -> None:
    job = ended_job(prod)
    body = api_client("viewer").get(f"/api/v1/jobs/{job.pk}/log/?after=1").json()
    assert [c["seq"] for c in body["chunks"]] == [2, 3]
    assert body["chunks"][0]["text"] == "line 2\n" and body["next"] == 3 and body["done"] is True
    assert api_client("viewer").get(f"/api/v1/jobs/{job.pk}/log/?after=x").status_code == 400


def test_checks_and_tracebacks_in_the_api(api_client: Callable[[str], Any], prod: Any) -> None:
    job = ended_job(prod)
    viewer = api_client("viewer").get(f"/api/v1/jobs/{job.pk}/").json()
    assert viewer["traceback"] is None
    swap = {"node": "cp-1", "name": "swap", "status": "fail", "message": "swap is on"}
    assert viewer["checks"] == [{**swap, "ignored": False}]
    assert viewer["steps"][0]["exit_code"] == 3 and viewer["steps"][0]["node"] == "cp-1"
    admin = api_client("admin").get(f"/api/v1/jobs/{job.pk}/").json()
    assert "secret-internal-path" in admin["traceback"]


def test_the_job_page_shows_steps_checks_and_no_traceback_to_operators(
    web_client: Callable[[str], Any], prod: Any
) -> None:
    job = ended_job(prod)
    page = web_client("operator").get(f"/jobs/{job.pk}/").content.decode()
    assert "swap is on" in page and "line 3" in page and 'id="job-checks"' in page
    assert "secret-internal-path" not in page
    assert 'hx-trigger="every 1s' not in page  # ended: no polling
    assert f'action="/jobs/{job.pk}/retry/"' in page
    assert "secret-internal-path" in web_client("admin").get(f"/jobs/{job.pk}/").content.decode()
    viewer = web_client("viewer").get(f"/jobs/{job.pk}/").content.decode()
    assert "/retry/" not in viewer


def test_polling_a_running_job_goes_on_and_an_ended_job_answers_286(
    web_client: Callable[[str], Any], prod: Any
) -> None:
    job = ended_job(prod)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    client = web_client("viewer")
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert (
        f'hx-get="/jobs/{job.pk}/log/?after=3"' in page
        and 'hx-trigger="every 1s, panel:visible"' in page
    )
    running = client.get(f"/jobs/{job.pk}/log/?after=2", HTTP_HX_REQUEST="true")
    assert running.status_code == 200 and "line 3" in running.content.decode()
    assert "line 2" not in running.content.decode()
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED)
    ended = client.get(f"/jobs/{job.pk}/log/?after=3", HTTP_HX_REQUEST="true")
    assert ended.status_code == 286
    assert "hx-trigger" not in ended.content.decode()


def test_the_lists_filter_by_cluster_kind_and_status(
    web_client: Callable[[str], Any], api_client: Callable[[str], Any], prod: Any
) -> None:
    other = make_cluster("other")
    a = Job.objects.create(kind=SHELL, cluster=prod, cluster_name="prod")
    b = Job.objects.create(kind=READ_ONLY, cluster=other, cluster_name="other",
                           status=JobStatus.SUCCEEDED, explanation="ok")  # fmt: skip
    client = web_client("viewer")
    page = client.get(f"/clusters/{prod.pk}/jobs/").content.decode()
    assert f'id="job-{a.pk}"' in page and f'id="job-{b.pk}"' not in page
    page = client.get("/jobs/?status=succeeded").content.decode()
    assert f'id="job-{b.pk}"' in page and f'id="job-{a.pk}"' not in page
    api = api_client("viewer")
    assert [j["id"] for j in api.get(f"/api/v1/jobs/?kind={SHELL}").json()["results"]] == [a.pk]
    assert [j["id"] for j in api.get(f"/api/v1/jobs/?cluster={other.pk}").json()["results"]] == [
        b.pk
    ]
    assert api.get("/api/v1/jobs/?status=bogus").status_code == 400


def test_a_cluster_with_an_active_job_cannot_be_deleted(
    api_client: Callable[[str], Any], prod: Any
) -> None:
    job = Job.objects.create(kind=SHELL, cluster=prod, status=JobStatus.RUNNING, mutating=True)
    response = api_client("admin").delete(f"/api/v1/clusters/{prod.pk}/")
    assert response.status_code == 409 and f"job #{job.pk}" in response.json()["detail"]
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, explanation="ok")
    assert api_client("admin").delete(f"/api/v1/clusters/{prod.pk}/").status_code == 204
    job.refresh_from_db()
    assert job.cluster_id is None


def test_an_empty_job_list_offers_a_launch_by_role_and_a_filtered_one_the_way_back(
    web_client: Callable[[str], Any], prod: Any
) -> None:
    url = f"/clusters/{prod.pk}/jobs/"
    operator = empty_state(web_client("operator").get(url).content.decode(), "jobs-table")
    assert operator.startswith("No jobs on this cluster yet.")
    assert action_link(operator) == f"/clusters/{prod.pk}/jobs/new/"
    viewer = empty_state(web_client("viewer").get(url).content.decode(), "jobs-table")
    assert viewer == "No jobs on this cluster yet. An operator can launch one."
    # Jobs exist, but none matches: the way back is for every role, and no launch is offered.
    Job.objects.create(kind=SHELL, cluster=prod, cluster_name="prod")
    for persona in ("viewer", "operator"):
        page = web_client(persona).get("/jobs/?status=failed&sort=kind").content.decode()
        filtered = empty_state(page, "jobs-table")
        assert filtered.startswith("No jobs match these filters.")
        assert action_link(filtered) == "/jobs/"


def test_a_launch_sent_again_with_its_key_is_the_same_job(
    api_client: Callable[[str], Any], web_client: Callable[[str], Any], prod: Any
) -> None:
    body = {"cluster": prod.pk, "kind": READ_ONLY, "params": {"phases": []}}
    client = api_client("operator")
    key = {"HTTP_IDEMPOTENCY_KEY": "3f2c9a1e-launch"}
    first = client.post("/api/v1/jobs/", body, format="json", **key)
    again = client.post("/api/v1/jobs/", body, format="json", **key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert AuditEvent.objects.filter(action="job.launch").count() == 1
    # The key names one launch: another one with it is refused, saying so.
    other = client.post(
        "/api/v1/jobs/", {**body, "params": {"phases": [], "x": 1}}, format="json", **key
    )
    assert other.status_code == 409
    assert "This request key was used for job #" in other.json()["detail"]
    # Keys are the user's own: another user's same key is another launch.
    assert api_client("admin").post("/api/v1/jobs/", body, format="json", **key).status_code == 201
    for bad_key in ("a key", "k" * 65):
        bad = client.post("/api/v1/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY=bad_key)
        assert bad.status_code == 400
        assert "Idempotency-Key" in bad.json()["errors"]
    # Without a key, every post launches.
    assert client.post("/api/v1/jobs/", body, format="json").status_code == 201
    assert Job.objects.filter(cluster=prod).count() == 3

    # The page: the preview's Launch form carries a key of its own, so a second click (or the
    # form posted again from the browser's history) opens the job the first one launched.
    page = web_client("operator")
    preview = page.get(f"/clusters/{prod.pk}/jobs/new/", {"kind": READ_ONLY})
    form_key = preview.context["request_key"]
    assert f'name="request_key" value="{form_key}"' in preview.content.decode()
    form = {"kind": READ_ONLY, "request_key": form_key}
    launched = page.post(f"/clusters/{prod.pk}/jobs/new/", form, follow=True)
    clicked_again = page.post(f"/clusters/{prod.pk}/jobs/new/", form, follow=True)
    assert launched.redirect_chain == clicked_again.redirect_chain
    assert "was already launched from this form; nothing was launched again." in (
        clicked_again.content.decode()
    )
    assert Job.objects.filter(cluster=prod).count() == 4
