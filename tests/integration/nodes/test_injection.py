"""Hostile inventory values never reach a host as commands.

Two hundred payloads (``tests.payloads``: shell metacharacters, quotes, line breaks, NUL,
substitutions, option-looking values, look-alikes, long values, paths), each carrying a canary
unique to the run, go into every inventory field that names something on a host: node names,
addresses, SSH users, label keys and values, taints, cluster names, the bastion's user and address,
and job parameters and kinds. Each is refused with a 400 naming the field before any host sees
anything. Then, because validation is one wall and not the only one, the same payloads are written
straight into the database (past validation) on nodes of real sshd test hosts, facts and preflight
run on them with a real worker, and the canary file never appears, here or on any host, and the
token is on no command line any host received: those commands carry no inventory values at all.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from clusterpanel.jobs.models import Job
from clusterpanel.models import AuditEvent
from nodes.models import Cluster, Node
from tests import hosts, services
from tests.factories import make_cluster, make_node
from tests.payloads import Canary, payloads

# Payloads are refused with a 400 before anything is written: SQLite pass only (tests/run.py).
pytestmark = pytest.mark.above_the_database

CANARY = Canary.fresh()
PAYLOADS = payloads(CANARY)

GOOD_NODE = {
    "name": "w-1",
    "address": "10.0.0.21",
    "ssh_port": 22,
    "ssh_user": "root",
    "role": "worker",
    "labels": {},
    "taints": [],
}
GOOD_CLUSTER = {
    "name": "fresh",
    "kubernetes_version": "v1.31.2",
    "control_plane_endpoint": "10.0.0.10:6443",
    "pod_subnet": "10.244.0.0/16",
    "service_subnet": "10.96.0.0/12",
}

Body = Callable[[str], dict[str, Any]]

# (field named in the 400, persona, method, url, body) — the url's {cluster} is filled in.
NODE_CASES: dict[str, tuple[str, Body]] = {
    "node name": ("name", lambda p: {"name": p}),
    "node address": ("address", lambda p: {"address": p}),
    "ssh user": ("ssh_user", lambda p: {"ssh_user": p}),
    "label key": ("labels", lambda p: {"labels": {p: "x"}}),
    "label value": ("labels", lambda p: {"labels": {"zone": p}}),
    "label key prefix": ("labels", lambda p: {"labels": {f"{p}/zone": "x"}}),
    "taint": ("taints", lambda p: {"taints": [p]}),
    "taint key": ("taints", lambda p: {"taints": [f"{p}=x:NoSchedule"]}),
    "taint value": ("taints", lambda p: {"taints": [f"gpu={p}:NoSchedule"]}),
}
# Variations of the cases above (the same validators, the value in another position): a sample.
SAMPLED_NODE_CASES = {"label key prefix", "taint key", "taint value"}
CLUSTER_CASES: dict[str, tuple[str, Body]] = {
    "cluster name": ("name", lambda p: {"name": p}),
    "kubeadm cluster name": ("cluster_name", lambda p: {"cluster_name": p}),
    "control-plane endpoint": ("control_plane_endpoint", lambda p: {"control_plane_endpoint": p}),
    "extra SAN": ("extra_sans", lambda p: {"extra_sans": [p]}),
}
BASTION_CASES: dict[str, tuple[str, Body]] = {
    "bastion user": ("bastion_user", lambda p: {"bastion_address": "10.1.0.1", "bastion_user": p}),
    "bastion address": ("bastion_address", lambda p: {"bastion_address": p}),
}
# A kind refuses an unknown parameter by its name: the field named is the parameter's (for a
# name that is the payload, the payload itself).
JOB_CASES: dict[str, tuple[str | Callable[[str], str], Body]] = {
    "facts param value": ("payload", lambda p: {"kind": "facts", "params": {"payload": p}}),
    "facts param name": (lambda p: p, lambda p: {"kind": "facts", "params": {p: "x"}}),
    "preflight param value": ("payload", lambda p: {"kind": "preflight", "params": {"payload": p}}),
    "preflight param name": (lambda p: p, lambda p: {"kind": "preflight", "params": {p: True}}),
    "job kind": ("kind", lambda p: {"kind": p}),
}


def _received(test_hosts: list[hosts.TestHost]) -> list[list[str]]:
    return [host.received_commands() for host in test_hosts]


def _state() -> tuple[int, ...]:
    return (
        Cluster.objects.count(),
        Node.objects.count(),
        Job.objects.count(),
        AuditEvent.objects.count(),
    )


# What a value that validation accepts may hold: trimmed, a Kubernetes name's characters only.
PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


class Verdicts:
    """Each answer is a 400 naming the field, with nothing written; or an acceptance of a value
    that is plain once trimmed (``node-1-<token>`` is a good node name), which is undone so the
    next request meets the same state. Anything else is a problem."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.accepted: list[str] = []

    def judge(
        self, answer: Any, field: str, case: str, payload: str, before: tuple[int, ...],
        undo: Callable[[Any], None],
    ) -> None:  # fmt: skip
        if answer.status_code in (200, 201):
            undo(answer.json())
            self.accepted.append(payload)
            if not PLAIN.fullmatch(payload.strip()):
                self.problems.append(f"{case} {payload!r}: accepted")
            return
        if answer.status_code != 400:
            self.problems.append(
                f"{case} {payload!r}: {answer.status_code} {answer.content[:200]!r}"
            )
            return
        errors = answer.json().get("errors", {})
        if not any(key == field or key.startswith(f"{field}.") for key in errors):
            self.problems.append(f"{case} {payload!r}: 400 without {field}: {errors}")
        if _state() != before:
            self.problems.append(f"{case} {payload!r}: refused, but something was written")


