"""Who may obtain which Kubernetes identity, on every path that signs a certificate or grants a
token: user kubeconfigs (page, API), cfssl signing (PKCS#10, CSR JSON), static tokens (form, API,
import page, import API) and bootstrap tokens (page, API).

Every path x every privileged identity x {operator, admin}: operators are refused on the field
that asked, saying why; admins get it (unless kubeadm itself never hands it out that way) and the
audit event names it under ``privileged``. The last tests keep the tables complete: every function
of the panel that signs with a cluster CA or creates a token is in ``SERVICES`` (or exempt, with
the reason), and every view that calls one of those is in ``ROUTES``.
"""

from __future__ import annotations

import ast
import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.urls import resolve
from django.utils.html import escape

from clusterpanel.errors import InputError
from clusterpanel.models import AuditEvent
from clusterpanel.security.audit import Actor
from nodes.models import Cluster
from pki.domain import tokens as token_rules
from pki.domain.identities import Door
from pki.models import Certificate
from pki.models.tokens import BootstrapToken, StaticToken
from pki.services import bootstrap as bootstrap_services
from pki.services import certificates as certificate_services
from pki.services import identities as identity_policy
from tests.factories import make_cluster, make_node

ROOT = Path(__file__).resolve().parents[3]
CA_CONFIG = json.dumps(
    {
        "signing": {
            "default": {"expiry": "8760h"},
            "profiles": {
                "kubernetes": {
                    "usages": ["signing", "key encipherment", "server auth", "client auth"],
                    "expiry": "8760h",
                }
            },
        }
    }
)
ALL_DOORS = frozenset(Door)


@dataclass(frozen=True)
class Ask:
    """An identity asked for, and what is privileged in it."""

    label: str
    user: str = ""
    groups: tuple[str, ...] = ()
    authority: str = "ca"
    hosts: tuple[str, ...] = ()
    kind: str = "group"  # which part is privileged: user, group, authority, host ("" = none)
    name: str = ""  # the privileged name the refusal and the audit event carry
    reason: str = ""  # part of the refusal message
    never: frozenset[Door] = frozenset()  # doors through which nobody gets it

    @property
    def cn(self) -> str:
        return self.user or "alice"


