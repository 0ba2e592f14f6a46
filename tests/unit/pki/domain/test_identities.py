"""The identity rule: which users, groups, CAs and SANs are privileged, per door, and why."""

from __future__ import annotations

import ipaddress
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pki.domain import cfssl, identities, kubeadm
from pki.domain.identities import Door, Finding, apiserver_hosts, assess, refusal

CERTIFICATE_DOORS = (Door.KUBECONFIG, Door.CERTIFICATE, Door.STATIC_TOKEN)

# (group, part of the reason) for every group an operator may not obtain.
PRIVILEGED_GROUPS = [
    ("system:masters", "bypasses RBAC"),
    ("kubeadm:cluster-admins", "bound to cluster-admin"),
    ("system:nodes", "kubelets' group"),
    ("system:serviceaccounts", "every service account"),
    ("system:serviceaccounts:kube-system", "a namespace's service accounts"),
    ("system:bootstrappers", "group of bootstrap tokens"),
    ("system:bootstrappers:kubeadm:default-node-token", "bootstrap token group"),
    ("system:unauthenticated", "reserved"),
    ("system:monitoring", "reserved"),
    (" System:Masters ", "bypasses RBAC"),  # a near-copy confuses whoever reads the bindings
]
# (user, part of the reason) for every user name an operator may not obtain.
PRIVILEGED_USERS = [
    ("system:node:w-1", "kubelet's identity"),
    ("system:kube-controller-manager", "controller manager's identity"),
    ("system:kube-scheduler", "scheduler's identity"),
    ("system:kube-proxy", "kube-proxy's identity"),
    ("system:apiserver", "API server's own identity"),
    ("kube-apiserver", "API server's client identity"),
    ("kube-apiserver-kubelet-client", "API server's client identity"),
    ("kube-apiserver-etcd-client", "API server's client identity"),
    ("kubernetes", "binary installs"),
    ("kubernetes-admin", "admin.conf"),
    ("kubernetes-super-admin", "super-admin.conf"),
    ("system:serviceaccount:kube-system:default", "service account's identity"),
    ("system:bootstrap:abcdef", "bootstrap token's identity"),
    ("system:anonymous", "reserved"),
    ("SYSTEM:Node:w-1", "kubelet's identity"),
]
ORDINARY_GROUPS = ["dev", "ops", "system:authenticated", "team:system:masters", "masters"]
ORDINARY_USERS = ["alice", "bob@example.com", "ci-deployer", "my-system:admin", "kubernetes2"]


@pytest.mark.parametrize("door", CERTIFICATE_DOORS)
@pytest.mark.parametrize(("group", "reason"), PRIVILEGED_GROUPS)
def test_privileged_groups_are_found_with_the_reason(door: Door, group: str, reason: str) -> None:
    (finding,) = assess(door, user="alice", groups=("dev", group))
    assert (finding.kind, finding.name) == ("group", group)
    assert reason in finding.reason
    assert finding.reason.lower().startswith(group.strip().lower())
    assert finding.never == (door == Door.KUBECONFIG and group.strip().lower() == "system:masters")


@pytest.mark.parametrize("door", CERTIFICATE_DOORS)
@pytest.mark.parametrize(("user", "reason"), PRIVILEGED_USERS)
def test_privileged_users_are_found_with_the_reason(door: Door, user: str, reason: str) -> None:
    (finding,) = assess(door, user=user, groups=("dev",))
    assert (finding.kind, finding.name, finding.never) == ("user", user, False)
    assert reason in finding.reason


@pytest.mark.parametrize("door", CERTIFICATE_DOORS)
@pytest.mark.parametrize("user", ["clusterpanel:health", " ClusterPanel:Health "])
def test_the_panels_health_identity_is_never_handed_out(door: Door, user: str) -> None:
    (finding,) = assess(door, user=user)
    assert (finding.kind, finding.name, finding.never) == ("user", user, True)
    assert finding.reason.startswith(f"{user.strip()} is the panel's own health-check identity")
    assert refusal(finding) == finding.reason  # not even an admin may grant it


@pytest.mark.parametrize("door", CERTIFICATE_DOORS)
def test_ordinary_users_and_groups_are_not_privileged(door: Door) -> None:
    for user in ORDINARY_USERS:
        assert assess(door, user=user, groups=ORDINARY_GROUPS) == ()


