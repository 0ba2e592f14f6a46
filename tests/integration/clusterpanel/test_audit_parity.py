"""A page and the API record the same audit event for the same action.

Each audited action runs twice on identical data, once through the page and once through the
API, each inside a savepoint that is rolled back afterwards. The events they write must agree in
action, object type and details; only the door (``via``) differs, and values that are random by
nature (token ids, key ids, serials, fingerprints) are compared by presence only.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from clusterpanel.models import AuditEvent
from nodes.models import (
    CLUSTER_SECURITY_SETTINGS,
    CLUSTER_SETTINGS,
    Cluster,
    Node,
    host_key_fingerprint,
)
from pki.models import Certificate
from pki.services import bootstrap as bootstrap_services
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node

TOKEN = "abcdef.0123456789abcdef"
FINGERPRINT = "SHA256:" + "A" * 43
VOLATILE = {"token_id", "certificate_key_id", "serial", "authorities", "finding"}
# An Ed25519 public key blob (the key itself matters not: only its fingerprint is compared).
PENDING_KEY = "AAAAC3NzaC1lZDI1NTE5AAAAILmpzIxqNVUITri3uGshuMOlsapTTq6Zlg28MYhRwMXy"
CA_CSR = json.dumps(
    {"CN": "front-proxy-ca", "key": {"algo": "ecdsa", "size": 256}, "names": [{"O": "lab"}]}
)


@dataclass
class Ctx:
    """What a scenario's set-up made: the cluster, its first node and any extra ids."""

    cluster: Cluster
    node: Node
    ids: dict[str, int]


def _setup(extra: Callable[[Ctx], None] | None = None) -> Ctx:
    # ECDSA keys: scenarios issue trees twice each (page and API), and the events recorded do
    # not depend on the key algorithm; RSA-2048 would spend seconds per tree on primes.
    cluster = make_cluster("parity", control_plane_endpoint="10.0.0.10", key_algorithm="ECDSA-P256")
    node = make_node(cluster)  # cp-1
    ctx = Ctx(cluster, node, {})
    if extra is not None:
        extra(ctx)
    return ctx


def _with_pki(ctx: Ctx) -> None:
    certificate_services.issue_missing(ctx.cluster, actor=SETUP)


def _with_token(ctx: Ctx) -> None:
    _with_pki(ctx)
    request = bootstrap_services.validate_token_request(token=TOKEN)
    ctx.ids["token"] = bootstrap_services.create_token(ctx.cluster, request, actor=SETUP).pk
    # Downloads and reveals never make a certificate key: control-plane ones need one.
    bootstrap_services.ensure_certificate_key(ctx.cluster, actor=SETUP)


def _with_static_token(ctx: Ctx) -> None:
    row = bootstrap_services.add_static_token(
        ctx.cluster, token="s3cret-value", user="alice", uid="1", actor=SETUP
    )
    ctx.ids["static"] = row.pk


def _with_pending_host_key(ctx: Ctx) -> None:
    ctx.node.pending_host_key_type = "ssh-ed25519"
    ctx.node.pending_host_key = PENDING_KEY
    ctx.node.pending_host_key_fingerprint = host_key_fingerprint(PENDING_KEY)
    ctx.node.save()


def _with_finding(ctx: Ctx) -> None:
    from nodes.health.findings import Finding

    finding = Finding.objects.create(
        cluster=ctx.cluster, node=ctx.node, kind="expiring", severity="warning", path="/p"
    )
    ctx.ids["finding"] = finding.pk