ORDINARY = Ask("ordinary", user="alice", groups=("dev", "system:authenticated"), kind="")
MASTERS = Ask(
    "masters",
    groups=("dev", "system:masters"),
    name="system:masters",
    reason="system:masters bypasses RBAC",
    never=frozenset({Door.KUBECONFIG, Door.BOOTSTRAP_TOKEN}),
)
CLUSTER_ADMINS = Ask(
    "cluster-admins",
    groups=("kubeadm:cluster-admins",),
    name="kubeadm:cluster-admins",
    reason="kubeadm:cluster-admins is bound to cluster-admin by kubeadm",
    never=frozenset({Door.BOOTSTRAP_TOKEN}),
)
NODES = Ask(
    "nodes-group",
    groups=("system:nodes",),
    name="system:nodes",
    reason="system:nodes is the kubelets' group",
    never=frozenset({Door.BOOTSTRAP_TOKEN}),
)
BOOTSTRAPPERS = Ask(
    "bootstrappers",
    groups=("system:bootstrappers",),
    name="system:bootstrappers",
    reason="system:bootstrappers is the group of bootstrap tokens",
    never=frozenset({Door.BOOTSTRAP_TOKEN}),
)
RESERVED_GROUP = Ask(
    "reserved-group",
    groups=("System:Monitoring-ish",),
    name="System:Monitoring-ish",
    reason="names under system: are reserved",
    never=frozenset({Door.BOOTSTRAP_TOKEN}),
)
NODE_USER = Ask(
    "node-user",
    user="system:node:w-1",
    kind="user",
    name="system:node:w-1",
    reason="system:node:w-1 is a kubelet's identity",
)
CONTROLLER_MANAGER = Ask(
    "controller-manager",
    user="system:kube-controller-manager",
    kind="user",
    name="system:kube-controller-manager",
    reason="system:kube-controller-manager is the controller manager's identity",
)
APISERVER_CLIENT = Ask(
    "apiserver-client",
    user="kube-apiserver-kubelet-client",
    kind="user",
    name="kube-apiserver-kubelet-client",
    reason="kube-apiserver-kubelet-client is the API server's client identity",
)
SERVICE_ACCOUNT = Ask(
    "service-account",
    user="system:serviceaccount:kube-system:default",
    kind="user",
    name="system:serviceaccount:kube-system:default",
    reason="is a service account's identity",
)
ETCD_CA = Ask(
    "etcd-ca",
    authority="etcd/ca",
    kind="authority",
    name="etcd/ca",
    reason="a certificate from etcd/ca opens etcd",
)
FRONT_PROXY_CA = Ask(
    "front-proxy-ca",
    authority="front-proxy-ca",
    kind="authority",
    name="front-proxy-ca",
    reason="lets its holder tell the API server which user and groups it acts for",
)
SERVICE_SAN = Ask(
    "service-san",
    hosts=("kubernetes.default.svc",),
    kind="host",
    name="kubernetes.default.svc",
    reason="kubernetes.default.svc is a name of the API server",
)
ENDPOINT_SAN = Ask(
    "endpoint-san",
    hosts=("*.example.internal",),
    kind="host",
    name="*.example.internal",
    reason="is a name of the API server",
)
# The panel's own health-check identity: reserved, nobody gets it through any door (a near-copy
# neither).
PANEL_HEALTH = Ask(
    "panel-health",
    user="ClusterPanel:Health",
    kind="user",
    name="ClusterPanel:Health",
    reason="ClusterPanel:Health is the panel's own health-check identity and is never handed out",
    never=ALL_DOORS,
)
USER_ASKS = (NODE_USER, CONTROLLER_MANAGER, APISERVER_CLIENT, SERVICE_ACCOUNT, PANEL_HEALTH)
GROUP_ASKS = (MASTERS, CLUSTER_ADMINS, NODES, BOOTSTRAPPERS, RESERVED_GROUP)
IDENTITY_ASKS = (ORDINARY, *GROUP_ASKS, *USER_ASKS)
CERTIFICATE_ASKS = (*IDENTITY_ASKS, ETCD_CA, FRONT_PROXY_CA, SERVICE_SAN, ENDPOINT_SAN)
TOKEN_GROUP_ASKS = (Ask("ordinary", kind=""), *GROUP_ASKS)

# What each door answers to a bootstrap token group kubeadm does not allow.
KUBEADM_GROUP_RULE = "must match system:bootstrappers:"


# --------------------------------------------------------------------------- requests


_serial = itertools.count(1)


def _token() -> str:
    return f"policy-token-{next(_serial)}"


def _csr_pem(ask: Ask) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in ask.groups]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, ask.cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if ask.hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(h) for h in ask.hosts]), critical=False
        )
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _csr_json(ask: Ask) -> str:
    return json.dumps(
        {
            "CN": ask.cn,
            "hosts": list(ask.hosts),
            "key": {"algo": "ecdsa", "size": 256},
            "names": [{"O": group} for group in ask.groups],
        }
    )


def _csv_line(ask: Ask) -> str:
    groups = ",".join(ask.groups)
    return f'{_token()},{ask.cn},1001,"{groups}"\n' if groups else f"{_token()},{ask.cn},1001\n"


@dataclass(frozen=True)
class Route:
    """One way in: how to ask for an identity through it, and what it answers."""

    name: str
    door: Door
    view: str  # the view function or class the URL resolves to
    service: str  # the service function the view calls
    url: Callable[[Cluster], str]
    body: Callable[[Cluster, Ask], dict[str, Any]]
    fields: dict[str, str]  # privileged part -> the field that names it in a refusal
    ok: int
    action: str  # the audit event of a grant
    asks: tuple[Ask, ...]
    page: bool = False
    multipart: bool = False

    def send(self, client: Any, cluster: Cluster, ask: Ask) -> Any:
        if self.page:
            return client.post(self.url(cluster), self.body(cluster, ask))
        return client.post(self.url(cluster), self.body(cluster, ask), format="json")