@pytest.fixture
def target_cluster(cluster: Cluster, test_hosts: list[hosts.TestHost]) -> Cluster:
    make_node(cluster, "control-plane", "cp-1", "10.0.0.11")
    return cluster


@pytest.mark.django_db
@pytest.mark.parametrize(
    "group", ["nodes", "clusters", "bastion", "jobs"], ids=lambda g: f"{g}-x{len(PAYLOADS)}"
)
def test_every_payload_is_refused_with_a_400_naming_the_field_before_any_host_sees_it(
    api_client: Callable[[str], Any],
    target_cluster: Cluster,
    test_hosts: list[hosts.TestHost],
    group: str,
) -> None:
    cluster = target_cluster
    received = _received(test_hosts)
    verdicts = Verdicts()
    if group == "nodes":
        client = api_client("operator")
        node = cluster.nodes.get()
        kept = {f.attname: getattr(node, f.attname) for f in Node._meta.concrete_fields}

        def restore(_: Any) -> None:
            Node.objects.filter(pk=node.pk).update(**kept)

        def delete_node(body: dict[str, Any]) -> None:
            Node.objects.filter(pk=body["id"]).delete()

        for case, (field, body) in NODE_CASES.items():
            for index, payload in enumerate(PAYLOADS):
                if case in SAMPLED_NODE_CASES and index % 4:
                    continue
                data = {**GOOD_NODE, "cluster": cluster.pk, **body(payload)}
                before = _state()
                answer = client.post("/api/v1/nodes/", data, format="json")
                verdicts.judge(answer, field, case, payload, before, delete_node)
                if index % 8:
                    continue
                # An existing node is changed through PATCH: the same wall (a sample, for time).
                before = _state()
                answer = client.patch(f"/api/v1/nodes/{node.pk}/", body(payload), format="json")
                verdicts.judge(answer, field, f"{case} (edit)", payload, before, restore)
    elif group == "clusters":
        client = api_client("operator")

        def delete_cluster(body: dict[str, Any]) -> None:
            Cluster.objects.filter(pk=body["id"]).delete()

        for case, (field, body) in CLUSTER_CASES.items():
            for payload in PAYLOADS:
                data = {**GOOD_CLUSTER, **body(payload)}
                before = _state()
                answer = client.post("/api/v1/clusters/", data, format="json")
                verdicts.judge(answer, field, case, payload, before, delete_cluster)
    elif group == "bastion":
        client = api_client("admin")
        kept_cluster = {
            f.attname: getattr(cluster, f.attname) for f in Cluster._meta.concrete_fields
        }

        def restore_cluster(_: Any) -> None:
            Cluster.objects.filter(pk=cluster.pk).update(**kept_cluster)

        for case, (field, body) in BASTION_CASES.items():
            for payload in PAYLOADS:
                data = {"bastion_password": "a-password", **body(payload)}
                before = _state()
                answer = client.patch(f"/api/v1/clusters/{cluster.pk}/", data, format="json")
                verdicts.judge(answer, field, case, payload, before, restore_cluster)
    else:
        client = api_client("operator")

        def cancel(body: dict[str, Any]) -> None:
            Job.objects.filter(pk=body.get("id")).delete()

        for case, (field, body) in JOB_CASES.items():
            for index, payload in enumerate(PAYLOADS):
                data = {"cluster": cluster.pk, **body(payload)}
                # The plan preview validates as the launch does (a sample, for time).
                urls = ("/api/v1/jobs/",) if index % 4 else ("/api/v1/jobs/", "/api/v1/jobs/plan/")
                for url in urls:
                    before = _state()
                    answer = client.post(url, data, format="json")
                    named = field if isinstance(field, str) else field(payload)
                    verdicts.judge(answer, named, f"{case} {url}", payload, before, cancel)
        # No job takes parameters, let alone these: not one is accepted.
        assert verdicts.accepted == []
    problems = verdicts.problems
    assert problems == [], f"{len(problems)} not refused:\n" + "\n".join(problems[:20])
    assert _received(test_hosts) == received
    # Those accepted (a plain ``node-1-<token>``) are run, with every other payload, past
    # validation on real hosts below.


