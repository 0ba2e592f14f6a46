"""The certificate plan of pki.kubeadm against the tables of docs/kubeadm.md sections 1 and 2."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pki.domain.kubeadm import (
    ClusterSpec,
    NodeSpec,
    apiserver_sans,
    covers,
    etcd_sans,
    first_service_ip,
    issue,
    kubeconfig_server,
    kubeconfig_text,
    node_files,
    plan,
    split_host_port,
)
from pki.domain.kubeconfig import parse_kubeconfig
from pki.domain.x509 import (
    CertSpec,
    PKIError,
    create_ca,
    generate_private_key,
    key_matches_certificate,
    load_certificate,
    load_private_key,
    verify_issued_by,
)

CONTROL_PLANES = (
    NodeSpec("cp-1", "10.0.0.11"),
    NodeSpec("cp-2", "10.0.0.12"),
    NodeSpec("cp-3", "10.0.0.13"),
)
WORKERS = (
    NodeSpec("w-1", "10.0.1.1", "worker"),
    NodeSpec("w-2", "10.0.1.2", "worker"),
    NodeSpec("w-3", "10.0.1.3", "worker"),
)
ETCD_NODES = (
    NodeSpec("etcd-1", "10.0.2.1", "etcd"),
    NodeSpec("etcd-2", "10.0.2.2", "etcd"),
    NodeSpec("etcd-3", "10.0.2.3", "etcd"),
)
STACKED = ClusterSpec(
    control_plane_endpoint="lb.example.internal:6443", nodes=CONTROL_PLANES + WORKERS
)
EXTERNAL = ClusterSpec(
    control_plane_endpoint="lb.example.internal:6443",
    etcd_topology="external",
    nodes=CONTROL_PLANES + WORKERS + ETCD_NODES,
)

# docs/kubeadm.md section 1 and 2: name -> (signer, CN, O, usages). "{node}" stands for the node.
TABLE = {
    "ca": (None, "kubernetes", (), ()),
    "front-proxy-ca": (None, "front-proxy-ca", (), ()),
    "etcd/ca": (None, "etcd-ca", (), ()),
    "apiserver": ("ca", "kube-apiserver", (), ("server",)),
    "apiserver-kubelet-client": (
        "ca",
        "kube-apiserver-kubelet-client",
        ("kubeadm:cluster-admins",),
        ("client",),
    ),
    "front-proxy-client": ("front-proxy-ca", "front-proxy-client", (), ("client",)),
    "etcd/server": ("etcd/ca", "{node}", (), ("server", "client")),
    "etcd/peer": ("etcd/ca", "{node}", (), ("server", "client")),
    "etcd/healthcheck-client": ("etcd/ca", "kube-etcd-healthcheck-client", (), ("client",)),
    "apiserver-etcd-client": ("etcd/ca", "kube-apiserver-etcd-client", (), ("client",)),
    "admin.conf": ("ca", "kubernetes-admin", ("kubeadm:cluster-admins",), ("client",)),
    "super-admin.conf": ("ca", "kubernetes-super-admin", ("system:masters",), ("client",)),
    "kubelet.conf": ("ca", "system:node:{node}", ("system:nodes",), ("client",)),
    "controller-manager.conf": ("ca", "system:kube-controller-manager", (), ("client",)),
    "scheduler.conf": ("ca", "system:kube-scheduler", (), ("client",)),
}
SHARED = {
    "ca",
    "front-proxy-ca",
    "etcd/ca",
    "apiserver-kubelet-client",
    "front-proxy-client",
    "apiserver-etcd-client",
    "etcd/healthcheck-client",
}
PER_CONTROL_PLANE = [
    "apiserver",
    "controller-manager.conf",
    "scheduler.conf",
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
]


def expected_files(cluster: ClusterSpec) -> set[tuple[str, str | None]]:
    files: set[tuple[str, str | None]] = {(name, None) for name in SHARED}
    for node in cluster.nodes:
        if node.role == "control-plane":
            files |= {(name, node.name) for name in PER_CONTROL_PLANE}
            if cluster.etcd_topology == "stacked":
                files |= {("etcd/server", node.name), ("etcd/peer", node.name)}
        elif node.role == "worker":
            files.add(("kubelet.conf", node.name))
        else:
            files |= {("etcd/server", node.name), ("etcd/peer", node.name)}
    return files


@pytest.mark.parametrize("cluster", [STACKED, EXTERNAL], ids=["stacked", "external"])
def test_plan_lists_every_file_once(cluster: ClusterSpec) -> None:
    specs = plan(cluster).specs
    keys = [s.key for s in specs]
    assert len(keys) == len(set(keys))
    assert set(keys) == expected_files(cluster)


@pytest.mark.parametrize("cluster", [STACKED, EXTERNAL], ids=["stacked", "external"])
def test_subjects_and_usages_follow_the_table(cluster: ClusterSpec) -> None:
    for spec in plan(cluster).specs:
        signer, cn, orgs, usages = TABLE[spec.name]
        assert spec.signer == signer, spec.key
        assert spec.common_name == cn.format(node=spec.node), spec.key
        assert spec.organizations == orgs, spec.key
        assert set(spec.usages) == set(usages), spec.key
        assert spec.is_ca == (signer is None)
        assert spec.validity == (cluster.ca_validity if spec.is_ca else cluster.validity)


def test_apiserver_sans_for_a_load_balancer_endpoint() -> None:
    spec = plan(STACKED).get("apiserver", "cp-2")
    assert spec.dns_names == (
        "cp-2",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "lb.example.internal",
    )
    assert spec.ip_addresses == ("10.96.0.1", "10.0.0.12")


def test_apiserver_sans_with_ip_endpoint_extra_sans_and_dedupe() -> None:
    cluster = ClusterSpec(
        control_plane_endpoint="10.0.0.100",
        service_subnet="10.128.0.0/16",
        dns_domain="corp.local",
        extra_sans=("10.0.0.12", "api.corp.example", "*.corp.example", "Bad_Name", "10.0.0.100"),
        nodes=CONTROL_PLANES,
    )
    dns, ips, warnings = apiserver_sans(cluster, CONTROL_PLANES[1])
    assert dns == (
        "*.corp.example",
        "api.corp.example",
        "cp-2",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.corp.local",
    )
    assert ips == ("10.128.0.1", "10.0.0.12", "10.0.0.100")
    assert warnings == [
        "[certificates] WARNING: 'Bad_Name' was not added to the 'apiserver' SAN, because it is "
        "not a valid IP or RFC-1123 compliant DNS entry"
    ]
    # Reported once for the plan, not once per control-plane node.
    assert plan(cluster).warnings == warnings


def test_ipv6_endpoint_and_dual_stack_subnet() -> None:
    cluster = ClusterSpec(
        control_plane_endpoint="[fd00::100]:8443",
        service_subnet="fd00:96::/108,10.96.0.0/12",
        nodes=(NodeSpec("cp-1", "fd00::11"),),
    )
    _, ips, _ = apiserver_sans(cluster, cluster.nodes[0])
    assert ips == ("fd00:96::1", "fd00::11", "fd00::100")
    assert kubeconfig_server(cluster, cluster.nodes[0], "admin.conf") == "https://[fd00::100]:8443"
    assert (
        kubeconfig_server(cluster, cluster.nodes[0], "scheduler.conf") == "https://[fd00::11]:6443"
    )


def test_etcd_sans() -> None:
    dns, ips, warnings = etcd_sans(CONTROL_PLANES[0], ("etcd.example.internal", "10.0.0.11"))
    assert dns == ("cp-1", "etcd.example.internal", "localhost")
    assert ips == ("10.0.0.11", "127.0.0.1", "::1")
    assert warnings == []


def test_etcd_peer_and_server_sans_are_separate() -> None:
    cluster = ClusterSpec(
        nodes=CONTROL_PLANES, etcd_server_sans=("etcd.example",), etcd_peer_sans=("10.9.9.9",)
    )
    p = plan(cluster)
    assert "etcd.example" in p.get("etcd/server", "cp-1").dns_names
    assert "etcd.example" not in p.get("etcd/peer", "cp-1").dns_names
    assert p.get("etcd/peer", "cp-1").ip_addresses == ("10.0.0.11", "127.0.0.1", "::1", "10.9.9.9")


def test_external_etcd_certs_name_the_etcd_nodes() -> None:
    spec = plan(EXTERNAL).get("etcd/server", "etcd-2")
    assert spec.common_name == "etcd-2"
    assert spec.dns_names == ("etcd-2", "localhost")
    assert spec.ip_addresses == ("10.0.2.2", "127.0.0.1", "::1")


def test_external_without_etcd_nodes_warns() -> None:
    cluster = ClusterSpec(etcd_topology="external", nodes=CONTROL_PLANES)
    assert any("no etcd server or peer" in w for w in plan(cluster).warnings)


@pytest.mark.parametrize(
    ("subnet", "first"),
    [
        ("10.96.0.0/12", "10.96.0.1"),
        ("10.96.5.0/12", "10.96.0.1"),
        ("172.20.0.0/16", "172.20.0.1"),
        ("fd00::/108", "fd00::1"),
        ("10.96.0.0/12,fd00::/108", "10.96.0.1"),
    ],
)
def test_first_service_ip(subnet: str, first: str) -> None:
    assert first_service_ip(subnet) == first


@pytest.mark.parametrize("subnet", ["10.96.0.0/33", "banana", "10.0.0.1/32"])
def test_bad_service_subnet(subnet: str) -> None:
    with pytest.raises(PKIError, match="service subnet"):
        first_service_ip(subnet)


@pytest.mark.parametrize(
    ("hostport", "expected"),
    [
        ("lb.example.internal:6443", ("lb.example.internal", "6443")),
        ("lb.example.internal", ("lb.example.internal", "")),
        ("10.0.0.1:443", ("10.0.0.1", "443")),
        ("[fd00::1]:6443", ("fd00::1", "6443")),
        ("fd00::1", ("fd00::1", "")),
    ],
)
def test_split_host_port(hostport: str, expected: tuple[str, str]) -> None:
    assert split_host_port(hostport) == expected


@pytest.mark.parametrize(
    ("hostport", "message"),
    [
        ("lb:99999", "port 99999 must be a valid number"),
        ("LB_host:6443", "must be a valid IP address or a valid RFC-1123 DNS subdomain"),
        ("[fd00::1]", "must be a valid IP address"),
    ],
)
def test_bad_endpoint(hostport: str, message: str) -> None:
    with pytest.raises(PKIError, match=message):
        split_host_port(hostport)


def test_kubeconfig_servers() -> None:
    cp = CONTROL_PLANES[0]
    assert kubeconfig_server(STACKED, cp, "admin.conf") == "https://lb.example.internal:6443"
    assert kubeconfig_server(STACKED, cp, "super-admin.conf") == "https://lb.example.internal:6443"
    assert kubeconfig_server(STACKED, WORKERS[0], "kubelet.conf") == (
        "https://lb.example.internal:6443"
    )
    assert kubeconfig_server(STACKED, cp, "controller-manager.conf") == "https://10.0.0.11:6443"
    assert kubeconfig_server(STACKED, cp, "scheduler.conf") == "https://10.0.0.11:6443"
    no_port = ClusterSpec(control_plane_endpoint="lb.example.internal", nodes=CONTROL_PLANES)
    assert kubeconfig_server(no_port, cp, "admin.conf") == "https://lb.example.internal:6443"
    no_endpoint = ClusterSpec(nodes=CONTROL_PLANES)
    assert kubeconfig_server(no_endpoint, cp, "admin.conf") == "https://10.0.0.11:6443"


def test_kubeconfig_servers_follow_the_apiserver_bind_port() -> None:
    """kubeadm's GetLocalAPIEndpoint uses bindPort, and GetControlPlaneEndpoint falls back to
    it when controlPlaneEndpoint has no port (or there is no endpoint at all)."""
    cp = CONTROL_PLANES[0]
    moved = ClusterSpec(
        control_plane_endpoint="lb.example.internal:6443",
        nodes=CONTROL_PLANES,
        api_server_port=6444,
    )
    assert kubeconfig_server(moved, cp, "controller-manager.conf") == "https://10.0.0.11:6444"
    assert kubeconfig_server(moved, cp, "scheduler.conf") == "https://10.0.0.11:6444"
    # The balancer keeps its own port.
    assert kubeconfig_server(moved, cp, "admin.conf") == "https://lb.example.internal:6443"
    no_port = ClusterSpec(
        control_plane_endpoint="lb.example.internal", nodes=CONTROL_PLANES, api_server_port=6444
    )
    assert kubeconfig_server(no_port, cp, "admin.conf") == "https://lb.example.internal:6444"
    no_endpoint = ClusterSpec(nodes=CONTROL_PLANES, api_server_port=6444)
    assert kubeconfig_server(no_endpoint, cp, "kubelet.conf") == "https://10.0.0.11:6444"


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        (ClusterSpec(nodes=WORKERS), "at least one control-plane node"),
        (ClusterSpec(nodes=CONTROL_PLANES + ETCD_NODES), "need the external etcd topology"),
        (
            ClusterSpec(nodes=(NodeSpec("cp-1", "10.0.0.1"), NodeSpec("cp-1", "10.0.0.2"))),
            "'cp-1' is used twice",
        ),
        (
            ClusterSpec(nodes=(NodeSpec("cp-1", "10.0.0.1"), NodeSpec("cp-2", "10.0.0.1"))),
            "address 10.0.0.1 is used by two nodes",
        ),
        (ClusterSpec(nodes=(NodeSpec("CP_1", "10.0.0.1"),)), "not a valid RFC-1123 subdomain"),
        (ClusterSpec(nodes=(NodeSpec("cp-1", "cp-1.example"),)), "is not a valid IP address"),
        (ClusterSpec(nodes=(NodeSpec("cp-1", "10.0.0.1", "master"),)), "role must be one of"),
        (ClusterSpec(nodes=CONTROL_PLANES, key_algorithm="DSA"), "unknown key algorithm"),
        (ClusterSpec(nodes=CONTROL_PLANES, etcd_topology="mixed"), "etcd topology"),
        (
            ClusterSpec(nodes=CONTROL_PLANES, validity=dt.timedelta(days=4000)),
            "exceeds the CA validity",
        ),
    ],
)
def test_invalid_topologies_are_refused(cluster: ClusterSpec, message: str) -> None:
    with pytest.raises(PKIError, match=message):
        plan(cluster)


# --------------------------------------------------------------------------- issuing

SMALL = ClusterSpec(
    control_plane_endpoint="lb.example.internal:6443",
    key_algorithm="ECDSA-P256",
    nodes=(CONTROL_PLANES[0], WORKERS[0]),
)


@pytest.fixture(scope="module")
def tree():
    return issue(plan(SMALL))


def test_issue_signs_every_spec_with_its_signer(tree) -> None:
    p = plan(SMALL)
    assert {i.spec.key for i in tree.all()} == {s.key for s in p.specs}
    for issued in tree.all():
        signer = tree.cas[issued.spec.signer or issued.spec.name]
        assert verify_issued_by(issued.cert, signer.cert), issued.spec.key
        assert key_matches_certificate(issued.key, issued.cert)
        assert covers(issued.cert, issued.spec) == []
        assert isinstance(issued.key, ec.EllipticCurvePrivateKey)
    assert isinstance(tree.sa_key, ec.EllipticCurvePrivateKey)
    keys = {issued.key.private_numbers().private_value for issued in tree.all()}
    assert len(keys) == len(tree.all())


def test_issue_reuses_existing_cas(tree) -> None:
    kept = {name: (i.cert, i.key) for name, i in tree.cas.items()}
    again = issue(plan(SMALL), kept, sa_key=tree.sa_key)
    assert again.cas["ca"].cert == tree.cas["ca"].cert
    assert again.sa_key is tree.sa_key
    assert again.get("apiserver", "cp-1").cert != tree.get("apiserver", "cp-1").cert
    assert verify_issued_by(again.get("apiserver", "cp-1").cert, tree.cas["ca"].cert)


def test_issue_refuses_a_ca_with_the_wrong_key(tree) -> None:
    wrong = {"ca": (tree.cas["ca"].cert, generate_private_key("ECDSA-P256"))}
    with pytest.raises(PKIError, match=r"ca key .* does not match the certificate 'kubernetes'"):
        issue(plan(SMALL), wrong)


def test_issue_refuses_leaves_outliving_an_old_ca() -> None:
    now = dt.datetime.now(dt.UTC)
    old_key = generate_private_key("ECDSA-P256")
    short = CertSpec("ca", None, "kubernetes", is_ca=True, validity=dt.timedelta(days=30))
    old_ca = create_ca(short, old_key, now - dt.timedelta(days=10))
    with pytest.raises(PKIError, match="after its CA 'kubernetes'"):
        issue(plan(SMALL), {"ca": (old_ca, old_key)})


def test_covers_reports_sans_missing_after_a_topology_change(tree) -> None:
    grown = ClusterSpec(
        control_plane_endpoint="api.example.internal:6443",
        extra_sans=("10.0.0.200",),
        key_algorithm="ECDSA-P256",
        nodes=SMALL.nodes,
    )
    missing = covers(tree.get("apiserver", "cp-1").cert, plan(grown).get("apiserver", "cp-1"))
    assert missing == ["api.example.internal", "10.0.0.200"]


def test_kubeconfig_text_embeds_the_nodes_credentials(tree) -> None:
    text = kubeconfig_text(SMALL, tree, "kubelet.conf", WORKERS[0])
    parsed = parse_kubeconfig(text)
    assert parsed.server == "https://lb.example.internal:6443"
    assert parsed.user == "system:node:w-1"
    assert parsed.context == "system:node:w-1@kubernetes"
    cert = load_certificate(parsed.client_cert_pem)
    assert cert == tree.get("kubelet.conf", "w-1").cert
    assert key_matches_certificate(load_private_key(parsed.client_key_pem), cert)
    assert load_certificate(parsed.ca_cert_pem) == tree.cas["ca"].cert


def test_node_files_follow_the_role_and_topology() -> None:
    cluster = ClusterSpec(
        control_plane_endpoint="lb.example.internal:6443",
        etcd_topology="external",
        key_algorithm="ECDSA-P256",
        nodes=(CONTROL_PLANES[0], WORKERS[0], ETCD_NODES[0]),
    )
    tree = issue(plan(cluster))
    cp = node_files(cluster, tree, CONTROL_PLANES[0])
    # External etcd: the control plane verifies the members but cannot sign for them.
    assert "pki/etcd/ca.crt" in cp
    assert "pki/etcd/ca.key" not in cp
    assert "pki/etcd/server.crt" not in cp
    assert {"pki/apiserver-etcd-client.crt", "pki/sa.key", "pki/sa.pub", "admin.conf"} <= set(cp)
    assert sorted(node_files(cluster, tree, WORKERS[0])) == ["kubelet.conf", "pki/ca.crt"]
    assert sorted(node_files(cluster, tree, ETCD_NODES[0])) == [
        "pki/etcd/ca.crt",
        "pki/etcd/healthcheck-client.crt",
        "pki/etcd/healthcheck-client.key",
        "pki/etcd/peer.crt",
        "pki/etcd/peer.key",
        "pki/etcd/server.crt",
        "pki/etcd/server.key",
    ]
    modes = {path: f.mode for path, f in cp.items()}
    assert modes["pki/ca.key"] == modes["admin.conf"] == 0o600
    assert modes["pki/ca.crt"] == modes["pki/sa.pub"] == 0o644
    assert load_certificate(cp["pki/apiserver.crt"].content) == tree.get("apiserver", "cp-1").cert