_KUBECONFIG_FIELDS = {"user": "username", "group": "groups"}
_STATIC_FIELDS = {"user": "user", "group": "groups"}

ROUTES = (
    Route(
        "kubeconfig-api",
        Door.KUBECONFIG,
        "pki.api.views.certificates.KubeconfigView",
        "pki.services.certificates.bundles.user_kubeconfig",
        lambda c: f"/api/v1/clusters/{c.pk}/kubeconfigs/",
        lambda c, a: {"username": a.cn, "groups": list(a.groups), "validity": 30},
        _KUBECONFIG_FIELDS,
        201,
        "pki.kubeconfig.issue",
        IDENTITY_ASKS,
    ),
    Route(
        "kubeconfig-page",
        Door.KUBECONFIG,
        "pki.views.certificates.user_kubeconfig",
        "pki.services.certificates.bundles.user_kubeconfig",
        lambda c: f"/clusters/{c.pk}/certificates/kubeconfig/",
        lambda c, a: {"username": a.cn, "groups": " ".join(a.groups), "validity": "30"},
        _KUBECONFIG_FIELDS,
        200,
        "pki.kubeconfig.issue",
        IDENTITY_ASKS,
        page=True,
    ),
    Route(
        "cfssl-pkcs10",
        Door.CERTIFICATE,
        "pki.api.views.certificates.CfsslSignView",
        "pki.services.certificates.pki_imports.cfssl_sign",
        lambda c: f"/api/v1/clusters/{c.pk}/cfssl/sign/",
        lambda c, a: {
            "ca_config": CA_CONFIG,
            "profile": "kubernetes",
            "authority": a.authority,
            "csr_pem": _csr_pem(a),
        },
        {"user": "csr_pem", "group": "csr_pem", "host": "csr_pem", "authority": "authority"},
        201,
        "pki.cfssl.sign",
        CERTIFICATE_ASKS,
    ),
    Route(
        "cfssl-csr-json",
        Door.CERTIFICATE,
        "pki.api.views.certificates.CfsslSignView",
        "pki.services.certificates.pki_imports.cfssl_sign",
        lambda c: f"/api/v1/clusters/{c.pk}/cfssl/sign/",
        lambda c, a: {
            "ca_config": CA_CONFIG,
            "profile": "kubernetes",
            "authority": a.authority,
            "csr_json": _csr_json(a),
        },
        {"user": "csr_json", "group": "csr_json", "host": "csr_json", "authority": "authority"},
        201,
        "pki.cfssl.sign",
        CERTIFICATE_ASKS,
    ),
    Route(
        "static-token-api",
        Door.STATIC_TOKEN,
        "pki.api.views.config.StaticTokenViewSet",
        "pki.services.bootstrap.static_token_store.add_static_token",
        lambda c: "/api/v1/static-tokens/",
        lambda c, a: {
            "cluster": c.pk,
            "token": _token(),
            "user": a.cn,
            "uid": "1001",
            "groups": list(a.groups),
        },
        _STATIC_FIELDS,
        201,
        "static_token.create",
        IDENTITY_ASKS,
    ),
    Route(
        "static-token-form",
        Door.STATIC_TOKEN,
        "pki.views.config.static_token_add",
        "pki.services.bootstrap.static_token_store.add_static_token",
        lambda c: f"/clusters/{c.pk}/config/static-tokens/add/",
        lambda c, a: {"token": _token(), "user": a.cn, "uid": "1001", "groups": ",".join(a.groups)},
        _STATIC_FIELDS,
        302,
        "static_token.create",
        IDENTITY_ASKS,
        page=True,
    ),
    Route(
        "static-import-api",
        Door.STATIC_TOKEN,
        "pki.api.views.config.StaticTokenImportView",
        "pki.services.bootstrap.static_token_store.import_static_tokens",
        lambda c: f"/api/v1/clusters/{c.pk}/static-tokens/import/",
        lambda c, a: {"csv": _csv_line(a)},
        {"user": "csv", "group": "csv"},
        201,
        "static_token.import",
        IDENTITY_ASKS,
    ),
    Route(
        "static-import-page",
        Door.STATIC_TOKEN,
        "pki.views.config.static_token_import",
        "pki.services.bootstrap.static_token_store.import_static_tokens",
        lambda c: f"/clusters/{c.pk}/config/static-tokens/import/",
        lambda c, a: {"csv": _csv_line(a)},
        {"user": "csv", "group": "csv"},
        302,
        "static_token.import",
        IDENTITY_ASKS,
        page=True,
    ),
    Route(
        "bootstrap-token-api",
        Door.BOOTSTRAP_TOKEN,
        "pki.api.views.bootstrap.BootstrapTokenViewSet",
        "pki.services.bootstrap.bootstrap_tokens.create_token",
        lambda c: "/api/v1/tokens/",
        lambda c, a: {"cluster": c.pk, "groups": [token_rules.DEFAULT_GROUP, *a.groups]},
        {"group": "groups"},
        201,
        "token.create",
        TOKEN_GROUP_ASKS,
    ),
    Route(
        "bootstrap-token-page",
        Door.BOOTSTRAP_TOKEN,
        "pki.views.bootstrap.token_list",
        "pki.services.bootstrap.bootstrap_tokens.create_token",
        lambda c: f"/clusters/{c.pk}/tokens/",
        lambda c, a: {
            "ttl": "24h",
            "usages": ["signing", "authentication"],
            "groups": "\n".join([token_rules.DEFAULT_GROUP, *a.groups]),
        },
        {"group": "groups"},
        200,
        "token.create",
        TOKEN_GROUP_ASKS,
        page=True,
    ),
)