def _silence_until() -> str:
    """Noon two days ahead: the same for both doors, whole minutes (the page's precision)."""
    from django.utils import timezone

    until = timezone.now() + dt.timedelta(days=2)
    return until.replace(hour=12, minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")


def _with_stale_apiserver(ctx: Ctx) -> None:
    _with_pki(ctx)
    ctx.cluster.extra_sans = ["api.example.internal"]
    ctx.cluster.save()


CA_CONFIG = json.dumps(
    {
        "signing": {
            "default": {"expiry": "175200h"},
            "profiles": {
                "server": {"usages": ["signing", "key encipherment", "server auth"],
                           "expiry": "175200h"},
                "client": {"usages": ["signing", "key encipherment", "client auth"],
                           "expiry": "175200h"},
            },
        }
    }
)  # fmt: skip


def _binary(ctx: Ctx) -> None:
    ctx.cluster.flavor = "binary"
    ctx.cluster.save()


def _binary_form() -> dict[str, Any]:
    from pki.models import ClusterBinarySettings
    from pki.services import binary_settings

    defaults = ClusterBinarySettings()
    data = {name: getattr(defaults, name) for name in binary_settings.FIELDS}
    data["signing_profiles"] = json.dumps(defaults.signing_profiles)
    return data


def _cluster_form(cluster: Cluster, **changes: Any) -> dict[str, Any]:
    data = {
        name: getattr(cluster, name) for name in [*CLUSTER_SETTINGS, *CLUSTER_SECURITY_SETTINGS]
    }
    if not data["trust_on_first_use"]:
        del data["trust_on_first_use"]  # an unticked box is not sent
    data["extra_sans"] = "\n".join(cluster.extra_sans)
    data.update(changes)
    return data


def _node_form(node: Node, **changes: Any) -> dict[str, Any]:
    data = {
        "name": node.name,
        "address": node.address,
        "ssh_port": node.ssh_port,
        "ssh_user": node.ssh_user,
        "role": node.role,
        "labels": "",
        "taints": "",
        "host_key_fingerprint": node.host_key_fingerprint,
    }
    data.update(changes)
    return data


def _settings_form(**changes: Any) -> dict[str, Any]:
    from pki.domain.audit_policy import DEFAULT_AUDIT_POLICY

    data = {
        "apiserver_extra_args": "",
        "controller_manager_extra_args": "",
        "scheduler_extra_args": "",
        "etcd_extra_args": "",
        "kubelet_extra_args": "",
        "audit_enabled": "on",
        "audit_policy": DEFAULT_AUDIT_POLICY,
    }
    data.update(changes)
    return data


def _leaf(ctx: Ctx) -> int:
    return Certificate.objects.filter(cluster=ctx.cluster, name="apiserver").get().pk


RENEWAL = {
    "days_before": 60,
    "weekdays": ["sat", "sun"],
    "start_hour": 22,
    "end_hour": 4,
    "time_zone": "Europe/Berlin",
}
NEW_CLUSTER = {"name": "parity-new", "control_plane_endpoint": "10.9.0.10"}
NEW_NODE = {"name": "w-9", "address": "10.0.0.29", "role": "worker", "ssh_password": "pw-1"}

# name: (set-up, page request, API request); a request is (method, url, data), or a list of them.
Call = tuple[str, str, dict[str, Any]]
Request = Callable[[Ctx], Call | list[Call]]
SCENARIOS: dict[str, tuple[Callable[[Ctx], None] | None, Request, Request]] = {
    "cluster.create": (
        None,
        lambda c: ("post", "/clusters/new/", _cluster_form(Cluster(), **NEW_CLUSTER)),
        lambda c: ("post", "/api/v1/clusters/", NEW_CLUSTER),
    ),
    "cluster.update": (
        None,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/edit/",
            _cluster_form(c.cluster, description="rack 4"),
        ),
        lambda c: ("patch", f"/api/v1/clusters/{c.cluster.pk}/", {"description": "rack 4"}),
    ),
    "cluster.delete": (
        None,
        lambda c: ("post", f"/clusters/{c.cluster.pk}/delete/", {"confirm_name": "parity"}),
        lambda c: ("delete", f"/api/v1/clusters/{c.cluster.pk}/", {}),
    ),
    "node.host_key_pin": (
        None,
        lambda c: (
            "post",
            f"/nodes/{c.node.pk}/edit/",
            _node_form(c.node, host_key_fingerprint=FINGERPRINT),
        ),
        lambda c: (
            "patch",
            f"/api/v1/nodes/{c.node.pk}/",
            {"host_key_fingerprint": FINGERPRINT},
        ),
    ),
    "node.host_key.approve": (
        _with_pending_host_key,
        lambda c: (
            "post",
            f"/nodes/{c.node.pk}/host-key/approve/",
            {"fingerprint": host_key_fingerprint(PENDING_KEY)},
        ),
        lambda c: (
            "post",
            f"/api/v1/nodes/{c.node.pk}/host-key/approve/",
            {"fingerprint": host_key_fingerprint(PENDING_KEY)},
        ),
    ),
    "finding.silence": (
        _with_finding,
        lambda c: (
            "post",
            f"/findings/{c.ids['finding']}/silence/",
            {f"f{c.ids['finding']}-until": _silence_until()},
        ),
        lambda c: (
            "post",
            f"/api/v1/findings/{c.ids['finding']}/silence/",
            {"until": _silence_until() + "Z"},
        ),
    ),
    "cluster.bastion_credential_change": (
        None,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/edit/",
            _cluster_form(c.cluster, bastion_address="10.0.0.5", bastion_password="jump-pw"),
        ),
        lambda c: (
            "patch",
            f"/api/v1/clusters/{c.cluster.pk}/",
            {"bastion_address": "10.0.0.5", "bastion_password": "jump-pw"},
        ),
    ),
    "node.create": (
        None,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/nodes/new/",
            {**_node_form(Node(ssh_port=22, ssh_user="root"), **NEW_NODE)},
        ),
        lambda c: ("post", "/api/v1/nodes/", {"cluster": c.cluster.pk, **NEW_NODE}),
    ),
    "node.update": (
        None,
        lambda c: ("post", f"/nodes/{c.node.pk}/edit/", _node_form(c.node, ssh_port=2222)),
        lambda c: ("patch", f"/api/v1/nodes/{c.node.pk}/", {"ssh_port": 2222}),
    ),
    "node.delete": (
        None,
        lambda c: ("post", f"/nodes/{c.node.pk}/delete/", {}),
        lambda c: ("delete", f"/api/v1/nodes/{c.node.pk}/", {}),
    ),
    "token.create": (
        _with_pki,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/tokens/",
            {
                "ttl": "2h",
                "description": "rack 4",
                "usages": ["signing", "authentication"],
                "groups": "system:bootstrappers:kubeadm:default-node-token",
                "token": TOKEN,
            },
        ),
        lambda c: (
            "post",
            "/api/v1/tokens/",
            {
                "cluster": c.cluster.pk,
                "ttl": "2h",
                "description": "rack 4",
                "usages": ["signing", "authentication"],
                "groups": ["system:bootstrappers:kubeadm:default-node-token"],
                "token": TOKEN,
            },
        ),
    ),
    "token.reveal": (
        _with_token,
        lambda c: ("post", f"/tokens/{c.ids['token']}/reveal/", {}),
        lambda c: ("post", f"/api/v1/tokens/{c.ids['token']}/reveal/", {}),
    ),
    "token.revoke": (
        _with_token,
        lambda c: ("post", f"/tokens/{c.ids['token']}/revoke/", {}),
        lambda c: ("post", f"/api/v1/tokens/{c.ids['token']}/revoke/", {}),
    ),
    "join_command.reveal": (
        _with_token,
        # The join card shows both commands masked; Show (a POST) reveals one.
        lambda c: [
            ("post", f"/clusters/{c.cluster.pk}/join/reveal/", {"role": role})
            for role in ("worker", "control-plane")
        ],
        # The join card shows both commands; the API gives one per request.
        lambda c: [
            ("get", f"/api/v1/clusters/{c.cluster.pk}/join-command/?role={role}", {})
            for role in ("worker", "control-plane")
        ],
    ),
    "kubeadm_config.download": (
        _with_token,
        lambda c: ("get", f"/clusters/{c.cluster.pk}/config/nodes/{c.node.pk}/?download=1", {}),
        lambda c: ("get", f"/api/v1/clusters/{c.cluster.pk}/kubeadm-config/?node={c.node.pk}", {}),
    ),
    "certificate_key.create": (
        _with_pki,
        lambda c: ("post", f"/clusters/{c.cluster.pk}/config/certificate-key/", {}),
        lambda c: ("post", f"/api/v1/clusters/{c.cluster.pk}/certificate-key/", {}),
    ),
    "kubeadm_certs.download": (
        _with_token,
        lambda c: ("get", f"/clusters/{c.cluster.pk}/config/kubeadm-certs.yaml", {}),
        lambda c: ("get", f"/api/v1/clusters/{c.cluster.pk}/kubeadm-certs/", {}),
    ),
    "kubeadm_settings.update": (
        None,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/config/settings/",
            _settings_form(kubelet_extra_args="max-pods=200"),
        ),
        lambda c: (
            "patch",
            f"/api/v1/clusters/{c.cluster.pk}/kubeadm-settings/",
            {"kubelet_extra_args": {"max-pods": "200"}},
        ),
    ),
    "binary_settings.update": (
        _binary,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/binary-settings/",
            {**_binary_form(), "ca_config": CA_CONFIG},
        ),
        lambda c: (
            "patch",
            f"/api/v1/clusters/{c.cluster.pk}/binary-settings/",
            {"ca_config": CA_CONFIG, "service_user": "kube"},
        ),
    ),
    "static_token.create": (
        None,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/config/static-tokens/add/",
            {"token": "s3cret-value", "user": "alice", "uid": "1", "groups": "dev,ops"},
        ),
        lambda c: (
            "post",
            "/api/v1/static-tokens/",
            {
                "cluster": c.cluster.pk,
                "token": "s3cret-value",
                "user": "alice",
                "uid": "1",
                "groups": ["dev", "ops"],
            },
        ),
    ),
    "static_token.import": (
        _with_static_token,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/config/static-tokens/import/",
            {"csv": "t0ken-one,bob,2\n", "replace": "on"},
        ),
        lambda c: (
            "post",
            f"/api/v1/clusters/{c.cluster.pk}/static-tokens/import/",
            {"csv": "t0ken-one,bob,2\n", "replace": True},
        ),
    ),
    "static_token.delete": (
        _with_static_token,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/config/static-tokens/{c.ids['static']}/delete/",
            {},
        ),
        lambda c: ("delete", f"/api/v1/static-tokens/{c.ids['static']}/", {}),
    ),
    "static_token.download": (
        _with_static_token,
        lambda c: ("get", f"/clusters/{c.cluster.pk}/config/tokens.csv", {}),
        lambda c: ("get", f"/api/v1/clusters/{c.cluster.pk}/tokens.csv", {}),
    ),
    "pki.issue": (
        None,
        lambda c: ("post", f"/clusters/{c.cluster.pk}/certificates/issue/", {}),
        lambda c: ("post", f"/api/v1/clusters/{c.cluster.pk}/certificates/issue/", {}),
    ),
    "pki.reissue": (
        _with_stale_apiserver,
        lambda c: ("post", f"/clusters/{c.cluster.pk}/certificates/reissue/", {}),
        lambda c: ("post", f"/api/v1/clusters/{c.cluster.pk}/certificates/reissue/", {}),
    ),
    "pki.renew": (
        _with_pki,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/certificates/renew/",
            {"certificates": [_leaf(c)]},
        ),
        lambda c: (
            "post",
            f"/api/v1/clusters/{c.cluster.pk}/certificates/renew/",
            {"certificates": [_leaf(c)], "reuse_key": False},
        ),
    ),
    "pki.kubeconfig.issue": (
        _with_pki,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/certificates/kubeconfig/",
            {"username": "alice", "groups": "dev", "validity": 30},
        ),
        lambda c: (
            "post",
            f"/api/v1/clusters/{c.cluster.pk}/kubeconfigs/",
            {"username": "alice", "groups": ["dev"], "validity": 30},
        ),
    ),
    "alert_settings.update": (
        None,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/alerts/",
            {
                "webhook_url": "https://hooks.example.com/a",
                "webhook_secret": "hook-secret",
                "email_recipients": "ops@example.com\ndev@example.com",
            },
        ),
        lambda c: (
            "put",
            f"/api/v1/clusters/{c.cluster.pk}/alert-settings/",
            {
                "webhook_url": "https://hooks.example.com/a",
                "webhook_secret": "hook-secret",
                "email_recipients": ["ops@example.com", "dev@example.com"],
            },
        ),
    ),
    "renewal_policy.update": (
        None,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/alerts/renewal/",
            {**RENEWAL, "enabled": "on"},
        ),
        lambda c: (
            "put",
            f"/api/v1/clusters/{c.cluster.pk}/renewal-policy/",
            {**RENEWAL, "enabled": True},
        ),
    ),
    "pki.import.cfssl-csr": (
        None,
        lambda c: (
            "post",
            f"/clusters/{c.cluster.pk}/authorities/import/",
            {"form": "cfssl-csr", "cfssl-csr-name": "front-proxy-ca", "cfssl-csr-ca_csr": CA_CSR},
        ),
        lambda c: (
            "post",
            f"/api/v1/clusters/{c.cluster.pk}/import/cfssl-csr/",
            {"name": "front-proxy-ca", "ca_csr": CA_CSR},
        ),
    ),
}


