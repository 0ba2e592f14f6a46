"""Secrets never leak: not into job output, the API, the pages, the audit, any log or any command
line a host receives.

The secrets: a node's private key (OpenSSH Ed25519) and its passphrase, the ``ops`` user's login
and sudo password, the bastion's private key (PKCS#8 RSA) and its passphrase, a wrong password
and a wrong sudo password. They are used for real: facts and preflight run over a bastion on
nodes logging in by encrypted key (``deploy``, passwordless sudo), by password (``ops``, sudo asks)
and by key with a sudo password; then jobs fail on a wrong password, a wrong sudo password, a
stopped host and a changed host key. Each secret, its base64 and the first 16 characters of a
key's PEM body are then looked for in everything the panel kept or showed.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from clusterpanel.jobs.models import Job, JobLogChunk, JobStep
from clusterpanel.models import AuditEvent
from nodes.models import Cluster, Node
from tests import hosts, services
from tests.factories import make_cluster, make_node, make_personas

pytestmark = pytest.mark.django_db(transaction=True)

MakeHosts = Callable[[Sequence[hosts.HostSpec]], list[hosts.TestHost]]
TOKEN = secrets.token_hex(6)
NODE_PASSPHRASE = f"node-key-passphrase-{TOKEN}"
BASTION_PASSPHRASE = f"bastion-key-passphrase-{TOKEN}"
WRONG_PASSWORD = f"wrong-login-password-{TOKEN}"
WRONG_SUDO = f"wrong-sudo-password-{TOKEN}"


def _ed25519(passphrase: str) -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode()


def _rsa(passphrase: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode()


def _needles(name: str, secret: str) -> dict[str, str]:
    """What would betray ``secret``: itself, its base64, and for a key its PEM body's start and
    a line from its middle (a key cut into log lines)."""
    found = {name: secret, f"{name} (base64)": base64.b64encode(secret.encode()).decode()}
    if "PRIVATE KEY-----" in secret:
        body = [line for line in secret.strip().splitlines() if not line.startswith("-----")]
        found[f"{name} (PEM body start)"] = body[0][:16]
        found[f"{name} (PEM body middle)"] = body[len(body) // 2][:16]
    return found


class Records(logging.Handler):
    """Every record logged in this process, formatted with its traceback (caplog is off under
    ``-p no:logging``; a plain handler on the root logger sees the same records)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _pin(node: Node, host: hosts.TestHost) -> Node:
    node.pin_host_key(host.host_key_type, host.host_key_base64, None)
    node.save()
    return node


def _launch(client: APIClient, cluster: Cluster, kind: str, nodes: Sequence[Node]) -> int:
    body = {"cluster": cluster.pk, "kind": kind, "nodes": [n.pk for n in nodes]}
    answer = client.post("/api/v1/jobs/", body, format="json")
    assert answer.status_code == 201, answer.content
    job_id: int = answer.json()["id"]
    return job_id


def _wait(job_ids: Sequence[int], timeout: float = 60) -> list[Job]:
    def ended() -> bool:
        return all(Job.objects.get(pk=i).is_terminal for i in job_ids)

    services.wait_for(ended, timeout, f"jobs {list(job_ids)} to end")
    return [Job.objects.get(pk=i) for i in job_ids]


def _rows(model: Any) -> str:
    return json.dumps(list(model.objects.values()), default=str)