def test_the_messages_say_why_and_who_may() -> None:
    (masters,) = assess(Door.STATIC_TOKEN, groups=("system:masters",))
    assert refusal(masters) == "system:masters bypasses RBAC; only an admin may grant it"
    (never,) = assess(Door.KUBECONFIG, groups=("system:masters",))
    assert refusal(never).startswith("system:masters bypasses RBAC and is never given to users")
    assert "super-admin.conf" in refusal(never) and "only an admin" not in refusal(never)
    assert masters.as_dict() == {
        "kind": "group",
        "name": "system:masters",
        "reason": masters.reason,
    }


def test_bootstrap_tokens_keep_kubeadms_group_rule_for_everybody() -> None:
    assert (
        assess(
            Door.BOOTSTRAP_TOKEN,
            groups=("system:bootstrappers:kubeadm:default-node-token", "system:bootstrappers:edge"),
        )
        == ()
    )
    for group in ("system:masters", "system:nodes", "system:bootstrappers", "dev", "kubeadm:x"):
        (finding,) = assess(Door.BOOTSTRAP_TOKEN, groups=(group,))
        assert finding.never and "system:bootstrappers:" in refusal(finding), group


def test_a_certificate_from_another_ca_is_privileged_whatever_its_subject() -> None:
    assert assess(Door.CERTIFICATE, user="alice", authority=kubeadm.CA) == ()
    assert assess(Door.CERTIFICATE, user="alice", authority=None) == ()
    (etcd,) = assess(Door.CERTIFICATE, user="alice", authority=kubeadm.ETCD_CA)
    assert etcd.kind == "authority" and "opens etcd" in etcd.reason
    (proxy,) = assess(Door.CERTIFICATE, user="alice", authority=kubeadm.FRONT_PROXY_CA)
    assert "which user and groups it acts for" in proxy.reason
    # Tokens are signed by nobody.
    assert assess(Door.STATIC_TOKEN, user="alice", authority=kubeadm.ETCD_CA) == ()


SPEC = kubeadm.ClusterSpec(
    control_plane_endpoint="lb.example.internal:6443",
    extra_sans=("api.example.com", "10.0.0.100"),
    dns_domain="corp.local",
    nodes=(
        kubeadm.NodeSpec("cp-1", "10.0.0.11"),
        kubeadm.NodeSpec("cp-2", "fd00::12"),
        kubeadm.NodeSpec("w-1", "10.0.0.21", kubeadm.ROLE_WORKER),
    ),
)


def test_the_api_servers_names_are_kubeadms_apiserver_sans() -> None:
    names = apiserver_hosts(SPEC)
    for node in SPEC.nodes_with_role(kubeadm.ROLE_CONTROL_PLANE):
        dns, ips, _ = kubeadm.apiserver_sans(SPEC, node)
        assert set(dns) | set(ips) <= names
    assert "w-1" not in names and "10.0.0.21" not in names
    assert {"kubernetes.default.svc.corp.local", "10.96.0.1", "fd00::12"} <= names
    # Odd inventories still give the Service names, never an error.
    odd = kubeadm.ClusterSpec(control_plane_endpoint="not a host:99999", service_subnet="x")
    assert "kubernetes" in apiserver_hosts(odd)


@pytest.mark.parametrize(
    "host",
    [
        "kubernetes",
        "Kubernetes.Default.SVC.",
        "kubernetes.default.svc.corp.local",
        "*.default.svc",
        "*.example.internal",
        "lb.example.internal",
        "api.example.com",
        "10.96.0.1",
        "10.0.0.11",
        "fd00:0:0:0:0:0:0:12",
        "cp-1",
    ],
)
def test_server_certificates_for_the_api_servers_names_are_privileged(host: str) -> None:
    protected = apiserver_hosts(SPEC)
    (finding,) = assess(
        Door.CERTIFICATE,
        user="web",
        hosts=("web.example.org", host),
        serves=True,
        protected_hosts=protected,
    )
    assert (finding.kind, finding.name) == ("host", host)
    assert "pose as the API server" in finding.reason
    # A client certificate with the same SANs cannot serve: nothing to protect.
    assert assess(Door.CERTIFICATE, hosts=(host,), serves=False, protected_hosts=protected) == ()


def test_other_server_names_are_ordinary() -> None:
    protected = apiserver_hosts(SPEC)
    hosts = ("web.example.org", "*.apps.example.com", "10.0.0.21", "w-1", "example.internal")
    assert assess(Door.CERTIFICATE, hosts=hosts, serves=True, protected_hosts=protected) == ()


