"""The cert-scan job end to end on real sshd test hosts (tests/hosts.py), run by a real Celery
worker: two control-plane nodes holding the panel's bundle (written into each host's own
/etc/kubernetes), then three kinds of drift, each of which must become exactly one finding."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import pytest

from clusterpanel.jobs.models import Job
from clusterpanel.jobs.services import launch_job
from clusterpanel.security.audit import Actor
from nodes.models import Cluster, Finding, ScannedCertificate
from pki.domain import x509 as px
from pki.services import certificates as certificate_services
from pki.services.certificates.bundles import nodes_bundle_files
from tests import hosts, services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lifecycle]

MakeHosts = Callable[[Sequence[hosts.HostSpec]], list[hosts.TestHost]]


def _scan(actor: Actor, cluster: Cluster) -> Job:
    job = launch_job(actor, cluster, "cert-scan", None, {})

    def ended() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    services.wait_for(ended, 60, f"{job} to end")
    return job


def _sign(cluster: Cluster, common_name: str, days: int, usage: str) -> bytes:
    ca = certificate_services.active_cas(cluster)["ca"]
    spec = px.CertSpec(common_name, "ca", common_name, usages=(usage,),
                       validity=dt.timedelta(days=days))  # fmt: skip
    key = px.generate_private_key("ECDSA-P256")
    return px.certificate_to_pem(
        px.sign_certificate(spec, key.public_key(), ca.certificate, ca.private_key)
    )


def test_replaced_certificate_other_sa_key_and_soon_expiring_certificate_are_one_finding_each(
    jobs_worker: str, make_test_hosts: MakeHosts, ssh_client_key: str
) -> None:
    operator = Actor.for_command(make_user("scan-operator", "operator"))
    cp1, cp2 = make_test_hosts([hosts.HostSpec("scan-cp-1"), hosts.HostSpec("scan-cp-2")])
    cluster = make_cluster("scan")
    nodes = []
    for host in (cp1, cp2):
        node = make_node(cluster, "control-plane", host.name, host.address,
                         ssh_private_key=ssh_client_key)  # fmt: skip
        node.pin_host_key(host.host_key_type, host.host_key_base64, None)
        node.save()
        nodes.append(node)
    certificate_services.issue_missing(cluster, actor=SETUP)
    for host, files in zip((cp1, cp2), nodes_bundle_files(cluster, nodes, include_super_admin=False).values(), strict=True):  # fmt: skip  # noqa: E501
        root = host.bind_dir("/etc/kubernetes")
        for path, bundle_file in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(bundle_file.content)
            (root / path).chmod(bundle_file.mode)

    # The panel's bundle as it is: nothing to report.
    job = _scan(operator, cluster)
    assert job.status == "succeeded", job.explanation
    assert list(Finding.objects.filter(cluster=cluster).values_list("kind", "path")) == []
    scanned = ScannedCertificate.objects.filter(cluster=cluster)
    assert scanned.filter(node=nodes[0], path="/etc/kubernetes/pki/apiserver.crt").exists()
    assert scanned.filter(path="/etc/kubernetes/admin.conf:client-certificate-data").count() == 2

    # Drift: a certificate replaced on cp-1, another sa.key on cp-2, a kubelet serving
    # certificate 10 days from expiry on cp-1.
    replaced = cp1.bind_dir("/etc/kubernetes") / "pki" / "apiserver-kubelet-client.crt"
    replaced.write_bytes(_sign(cluster, "kube-apiserver-kubelet-client", 365, "client"))
    other_key = px.private_key_to_pem(px.generate_private_key("RSA-2048"))
    (cp2.bind_dir("/etc/kubernetes") / "pki" / "sa.key").write_bytes(other_key)
    kubelet = cp1.bind_dir("/var/lib/kubelet") / "pki"
    kubelet.mkdir(parents=True, exist_ok=True)
    (kubelet / "kubelet.crt").write_bytes(_sign(cluster, "scan-cp-1", 10, "server"))

    job = _scan(operator, cluster)
    assert job.status == "succeeded", job.explanation
    found = {
        (f.node.name if f.node else None, f.kind, f.path): f
        for f in Finding.objects.filter(cluster=cluster).select_related("node")
    }
    assert set(found) == {
        ("scan-cp-1", "fingerprint-mismatch", "/etc/kubernetes/pki/apiserver-kubelet-client.crt"),
        (None, "key-mismatch", "/etc/kubernetes/pki/sa.key"),
        ("scan-cp-1", "expiring", "/var/lib/kubelet/pki/kubelet.crt"),
    }, [f.message for f in found.values()]
    severities = {key[1]: f.severity for key, f in found.items()}
    assert severities == {"fingerprint-mismatch": "warning", "key-mismatch": "critical",
                          "expiring": "critical"}  # fmt: skip
    sa = found[(None, "key-mismatch", "/etc/kubernetes/pki/sa.key")]
    assert "scan-cp-1 hold" in sa.message and "(the panel's)" in sa.message
    assert "scan-cp-2 hold" in sa.message and sa.action_kind == "distribute-pki"
    logged = "".join(chunk.text for chunk in job.chunks.all())
    assert "PRIVATE KEY" not in logged and other_key.decode().splitlines()[1] not in logged

    # A re-scan finds the same: no duplicates, last_seen moves; a fixed key resolves its finding.
    (cp2.bind_dir("/etc/kubernetes") / "pki" / "sa.key").write_bytes(
        (cp1.bind_dir("/etc/kubernetes") / "pki" / "sa.key").read_bytes()
    )
    job = _scan(operator, cluster)
    assert job.status == "succeeded", job.explanation
    again = {f.pk: f for f in Finding.objects.filter(cluster=cluster)}
    assert set(again) == {f.pk for f in found.values()}
    assert again[sa.pk].resolved_at is not None
    open_ = [f for f in again.values() if f.resolved_at is None]
    assert len(open_) == 2 and all(f.last_seen > found[k].last_seen for k, f2 in found.items()
                                   for f in open_ if f.pk == f2.pk)  # fmt: skip