def _normalized(event: AuditEvent) -> tuple[str, str, str, dict[str, Any]]:
    details = {
        key: ("<present>" if key in VOLATILE and value is not None else value)
        for key, value in event.details.items()
    }
    return (event.action, event.object_type, event.cluster_name, details)


def _run(
    scenario: str, client: Client | APIClient, which: int
) -> tuple[list[tuple[str, str, str, dict[str, Any]]], set[str], list[int]]:
    """The events one door writes for the scenario, then everything rolled back."""
    setup, page, api = SCENARIOS[scenario]
    savepoint = transaction.savepoint()
    try:
        ctx = _setup(setup)
        mark = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        calls = (page, api)[which](ctx)
        statuses = []
        for method, url, data in calls if isinstance(calls, list) else [calls]:
            if which == 0:
                response = getattr(client, method)(url, data, HTTP_HX_REQUEST="true")
            else:
                response = getattr(client, method)(url, data, format="json")
            statuses.append(response.status_code)
        events = list(AuditEvent.objects.filter(pk__gt=mark).order_by("pk"))
        return [_normalized(e) for e in events], {e.via for e in events}, statuses
    finally:
        transaction.savepoint_rollback(savepoint)


@pytest.mark.django_db
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_page_and_the_api_record_the_same_event(
    scenario: str, personas: dict[str, User]
) -> None:
    web = Client()
    web.force_login(personas["admin"])
    api = APIClient()
    api.force_authenticate(personas["admin"])
    page_events, page_via, page_status = _run(scenario, web, 0)
    api_events, api_via, api_status = _run(scenario, api, 1)
    assert max(page_status + api_status) < 400, (page_status, api_status)
    assert scenario in {action for action, *_ in page_events}, page_events
    assert page_events == api_events
    assert (page_via, api_via) == ({"web"}, {"api"})