@pytest.fixture
def policy_cluster(db: Any) -> Cluster:
    """CAs (ECDSA: instant), a control-plane node behind ``lb.example.internal``, a worker."""
    cluster = make_cluster(
        "policy", control_plane_endpoint="lb.example.internal:6443", key_algorithm="ECDSA-P256"
    )
    make_node(cluster, name="cp-1", address="10.0.0.11")
    make_node(cluster, "worker", name="w-1", address="10.0.0.21")
    certificate_services.ensure_cluster_cas(cluster)
    return cluster


def _stored() -> tuple[int, int, int]:
    return Certificate.objects.count(), StaticToken.objects.count(), BootstrapToken.objects.count()


def _expect_refusal(route: Route, ask: Ask, response: Any) -> None:
    """A 400 on the field that asked for the privileged part, saying why."""
    field_name = route.fields[ask.kind]
    reason = KUBEADM_GROUP_RULE if route.door == Door.BOOTSTRAP_TOKEN else ask.reason
    assert response.status_code == 400, response.content[:400]
    if route.page:
        html = response.content.decode()
        assert f'id="{field_name}-error"' in html, html[:2000]
        assert escape(reason) in html
        if route.door not in ask.never:
            assert "only an admin may grant it" in html
        return
    messages = response.json()["errors"][field_name]
    assert any(reason in message for message in messages), messages
    if route.door not in ask.never:
        assert any("only an admin may grant it" in message for message in messages), messages


def _expect_grant(route: Route, ask: Ask, persona: str, response: Any, before: int) -> None:
    """Answered as usual, with one audit event of the route's action, naming what is privileged."""
    assert response.status_code == route.ok, response.content[:400]
    if route.page and route.ok == 200:
        assert 'class="error"' not in response.content.decode()
    events = AuditEvent.objects.filter(action=route.action, pk__gt=before)
    assert events.count() == 1
    event = events.get()
    assert event.actor_name == persona
    privileged = event.details["privileged"]
    if not ask.kind:
        assert privileged == []
    else:
        assert [(item["kind"], item["name"]) for item in privileged] == [(ask.kind, ask.name)]
        assert ask.reason in privileged[0]["reason"]
    # The event also says what was granted: user and groups (or the certificate's subject).
    text = json.dumps(event.details)
    for group in ask.groups:
        assert json.dumps(group) in text


