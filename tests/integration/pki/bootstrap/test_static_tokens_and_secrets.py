"""The static token file via the API, and secrets at rest in the database file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from clusterpanel.models import AuditEvent
from nodes.models import Cluster
from pki.models.tokens import StaticToken
from pki.services import bootstrap as bootstrap_services
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.dbdump import database_dump
from tests.factories import make_cluster

IMPORT = "/api/v1/clusters/{}/static-tokens/import/"
FILE = "/api/v1/clusters/{}/tokens.csv"

GOOD_FILE = (
    '31ada4fd-adec-460c-809a-9e56ceb75269,alice,1001,"system:masters,ops"\n'
    "\n"
    "b6e5a6c2-8a4d-4c4b-9c8e-5f2b2f0c1d11,bob,1002\n"
)


@pytest.mark.django_db
def test_an_import_stores_the_entries_and_the_file_renders_them_back(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    api = api_client("admin")  # alice is in system:masters: an admin's grant
    response = api.post(IMPORT.format(cluster.pk), {"csv": GOOD_FILE}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 2
    listing = api.get(f"/api/v1/static-tokens/?cluster={cluster.pk}").content.decode()
    assert "alice" in listing and "31ada4fd" not in listing
    download = api.get(FILE.format(cluster.pk))
    assert download.status_code == 200
    assert download.content.decode() == (
        '31ada4fd-adec-460c-809a-9e56ceb75269,alice,1001,"system:masters,ops"\n'
        "b6e5a6c2-8a4d-4c4b-9c8e-5f2b2f0c1d11,bob,1002\n"
    )
    event = AuditEvent.objects.get(action="static_token.download")
    assert event.details["privileged"][0]["name"] == "system:masters"
    assert api_client("viewer").get(FILE.format(cluster.pk)).status_code == 403


@pytest.mark.django_db
def test_an_operator_cannot_read_back_a_privileged_token_an_admin_made(
    api_client: Callable[[str], Any], web_client: Callable[[str], Any], cluster: Cluster
) -> None:
    """Downloading tokens.csv obtains every identity in it: the identity policy decides."""
    admin = api_client("admin")
    assert (
        admin.post(IMPORT.format(cluster.pk), {"csv": GOOD_FILE}, format="json").status_code == 201
    )
    refused = api_client("operator").get(FILE.format(cluster.pk))
    assert refused.status_code == 403
    assert "alice: system:masters" in refused.content.decode()
    assert "31ada4fd" not in refused.content.decode()
    page = web_client("operator").get(f"/clusters/{cluster.pk}/config/tokens.csv")
    assert page.status_code == 403 and b"31ada4fd" not in page.content
    assert not AuditEvent.objects.filter(action="static_token.download").exists()
    # Without the privileged entry the operator's download is the ordinary one.
    StaticToken.objects.filter(cluster=cluster, user="alice").delete()
    allowed = api_client("operator").get(FILE.format(cluster.pk))
    assert allowed.status_code == 200
    assert allowed.content.decode() == "b6e5a6c2-8a4d-4c4b-9c8e-5f2b2f0c1d11,bob,1002\n"


@pytest.mark.django_db
def test_bad_lines_are_reported_by_number_and_nothing_is_saved(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    text = (
        "tok-1,alice,1\n"  # line 1: good
        "tok-2,bob\n"  # line 2: too few columns
        "tok-3,carol,3\n"  # line 3: good
        "tok-1,dave,4\n"  # line 4: duplicate of line 1 (a warning: the last wins)
        'tok 5,"eve",5\n'  # line 5: a token with a space cannot travel in a header
    )
    response = api_client("operator").post(IMPORT.format(cluster.pk), {"csv": text}, format="json")
    assert response.status_code == 400
    messages = response.json()["errors"]["csv"]
    assert messages[0] == "line 2: expected at least 3 columns"
    assert messages[1].startswith("line 5: token:")
    assert not StaticToken.objects.exists()


@pytest.mark.django_db
def test_duplicates_are_warned_within_the_file_and_refused_against_stored_ones(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    api = api_client("operator")
    first = api.post(
        IMPORT.format(cluster.pk), {"csv": "tok-1,alice,1\ntok-1,dave,4\n"}, format="json"
    )
    assert first.status_code == 201
    assert first.json()["warnings"] == ["line 2: duplicate token (also on line 1); line 2 wins"]
    assert list(StaticToken.objects.values_list("user", flat=True)) == ["dave"]
    again = api.post(IMPORT.format(cluster.pk), {"csv": "x,y,z\ntok-1,erin,5\n"}, format="json")
    assert again.status_code == 400
    assert again.json()["errors"]["csv"] == ["line 2: duplicate of the stored token of dave"]
    replaced = api.post(
        IMPORT.format(cluster.pk), {"csv": "tok-1,erin,5\n", "replace": True}, format="json"
    )
    assert replaced.status_code == 201 and replaced.json()["replaced"] == 1
    single = api.post(
        "/api/v1/static-tokens/",
        {"cluster": cluster.pk, "token": "tok-1", "user": "frank", "uid": "6"},
        format="json",
    )
    assert single.status_code == 400 and "token" in single.json()["errors"]
    bad_group = api.post(
        "/api/v1/static-tokens/",
        {"cluster": cluster.pk, "token": "tok-9", "user": "g", "uid": "7", "groups": ["a,b"]},
        format="json",
    )
    assert bad_group.status_code == 400 and "groups" in bad_group.json()["errors"]


@pytest.mark.django_db(transaction=True)
def test_the_database_file_holds_no_token_secret_or_certificate_key(
    api_client: Callable[[str], Any], personas: dict[str, Any]
) -> None:
    cluster = make_cluster("vault", control_plane_endpoint="10.0.0.1")
    certificate_services.ensure_cluster_cas(cluster)
    api = api_client("admin")  # the certificate key is an admin's to see
    token = api.post("/api/v1/tokens/", {"cluster": cluster.pk}, format="json").json()["token"]
    api.post(f"/api/v1/clusters/{cluster.pk}/certificate-key/")
    join = api.get(f"/api/v1/clusters/{cluster.pk}/join-command/", {"role": "control-plane"})
    key = join.json()["certificate_key"]
    static = "s3cr3t-static-token-value-0001"
    bootstrap_services.add_static_token(cluster, token=static, user="alice", uid="1", actor=SETUP)
    dump = database_dump()
    assert token[:6].encode() in dump  # the id is public and stored as is
    for secret in (token, token[7:], key, static):
        assert secret.encode() not in dump
    assert StaticToken.objects.get().token == static