def test_every_audited_action_of_pages_and_api_is_compared() -> None:
    """Every action the services record has a scenario here, or a reason it has none."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    source = "".join(
        p.read_text() for d in ("pki/services", "nodes") for p in (root / d).rglob("*.py")
    )
    recorded = set(re.findall(r'"((?:[a-z_]+\.)+[a-z_-]+)",\s*actor', source))
    recorded |= set(re.findall(r'audit\.record\(\s*"([a-z_.-]+)"', source))
    not_compared = {
        # Only the API offers these.
        "pki.bundle.download",
        "pki.cfssl.sign",
        # Need uploaded CA files; their event comes from the same helper as pki.import.cfssl-csr.
        "pki.import.kubeadm",
        "pki.import.cfssl",
        # Needs a certificate directory and unit files; the page and the API call the same
        # service (tests/integration/pki/certificates/test_binary_import.py checks both doors).
        "pki.import.binary",
        # Written together with node.create in its scenario.
        "node.credential_change",
        # Reach a host (compared in tests/integration/nodes/test_host_keys.py) or, for the
        # bastion, only the API offers them.
        "node.host_key.scan",
        "cluster.bastion_host_key.scan",
        "cluster.bastion_host_key.approve",
        # Written by jobs only, which have no page or API door.
        "node.host_key.changed",
        "node.host_key.trust_on_first_use",
        "etcd.snapshot.create",
        "etcd.snapshot.prune",
        "etcd.snapshot.restore",
        "node.remove",
        "cluster.upgrade",
        # Written by the health round only (tests/integration/nodes/test_health_identity.py).
        "pki.health_identity.issue",
        # Only the API offers it (tests/integration/nodes/test_etcd_snapshots.py).
        "etcd.snapshot.download",
        # Only the Configuration tab offers it (tests/integration/pki/test_binary_files.py).
        "pki.binary_file.download",
        # Only the Alerts tab offers it (tests/integration/nodes/test_alerts.py).
        "alert.test",
        # Only the Health tab offers it ("Check now"; tests/integration/nodes/test_health_pages.py).
        "health.check_now",
        # Written by beat's renewal task only (tests/integration/nodes/test_renewal_policy.py).
        "renewal_policy.run",
    }
    assert recorded - not_compared - set(SCENARIOS) == set()