def test_no_secret_appears_anywhere_after_jobs_that_succeed_and_fail(
    jobs_worker: str,
    jobs_worker_log: Path,
    make_test_hosts: MakeHosts,
    records: Records,
) -> None:
    node_key, node_public = _ed25519(NODE_PASSPHRASE)
    bastion_key, bastion_public = _rsa(BASTION_PASSPHRASE)
    jump, keyed, passworded, sudoer, gone, rekeyed = make_test_hosts(
        [hosts.HostSpec(f"leak-{n}") for n in ("jump", "keyed", "pw", "sudo", "gone", "rekeyed")]
    )
    jump.authorize(hosts.SUDO_PASSWORD_USER, bastion_public)
    keyed.authorize(hosts.SUDO_NOPASSWD_USER, node_public)
    for host in (sudoer, gone):
        host.authorize(hosts.SUDO_PASSWORD_USER, node_public)
    ops, deploy, password = hosts.SUDO_PASSWORD_USER, hosts.SUDO_NOPASSWD_USER, hosts.OPS_PASSWORD
    personas: dict[str, User] = make_personas()

    # Through a bastion: an encrypted key, a password login with sudo password, a key with one.
    vault = make_cluster(
        "vault",
        bastion_address=jump.address,
        bastion_user=ops,
        bastion_private_key=bastion_key,
        bastion_key_passphrase=BASTION_PASSPHRASE,
        bastion_host_key_type=jump.host_key_type,
        bastion_host_key=jump.host_key_base64,
        bastion_host_key_fingerprint=jump.host_key_fingerprint,
    )
    good = [
        _pin(make_node(vault, "control-plane", "keyed", keyed.address, ssh_user=deploy,
                       ssh_private_key=node_key, ssh_key_passphrase=NODE_PASSPHRASE), keyed),
        _pin(make_node(vault, "control-plane", "pw", passworded.address, ssh_user=ops,
                       ssh_password=password, sudo_password=password), passworded),
        _pin(make_node(vault, "worker", "sudo", sudoer.address, ssh_user=ops,
                       ssh_private_key=node_key, ssh_key_passphrase=NODE_PASSPHRASE,
                       sudo_password=password), sudoer),
    ]  # fmt: skip
    # Direct: each node fails its own way.
    broken = make_cluster("broken")
    wrong = _pin(
        make_node(
            broken,
            "worker",
            "wrong-password",
            passworded.address,
            ssh_user=ops,
            ssh_password=WRONG_PASSWORD,
            sudo_password=WRONG_SUDO,
        ),
        passworded,
    )
    bad_sudo = _pin(
        make_node(
            broken,
            "worker",
            "wrong-sudo",
            sudoer.address,
            ssh_user=ops,
            ssh_private_key=node_key,
            ssh_key_passphrase=NODE_PASSPHRASE,
            sudo_password=WRONG_SUDO,
        ),
        sudoer,
    )
    stopped = _pin(
        make_node(
            broken,
            "worker",
            "stopped",
            gone.address,
            ssh_user=ops,
            ssh_private_key=node_key,
            ssh_key_passphrase=NODE_PASSPHRASE,
            sudo_password=password,
        ),
        gone,
    )
    changed = _pin(
        make_node(
            broken,
            "worker",
            "changed",
            rekeyed.address,
            ssh_user=ops,
            ssh_password=password,
            sudo_password=password,
        ),
        rekeyed,
    )
    gone.stop()
    rekeyed.swap_host_key()

    operator = APIClient()
    operator.force_authenticate(personas["operator"])
    jobs = _wait([_launch(operator, vault, kind, good) for kind in ("facts", "preflight")])
    facts_job, preflight_job = jobs
    assert facts_job.status == "succeeded", facts_job.explanation
    assert {s.status for s in preflight_job.steps.filter(phase="probe")} == {"succeeded"}
    failing = _wait(
        [_launch(operator, broken, "facts", [n]) for n in (wrong, bad_sudo, stopped, changed)]
    )
    assert [j.status for j in failing] == ["failed"] * 4, [j.explanation for j in failing]
    jobs += failing
    wrong_login, wrong_sudo, host_down, key_changed = (j.explanation for j in failing)
    assert "authentication failed" in wrong_login, wrong_login
    assert "exited with code 1" in wrong_sudo, wrong_sudo  # sudo refused: no script output
    assert "Connection refused" in host_down, host_down
    assert rekeyed.host_key_fingerprint in key_changed, key_changed
    # The secrets were used: the logins happened (sshd counts them) through the bastion.
    assert jump.accepted_logins() >= 2 and keyed.accepted_logins() >= 1
    assert passworded.accepted_logins() >= 1 and sudoer.accepted_logins() >= 2

    # Everything the panel kept or showed.
    haystacks: dict[str, str] = {
        "job log chunks": _rows(JobLogChunk),
        "job steps": _rows(JobStep),
        "jobs": _rows(Job),
        "audit rows": _rows(AuditEvent),
    }
    plan_body = {"cluster": vault.pk, "kind": "preflight"}
    for persona, user in personas.items():
        api, web = APIClient(), Client()
        api.force_authenticate(user)
        web.force_login(user)
        urls = ["/api/v1/jobs/", "/api/v1/nodes/", "/api/v1/clusters/"]
        pages = ["/jobs/"]
        for job in jobs:
            urls += [f"/api/v1/jobs/{job.pk}/", f"/api/v1/jobs/{job.pk}/log/"]
            pages += [f"/jobs/{job.pk}/", f"/jobs/{job.pk}/log/"]
        for node in Node.objects.all():
            urls.append(f"/api/v1/nodes/{node.pk}/")
            pages += [f"/nodes/{node.pk}/", f"/nodes/{node.pk}/edit/", f"/nodes/{node.pk}/row/"]
        for cluster in (vault, broken):
            urls.append(f"/api/v1/clusters/{cluster.pk}/")
            pages += [f"/clusters/{cluster.pk}/", f"/clusters/{cluster.pk}/edit/",
                      f"/clusters/{cluster.pk}/jobs/"]  # fmt: skip
        shown = [f"{url} {api.get(url).content.decode()}" for url in urls]
        shown.append(api.post("/api/v1/jobs/plan/", plan_body, format="json").content.decode())
        shown += [f"{page} {web.get(page).content.decode()}" for page in pages]
        haystacks[f"answers and pages for {persona}"] = "\n".join(shown)
    assert len(haystacks["answers and pages for admin"]) > 20_000  # the pages were really there
    haystacks["worker log"] = jobs_worker_log.read_text(errors="replace")
    assert " ready." in haystacks["worker log"]
    haystacks["this process's log records"] = "\n".join(records.lines)
    for host in (jump, keyed, passworded, sudoer, gone, rekeyed):
        haystacks[f"commands {host.name} received"] = "\n".join(host.received_commands())
    assert sudoer.received_commands() and "sudo -S" in haystacks["commands leak-sudo received"]

    needles = {
        **_needles("node key", node_key),
        **_needles("node key passphrase", NODE_PASSPHRASE),
        **_needles("ops password", password),
        **_needles("bastion key", bastion_key),
        **_needles("bastion key passphrase", BASTION_PASSPHRASE),
        **_needles("wrong password", WRONG_PASSWORD),
        **_needles("wrong sudo password", WRONG_SUDO),
    }
    leaks = [
        f"{secret} in {where}"
        for where, text in haystacks.items()
        for secret, needle in needles.items()
        if needle in text
    ]
    assert leaks == []
