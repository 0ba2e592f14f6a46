"""Every free-text and list field of the panel's models has a limit, and the API and the forms
enforce it naming the field; every number has bounds; one rule per kind of value.

The field-wide test walks the models: a new text or list field fails it until it is either
reachable with a limit (``REACHABLE``) or named as set by the panel itself (``SET_BY_THE_PANEL``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.core.validators import MaxLengthValidator
from django.db import models
from django.test import Client
from rest_framework.test import APIClient

from clusterpanel.validators import ListLimit
from nodes.models import Cluster
from pki.domain import binary_rules

TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)

# Written by the panel, never typed: parsed certificates, generated secrets, job results, audit.
SET_BY_THE_PANEL = {
    "nodes.Node": {
        "status", "facts", "host_key_type", "host_key", "pending_host_key_type", "pending_host_key",
        "pending_host_key_fingerprint", "presented_host_key_fingerprint", "kubelet_version",
    },
    "nodes.Cluster": {
        "bastion_host_key_type", "bastion_host_key", "bastion_pending_host_key_type",
        "bastion_pending_host_key", "bastion_pending_host_key_fingerprint",
    },
    "pki.BootstrapToken": {"token_id", "secret"},  # from a token matching kubeadm's pattern
    "pki.CertificateKey": {"key"},
    "pki.Certificate": {
        "certificate_pem", "common_name", "serial", "fingerprint_sha256", "spki_sha256",
        "node_name", "kind", "name", "organizations", "dns_names", "ip_addresses", "usages",
        "issuer", "status", "private_key_pem",
    },
    "pki.CertificateAuthority": {
        "certificate_pem", "common_name", "serial", "fingerprint_sha256", "spki_sha256", "name",
        "source", "status", "private_key_pem",
    },
    "pki.ServiceAccountKey": {"private_key_pem", "public_key_pem", "status"},
    "clusterpanel.AuditEvent": {
        "actor_name", "action", "object_type", "object_id", "object_label", "cluster_name",
        "via", "details",
    },
    "clusterpanel.ApiToken": {"name", "prefix", "key_hash"},  # name: manage.py, max_length 100
    "clusterpanel.WorkerHeartbeat": {"hostname"},
    # A job's kind is one of the registry's names, its params are what the kind's own
    # validate_params returns (each kind bounds its parameters) and its request_key matches
    # the launch service's pattern (at most 64 characters, tested with the API's
    # Idempotency-Key); the rest the runner writes.
    "clusterpanel.Job": {
        "kind", "cluster_name", "params", "plan", "status", "launched_by_name", "via",
        "explanation", "traceback", "task_id", "cancel_requested_by_name", "request_key",
    },
    "clusterpanel.JobStep": {"phase", "node_name", "name", "status", "message", "result"},
    "clusterpanel.JobLogChunk": {"node_name", "stream", "text"},
    "nodes.EtcdSnapshot": {"token", "sha256", "member"},  # from the job that took it
    # Results of the health checks, written by a round.
    "nodes.ComponentHealth": {"component", "target", "status", "message"},
    "nodes.HealthSample": {"component", "target", "status"},
    # What a certificate scan read on the nodes (cut to the column sizes) and judged.
    "nodes.Finding": {"kind", "severity", "path", "message", "suggestion", "action_kind"},
    "nodes.ScannedCertificate": {"path", "subject", "issuer", "sans", "fingerprint"},
    "nodes.HealthEvent": {"component", "target", "from_status", "to_status", "message"},
    "nodes.AlertDelivery": {
        "key", "channel", "target", "subject", "payload", "status", "attempt_log", "last_error",
    },
    # Which certificate band was announced, by which digest (keys the panel builds).
    "nodes.ExpiryNotice": {"key", "digest_key"},
    # What the policy's last run did, written by beat.
    "nodes.RenewalPolicy": {"last_reason", "last_error"},
}  # fmt: skip


@dataclass(frozen=True)
class Door:
    """How a field is typed: the API request and the page form that take it."""

    api: tuple[str, str]  # method, path ({c}: the cluster's id)
    api_body: dict[str, Any]
    page: str
    page_data: dict[str, Any]
    form_field: str | None = None  # when the form's name differs
    as_text: Callable[[Any], str] = str


CLUSTER = Door(
    ("post", "/api/v1/clusters/"),
    {"name": "limits", "control_plane_endpoint": "10.0.0.10:6443"},
    "/clusters/new/",
    {
        "name": "limits",
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
    },
)
NODE = Door(
    ("post", "/api/v1/nodes/"),
    {"cluster": "{c}", "name": "w-1", "address": "10.0.0.21", "role": "worker"},
    "/clusters/{c}/nodes/new/",
    {"name": "w-1", "address": "10.0.0.21", "ssh_port": 22, "ssh_user": "root", "role": "worker"},
)
TOKEN = Door(
    ("post", "/api/v1/tokens/"),
    {"cluster": "{c}"},
    "/clusters/{c}/tokens/",
    {"ttl": "24h", "usages": ["signing", "authentication"]},
)
STATIC = Door(
    ("post", "/api/v1/static-tokens/"),
    {"cluster": "{c}", "token": "tok-1", "user": "alice", "uid": "1"},
    "/clusters/{c}/config/static-tokens/add/",
    {"token": "tok-1", "user": "alice", "uid": "1"},
)
ALERTS = Door(
    ("put", "/api/v1/clusters/{c}/alert-settings/"),
    {"webhook_url": "", "email_recipients": []},
    "/clusters/{c}/alerts/",
    {"webhook_url": ""},
)
RENEWAL = Door(
    ("put", "/api/v1/clusters/{c}/renewal-policy/"),
    {
        "enabled": False, "days_before": 90, "weekdays": ["mon"], "start_hour": 2,
        "end_hour": 6, "time_zone": "UTC",
    },
    "/clusters/{c}/alerts/renewal/",
    {"days_before": 90, "weekdays": ["mon"], "start_hour": 2, "end_hour": 6, "time_zone": "UTC"},
)  # fmt: skip
SETTINGS = Door(
    ("patch", "/api/v1/clusters/{c}/kubeadm-settings/"),
    {},
    "/clusters/{c}/config/settings/",
    {"audit_enabled": "on"},
)

BINARY = Door(
    ("patch", "/api/v1/clusters/{c}/binary-settings/"),
    {},
    "/clusters/{c}/binary-settings/",
    {
        "install_prefix": "/opt/kubernetes",
        "cert_dir": "/etc/k8s/ssl",
        "config_dir": "/etc/k8s",
        "etcd_data_dir": "/var/lib/etcd",
        "service_user": "kube",
        "kube_proxy_mode": "ipvs",
        "ipvs_scheduler": "rr",
        "service_node_port_range": "30000-32767",
        "signing_profiles": "{}",
    },
)


def _lines(value: Any) -> str:
    if isinstance(value, dict):
        return "\n".join(f"{k}={v}" for k, v in value.items())
    return "\n".join(value)


# Per field: the door, and a value one past its limit (the limit itself is read from the model).
def _many(count: int, item: Callable[[int], Any]) -> list[Any]:
    return [item(i) for i in range(count)]


REACHABLE: dict[str, dict[str, tuple[Door, Callable[[int], Any]]]] = {
    "nodes.Cluster": {
        field: (CLUSTER, lambda n: "a" * (n + 1))
        for field in (
            "name", "kubernetes_version", "control_plane_endpoint", "cluster_name",
            "pod_subnet", "service_subnet", "dns_domain", "etcd_topology", "key_algorithm",
            "container_runtime", "description", "bastion_address", "bastion_user", "flavor",
            "bastion_host_key_fingerprint", "bastion_private_key", "bastion_key_passphrase",
            "bastion_password",
        )
    }
    | {"extra_sans": (CLUSTER, lambda n: _many(n + 1, lambda i: f"h{i}.example.com"))},
    "nodes.Node": {
        field: (NODE, lambda n: "a" * (n + 1))
        for field in (
            "name", "ssh_user", "role", "host_key_fingerprint", "ssh_private_key",
            "ssh_key_passphrase", "ssh_password", "sudo_password",
        )
    }
    | {
        "labels": (NODE, lambda n: {f"k{i}": "v" for i in range(n + 1)}),
        "taints": (NODE, lambda n: _many(n + 1, lambda i: f"k{i}=v:NoSchedule")),
    },
    "pki.BootstrapToken": {
        "description": (TOKEN, lambda n: "a" * (n + 1)),
        "usages": (TOKEN, lambda n: _many(n + 1, lambda i: "signing")),
        "groups": (TOKEN, lambda n: _many(n + 1, lambda i: f"system:bootstrappers:g{i}")),
    },
    "pki.StaticToken": {
        "token": (STATIC, lambda n: "a" * (n + 1)),
        "user": (STATIC, lambda n: "a" * (n + 1)),
        "uid": (STATIC, lambda n: "a" * (n + 1)),
        "groups": (STATIC, lambda n: _many(n + 1, lambda i: f"g{i}")),
    },
    "pki.ClusterKubeadmSettings": {
        field: (SETTINGS, lambda n: {f"flag-{i}": "v" for i in range(n + 1)})
        for field in (
            "apiserver_extra_args", "controller_manager_extra_args", "scheduler_extra_args",
            "etcd_extra_args", "kubelet_extra_args",
        )
    }
    | {"audit_policy": (SETTINGS, lambda n: "a" * (n + 1))},
    "pki.ClusterBinarySettings": {
        field: (BINARY, lambda n: "a" * (n + 1))
        for field in (
            "install_prefix", "cert_dir", "config_dir", "service_user", "etcd_data_dir",
            "kube_proxy_mode", "ipvs_scheduler", "service_node_port_range",
        )
    }
    | {
        "signing_profiles": (
            BINARY,
            lambda n: {f"p{i}": {"usages": ["signing"], "expiry": "8760h"} for i in range(n + 1)},
        ),
    },
    "nodes.AlertSettings": {
        "webhook_url": (ALERTS, lambda n: "https://h.example.com/" + "a" * n),
        "webhook_secret": (ALERTS, lambda n: "a" * (n + 1)),
        "email_recipients": (ALERTS, lambda n: _many(n + 1, lambda i: f"u{i}@example.com")),
    },
    "nodes.RenewalPolicy": {
        "weekdays": (RENEWAL, lambda n: _many(n + 1, lambda i: "mon")),
        "time_zone": (RENEWAL, lambda n: "a" * (n + 1)),
    },
}  # fmt: skip
# JSON objects whose bound is the rule that checks them rather than a model validator.
RULE_LIMITS = {("pki.ClusterBinarySettings", "signing_profiles"): binary_rules.MAX_PROFILES}

# How a list or object is typed into a page's text box.
FORM_TEXT = {
    ("nodes.Cluster", "extra_sans"): _lines,
    ("nodes.Node", "labels"): _lines,
    ("nodes.Node", "taints"): _lines,
    ("pki.BootstrapToken", "groups"): _lines,
    ("pki.StaticToken", "groups"): ",".join,
    ("pki.ClusterBinarySettings", "signing_profiles"): json.dumps,
    ("nodes.AlertSettings", "email_recipients"): _lines,
    **{
        ("pki.ClusterKubeadmSettings", f"{c}_extra_args"): _lines
        for c in ("apiserver", "controller_manager", "scheduler", "etcd", "kubelet")
    },
}
# Lists a page offers as choices rather than text: the choices bound them.
FORM_CHOICES = {("pki.BootstrapToken", "usages"), ("nodes.RenewalPolicy", "weekdays")}


def _label(model: type[models.Model]) -> str:
    return f"{model._meta.app_label}.{model.__name__}"


def _limit(field: models.Field) -> int | None:  # type: ignore[type-arg]
    rule = RULE_LIMITS.get((_label(field.model), field.name))
    if rule is not None:
        return rule
    for validator in field.validators:
        if isinstance(validator, ListLimit):
            return validator.max_items
        if isinstance(validator, MaxLengthValidator):
            return int(validator.limit_value)  # type: ignore[arg-type]
    return getattr(field, "max_length", None)


def _text_fields() -> list[tuple[str, str]]:
    found = []
    for model in apps.get_models():
        if model._meta.app_label not in ("nodes", "pki", "clusterpanel"):
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, TEXT_FIELDS):
                found.append((_label(model), field.name))
    return found


FIELDS = _text_fields()
INPUTS = [(m, f) for m, f in FIELDS if f in REACHABLE.get(m, {})]


def test_every_text_and_list_field_is_classified() -> None:
    unclassified = [
        (model, field)
        for model, field in FIELDS
        if field not in REACHABLE.get(model, {}) and field not in SET_BY_THE_PANEL.get(model, ())
    ]
    assert unclassified == []
    stale = [(m, f) for m, fs in REACHABLE.items() for f in fs if (m, f) not in FIELDS]
    assert stale == []


@pytest.mark.parametrize(("model", "field"), INPUTS, ids=[f"{m}.{f}" for m, f in INPUTS])
def test_every_typed_text_and_list_field_has_a_limit(model: str, field: str) -> None:
    model_field = apps.get_model(model)._meta.get_field(field)
    assert _limit(model_field), f"{model}.{field} has no length or size limit"


def _fill(value: Any, cluster: Cluster) -> Any:
    if value == "{c}":
        return cluster.pk
    if isinstance(value, str):
        return value.replace("{c}", str(cluster.pk))
    if isinstance(value, dict):
        return {k: _fill(v, cluster) for k, v in value.items()}
    return value


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "field"), INPUTS, ids=[f"{m}.{f}" for m, f in INPUTS])
def test_the_api_and_the_form_enforce_the_limit(
    api_client: Callable[[str], APIClient],
    web_client: Callable[[str], Client],
    cluster: Cluster,
    model: str,
    field: str,
) -> None:
    door, too_much = REACHABLE[model][field]
    value = too_much(_limit(apps.get_model(model)._meta.get_field(field)) or 0)
    method, path = door.api
    body = {**_fill(door.api_body, cluster), field: value}
    response = getattr(api_client("admin"), method)(_fill(path, cluster), body, format="json")
    assert response.status_code == 400, response.content[:300]
    errors = response.json()["errors"]
    assert any(key == field or key.startswith(f"{field}.") for key in errors), errors

    if (model, field) in FORM_CHOICES:
        return
    as_text = FORM_TEXT.get((model, field), str)
    data = {**door.page_data, field: as_text(value)}
    if model == "pki.ClusterKubeadmSettings" and field != "audit_policy":
        data.setdefault("audit_policy", cluster_audit_policy())
    page = web_client("admin").post(_fill(door.page, cluster), data)
    assert page.status_code in (200, 400), page.status_code
    form = next(
        page.context[key]
        for key in page.context.keys()  # noqa: SIM118 - a ContextList, not a dict
        if key.endswith("form") and getattr(page.context[key], "is_bound", False)
    )
    assert field in form.errors, form.errors


def cluster_audit_policy() -> str:
    from pki.domain.audit_policy import DEFAULT_AUDIT_POLICY

    return DEFAULT_AUDIT_POLICY


# --- 9: numbers have bounds ----------------------------------------------------------------------

NUMBERS = [
    ("post", "/api/v1/clusters/", CLUSTER.api_body, "certificate_validity_days", 10**12),
    ("post", "/api/v1/clusters/", CLUSTER.api_body, "ca_validity_days", 10**12),
    ("post", "/api/v1/clusters/", CLUSTER.api_body, "ca_validity_days", 0),
    ("post", "/api/v1/nodes/", NODE.api_body, "ssh_port", 10**30),
    ("post", "/api/v1/tokens/", TOKEN.api_body, "ttl", "999999999h"),
    ("post", "/api/v1/tokens/", TOKEN.api_body, "ttl", "99999999999h"),
    ("post", "/api/v1/tokens/", TOKEN.api_body, "ttl", 100000000000000000000),
    ("post", "/api/v1/clusters/{c}/certificates/renew/", {}, "validity_days", 10**9),
    ("post", "/api/v1/clusters/{c}/certificates/renew/", {}, "certificates", [1] * 1001),
    ("post", "/api/v1/clusters/{c}/kubeconfigs/", {"username": "a"}, "validity", 10**9),
    ("post", "/api/v1/clusters/{c}/certificates/check-san/", {"host": "a"}, "certificate", 2**70),
    ("put", "/api/v1/clusters/{c}/renewal-policy/", RENEWAL.api_body, "days_before", 10**12),
    ("put", "/api/v1/clusters/{c}/renewal-policy/", RENEWAL.api_body, "end_hour", 24),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body", "field", "value"),
    NUMBERS,
    ids=[f"{p} {f}={str(v)[:20]}" for _, p, _, f, v in NUMBERS],
)
def test_a_number_out_of_bounds_is_a_400_naming_it(
    api_client: Callable[[str], APIClient],
    cluster: Cluster,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
    value: Any,
) -> None:
    payload = {**_fill(body, cluster), field: value}
    response = getattr(api_client("admin"), method)(_fill(path, cluster), payload, format="json")
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()["errors"]


@pytest.mark.django_db
@pytest.mark.parametrize("ttl", ["999999999h", "99999999999h", "100000000000000000000s"])
def test_a_token_ttl_out_of_bounds_is_a_form_error(
    web_client: Callable[[str], Client], cluster: Cluster, ttl: str
) -> None:
    page = web_client("admin").post(
        f"/clusters/{cluster.pk}/tokens/", {**TOKEN.page_data, "ttl": ttl}
    )
    assert page.status_code == 400
    assert "ttl" in page.context["form"].errors


# --- 11: one rule per kind of value --------------------------------------------------------------

BAD_IDENTITIES = [
    ("token", "a,b"),
    ("token", 'tok"en'),
    ("uid", ""),
    ("user", "<b>alice</b>"),
    ("user", "alice smith"),
    ("groups", ["<script>"]),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), BAD_IDENTITIES)
def test_static_tokens_take_the_rules_of_the_kubeconfig(
    api_client: Callable[[str], APIClient],
    web_client: Callable[[str], Client],
    cluster: Cluster,
    field: str,
    value: Any,
) -> None:
    body = {**_fill(STATIC.api_body, cluster), field: value}
    response = api_client("admin").post("/api/v1/static-tokens/", body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"], response.content
    data = {**STATIC.page_data, field: ",".join(value) if isinstance(value, list) else value}
    page = web_client("admin").post(f"/clusters/{cluster.pk}/config/static-tokens/add/", data)
    assert page.status_code == 400
    assert field in page.context["static_form"].errors
    if field in ("user", "groups"):
        kubeconfig = {"username": value if field == "user" else "alice"}
        if field == "groups":
            kubeconfig["groups"] = value
        refused = api_client("admin").post(
            f"/api/v1/clusters/{cluster.pk}/kubeconfigs/", kubeconfig, format="json"
        )
        name = "username" if field == "user" else "groups"
        assert refused.status_code == 400 and name in refused.json()["errors"]


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["not a host!", "<b>x</b>", "a..b", "10.0.0.300", "*.example.com"])
def test_the_san_check_takes_hosts_only(
    api_client: Callable[[str], APIClient],
    web_client: Callable[[str], Client],
    cluster: Cluster,
    host: str,
) -> None:
    response = api_client("admin").post(
        f"/api/v1/clusters/{cluster.pk}/certificates/check-san/", {"host": host}, format="json"
    )
    assert response.status_code == 400 and "host" in response.json()["errors"]
    page = web_client("admin").get(
        f"/clusters/{cluster.pk}/certificates/check-san/", {"host": host}
    )
    assert "neither" in page.content.decode() and page.status_code in (200, 400)