def _cases() -> Iterator[Any]:
    for route in ROUTES:
        for ask in route.asks:
            for persona in ("operator", "admin"):
                yield pytest.param(route, ask, persona, id=f"{route.name}-{ask.label}-{persona}")


@pytest.mark.parametrize(("route", "ask", "persona"), list(_cases()))
def test_every_path_grants_privileged_identities_to_admins_only(
    route: Route,
    ask: Ask,
    persona: str,
    policy_cluster: Cluster,
    web_client: Callable[[str], Any],
    api_client: Callable[[str], Any],
) -> None:
    client = (web_client if route.page else api_client)(persona)
    before, last_event = _stored(), AuditEvent.objects.order_by("pk").last()
    response = route.send(client, policy_cluster, ask)
    refused = bool(ask.kind) and (persona != "admin" or route.door in ask.never)
    if refused:
        _expect_refusal(route, ask, response)
        assert _stored() == before, "a refused request stored something"
        assert not AuditEvent.objects.filter(action=route.action).exists()
    else:
        _expect_grant(route, ask, persona, response, last_event.pk if last_event else 0)


# --------------------------------------------------------------------------- services


def _actor(user: User) -> Actor:
    return Actor(user=user, client_ip="127.0.0.1", via="api")


def _call_user_kubeconfig(cluster: Cluster, ask: Ask, actor: Actor) -> Any:
    return certificate_services.user_kubeconfig(cluster, ask.cn, ask.groups, 30, actor=actor)


def _call_cfssl_sign(cluster: Cluster, ask: Ask, actor: Actor) -> Any:
    return certificate_services.cfssl_sign(
        cluster,
        CA_CONFIG,
        "kubernetes",
        csr_pem=_csr_pem(ask).encode(),
        authority=ask.authority,
        actor=actor,
    )


def _call_add_static_token(cluster: Cluster, ask: Ask, actor: Actor) -> Any:
    return bootstrap_services.add_static_token(
        cluster, token=_token(), user=ask.cn, uid="1001", groups=list(ask.groups), actor=actor
    )


def _call_import_static_tokens(cluster: Cluster, ask: Ask, actor: Actor) -> Any:
    return bootstrap_services.import_static_tokens(cluster, _csv_line(ask), actor=actor)


def _call_create_token(cluster: Cluster, ask: Ask, actor: Actor) -> Any:
    # Straight to the service, past the form's and serializer's own check of kubeadm's rule.
    request = bootstrap_services.TokenRequest(
        ttl=dt.timedelta(hours=24),
        usages=token_rules.DEFAULT_USAGES,
        groups=(token_rules.DEFAULT_GROUP, *ask.groups),
        description="",
    )
    return bootstrap_services.create_token(cluster, request, actor=actor)


@dataclass(frozen=True)
class Service:
    door: Door
    call: Callable[[Cluster, Ask, Actor], Any]
    action: str
    asks: tuple[Ask, ...] = field(default=())


# Every service function that signs a requested identity or creates a token.
SERVICES = {
    "pki.services.certificates.bundles.user_kubeconfig": Service(
        Door.KUBECONFIG, _call_user_kubeconfig, "pki.kubeconfig.issue", IDENTITY_ASKS
    ),
    "pki.services.certificates.pki_imports.cfssl_sign": Service(
        Door.CERTIFICATE, _call_cfssl_sign, "pki.cfssl.sign", CERTIFICATE_ASKS
    ),
    "pki.services.bootstrap.static_token_store.add_static_token": Service(
        Door.STATIC_TOKEN, _call_add_static_token, "static_token.create", IDENTITY_ASKS
    ),
    "pki.services.bootstrap.static_token_store.import_static_tokens": Service(
        Door.STATIC_TOKEN, _call_import_static_tokens, "static_token.import", IDENTITY_ASKS
    ),
    "pki.services.bootstrap.bootstrap_tokens.create_token": Service(
        Door.BOOTSTRAP_TOKEN, _call_create_token, "token.create", TOKEN_GROUP_ASKS
    ),
}

