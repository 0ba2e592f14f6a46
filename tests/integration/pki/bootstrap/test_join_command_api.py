"""Join commands through the API, compared byte for byte with kubeadm's format.

The discovery hash is computed independently by the openssl pipeline of docs/kubeadm.md §4, for
an RSA and an ECDSA cluster CA.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from cryptography.hazmat.primitives import serialization

from clusterpanel.models import AuditEvent
from nodes.models import Cluster
from pki.models.tokens import BootstrapToken, CertificateKey
from pki.services import certificates as certificate_services

pytestmark = pytest.mark.django_db
URL = "/api/v1/clusters/{}/join-command/"


def openssl_hash(certificate: Any, tmp_path: Path) -> str:
    path = tmp_path / "ca.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pubkey = subprocess.run(
        ["openssl", "x509", "-pubkey", "-noout", "-in", str(path)],
        capture_output=True,
        check=True,
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=pubkey,
        capture_output=True,
        check=True,
    ).stdout
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hex"], input=der, capture_output=True, check=True
    ).stdout.decode()
    return "sha256:" + digest.strip().split(" ")[-1]


def new_token(api: Any, cluster: Cluster, **fields: Any) -> str:
    response = api.post("/api/v1/tokens/", {"cluster": cluster.pk, **fields}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["token"]


@pytest.mark.parametrize("which", ["cluster", "ecdsa_cluster"])
def test_the_worker_command_is_kubeadms_and_its_hash_is_openssls(
    api_client: Callable[[str], Any], request: pytest.FixtureRequest, which: str, tmp_path: Path
) -> None:
    target: Cluster = request.getfixturevalue(which)
    certificate_services.ensure_cluster_cas(target)
    certificates = certificate_services.ca_certificates(target)
    assert len(certificates) == 1
    expected_hash = openssl_hash(certificates[0], tmp_path)
    api = api_client("operator")
    token = new_token(api, target)

    response = api.get(URL.format(target.pk), {"role": "worker"})
    assert response.status_code == 200, response.json()
    body = response.json()
    endpoint = {"prod": "lb.example.internal:6443", "edge": "[fd00:10::1]:6443"}[target.name]
    assert body["command"] == (
        f"kubeadm join {endpoint} --token {token} \\\n"
        f"\t--discovery-token-ca-cert-hash {expected_hash} "
    )
    assert body["one_line"] == (
        f"kubeadm join {endpoint} --token {token} --discovery-token-ca-cert-hash {expected_hash} "
    )
    assert body["token_id"] == token.split(".")[0]
    assert body["certificate_key"] is None and body["certificate_key_expires_at"] is None


def test_the_control_plane_command_carries_a_two_hour_certificate_key(
    api_client: Callable[[str], Any], cluster: Cluster, tmp_path: Path
) -> None:
    certificate_services.ensure_cluster_cas(cluster)
    expected_hash = openssl_hash(certificate_services.ca_certificates(cluster)[0], tmp_path)
    api = api_client("admin")  # the certificate key is an admin's to see
    token = new_token(api, cluster)
    start = datetime.now(UTC)
    # Reading never makes a certificate key: the 409 names the way to make one.
    refused = api.get(URL.format(cluster.pk), {"role": "control-plane"})
    assert refused.status_code == 409
    assert f"POST /api/v1/clusters/{cluster.pk}/certificate-key/" in refused.json()["detail"]
    assert not CertificateKey.objects.exists()
    made = api.post(f"/api/v1/clusters/{cluster.pk}/certificate-key/")
    assert made.status_code == 201
    assert api.post(f"/api/v1/clusters/{cluster.pk}/certificate-key/").json() == made.json()
    body = api.get(URL.format(cluster.pk), {"role": "control-plane"}).json()
    key = body["certificate_key"]
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert body["command"] == (
        f"kubeadm join lb.example.internal:6443 --token {token} \\\n"
        f"\t--discovery-token-ca-cert-hash {expected_hash} \\\n"
        f"\t--control-plane --certificate-key {key}"
    )
    expires = datetime.fromisoformat(body["certificate_key_expires_at"])
    assert timedelta(hours=1, minutes=59) < expires - start <= timedelta(hours=2, seconds=5)
    # The same key is handed out while it has an hour left, and it is stored encrypted.
    again = api.get(URL.format(cluster.pk), {"role": "control-plane"}).json()
    assert again["certificate_key"] == key
    assert CertificateKey.objects.get().key == key
    assert AuditEvent.objects.filter(action="certificate_key.create").count() == 1


def test_revoked_expired_and_nearly_expired_tokens_never_appear(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    certificate_services.ensure_cluster_cas(cluster)
    api = api_client("operator")
    start = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        revoked = new_token(api, cluster, ttl="48h")
        token_pk = BootstrapToken.objects.get(token_id=revoked[:6]).pk
        api.post(f"/api/v1/tokens/{token_pk}/revoke/")
        short = new_token(api, cluster, ttl="3h")
        no_usage = new_token(api, cluster, ttl="48h", usages=["signing"], groups=[])
        response = api.get(URL.format(cluster.pk))
        assert response.json()["token_id"] == short[:6]
    with time_machine.travel(start + timedelta(hours=2, minutes=1), tick=False):
        # The 3h token has 59 minutes left: not enough for a command copied now.
        response = api.get(URL.format(cluster.pk))
        assert response.status_code == 409
        assert "no valid bootstrap token" in response.json()["detail"]
        assert "new_token=1" in response.json()["detail"]  # the API's way out
        text = response.content.decode()
        for value in (revoked, short, no_usage):
            assert value not in text
        fresh = api.get(URL.format(cluster.pk), {"new_token": "1"})
        assert fresh.status_code == 200
        fresh_id = fresh.json()["token_id"]
        assert fresh_id not in {revoked[:6], short[:6], no_usage[:6]}
        assert BootstrapToken.objects.get(token_id=fresh_id).status() == "active"


def test_a_cluster_without_a_ca_says_so(api_client: Callable[[str], Any], cluster: Cluster) -> None:
    new_token(api_client("operator"), cluster)
    response = api_client("operator").get(URL.format(cluster.pk))
    assert response.status_code == 409
    assert "no cluster CA" in response.json()["detail"]


def test_a_bad_role_is_a_400_naming_role(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    certificate_services.ensure_cluster_cas(cluster)
    response = api_client("operator").get(URL.format(cluster.pk), {"role": "master"})
    assert response.status_code == 400
    assert "role" in response.json()["errors"]


def test_a_join_command_is_an_audited_operator_action(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    certificate_services.ensure_cluster_cas(cluster)
    token = new_token(api_client("operator"), cluster)
    assert api_client("viewer").get(URL.format(cluster.pk)).status_code == 403
    assert api_client("operator").get(URL.format(cluster.pk)).status_code == 200
    event = AuditEvent.objects.get(action="join_command.reveal")
    assert event.actor_name == "operator" and event.cluster_name == "prod"
    assert event.details["token_id"] == token[:6]
    assert token not in json.dumps(event.details) and token[7:] not in event.object_label