FORM_SAMPLE = PAYLOADS[::8]


@pytest.mark.django_db
def test_the_node_form_refuses_a_sample_naming_the_field(
    web_client: Callable[[str], Any], target_cluster: Cluster, test_hosts: list[hosts.TestHost]
) -> None:
    client = web_client("operator")
    received, state = _received(test_hosts), _state()
    base = {**GOOD_NODE, "labels": "", "taints": ""}
    kept = list(Node.objects.values_list("pk", flat=True))
    problems = []
    for payload in FORM_SAMPLE:
        for field, value in (
            ("name", payload),
            ("address", payload),
            ("ssh_user", payload),
            ("labels", f"zone={payload}"),
            ("labels", f"{payload}=x"),
            ("taints", payload),
        ):
            answer = client.post(
                f"/clusters/{target_cluster.pk}/nodes/new/", {**base, field: value},
                HTTP_HX_REQUEST="true",
            )  # fmt: skip
            created = Node.objects.exclude(pk__in=kept)
            if created.exists():  # a plain value once trimmed (" <token> "): undo, go on
                created.delete()
                if not PLAIN.fullmatch(payload.strip()):
                    problems.append(f"{field} {value!r}: accepted")
                continue
            form = answer.context["form"] if answer.context else None
            if answer.status_code != 200 or form is None or field not in form.errors:
                problems.append(f"{field} {value!r}: {answer.status_code}")
    assert problems == []
    assert _state()[:3] == state[:3]
    assert _received(test_hosts) == received


# Inert even past validation: the payloads stored as they are on nodes of real hosts.

RANDOM_PARTS = re.compile(r"clusterpanel-(run|stdin)-[0-9a-f]{16}")


def _shape(line: str) -> str:
    return RANDOM_PARTS.sub(r"clusterpanel-\1-RANDOM", line)


def _wait(job_id: int, timeout: float = 60) -> Job:
    def ended() -> bool:
        return Job.objects.get(pk=job_id).is_terminal

    services.wait_for(ended, timeout, f"job {job_id} to end")
    return Job.objects.get(pk=job_id)


