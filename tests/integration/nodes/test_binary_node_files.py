"""A binary-installed cluster's files as the jobs send them: the PKI's certificate bundles and the
rendered units, configs and kubeconfigs, put together by ``nodes.binary_files.node_files``.

Nothing here connects to a host: the tree is issued through the services and the jobs' previews
are built from it, so the files every unit flag names must be among the files the node is sent.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from clusterpanel.jobs import services as job_services
from clusterpanel.security.audit import Actor
from nodes import binary_files
from nodes.models import Cluster, ClusterFlavor
from pki.domain import binary_units
from pki.services import certificates as certificate_services
from pki.services.binary_files import binary_spec
from pki.services.certificates.spec import node_spec
from tests.actors import SETUP
from tests.factories import make_cluster, make_nodes, make_user

pytestmark = pytest.mark.integration

NODES = [
    ("cp-1", "10.0.0.11", "control-plane"),
    ("cp-2", "10.0.0.12", "control-plane"),
    ("w-1", "10.0.0.21", "worker"),
]


@pytest.fixture
def cluster(db: Any) -> Cluster:
    cluster = make_cluster("bin", flavor=ClusterFlavor.BINARY, key_algorithm="ECDSA-P256")
    make_nodes(cluster, NODES)
    certificate_services.issue_missing(cluster, actor=SETUP)
    return cluster


def test_every_file_a_unit_names_is_sent_to_its_node(cluster: Cluster) -> None:
    spec = binary_spec(cluster)
    for node in cluster.nodes.all():
        files = binary_files.node_files(cluster, node)
        paths = [f.path for f in files]
        assert len(paths) == len(set(paths)), f"{node.name}: a path is sent twice"
        units = binary_units.node_units(spec, node_spec(node))
        named = set().union(*(binary_units.flag_files(unit) for unit in units))
        # Logs and data are the services' own output, not files the panel sends.
        named = {p for p in named if not p.startswith(("/var/log/", spec.layout.etcd_data_dir))}
        # The kubelet's certificates are named by its config file, not by flags.
        kubelet_config = next(f for f in files if f.path.endswith("kubelet-config.yaml"))
        config = yaml.safe_load(kubelet_config.content)
        named |= {config["tlsCertFile"], config["tlsPrivateKeyFile"]}
        named.add(config["authentication"]["x509"]["clientCAFile"])
        assert named - set(paths) == set(), node.name
        assert {unit.path for unit in units} <= set(paths), node.name
        for f in files:
            if f.path.endswith("-key.pem") or f.path.endswith(".kubeconfig"):
                assert f.secret and f.mode & 0o077 == 0, f.path
        ca_keys = {p for p in paths if p.endswith(("/ca-key.pem", "/etcd-ca-key.pem"))}
        if node.role == "worker":
            assert ca_keys == set(), f"a worker is sent a CA key: {ca_keys}"
        else:
            assert ca_keys, node.name


def test_the_binary_jobs_preview_the_real_files(cluster: Cluster) -> None:
    admin = Actor.for_job(make_user("bin-admin", "admin"))
    sent = {
        "binary-distribute-pki": "/etc/k8s/ssl/kubernetes.pem",
        "binary-start": "/etc/systemd/system/kube-apiserver.service",
    }
    for kind, path in sent.items():
        preview = job_services.plan_job(admin, cluster, kind)
        assert preview["blocked_by"] is None
        text = repr(preview)
        assert path in text, (kind, path)
        # Secret files are announced by path, never by content.
        assert "PRIVATE KEY" not in text, kind
