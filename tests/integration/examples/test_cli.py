"""examples/clusterpanel_cli.py against a live server with its real worker: the join command
(worker, and control plane with the certificate key it has made), the fleet expiry table, and
``job run --follow`` of a facts job on one shared sshd test host (exit 0) and of a preflight
there, which these hosts fail (no container runtime; exit 1). Refusals of the API exit 1 with
its error body, wrong arguments 2."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from clusterpanel.jobs.models import Job
from clusterpanel.models import ApiToken
from nodes.health.finding_services import fleet_rows
from pki.domain.join import format_join_command
from pki.models.tokens import BootstrapToken, CertificateKey
from pki.services import certificates as certificate_services
from pki.services.bootstrap.join_commands import ca_cert_hashes
from tests import hosts
from tests.actors import SETUP
from tests.factories import make_cluster, make_node, make_user
from tests.integration.examples.scripts import run_script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lifecycle]


def test_join_command_expiry_table_and_job_run_follow(
    jobs_worker: str,
    test_hosts: list[hosts.TestHost],
    ssh_client_key: str,
    live_server: Any,
) -> None:
    host = test_hosts[0]
    cluster = make_cluster("cli")
    node = make_node(
        cluster, "control-plane", host.name, host.address, ssh_private_key=ssh_client_key
    )
    node.pin_host_key(host.host_key_type, host.host_key_base64, None)
    node.save()
    certificate_services.issue_missing(cluster, actor=SETUP)
    _token, key = ApiToken.issue(make_user("cli-admin", "admin"), "cli")

    def cli(*args: str) -> Any:
        return run_script("clusterpanel_cli.py", list(args), live_server.url, key)

    # join-command: by name on a fresh token, then by id on the same one, as kubeadm prints it.
    worker = cli("join-command", "cli", "--new-token")
    assert worker.returncode == 0, worker.stderr
    token = BootstrapToken.objects.get(cluster=cluster)
    hashes = ca_cert_hashes(cluster)
    expected = format_join_command(cluster.normalized_endpoint, token.value, hashes)
    assert worker.stdout == expected + "\n"
    again = cli("join-command", str(cluster.pk), "--one-line")
    assert (
        again.stdout
        == format_join_command(cluster.normalized_endpoint, token.value, hashes, one_line=True)
        + "\n"
    )
    assert BootstrapToken.objects.filter(cluster=cluster).count() == 1
    # The control plane's needs a certificate key: the panel says none exists; one is made.
    assert not CertificateKey.objects.filter(cluster=cluster).exists()
    control = cli("join-command", "cli", "--control-plane")
    assert control.returncode == 0, control.stderr
    certificate_key = CertificateKey.objects.get(cluster=cluster)
    assert (
        control.stdout
        == format_join_command(
            cluster.normalized_endpoint, token.value, hashes, True, certificate_key.key
        )
        + "\n"
    )
    unknown = cli("join-command", "nosuch")
    assert (unknown.returncode, unknown.stderr) == (2, "error: no cluster named 'nosuch'\n")

    # expiring: the fleet table, soonest first, its columns aligned under the headings.
    table = cli("expiring", "--within-days", "400")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        "DAYS", "BAND", "NOT", "AFTER", "CLUSTER", "NODE", "SOURCE", "PATH", "SUBJECT"
    ]  # fmt: skip
    expected_rows = list(fleet_rows(400))
    assert len(rows) == len(expected_rows) > 0
    assert table.stderr == f"{len(rows)} certificates within 400 days\n"
    starts = [m.start() for m in re.finditer(r"(?<=  )\S", header)]
    for row in rows:
        assert all(row[i - 2 : i] == "  " and row[i] != " " for i in starts), row
        assert row.split()[3:6] == ["cli", host.name, "ledger"]
    not_after = [row.split()[2] for row in rows]
    assert not_after == sorted(not_after)
    assert int(rows[0].split()[0]) <= 400
    assert cli("expiring", "--within-days", "0").stdout.splitlines()[1:] == []
    refused = cli("expiring", "--within-days", "99999")
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "error: GET /api/v1/certificates/fleet/?expiring_within_days=99999: HTTP 400\n"
    )
    assert list(json.loads(refused.stderr.split("\n", 1)[1])["errors"]) == ["expiring_within_days"]

    # job run --follow: a facts job on the one node, by name; its log, then its outcome.
    facts = cli("job", "run", "cli", "facts", "--node", host.name, "--follow")
    assert facts.returncode == 0, facts.stdout + facts.stderr
    job = Job.objects.get(kind="facts")
    assert job.status == "succeeded" and job.target_node_ids == [node.pk]
    lines = facts.stdout.splitlines()
    assert lines[0] == f"job {job.pk} (facts) launched on 1 nodes"
    assert lines[-1] == f"job {job.pk} succeeded: {job.explanation}"
    assert any(line.startswith(f"  [{host.name}] ") for line in lines)
    node.refresh_from_db()
    assert node.facts["hostname"] == host.hostname

    # A job that fails exits 1 after its checks: preflight finds no container runtime here.
    preflight = cli("job", "run", str(cluster.pk), "preflight", "--node", str(node.pk), "--follow")
    assert preflight.returncode == 1, preflight.stdout + preflight.stderr
    failed = Job.objects.get(kind="preflight")
    assert failed.status == "failed"
    assert preflight.stdout.splitlines()[-1] == f"job {failed.pk} failed: {failed.explanation}"
    assert re.search(rf"^fail +{host.name} +cri-socket ", preflight.stdout, re.MULTILINE)

    # A parameter the kind does not take: the API's 400 naming it, exit 1, nothing launched.
    wrong = cli("job", "run", "cli", "facts", "--param", "depth=3", "--follow")
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("error: POST /api/v1/jobs/: HTTP 400\n")
    assert list(json.loads(wrong.stderr.split("\n", 1)[1])["errors"]) == ["depth"]
    assert Job.objects.count() == 2