def test_findings_keep_request_order_and_name_each_part_once() -> None:
    findings = assess(
        Door.CERTIFICATE,
        user="system:node:w-1",
        groups=("system:nodes", "dev", "system:nodes"),
        authority=kubeadm.ETCD_CA,
        hosts=("kubernetes",),
        serves=True,
        protected_hosts=apiserver_hosts(SPEC),
    )
    assert [(f.kind, f.name) for f in findings] == [
        ("authority", "etcd/ca"),
        ("user", "system:node:w-1"),
        ("group", "system:nodes"),
        ("host", "kubernetes"),
    ]
    assert all(isinstance(f, Finding) for f in findings)


# --------------------------------------------------------------------------- cfssl requests


def _csr(names: list[x509.NameAttribute], sans: list[x509.GeneralName]) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_a_pkcs10_requests_identity_is_what_the_api_server_would_read() -> None:
    pem = _csr(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dev"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
            # Go keeps the last CN: this is the user the API server sees.
            x509.NameAttribute(NameOID.COMMON_NAME, "system:kube-scheduler"),
        ],
        [x509.DNSName("kubernetes"), x509.IPAddress(ipaddress.ip_address("10.96.0.1"))],
    )
    identity = cfssl.pkcs10_identity(pem)
    assert identity.common_name == "system:kube-scheduler"
    assert identity.organizations == ("dev", "system:masters")
    assert identity.hosts == ("kubernetes", "10.96.0.1")


def test_a_csr_jsons_identity_is_what_cfssl_would_sign() -> None:
    request = cfssl.parse_csr(
        json.dumps(
            {
                "CN": "system:node:w-1",
                "hosts": ["10.0.0.21", "w-1"],
                "names": [{"O": "system:nodes", "OU": "x"}, {"O": "dev"}],
            }
        )
    )
    identity = cfssl.csr_json_identity(request)
    assert identity.common_name == "system:node:w-1"
    assert identity.organizations == ("system:nodes", "dev")
    assert identity.hosts == ("w-1", "10.0.0.21")  # as Go orders SANs: DNS, then IP


@pytest.mark.parametrize(
    ("usages", "serves"),
    [
        (["client auth"], False),
        (["signing", "key encipherment", "client auth"], False),
        (["server auth"], True),
        (["signing", "key encipherment", "server auth", "client auth"], True),
        (["any"], True),
        (["signing", "key encipherment"], True),  # no EKU: Go accepts it for any purpose
    ],
)
def test_a_profile_serves_when_a_tls_client_would_accept_it(
    usages: list[str], serves: bool
) -> None:
    config = cfssl.parse_ca_config(
        json.dumps({"signing": {"profiles": {"p": {"usages": usages, "expiry": "1h"}}}})
    )
    assert config.profile("p").serves is serves


def test_the_domain_knows_kubeadms_names() -> None:
    assert identities.MASTERS == kubeadm.MASTERS_GROUP == "system:masters"
    assert identities.CLUSTER_ADMINS == "kubeadm:cluster-admins"


@pytest.mark.parametrize(
    ("role", "user", "groups", "own"),
    [
        (kubeadm.ROLE_WORKER, "system:node:w-1", ("system:nodes",), True),
        (kubeadm.ROLE_WORKER, "system:kube-proxy", (), True),
        # Another node's kubelet, an extra or a missing group, a near-copy of the name.
        (kubeadm.ROLE_WORKER, "system:node:w-2", ("system:nodes",), False),
        (kubeadm.ROLE_WORKER, "system:node:w-1", ("system:nodes", "system:masters"), False),
        (kubeadm.ROLE_WORKER, "system:node:w-1", (), False),
        (kubeadm.ROLE_WORKER, "System:Node:w-1", ("system:nodes",), False),
        (kubeadm.ROLE_WORKER, "system:kube-proxy", ("system:masters",), False),
        (kubeadm.ROLE_WORKER, "system:kube-controller-manager", (), False),
        # A control-plane node's own identities are no worker's: its bundle carries CA keys.
        (kubeadm.ROLE_CONTROL_PLANE, "system:node:w-1", ("system:nodes",), False),
        (kubeadm.ROLE_CONTROL_PLANE, "system:kube-proxy", (), False),
        (kubeadm.ROLE_ETCD, "system:node:w-1", ("system:nodes",), False),
    ],
)
def test_a_workers_own_identities_are_its_kubelet_and_kube_proxy(
    role: str, user: str, groups: tuple[str, ...], own: bool
) -> None:
    assert identities.worker_own_identity(role, "w-1", user, groups) is own
