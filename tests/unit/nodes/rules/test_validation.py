"""Inventory validation rules, without Django."""

from __future__ import annotations

import pytest

from nodes.rules import validation


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.1", ("10.0.0.1", 6443)),
        ("lb.example.com:8443", ("lb.example.com", 8443)),
        ("[fd00::1]:6443", ("fd00::1", 6443)),
        ("[fd00::1]", ("fd00::1", 6443)),
        ("LB.Example.com", ("lb.example.com", 6443)),
    ],
)
def test_it_splits_endpoints(value: str, expected: tuple[str, int]) -> None:
    assert validation.split_endpoint(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://lb:6443", "scheme"),
        ("lb:6443/api", "path"),
        ("fd00::1", "brackets"),
        ("lb:99999", "out of range"),
        ("lb:", "empty"),
        ("lb:http", "not a number"),
        ("under_score.example", "DNS-1123"),
        ("[zz::1]:6443", "not an IPv6"),
    ],
)
def test_it_rejects_bad_endpoints(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validation.split_endpoint(value)


def test_it_names_the_network_when_host_bits_are_set() -> None:
    with pytest.raises(ValueError, match=r"did you mean 10\.244\.0\.0/16"):
        validation.cidr("10.244.1.0/16")


@pytest.mark.parametrize(
    ("value", "message"),
    [("10.96.0.0/29", "too small"), ("10.0.0.0/8", "too large"), ("fd00::/100", "too large")],
)
def test_it_bounds_the_service_subnet(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validation.service_subnet(value)


def test_it_accepts_kubeadm_default_subnets() -> None:
    assert str(validation.service_subnet("10.96.0.0/12")) == "10.96.0.0/12"
    assert str(validation.pod_subnet("10.244.0.0/16")) == "10.244.0.0/16"


@pytest.mark.parametrize(
    "taint", ["dedicated=gpu:NoSchedule", "node-role.kubernetes.io/control-plane:NoSchedule"]
)
def test_it_accepts_kubectl_taints(taint: str) -> None:
    assert validation.taint(taint) == taint


@pytest.mark.parametrize(
    ("taint", "message"),
    [
        ("dedicated=gpu", "key=value:Effect"),
        ("dedicated=gpu:Sometimes", "effect must be one of"),
        ("-bad=x:NoSchedule", "not valid"),
    ],
)
def test_it_rejects_bad_taints(taint: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validation.taint(taint)


def test_it_normalises_kubernetes_versions() -> None:
    assert validation.kubernetes_version("1.31.2") == "v1.31.2"
    with pytest.raises(ValueError, match=r"v1\.24 to v1\.34"):
        validation.kubernetes_version("v1.20.0")


@pytest.mark.parametrize("value", ["v1.99.0", "v1.35.0", "v2.31.0", "v0.31.0", "v1.23.17"])
def test_it_refuses_versions_the_panel_cannot_configure(value: str) -> None:
    with pytest.raises(ValueError, match="not supported"):
        validation.kubernetes_version(value)


def test_every_supported_minor_has_a_kubeadm_configuration_api() -> None:
    from pki.domain.kubeadm_config import V1BETA3, V1BETA4, api_version_for

    assert tuple(range(24, 35)) == validation.SUPPORTED_MINORS
    for minor in validation.SUPPORTED_MINORS:
        # Any patch release of a supported minor is accepted.
        version = validation.kubernetes_version(f"1.{minor}.17")
        assert version == f"v1.{minor}.17"
        assert api_version_for(version) == (V1BETA4 if minor >= 31 else V1BETA3)


def test_it_checks_label_keys_with_prefixes() -> None:
    assert validation.labels({"topology.kubernetes.io/zone": "a"}) == {
        "topology.kubernetes.io/zone": "a"
    }
    with pytest.raises(ValueError, match="prefix"):
        validation.labels({"Bad_Prefix/zone": "a"})


@pytest.mark.parametrize("value", ["10.0.0.300:6443", "0", "1.2.3"])
def test_it_rejects_mistyped_ip_addresses_as_endpoints(value: str) -> None:
    with pytest.raises(ValueError, match="neither a valid IP address nor a host name"):
        validation.split_endpoint(value)


@pytest.mark.parametrize(
    "key",
    [
        "topology.kubernetes.io/zone",
        "kubernetes.io/os",
        "node.kubernetes.io/pool",
        "team.node.kubernetes.io/owner",
        "kubelet.kubernetes.io/role",
        "example.com/role",
        "role",
    ],
)
def test_it_accepts_labels_the_kubelet_may_set(key: str) -> None:
    assert validation.labels({key: "x"}) == {key: "x"}


@pytest.mark.parametrize(
    "key",
    ["node-role.kubernetes.io/worker", "kubernetes.io/role", "app.kubernetes.io/name", "k8s.io/x"],
)
def test_it_refuses_labels_that_stop_the_kubelet(key: str) -> None:
    with pytest.raises(ValueError, match="the kubelet refuses to start"):
        validation.labels({key: ""})


@pytest.mark.parametrize("value", ["fe80::1%eth0", "fe80::1%;touch${IFS}x", "::1%`id`"])
def test_an_ipv6_zone_is_not_an_ip_address_anywhere(value: str) -> None:
    # ipaddress takes any text after the % as the zone; Kubernetes takes no zone at all.
    assert not validation.is_ip(value)
    with pytest.raises(ValueError, match="zone"):
        validation.ip(value)
    with pytest.raises(ValueError, match="neither"):
        validation.host(value)
    with pytest.raises(ValueError, match="not an IP address"):
        validation.subject_alt_name(value)
