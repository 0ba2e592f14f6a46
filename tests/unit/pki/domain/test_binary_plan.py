"""The binary layout's certificate plan and the rules of a binary install's settings (pure)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pki.domain import binary_layout, binary_plan, binary_rules, identities
from pki.domain.cfssl import SigningProfile
from pki.domain.identities import Door
from pki.domain.kubeadm import ClusterSpec, NodeSpec
from pki.domain.x509 import PKIError

CPS = tuple(NodeSpec(f"cp-{i}", f"10.0.0.{i}") for i in (1, 2, 3))
WORKERS = tuple(NodeSpec(f"w-{i}", f"10.0.1.{i}", "worker") for i in (1, 2))
CLUSTER = ClusterSpec(
    control_plane_endpoint="lb.example.internal:6443",
    extra_sans=("10.9.9.9", "api.example.internal", "not a name"),
    nodes=CPS + WORKERS,
)
PROFILES = {
    "server": SigningProfile(("signing", "server auth"), dt.timedelta(hours=175200)),
    "client": SigningProfile(("signing", "client auth"), dt.timedelta(hours=8760)),
    "peer": SigningProfile(("signing", "server auth", "client auth"), dt.timedelta(hours=43800)),
}
LONG_CA = ClusterSpec(**{**CLUSTER.__dict__, "ca_validity": dt.timedelta(days=7300)})


def by_key(plan) -> dict:
    return {spec.key: spec for spec in plan.specs}


def test_three_control_planes_and_two_workers_get_every_file_of_the_layout() -> None:
    the_plan = binary_plan.plan(LONG_CA, PROFILES)
    specs = by_key(the_plan)
    assert [s.name for s in the_plan.specs if s.is_ca] == ["ca", "front-proxy-ca", "etcd/ca"]
    expected = set()
    for cert in binary_layout.CERTS:
        if cert.name in ("etcd-server", "etcd-peer"):
            expected |= {(cert.name, n.name) for n in CPS}
        elif cert.per_node:
            expected |= {(cert.name, n.name) for n in CPS + WORKERS}
        else:
            expected.add((cert.name, None))
    assert {k for k, s in specs.items() if not s.is_ca} == expected
    for key, spec in specs.items():
        if not spec.is_ca:
            assert spec.signer == binary_layout.CERTS_BY_NAME[key[0]].signer


@pytest.mark.parametrize(
    ("name", "node", "cn", "orgs", "usages"),
    [
        ("etcd-server", "cp-2", "cp-2", (), ("server", "client")),
        ("etcd-peer", "cp-3", "cp-3", (), ("server", "client")),
        ("etcd-healthcheck-client", None, "kube-etcd-healthcheck-client", (), ("client",)),
        ("apiserver-etcd-client", None, "kube-apiserver-etcd-client", (), ("client",)),
        ("kubernetes", None, "kube-apiserver", (), ("server",)),
        ("apiserver-kubelet-client", None, "kube-apiserver-kubelet-client", (), ("client",)),
        ("proxy-client", None, "front-proxy-client", (), ("client",)),
        ("kube-controller-manager", None, "system:kube-controller-manager", (), ("client",)),
        ("kube-scheduler", None, "system:kube-scheduler", (), ("client",)),
        ("kube-proxy", None, "system:kube-proxy", (), ("client",)),
        ("admin", None, "admin", ("system:masters",), ("client",)),
        ("kubelet-client", "w-1", "system:node:w-1", ("system:nodes",), ("client",)),
        ("kubelet-server", "cp-1", "system:node:cp-1", ("system:nodes",), ("server",)),
    ],
)
def test_subjects_and_usages(name, node, cn, orgs, usages) -> None:
    spec = by_key(binary_plan.plan(LONG_CA, PROFILES))[(name, node)]
    assert (spec.common_name, spec.organizations, spec.usages) == (cn, orgs, usages)


def test_sans_of_the_serving_certificates() -> None:
    the_plan = binary_plan.plan(CLUSTER)
    api = the_plan.get("kubernetes")
    assert set(api.dns_names) == {
        "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local", "lb.example.internal", "api.example.internal",
        "cp-1", "cp-2", "cp-3",
    }  # fmt: skip
    assert api.ip_addresses == (
        "10.96.0.1",
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
        "127.0.0.1",
        "10.9.9.9",
    )
    assert any("'not a name'" in w for w in the_plan.warnings)
    etcd = the_plan.get("etcd-server", "cp-2")
    assert (etcd.dns_names, etcd.ip_addresses) == (
        ("cp-2", "localhost"),
        ("10.0.0.2", "127.0.0.1", "::1"),
    )
    kubelet = the_plan.get("kubelet-server", "w-2")
    assert (kubelet.dns_names, kubelet.ip_addresses) == (("w-2",), ("10.0.1.2",))
    assert the_plan.get("kubelet-client", "w-2").dns_names == ()


def test_an_endpoint_ip_is_an_ip_san_and_external_etcd_members_get_the_etcd_files() -> None:
    etcd = tuple(NodeSpec(f"etcd-{i}", f"10.0.2.{i}", "etcd") for i in (1, 2, 3))
    spec = ClusterSpec(
        control_plane_endpoint="10.0.0.100:6443", etcd_topology="external", nodes=CPS + etcd
    )
    the_plan = binary_plan.plan(spec)
    assert "10.0.0.100" in the_plan.get("kubernetes").ip_addresses
    assert {s.node for s in the_plan.specs if s.name == "etcd-peer"} == {
        "etcd-1",
        "etcd-2",
        "etcd-3",
    }
    held = {s.name for s in binary_plan.node_specs(the_plan, spec, etcd[0])}
    assert held == {"etcd-server", "etcd-peer", "etcd-healthcheck-client"}
    cp_held = {s.name for s in binary_plan.node_specs(the_plan, spec, CPS[0])}
    assert "etcd-server" not in cp_held and "apiserver-etcd-client" in cp_held


def test_validity_is_the_profiles_expiry_else_the_clusters() -> None:
    specs = by_key(binary_plan.plan(LONG_CA, PROFILES))
    assert specs[("kubernetes", None)].validity == dt.timedelta(hours=175200)
    assert specs[("admin", None)].validity == dt.timedelta(hours=8760)
    assert specs[("etcd-peer", "cp-1")].validity == dt.timedelta(hours=43800)
    fallback = by_key(binary_plan.plan(CLUSTER, {}))
    assert fallback[("kubernetes", None)].validity == CLUSTER.validity
    with pytest.raises(PKIError, match="exceeds the CA validity"):
        binary_plan.plan(CLUSTER, PROFILES)  # 20 years against a 10-year CA


def test_a_profile_without_the_usage_its_files_need_is_refused() -> None:
    bad = {"server": SigningProfile(("signing", "client auth"), dt.timedelta(hours=8760))}
    with pytest.raises(PKIError, match="'server' must include 'server auth'"):
        binary_plan.plan(CLUSTER, bad)


def test_workers_hold_only_their_own_kubelet_and_kube_proxy_files() -> None:
    the_plan = binary_plan.plan(CLUSTER)
    held = binary_plan.node_specs(the_plan, CLUSTER, WORKERS[0])
    assert sorted((s.name, s.node) for s in held) == [
        ("kube-proxy", None),
        ("kubelet-client", "w-1"),
        ("kubelet-server", "w-1"),
    ]


def test_the_identity_policy_keeps_every_planned_identity_reserved() -> None:
    """No file of the plan names an identity that anyone may obtain through a kubeconfig or a
    signed request without being an admin: each is privileged by its user, a group or its CA."""
    protected = identities.apiserver_hosts(CLUSTER)
    for spec in binary_plan.plan(CLUSTER).specs:
        if spec.is_ca:
            continue
        findings = identities.assess(
            Door.CERTIFICATE,
            user=spec.common_name,
            groups=spec.organizations,
            authority=spec.signer,
            hosts=(*spec.dns_names, *spec.ip_addresses),
            serves="server" in spec.usages,
            protected_hosts=protected,
        )
        assert findings, f"{spec.name} ({spec.common_name}) is not reserved"
    assert (
        "system:masters"
        not in binary_plan.plan(CLUSTER).get("apiserver-kubelet-client").organizations
    )


# --------------------------------------------------------------------------- settings rules


@pytest.mark.parametrize(
    "value",
    ["relative/dir", "/etc/k8s/../ssl", "/etc/k8s/", "/etc//k8s", "/etc/k 8s", "/etc/k8s;rm",
     "/etc/$HOME", "/etc/`x`", "/", "", "/etc/k8s\n"],
)  # fmt: skip
def test_paths_must_be_absolute_normalised_and_plain(value: str) -> None:
    with pytest.raises(binary_rules.SettingError) as caught:
        binary_rules.path(value, "cert_dir")
    assert caught.value.field == "cert_dir"


def test_good_values_pass() -> None:
    assert binary_rules.path("/etc/k8s/ssl", "cert_dir") == "/etc/k8s/ssl"
    assert binary_rules.service_user("kube") == "kube"
    assert binary_rules.port_range("30000-32767") == "30000-32767"
    assert binary_rules.ipvs_scheduler("wlc") == "wlc"


@pytest.mark.parametrize("value", ["Kube", "1kube", "-kube", "k" * 33, "ku be", "root;"])
def test_the_service_user_is_a_posix_name(value: str) -> None:
    with pytest.raises(binary_rules.SettingError, match="user name"):
        binary_rules.service_user(value)


@pytest.mark.parametrize("value", ["30000", "0-100", "100-100", "200-100", "1-65536", "a-b", 5])
def test_the_port_range_is_a_below_b(value) -> None:
    with pytest.raises(binary_rules.SettingError):
        binary_rules.port_range(value)


def test_the_ipvs_scheduler_is_one_kube_proxy_knows() -> None:
    with pytest.raises(binary_rules.SettingError, match="rr, wrr, lc"):
        binary_rules.ipvs_scheduler("fo")


@pytest.mark.parametrize(
    ("profiles", "where"),
    [
        ({"server": {"usages": ["server auth"], "expiry": "1y"}}, "signing_profiles.server.expiry"),
        ({"client": {"usages": ["client auth", "teleport"], "expiry": "8760h"}},
         "signing_profiles.client.usages[1]"),
        ({"peer": {"usages": ["server auth"], "expiry": "8760h"}}, "signing_profiles.peer.usages"),
        ({"x": {"usages": [], "expiry": "8760h"}}, "signing_profiles.x.usages"),
        ({"x": {"usages": ["signing"], "expiry": "8760h", "auth_key": "k"}},
         "signing_profiles.x.auth_key"),
        ({"x": "server"}, "signing_profiles.x"),
    ],
)  # fmt: skip
def test_profile_errors_name_the_json_path(profiles, where: str) -> None:
    with pytest.raises(binary_rules.SettingError) as caught:
        binary_rules.signing_profiles(profiles)
    assert str(caught.value).startswith(f"{where}:"), caught.value
    assert caught.value.field == "signing_profiles"


def test_a_ca_config_fills_the_profiles() -> None:
    text = json.dumps(
        {
            "signing": {
                "default": {"expiry": "175200h"},
                "profiles": {
                    "kubernetes": {
                        "usages": ["signing", "key encipherment", "server auth", "client auth"],
                        "expiry": "175200h",
                    }
                },
            }
        }
    )
    assert binary_rules.profiles_from_ca_config(text) == {
        "kubernetes": {
            "usages": ["signing", "key encipherment", "server auth", "client auth"],
            "expiry": "175200h",
        }
    }


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"signing": {"profiles": {"server": {', "$"),
        ("[1]", "$"),
        ('{"profiles": {}}', "signing"),
        ('{"signing": {"default": {"expiry": "8760h"}}}', "signing.profiles"),
        ('{"signing": {"profiles": {"server": {"usages": ["signing", "server auth"], '
         '"expiry": "-1h"}}}}', "signing.profiles.server.expiry"),
        ('{"signing": {"profiles": {"etcd": {"usages": ["signing", "peer auth"], '
         '"expiry": "8760h"}}}}', "signing.profiles.etcd.usages[1]"),
    ],
)  # fmt: skip
def test_a_broken_ca_config_is_refused_naming_the_path(text: str, where: str) -> None:
    with pytest.raises(binary_rules.SettingError) as caught:
        binary_rules.profiles_from_ca_config(text)
    assert str(caught.value).startswith(f"{where}:"), caught.value
    assert caught.value.field == "ca_config"