# Functions that sign or create tokens without a requested identity, and why they need no check.
EXEMPT = {
    "pki.services.certificates.issuing.sign_specs": "the signing helper of the functions here",
    "pki.services.certificates.issuing.issue_missing": "kubeadm's tree: subjects from the plan",
    "pki.services.certificates.issuing.reissue": "kubeadm's tree: subjects from the plan",
    "pki.services.certificates.issuing.renew": "kubeadm's tree: the stored subjects again",
    "pki.services.certificates.authorities.ensure_cluster_cas": "CAs, no user identity",
    "pki.services.certificates.panel_identities.health_identity": (
        "the panel's own reserved identity, for the panel alone: no one asks for a subject"
    ),
    "pki.services.certificates.pki_imports.create_ca_from_cfssl_csr": "a CA (admins only)",
}


def _service_cases() -> Iterator[Any]:
    for name, service in SERVICES.items():
        for ask in service.asks:
            for persona in ("operator", "admin"):
                label = f"{name.rsplit('.', 1)[1]}-{ask.label}-{persona}"
                yield pytest.param(name, ask, persona, id=label)


@pytest.mark.parametrize(("name", "ask", "persona"), list(_service_cases()))
def test_every_service_that_signs_or_grants_checks_the_role(
    name: str, ask: Ask, persona: str, policy_cluster: Cluster, personas: dict[str, User]
) -> None:
    """The same rule one level down, where the jobs and future pages will call in."""
    service = SERVICES[name]
    before = _stored()
    if ask.kind and (persona != "admin" or service.door in ask.never):
        with pytest.raises(InputError) as refused:
            service.call(policy_cluster, ask, _actor(personas[persona]))
        assert any(
            ask.reason in message or KUBEADM_GROUP_RULE in message
            for messages in refused.value.errors.values()
            for message in messages
        ), refused.value.errors
        assert _stored() == before
    else:
        service.call(policy_cluster, ask, _actor(personas[persona]))
        event = AuditEvent.objects.filter(action=service.action).latest("pk")
        names = [item["name"] for item in event.details["privileged"]]
        assert names == ([ask.name] if ask.kind else [])


# --------------------------------------------------------------------------- completeness

# Calls that sign with a CA (the pure signing functions and the service helper) or create a
# bootstrap or static token.
SIGNING_CALLS = frozenset(
    {
        "sign_certificate",
        "sign_specs",
        "sign_csr_json",
        "sign_pkcs10",
        "create_ca",
        "create_ca_from_csr",
        "kubeadm.issue",
    }
)
TOKEN_MODELS = frozenset({"StaticToken", "BootstrapToken"})
TOKEN_MANAGERS = frozenset({"static_tokens", "bootstrap_tokens"})
CREATING = frozenset({"create", "bulk_create", "get_or_create", "update_or_create"})


def _dotted(node: ast.expr) -> list[str]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return parts[::-1]


def _grants(call: ast.Call) -> bool:
    parts = _dotted(call.func)
    if not parts:
        return False
    if parts[-1] in SIGNING_CALLS or ".".join(parts[-2:]) in SIGNING_CALLS:
        return True
    if parts[-1] in TOKEN_MODELS:  # StaticToken(...), then saved or bulk-created
        return True
    if parts[-1] in CREATING and len(parts) >= 2:
        owner = parts[-2]
        return owner in TOKEN_MANAGERS or (
            owner == "objects" and len(parts) >= 3 and parts[-3] in TOKEN_MODELS
        )
    return False


