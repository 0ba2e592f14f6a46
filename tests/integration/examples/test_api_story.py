"""examples/api_story.py end to end: an empty panel (a live server with its real Celery worker)
to a bootstrapped cluster of 3 control-plane and 2 worker nodes on the shared sshd test hosts,
through /api/v1/ alone with an admin's API token. kubeadm and kubectl are recording stand-ins
(tests/standins) on the hosts: no cluster is made; the panel's side of it all is real."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clusterpanel.jobs.models import Job
from clusterpanel.models import ApiToken
from nodes.models import Cluster, Node
from pki.domain.join import format_join_command
from pki.models.tokens import BootstrapToken
from pki.services.bootstrap.join_commands import ca_cert_hashes
from tests import hosts, standins
from tests.factories import make_user
from tests.integration.examples.scripts import fresh_host, run_script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lifecycle]

CNI = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cni-story\n"
# What these hosts cannot offer a kubelet (they share this machine's kernel and have no
# container runtime), each check named.
IGNORED = (
    "cri-socket,cgroup-driver,ip_forward,br_netfilter,overlay,bridge-nf-call-iptables,"
    "bridge-nf-call-ip6tables,swap,cpus,memory,time,port-6443,port-2379,port-2380,port-10250,"
    "port-10257,port-10259"
)


def _inventory(tmp_path: Path, test_hosts: list[hosts.TestHost], key: str) -> Path:
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(key)
    key_file.chmod(0o600)
    roles = ["control-plane"] * 3 + ["worker"] * 2
    inventory: dict[str, Any] = {
        "cluster": {"name": "story", "control_plane_endpoint": "lb.story.internal:6443"},
        "ssh_user": "root",
        "ssh_key_file": str(key_file),
        "nodes": [
            {
                "name": host.name,
                "address": host.address,
                "ssh_port": host.port,
                "role": role,
                "host_key_fingerprint": host.host_key_fingerprint,
            }
            for host, role in zip(test_hosts, roles, strict=True)
        ],
    }
    inventory["nodes"][4]["labels"] = {"example.com/tier": "gpu"}
    path = tmp_path / "story.json"
    path.write_text(json.dumps(inventory))
    return path


def test_the_api_story_takes_an_empty_panel_to_a_bootstrapped_cluster(
    jobs_worker: str,
    test_hosts: list[hosts.TestHost],
    ssh_client_key: str,
    live_server: Any,
    tmp_path: Path,
) -> None:
    for host in test_hosts:
        fresh_host(host)
    admin = make_user("story-admin", "admin")
    _token, key = ApiToken.issue(admin, "story")
    inventory = _inventory(tmp_path, test_hosts, ssh_client_key)
    cni = tmp_path / "cni.yaml"
    cni.write_text(CNI)
    args = ["--inventory", str(inventory), "--ignore-preflight-errors", IGNORED]
    story = run_script(
        "api_story.py", [*args, "--cni-manifest", str(cni)], live_server.url, key, timeout=300
    )
    assert story.returncode == 0, story.stdout + story.stderr
    assert story.stderr == ""
    out = story.stdout

    # The database: the cluster, its five nodes with the hosts' keys pinned by the admin,
    # facts read, every node joined.
    cluster = Cluster.objects.get(name="story")
    assert cluster.control_plane_endpoint == "lb.story.internal:6443"
    nodes = {n.name: n for n in Node.objects.filter(cluster=cluster)}
    assert sorted(nodes) == [h.name for h in test_hosts]
    assert [nodes[h.name].role for h in test_hosts] == ["control-plane"] * 3 + ["worker"] * 2
    assert nodes["node-5"].labels == {"example.com/tier": "gpu"}
    for host in test_hosts:
        node = nodes[host.name]
        assert node.host_key_fingerprint == host.host_key_fingerprint, host.name
        assert node.host_key_approved_by == admin
        assert node.facts["hostname"] == host.hostname
        assert node.joined_at is not None, host.name
        assert f"node {host.name}: host key {host.host_key_fingerprint} pinned" in out

    # The jobs, launched through the API by the admin: facts succeeded; preflight too, told to
    # ignore the checks these hosts cannot pass, as the bootstrap was.
    jobs = {job.kind: job for job in Job.objects.filter(cluster=cluster)}
    assert sorted(jobs) == ["bootstrap", "facts", "preflight"]
    assert all(job.launched_by == admin and job.via == "api" for job in jobs.values())
    assert jobs["facts"].status == "succeeded"
    assert jobs["preflight"].status == "succeeded", jobs["preflight"].explanation
    assert jobs["preflight"].params["ignore_preflight_errors"] == sorted(IGNORED.split(","))
    assert "ignored as asked: " in jobs["preflight"].explanation
    assert jobs["bootstrap"].status == "succeeded", jobs["bootstrap"].explanation
    assert jobs["bootstrap"].params["ignore_preflight_errors"] == sorted(IGNORED.split(","))
    assert jobs["bootstrap"].params["cni_manifest"] == CNI
    for kind in ("facts", "bootstrap"):
        assert f"{kind} job {jobs[kind].pk} succeeded" in out
    assert "preflight: the failed checks are all ignored (" in out
    assert "PKI issued: " in out and "bootstrap preview: " in out
    # kubeadm ran as the bootstrap says: init on the first control-plane node, joins elsewhere.
    ran = {
        h.name: [c[:2] for c in standins.calls(h, "kubeadm") if c[1] != "version"]
        for h in test_hosts
    }
    assert ran.pop("node-1")[0] == ["kubeadm", "init"]
    assert ran == {name: [["kubeadm", "join"]] for name in ran}

    # The bootstrap's whole log was followed (?after= paging): every line, by node.
    lines: dict[tuple[str, str], str] = {}
    for chunk in jobs["bootstrap"].chunks.order_by("seq"):
        where = (chunk.node_name or "panel", chunk.stream)
        lines[where] = lines.get(where, "") + chunk.text
    assert lines
    for (node, _stream), text in lines.items():
        for line in text.splitlines():
            assert f"  [{node}] {line}\n" in out, (node, line)

    # The join command printed is the panel's, on the token the bootstrap made.
    token = BootstrapToken.objects.get(cluster=cluster)
    expected = format_join_command(
        endpoint=cluster.normalized_endpoint,
        token=token.value,
        ca_cert_hashes=ca_cert_hashes(cluster),
        control_plane=False,
        certificate_key=None,
    )
    assert out.endswith(f"(token {token.token_id}):\n{expected}\n")

    # Every step printed its line; the log and results are indented under them.
    steps = [line for line in out.splitlines() if not line.startswith((" ", "kubeadm", "\t"))]
    assert steps[0].startswith("cluster story created: id ")
    assert sum(line.startswith("node ") and " added: " in line for line in steps) == 5

    # A refusal of the API stops the script non-zero with the API's error body.
    again = run_script("api_story.py", args, live_server.url, key)
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr.startswith("error: POST /api/v1/clusters/: HTTP 400\n")
    body = json.loads(again.stderr.split("\n", 1)[1])
    assert list(body["errors"]) == ["name"]
