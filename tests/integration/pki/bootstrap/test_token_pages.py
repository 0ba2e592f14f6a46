"""The Join card, the Tokens tab and the Configuration tab, through the HTML views."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from clusterpanel.models import AuditEvent
from nodes.models import Cluster, Node
from pki.models.tokens import BootstrapToken, CertificateKey, StaticToken
from pki.services import certificates as certificate_services
from tests.empty_state import action_link, empty_state

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_cluster_page_loads_the_join_card_lazily_without_revealing(
    web_client: Callable[[str], Any], cluster: Cluster
) -> None:
    certificate_services.ensure_cluster_cas(cluster)  # without a CA the card has nothing to load
    page = web_client("operator").get(f"/clusters/{cluster.pk}/")
    text = page.content.decode()
    assert page.status_code == 200
    assert 'id="join-card"' in text and f'hx-get="/clusters/{cluster.pk}/join/"' in text
    assert f'href="/clusters/{cluster.pk}/tokens/"' in text
    assert f'href="/clusters/{cluster.pk}/config/"' in text
    assert not AuditEvent.objects.filter(action="join_command.reveal").exists()
    viewer = web_client("viewer").get(f"/clusters/{cluster.pk}/").content.decode()
    assert "operators can see them" in viewer and 'hx-get="/clusters' not in viewer


def test_the_join_card_masks_the_token_until_show_which_is_the_audited_reveal(
    web_client: Callable[[str], Any], cluster: Cluster
) -> None:
    certificate_services.ensure_cluster_cas(cluster)
    client = web_client("admin")  # operators get the worker's only (test_key_downloads)
    empty = client.get(f"/clusters/{cluster.pk}/join/", **HTMX).content.decode()
    assert 'id="join-error"' in empty and "no valid bootstrap token" in empty
    card = client.post(f"/clusters/{cluster.pk}/join/new-token/", **HTMX).content.decode()
    token = BootstrapToken.objects.get()
    masked = f"{token.token_id}.{'*' * 16}"
    assert f"kubeadm join lb.example.internal:6443 --token {masked} \\\n" in card
    assert f"--control-plane --certificate-key {'*' * 64}" in card
    assert token.secret not in card
    assert 'data-copy="#join-worker"' in card and 'class="countdown"' in card
    assert "No certificate key yet" in card
    # Browsing the card again reveals and records nothing, and makes no certificate key.
    again = client.get(f"/clusters/{cluster.pk}/join/", **HTMX).content.decode()
    assert token.secret not in again and masked in again
    assert not AuditEvent.objects.filter(action="join_command.reveal").exists()
    assert AuditEvent.objects.filter(action="token.create").count() == 1
    assert not CertificateKey.objects.exists()

    # Show: one command in clear, one reveal event naming the token.
    shown = client.post(f"/clusters/{cluster.pk}/join/reveal/", {"role": "worker"}, **HTMX)
    text = shown.content.decode()
    assert shown.status_code == 200 and 'id="join-worker" data-revealed' in text
    assert f"--token {token.value} \\\n" in text and "<section" not in text
    reveal = AuditEvent.objects.get(action="join_command.reveal")
    assert reveal.details == {
        "role": "worker",
        "token_id": token.token_id,
        "certificate_key_id": None,
    }
    # The control-plane command makes the certificate key it carries (audited) and shows it.
    control = client.post(
        f"/clusters/{cluster.pk}/join/reveal/", {"role": "control-plane"}, **HTMX
    ).content.decode()
    key = CertificateKey.objects.get()
    assert f"--control-plane --certificate-key {key.key}" in control
    assert AuditEvent.objects.filter(action="certificate_key.create").count() == 1
    assert AuditEvent.objects.filter(action="join_command.reveal").count() == 2
    after = client.get(f"/clusters/{cluster.pk}/join/", **HTMX).content.decode()
    assert key.key not in after and "The certificate key expires in" in after
    bad = client.post(f"/clusters/{cluster.pk}/join/reveal/", {"role": "master"}, **HTMX)
    assert bad.status_code == 400

    # Without htmx the link opens a page holding the card, and Show a page with the command.
    page = client.get(f"/clusters/{cluster.pk}/join/")
    assert page.status_code == 200 and "<html" in page.content.decode()
    assert token.secret not in page.content.decode()
    full = client.post(f"/clusters/{cluster.pk}/join/reveal/", {"role": "worker"})
    assert "<html" in full.content.decode() and token.value in full.content.decode()
    assert web_client("viewer").get(f"/clusters/{cluster.pk}/join/").status_code == 403
    viewer_reveal = web_client("viewer").post(
        f"/clusters/{cluster.pk}/join/reveal/", {"role": "worker"}
    )
    assert viewer_reveal.status_code == 403


def test_a_reveal_of_a_token_revoked_meanwhile_shows_the_card_again(
    web_client: Callable[[str], Any], cluster: Cluster
) -> None:
    certificate_services.ensure_cluster_cas(cluster)
    client = web_client("operator")
    client.post(f"/clusters/{cluster.pk}/join/new-token/", **HTMX)
    BootstrapToken.objects.get().revoke()
    response = client.post(f"/clusters/{cluster.pk}/join/reveal/", {"role": "worker"}, **HTMX)
    assert response["HX-Retarget"] == "#join-card"
    assert 'id="join-error"' in response.content.decode()
    assert not AuditEvent.objects.filter(action="join_command.reveal").exists()


def test_the_tokens_tab_creates_shows_once_reveals_and_revokes(
    web_client: Callable[[str], Any], cluster: Cluster
) -> None:
    client = web_client("operator")
    form = {"ttl": "0", "usages": ["signing", "authentication"], "groups": "", "description": "x"}
    created = client.post(f"/clusters/{cluster.pk}/tokens/", form)
    assert created.status_code == 200
    token = BootstrapToken.objects.get()
    text = created.content.decode()
    assert token.value in text and "never expires" in text
    listing = client.get(f"/clusters/{cluster.pk}/tokens/").content.decode()
    assert token.token_id in listing and token.secret not in listing
    revealed = client.post(f"/tokens/{token.pk}/reveal/", **HTMX).content.decode()
    assert token.value in revealed and f"bootstrap-token-{token.token_id}" in revealed
    assert "kubeadm token create" in revealed
    assert AuditEvent.objects.filter(action="token.reveal").count() == 1
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 302
    token.refresh_from_db()
    assert token.status() == "revoked"
    revoked = client.get(f"/clusters/{cluster.pk}/tokens/?status=revoked").content.decode()
    assert token.token_id in revoked
    assert (
        token.token_id
        not in client.get(f"/clusters/{cluster.pk}/tokens/?status=active").content.decode()
    )


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"ttl": "-1h"}, "ttl"),
        ({"ttl": "24h", "groups": "system:masters"}, "groups"),
        ({"ttl": "24h", "token": "abc.def"}, "token"),
        ({"ttl": "24h", "usages": ["encryption"]}, "usages"),
    ],
)
def test_a_bad_token_form_is_re_shown_with_the_error_and_nothing_saved(
    web_client: Callable[[str], Any], cluster: Cluster, form: dict[str, Any], field: str
) -> None:
    response = web_client("operator").post(f"/clusters/{cluster.pk}/tokens/", form)
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.content.decode()
    assert not BootstrapToken.objects.exists()


def test_the_configuration_tab_edits_settings_and_previews_node_files(
    web_client: Callable[[str], Any], cluster: Cluster, nodes: dict[str, Node]
) -> None:
    client = web_client("operator")
    page = client.get(f"/clusters/{cluster.pk}/config/")
    assert page.status_code == 200
    assert "kind: ClusterConfiguration" in page.content.decode()
    policy = client.get(f"/clusters/{cluster.pk}/config/audit-policy.yaml").content.decode()
    # Component arguments and control-plane files (the certificate key) are the admin's.
    admin = web_client("admin")
    bad = admin.post(
        f"/clusters/{cluster.pk}/config/settings/",
        {"apiserver_extra_args": "--v=4", "audit_enabled": "on", "audit_policy": policy},
    )
    assert bad.status_code == 400
    assert 'id="apiserver_extra_args-error"' in bad.content.decode()
    good = admin.post(
        f"/clusters/{cluster.pk}/config/settings/",
        {"apiserver_extra_args": "v=4\nprofiling=false", "audit_policy": policy},
    )
    assert good.status_code == 302
    # The operator may not open a control-plane file at all: it would carry the key.
    assert client.get(f"/clusters/{cluster.pk}/config/nodes/{nodes['cp-1'].pk}/").status_code == 403
    cp_1 = f"/clusters/{cluster.pk}/config/nodes/{nodes['cp-1'].pk}/"
    # No token yet: the page says so and offers one; opening it made nothing.
    missing = admin.get(cp_1)
    assert missing.status_code == 409 and "Create a new token and render" in missing.text
    assert not BootstrapToken.objects.exists()
    assert admin.post(cp_1, {"new_token": "1"})["Location"] == cp_1
    token = BootstrapToken.objects.get()
    preview = admin.get(cp_1)
    text = preview.content.decode()
    assert "kind: InitConfiguration" in text and "name: profiling" in text
    assert "audit-policy-file" not in text  # audit was switched off by the checkbox
    assert f"token: {token.token_id}.{'*' * 16}" in text and token.secret not in text
    # A control-plane file needs a certificate key: no download link until there is one.
    assert "Make a certificate key" in text and "kubeadm-config-download" not in text
    refused = admin.get(f"{cp_1}?download=1")
    assert refused.status_code == 409 and "Make a certificate key" in refused.text
    assert not AuditEvent.objects.filter(action="kubeadm_config.download").exists()
    made = admin.post(f"/clusters/{cluster.pk}/config/certificate-key/", {"node": nodes["cp-1"].pk})
    assert made["Location"] == cp_1
    key = CertificateKey.objects.get()
    preview = admin.get(cp_1).content.decode()
    assert key.key not in preview and f"certificateKey: &quot;{'*' * 64}&quot;" in preview
    assert "kubeadm-config-download" in preview
    download = admin.get(f"{cp_1}?download=1")
    assert download["Content-Disposition"] == 'attachment; filename="kubeadm-cp-1.yaml"'
    assert token.value in download.content.decode() and key.key in download.content.decode()
    assert AuditEvent.objects.filter(action="kubeadm_config.download").count() == 1
    worker = client.get(f"/clusters/{cluster.pk}/config/nodes/{nodes['w-1'].pk}/")
    assert worker.status_code in {200, 409}  # 409 until the cluster has a CA
    certificate_services.ensure_cluster_cas(cluster)
    worker = client.get(f"/clusters/{cluster.pk}/config/nodes/{nodes['w-1'].pk}/")
    assert worker.status_code == 200 and "kind: JoinConfiguration" in worker.content.decode()
    assert (
        web_client("viewer")
        .get(f"/clusters/{cluster.pk}/config/nodes/{nodes['w-1'].pk}/")
        .status_code
        == 403
    )
    lb = client.get(f"/clusters/{cluster.pk}/config/loadbalancer/haproxy/")
    assert lb.status_code == 200 and b"10.0.0.12:6443" in lb.content


def test_a_static_token_import_reports_bad_lines_on_the_page(
    web_client: Callable[[str], Any], cluster: Cluster
) -> None:
    client = web_client("operator")
    response = client.post(
        f"/clusters/{cluster.pk}/config/static-tokens/import/",
        {"csv": "tok-1,alice,1\ntok-2,bob\n"},
    )
    assert response.status_code == 400
    assert "line 2: expected at least 3 columns" in response.content.decode()
    assert not StaticToken.objects.exists()
    ok = client.post(
        f"/clusters/{cluster.pk}/config/static-tokens/import/",
        {"csv": 'tok-1,alice,1,"a,b"\n'},
    )
    assert ok.status_code == 302
    page = client.get(f"/clusters/{cluster.pk}/config/").content.decode()
    assert "alice" in page and "tok-1" not in page
    csv = client.get(f"/clusters/{cluster.pk}/config/tokens.csv")
    assert csv.content.decode() == 'tok-1,alice,1,"a,b"\n'


def test_the_admin_filters_by_status_hides_secrets_and_lists_reveals(
    web_client: Callable[[str], Any], api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    api = api_client("operator")
    active = api.post("/api/v1/tokens/", {"cluster": cluster.pk}, format="json").json()
    revoked = api.post("/api/v1/tokens/", {"cluster": cluster.pk}, format="json").json()
    api.post(f"/api/v1/tokens/{revoked['id']}/revoke/")
    api.post(f"/api/v1/tokens/{active['id']}/reveal/")
    admin = web_client("admin")
    page = admin.get("/admin/pki/bootstraptoken/?status=active").content.decode()
    assert active["token_id"] in page and revoked["token_id"] not in page
    assert active["token"].split(".")[1] not in page
    detail = admin.get(f"/admin/pki/bootstraptoken/{active['id']}/change/").content.decode()
    assert "token.reveal by operator" in detail and "token.create by operator" in detail
    assert active["token"].split(".")[1] not in detail


def test_an_empty_tokens_tab_offers_the_form_to_operators_and_a_filtered_one_the_way_back(
    web_client: Callable[[str], Any], cluster: Cluster
) -> None:
    url = f"/clusters/{cluster.pk}/tokens/"
    operator = web_client("operator").get(url).content.decode()
    state = empty_state(operator, "tokens-table")
    assert state.startswith("No tokens yet.") and action_link(state) == "#new-token"
    assert 'id="new-token"' in operator  # the link's target is on the page
    viewer = web_client("viewer").get(url).content.decode()
    assert empty_state(viewer, "tokens-table") == "No tokens yet. An operator can create one."
    assert 'id="new-token"' not in viewer
    filtered = empty_state(web_client("viewer").get(url, {"status": "revoked"}).content.decode())
    assert filtered.startswith("No tokens match this filter.")
    assert action_link(filtered) == f"{url}#tokens"


def test_an_empty_static_token_table_says_who_adds_entries(
    web_client: Callable[[str], Any], cluster: Cluster
) -> None:
    url = f"/clusters/{cluster.pk}/config/"
    operator = empty_state(web_client("operator").get(url).content.decode(), "static-tokens-table")
    assert operator.startswith("No static tokens.") and action_link(operator) == "#static-add"
    viewer = empty_state(web_client("viewer").get(url).content.decode(), "static-tokens-table")
    assert viewer == "No static tokens. An operator can add them."