def _modules(*packages: str) -> Iterator[tuple[str, ast.Module]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts or relative.parts[:2] == ("pki", "domain"):
                continue  # the pure modules are the primitives; they know no roles
            name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
            yield name, ast.parse(path.read_text(), str(path))


def _callers(predicate: Callable[[ast.Call], bool], *packages: str) -> set[str]:
    """``module.function`` (or ``module.Class``) of every top-level definition that makes a call
    the predicate picks."""
    found: set[str] = set()
    for module, tree in _modules(*packages):
        for definition in tree.body:
            if not isinstance(definition, ast.FunctionDef | ast.ClassDef):
                continue
            calls = (n for n in ast.walk(definition) if isinstance(n, ast.Call))
            if any(predicate(call) for call in calls):
                found.add(f"{module}.{definition.name}")
    return found


def test_every_function_that_signs_or_creates_a_token_is_in_the_tables() -> None:
    """A new way to sign a requested identity or to make a token must be added to ``SERVICES``
    (and so be tested above) or to ``EXEMPT`` with the reason it needs no check."""
    found = _callers(_grants, "pki", "nodes", "clusterpanel")
    assert found, "the scan found nothing: the primitives above were renamed"
    unlisted = found - set(SERVICES) - set(EXEMPT)
    assert not unlisted, f"sign or create tokens without being in SERVICES or EXEMPT: {unlisted}"
    stale = (set(SERVICES) | set(EXEMPT)) - found
    assert not stale, f"listed but no longer signing or creating tokens: {stale}"


def _view_name(url: str) -> str:
    func = resolve(url).func
    target = getattr(func, "cls", None) or getattr(func, "view_class", None) or func
    return f"{target.__module__}.{target.__qualname__}"


def test_every_view_that_calls_a_granting_service_is_in_the_routes(db: Any) -> None:
    """Each page or API view that reaches a function of ``SERVICES`` is a row of ``ROUTES``,
    and each row's URL is that view."""
    granting = {name.rsplit(".", 1)[1] for name in SERVICES}

    def calls_granting(call: ast.Call) -> bool:
        parts = _dotted(call.func)
        return bool(parts) and parts[-1] in granting

    views = _callers(calls_granting, "pki/views", "pki/api", "pki/admin", "nodes", "clusterpanel")
    cluster = make_cluster("routes")
    assert {route.view for route in ROUTES} == views
    for route in ROUTES:
        assert _view_name(route.url(cluster)) == route.view, route.name
        assert route.service in SERVICES, route.name
    assert {route.service for route in ROUTES} == set(SERVICES)


# --------------------------------------------------------------------------- node files


@pytest.mark.parametrize(
    ("role", "user", "groups", "allowed"),
    [
        # kubeadm's worker-bundle rule: a worker's own identities are its bundle's.
        ("worker", "system:node:w-1", ("system:nodes",), {"operator", "admin"}),
        ("worker", "system:kube-proxy", (), {"operator", "admin"}),
        # Everything else is a grant of a privileged identity.
        ("worker", "system:node:w-2", ("system:nodes",), {"admin"}),
        ("worker", "system:node:w-1", ("system:nodes", "system:masters"), {"admin"}),
        ("control-plane", "system:node:w-1", ("system:nodes",), {"admin"}),
        ("control-plane", "system:kube-scheduler", (), {"admin"}),
        ("control-plane", "admin", ("system:masters",), {"admin"}),
    ],
)
def test_a_node_files_identity_follows_the_worker_bundle_rule_or_the_grant_rule(
    role: str, user: str, groups: tuple[str, ...], allowed: set[str], personas: dict[str, User]
) -> None:
    for persona in ("viewer", "operator", "admin"):
        actor = _actor(personas[persona])
        ask = {"node_name": "w-1", "node_role": role, "user": user, "groups": groups}
        if persona in allowed:
            granted = identity_policy.authorize_node_identity(actor, what="f.kubeconfig", **ask)
            # Audited as granted: the privileged parts of the identity, each by its name.
            names = {item["name"] for item in granted}
            assert names and names <= {user, *groups}, persona
        else:
            with pytest.raises(
                PermissionDenied, match=f"f.kubeconfig carries the private key of {user}"
            ):
                identity_policy.authorize_node_identity(actor, what="f.kubeconfig", **ask)