@pytest.fixture
def hostile_cluster(test_hosts: list[hosts.TestHost], ssh_client_key: str) -> Cluster:
    """A cluster named by a payload, with three nodes on real hosts named by payloads, each
    holding every payload as a label key, a label value and a taint, written past validation;
    and a fourth whose SSH user is a payload (it cannot log in; it must not run anything)."""
    # PostgreSQL cannot store NUL in text or JSON at all (validation refuses it on every
    # database; the API tests show that): here it is left out on PostgreSQL only.
    stored = [p for p in PAYLOADS if connection.vendor != "postgresql" or "\x00" not in p]
    cluster = make_cluster("hostile", description="\n".join(stored)[:1000])
    Cluster.objects.filter(pk=cluster.pk).update(name=f"$(touch {CANARY.path})")
    labels = {f"k{i}": p for i, p in enumerate(stored)} | {p: "v" for p in stored}
    names = [
        f"$(touch {CANARY.path})",
        f";touch {CANARY.path}\n",
        f"-oProxyCommand=touch {CANARY.path}",
    ]
    for index, (host, name) in enumerate(zip(test_hosts[:3], names, strict=False)):
        node = make_node(cluster, "control-plane", f"n{index}", host.address,
                         ssh_private_key=ssh_client_key)  # fmt: skip
        node.pin_host_key(host.host_key_type, host.host_key_base64, None)
        node.save()
        Node.objects.filter(pk=node.pk).update(name=name, labels=labels, taints=stored)
    odd = make_node(cluster, "worker", "odd-user", test_hosts[3].address,
                    ssh_private_key=ssh_client_key)  # fmt: skip
    odd.pin_host_key(test_hosts[3].host_key_type, test_hosts[3].host_key_base64, None)
    odd.save()
    # 32 characters at most (the column's size, which PostgreSQL enforces); relative, the
    # canary would land in the user's home, which the test searches too.
    Node.objects.filter(pk=odd.pk).update(ssh_user=f"$(touch {CANARY.token})")
    cluster.refresh_from_db()
    return cluster


@pytest.mark.django_db(transaction=True)
def test_payloads_stored_past_validation_stay_inert_in_facts_and_preflight_on_real_hosts(
    jobs_worker: str,
    api_client: Callable[[str], Any],
    hostile_cluster: Cluster,
    test_hosts: list[hosts.TestHost],
) -> None:
    used = test_hosts[:4]
    before = [len(c) for c in _received(used)]
    client = api_client("operator")
    ended = []
    for kind in ("facts", "preflight"):
        answer = client.post("/api/v1/jobs/", {"cluster": hostile_cluster.pk, "kind": kind},
                             format="json")  # fmt: skip
        assert answer.status_code == 201, answer.content
        ended.append(_wait(answer.json()["id"]))
    facts_job, preflight_job = ended
    # The three real nodes ran both; the node with the hostile user could not log in.
    steps = {(s.phase, s.node_name): s.status for s in facts_job.steps.all()}
    assert sorted(steps.values()) == ["failed", "succeeded", "succeeded", "succeeded"], steps
    assert preflight_job.status in ("succeeded", "failed"), preflight_job.explanation
    time.sleep(0.2)  # a command's record is written before it runs; let the last ones land

    homes = ("/root", *(str(h.hostdir / "home" / u) for h in used for u in ("deploy", "ops")))
    assert CANARY.found_here(homes) == []
    for host in used:
        listing = host.run_local(f"ls -d {' '.join(CANARY.places())} 2>/dev/null; true")
        assert listing.stdout == "", (host.name, listing.stdout)

    received = [commands[count:] for commands, count in zip(_received(used), before, strict=True)]
    for host, commands in zip(used[:3], received[:3], strict=True):
        assert commands, f"{host.name} received nothing: the jobs did not run there"
        assert not [c for c in commands if CANARY.token in c], host.name
    assert received[3] == []  # the hostile user was refused at login, before any command
    # Every host got the same command lines (up to the per-run random names): nothing of a
    # node, a label, a taint or the cluster entered them.
    shapes = [sorted({_shape(c) for c in commands}) for commands in received[:3]]
    assert shapes[0] == shapes[1] == shapes[2]
