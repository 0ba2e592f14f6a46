"""Fill a database with a fleet: clusters, nodes, certificates, jobs with log chunks, health.

The full size is 1,000 clusters of 20 nodes (3 control-plane, 17 workers): 20,000 nodes,
200,000 certificates, 100,000 jobs with 2,000,000 log chunks, and a week of health history.
What is seeded per cluster (``--clusters N`` scales it all):

- **nodes**: ``--nodes-per-cluster`` (20), the first 3 control-plane, the rest workers.
- **PKI**: kubeadm's 3 CAs and ``--certificates-per-cluster`` (200) leaf rows: the cluster's
  39 tree files (7 cluster-wide, 5 per control-plane node, ``kubelet.conf`` per worker) in
  generations, the newest of each file active and the older ones superseded (pointing at their
  successor), as renewals leave them. The rows are about rows, not signatures: a pool of 64
  ECDSA P-256 certificates, each with its own NotAfter spread from 10 days ago to a year ahead,
  is generated once and reused; a row's NotAfter, serial and fingerprint are those of its PEM.
  Leaf rows carry no private key (as a certificate signed from a CSR does); the CA rows share
  one encrypted key per CA name.
- **jobs**: ``--jobs-per-cluster`` (100), mostly succeeded, some failed, each on 2 nodes with
  ``--steps-per-job`` (4) steps and ``--chunks-per-job`` (20) log chunks spread over them.
- **health**: the latest result of every check of every node (9 checks on a control-plane
  node, 4 on a worker: 95 per cluster) and 10 status changes per cluster over the week. The
  rounds keep one history sample per check and quarter hour (their results merged into it), so
  ``--history-clusters`` (5) clusters get one sample per check every ``--sample-minutes`` (15)
  for ``--history-days`` (7) days (672 samples per check), as a week of rounds leaves them.
- **findings**: 3 open findings per cluster, and 10 scanned certificates per node of the
  history clusters (the fleet expiry table reads them and the ledger).

On PostgreSQL the rows go in with ``COPY`` (psycopg), elsewhere with ``bulk_create`` in large
batches; primary keys are assigned by the seed (after the highest existing one) so that rows
can point at each other without reading anything back, and the sequences are reset at the end.

Run (from the repository root), against the database of ``DATABASE_URL`` (SQLite under the
data directory when unset), after ``manage.py migrate``::

    .venv/bin/python -m bench.seed --clusters 1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BATCH = 20_000
CONTROL_PLANES = 3
CA_NAMES = ("ca", "front-proxy-ca", "etcd/ca")
CLUSTER_FILES = (
    ("front-proxy-client", "front-proxy-ca"),
    ("apiserver-kubelet-client", "ca"),
    ("apiserver-etcd-client", "etcd/ca"),
    ("admin.conf", "ca"),
    ("super-admin.conf", "ca"),
    ("controller-manager.conf", "ca"),
    ("scheduler.conf", "ca"),
)
CONTROL_PLANE_FILES = (
    ("apiserver", "ca"),
    ("etcd/server", "etcd/ca"),
    ("etcd/peer", "etcd/ca"),
    ("etcd/healthcheck-client", "etcd/ca"),
    ("kubelet.conf", "ca"),
)
WORKER_FILES = (("kubelet.conf", "ca"),)
CONTROL_PLANE_CHECKS = (
    ("ssh", "{address}:22"),
    ("kube-apiserver livez", "https://{address}:6443/livez"),
    ("kube-apiserver readyz", "https://{address}:6443/readyz"),
    ("etcd", "https://{address}:2379/health"),
    ("kube-controller-manager", "https://127.0.0.1:10257/healthz"),
    ("kube-scheduler", "https://127.0.0.1:10259/healthz"),
    ("kubelet", "http://127.0.0.1:10248/healthz"),
    ("kube-proxy", "http://127.0.0.1:10256/healthz"),
    ("container-runtime", "/var/run/containerd/containerd.sock"),
)
WORKER_CHECKS = (
    ("ssh", "{address}:22"),
    ("kubelet", "http://127.0.0.1:10248/healthz"),
    ("kube-proxy", "http://127.0.0.1:10256/healthz"),
    ("container-runtime", "/var/run/containerd/containerd.sock"),
)
JOB_KINDS = ("facts", "preflight", "certificate-scan", "distribute-pki", "etcd-backup")
PEM_POOL = 64


@dataclass(frozen=True)
class Size:
    clusters: int
    nodes_per_cluster: int = 20
    certificates_per_cluster: int = 200
    jobs_per_cluster: int = 100
    steps_per_job: int = 4
    chunks_per_job: int = 20
    history_clusters: int = 5
    history_days: int = 7
    sample_minutes: int = 15
    events_per_cluster: int = 10
    findings_per_cluster: int = 3
    scanned_per_node: int = 10

    def __post_init__(self) -> None:
        if self.nodes_per_cluster < CONTROL_PLANES:
            raise ValueError(f"at least {CONTROL_PLANES} nodes per cluster")
        if self.steps_per_job < 1 or self.chunks_per_job < 0:
            raise ValueError("at least one step per job, no negative chunk count")


@dataclass(frozen=True)
class _Pem:
    pem: str
    serial: str
    fingerprint: str
    spki: str
    not_before: dt.datetime
    not_after: dt.datetime


def _pem_pool(now: dt.datetime) -> tuple[list[_Pem], dict[str, _Pem], str]:
    """(leaf PEMs with NotAfter spread over -10…+365 days, a CA PEM per CA name, one CA key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def make(cn: str, not_before: dt.datetime, not_after: dt.datetime, ca: bool) -> _Pem:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        cert = builder.sign(key, hashes.SHA256())
        der = cert.public_bytes(serialization.Encoding.DER)
        return _Pem(
            pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            serial=format(cert.serial_number, "X"),
            fingerprint=_colon_hex(hashlib.sha256(der).digest()),
            spki=f"sha256:{hashlib.sha256(spki).hexdigest()}",
            not_before=not_before,
            not_after=not_after,
        )

    start = now - dt.timedelta(days=375)
    leaves = [
        make(f"seed-{i}", start, now + dt.timedelta(days=-10 + 375 * i / (PEM_POOL - 1)), False)
        for i in range(PEM_POOL)
    ]
    cas = {
        n: make(n, now - dt.timedelta(days=400), now + dt.timedelta(days=3250), True)
        for n in CA_NAMES
    }
    return leaves, cas, key_pem


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


class _Writer:
    """Rows of one model as tuples of field attnames: COPY on PostgreSQL, bulk_create else."""

    def __init__(self, log: Callable[[str], None]) -> None:
        from django.db import connection

        self.connection = connection
        self.postgres = connection.vendor == "postgresql"
        self.log = log
        self.counts: dict[str, int] = {}
        self.models: list[Any] = []

    def next_id(self, model: Any) -> int:
        from django.db.models import Max

        return int(model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1

    def write(self, model: Any, fields: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
        started = time.monotonic()
        count = 0
        if self.postgres:
            count = self._copy(model, fields, rows)
        else:
            for batch in _batches(rows, BATCH):
                model.objects.bulk_create(
                    [model(**dict(zip(fields, row, strict=True))) for row in batch],
                    batch_size=BATCH,
                )
                count += len(batch)
        label = model._meta.label
        self.counts[label] = self.counts.get(label, 0) + count
        if model not in self.models:
            self.models.append(model)
        self.log(f"  {label}: {count:,} rows in {time.monotonic() - started:.1f} s")
        return count

    def _copy(self, model: Any, fields: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
        meta = model._meta
        # COPY leaves out nothing: the columns the rows do not name get the model's defaults
        # (Django keeps defaults in Python, not in the table).
        given = {meta.get_field(f).column for f in fields}
        rest = [f for f in meta.concrete_fields if f.column not in given and not f.primary_key]
        fill = tuple(_default(f) for f in rest)
        all_fields = [meta.get_field(f) for f in fields] + rest
        columns = [f.column for f in all_fields]
        json_at = {i for i, f in enumerate(all_fields) if f.get_internal_type() == "JSONField"}
        sql = 'COPY "{}" ({}) FROM STDIN'.format(
            meta.db_table, ", ".join(f'"{c}"' for c in columns)
        )
        count = 0
        self.connection.ensure_connection()
        with self.connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                row = row + fill
                if json_at:
                    row = tuple(json.dumps(v) if i in json_at else v for i, v in enumerate(row))
                copy.write_row(row)
                count += 1
        return count

    def finish(self) -> None:
        """Move every seeded table's id sequence past the ids the seed chose."""
        from django.core.management.color import no_style

        statements = self.connection.ops.sequence_reset_sql(no_style(), self.models)
        with self.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            if self.postgres:
                cursor.execute("ANALYZE")

    def vacuum(self) -> None:
        """What autovacuum does in a live database, once the seed has committed: right after COPY
        the visibility map is empty and PostgreSQL will not answer from a covering index alone
        (the fleet table: 136 ms before, 27 ms after). VACUUM cannot run inside a transaction,
        so a seed inside one (a test's) keeps the ANALYZE of ``finish`` only."""
        if self.postgres and not self.connection.in_atomic_block:
            with self.connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")


def _default(field: Any) -> Any:
    if field.has_default():
        return field.get_default()
    if field.null:
        return None
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        from django.utils import timezone

        return timezone.now()
    return ""


def _batches(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def seed(size: Size, log: Callable[[str], None] = print, prefix: str = "seed") -> dict[str, int]:
    """Add ``size`` worth of rows (cluster names ``<prefix>-<n>``); row counts by model."""
    from django.contrib.auth.models import User
    from django.db import transaction
    from django.utils import timezone

    from nodes.health.findings import Finding, ScannedCertificate
    from nodes.models import Cluster, Node
    from pki.models import Certificate, CertificateAuthority

    now = timezone.now()
    leaves, ca_pems, key_pem = _pem_pool(now)
    w = _Writer(log)
    operator, _ = User.objects.get_or_create(username=f"{prefix}-operator")
    encrypted_key = CertificateAuthority._meta.get_field("private_key_pem").get_prep_value(key_pem)
    n_nodes = size.nodes_per_cluster
    with transaction.atomic():
        c0, n0 = w.next_id(Cluster), w.next_id(Node)
        cluster_ids = range(c0, c0 + size.clusters)
        w.write(
            Cluster,
            ("id", "name", "control_plane_endpoint", "extra_sans", "description",
             "created_at", "updated_at"),
            ((c0 + i, f"{prefix}-{c0 + i}", f"lb-{c0 + i}.example.internal:6443", [], "",
              now - dt.timedelta(days=30), now) for i in range(size.clusters)),
        )  # fmt: skip

        def node_id(cluster: int, index: int) -> int:
            return n0 + (cluster - c0) * n_nodes + index

        def address(cluster: int, index: int) -> str:
            return f"10.{(cluster // 250) % 250}.{cluster % 250}.{10 + index}"

        def role(index: int) -> str:
            return "control-plane" if index < CONTROL_PLANES else "worker"

        def node_name(index: int) -> str:
            return f"cp-{index + 1}" if index < CONTROL_PLANES else f"worker-{index - 2}"

        w.write(
            Node,
            ("id", "cluster_id", "name", "address", "role", "status", "labels", "facts",
             "ssh_private_key", "ssh_key_passphrase", "ssh_password", "kubelet_version",
             "joined_at", "created_at", "updated_at"),
            ((node_id(c, i), c, node_name(i), address(c, i), role(i), "ready", {},
              {"os": {"id": "debian", "version_id": "12"}, "cpus": 4, "memory_mb": 8192},
              "", "", "", "v1.31.0", now - dt.timedelta(days=29), now, now)
             for c in cluster_ids for i in range(n_nodes)),
        )  # fmt: skip
        ca0 = w.next_id(CertificateAuthority)

        def ca_id(cluster: int, name: str) -> int:
            return ca0 + (cluster - c0) * len(CA_NAMES) + CA_NAMES.index(name)

        w.write(
            CertificateAuthority,
            ("id", "cluster_id", "name", "source", "status", "private_key_pem",
             "certificate_pem", "common_name", "serial", "not_before", "not_after",
             "fingerprint_sha256", "spki_sha256", "created_at"),
            ((ca_id(c, n), c, n, "generated", "active", encrypted_key, p.pem, n, p.serial,
              p.not_before, p.not_after, p.fingerprint, p.spki, now - dt.timedelta(days=30))
             for c in cluster_ids for n in CA_NAMES for p in (ca_pems[n],)),
        )  # fmt: skip
        files: list[tuple[str, str, int | None]] = [(f, ca, None) for f, ca in CLUSTER_FILES]
        for i in range(n_nodes):
            kinds = CONTROL_PLANE_FILES if i < CONTROL_PLANES else WORKER_FILES
            files.extend((f, ca, i) for f, ca in kinds)
        per = size.certificates_per_cluster
        cert0 = w.next_id(Certificate)

        def certificates() -> Iterator[tuple[Any, ...]]:
            for c in cluster_ids:
                base = cert0 + (c - c0) * per
                for i in range(per):
                    name, ca, index = files[i % len(files)]
                    active = i + len(files) >= per
                    # Older generations expire sooner; the active ones spread over the pool.
                    generation = (per - 1 - i) // len(files)
                    p = leaves[(c * 7 + i) % PEM_POOL // (1 + generation)]
                    yield (
                        base + i, c, None if index is None else node_id(c, index),
                        "" if index is None else node_name(index), ca_id(c, ca), "kubeadm",
                        name, ["system:masters"] if name == "admin.conf" else [],
                        [] if index is None else [node_name(index)],
                        [] if index is None else [address(c, index)], ["digital signature"],
                        "kubernetes", "active" if active else "superseded",
                        None if active else p.not_after,
                        None if active else base + i + len(files), "",
                        p.pem, name, p.serial, p.not_before, p.not_after, p.fingerprint,
                        p.spki, p.not_before,
                    )  # fmt: skip

        w.write(
            Certificate,
            ("id", "cluster_id", "node_id", "node_name", "authority_id", "kind", "name",
             "organizations", "dns_names", "ip_addresses", "usages", "issuer", "status",
             "status_changed_at", "superseded_by_id", "private_key_pem", "certificate_pem",
             "common_name", "serial", "not_before", "not_after", "fingerprint_sha256",
             "spki_sha256", "created_at"),
            certificates(),
        )  # fmt: skip
        _jobs(w, size, prefix, cluster_ids, node_id, node_name, operator.pk, now)
        _health(w, size, cluster_ids, node_id, address, now)
        f0 = w.next_id(Finding)
        w.write(
            Finding,
            ("id", "cluster_id", "node_id", "kind", "severity", "path", "message",
             "suggestion", "action_kind", "first_seen", "last_seen"),
            ((f0 + (c - c0) * size.findings_per_cluster + k, c, node_id(c, k % n_nodes),
              "expiry", ("warning", "critical", "info")[k % 3],
              f"/etc/kubernetes/pki/seed-{k}.crt", f"seed-{k}.crt expires in {10 + k} days",
              "Renew the certificate.", "", now - dt.timedelta(days=1), now)
             for c in cluster_ids for k in range(size.findings_per_cluster)),
        )  # fmt: skip
        history = cluster_ids[: size.history_clusters]
        s0 = w.next_id(ScannedCertificate)
        w.write(
            ScannedCertificate,
            ("id", "cluster_id", "node_id", "path", "subject", "issuer", "sans", "not_after",
             "fingerprint", "scanned_at"),
            ((s0 + ((c - c0) * n_nodes + i) * size.scanned_per_node + k, c, node_id(c, i),
              f"/etc/kubernetes/pki/file-{k}.crt", f"CN=file-{k}", "CN=kubernetes", [],
              p.not_after, p.fingerprint, now)
             for c in history for i in range(n_nodes) for k in range(size.scanned_per_node)
             for p in (leaves[(c + i + k) % PEM_POOL],)),
        )  # fmt: skip
        w.finish()
    w.vacuum()
    return w.counts


def _jobs(
    w: _Writer,
    size: Size,
    prefix: str,
    cluster_ids: range,
    node_id: Callable[[int, int], int],
    node_name: Callable[[int], str],
    operator_id: int,
    now: dt.datetime,
) -> None:
    from clusterpanel.jobs.models import Job, JobLogChunk, JobStep

    per, steps, chunks = size.jobs_per_cluster, size.steps_per_job, size.chunks_per_job
    j0, st0 = w.next_id(Job), w.next_id(JobStep)
    c0 = cluster_ids.start
    week = dt.timedelta(days=7)

    def job_id(c: int, k: int) -> int:
        return j0 + (c - c0) * per + k

    def created(c: int, k: int) -> dt.datetime:
        return now - week * (1 - k / max(per, 1)) - dt.timedelta(seconds=c % 600)

    def targets(k: int) -> tuple[int, int]:
        return k % size.nodes_per_cluster, (k + 1) % size.nodes_per_cluster

    def status(c: int, k: int) -> str:
        return "failed" if (c + k) % 10 == 0 else "succeeded"

    w.write(
        Job,
        ("id", "kind", "cluster_id", "cluster_name", "params", "plan", "mutating", "status",
         "launched_by_id", "launched_by_name", "via", "created_at", "started_at",
         "finished_at", "explanation", "traceback", "task_id", "deadline_seconds", "attempt"),
        ((job_id(c, k), JOB_KINDS[k % len(JOB_KINDS)], c, f"{prefix}-{c}", {}, {}, False,
          status(c, k), operator_id, f"{prefix}-operator", "api", created(c, k),
          created(c, k) + dt.timedelta(seconds=1), created(c, k) + dt.timedelta(seconds=40),
          "one step failed" if status(c, k) == "failed" else "all steps succeeded", "", "",
          3600, 1)
         for c in cluster_ids for k in range(per)),
    )  # fmt: skip
    through = Job.nodes.through
    t0 = w.next_id(through)
    w.write(
        through,
        ("id", "job_id", "node_id"),
        ((t0 + ((c - c0) * per + k) * 2 + n, job_id(c, k), node_id(c, targets(k)[n]))
         for c in cluster_ids for k in range(per) for n in (0, 1)),
    )  # fmt: skip

    def step_id(c: int, k: int, s: int) -> int:
        return st0 + ((c - c0) * per + k) * steps + s

    def step_node(k: int, s: int) -> int:
        return targets(k)[s % 2]

    w.write(
        JobStep,
        ("id", "job_id", "position", "phase", "node_id", "node_name", "name", "status",
         "exit_code", "started_at", "finished_at", "message", "result", "stdout_bytes",
         "stderr_bytes", "dropped_bytes"),
        ((step_id(c, k, s), job_id(c, k), s, f"phase-{s // 2}", node_id(c, step_node(k, s)),
          node_name(step_node(k, s)), f"step-{s}",
          "failed" if status(c, k) == "failed" and s == steps - 1 else "succeeded",
          1 if status(c, k) == "failed" and s == steps - 1 else 0,
          created(c, k) + dt.timedelta(seconds=1 + s), created(c, k) + dt.timedelta(seconds=2 + s),
          "", {}, 600, 0, 0)
         for c in cluster_ids for k in range(per) for s in range(steps)),
    )  # fmt: skip
    line = "[preflight] Running pre-flight checks; reading /etc/os-release and kernel modules\n"
    w.write(
        JobLogChunk,
        ("job_id", "step_id", "seq", "node_name", "stream", "text", "created_at"),
        ((job_id(c, k), step_id(c, k, q * steps // max(chunks, 1)), q,
          node_name(step_node(k, q * steps // max(chunks, 1))), "stdout", line * 4,
          created(c, k) + dt.timedelta(seconds=1 + q))
         for c in cluster_ids for k in range(per) for q in range(chunks)),
    )  # fmt: skip


def _health(
    w: _Writer,
    size: Size,
    cluster_ids: range,
    node_id: Callable[[int, int], int],
    address: Callable[[int, int], str],
    now: dt.datetime,
) -> None:
    from nodes.models import ComponentHealth, HealthEvent, HealthSample

    def checks(c: int) -> Iterator[tuple[int, str, str]]:
        for i in range(size.nodes_per_cluster):
            for component, target in CONTROL_PLANE_CHECKS if i < CONTROL_PLANES else WORKER_CHECKS:
                yield node_id(c, i), component, target.format(address=address(c, i))

    def status(c: int, n: int) -> str:
        return "unhealthy" if (c + n) % 97 == 0 else "healthy"

    w.write(
        ComponentHealth,
        ("cluster_id", "node_id", "component", "target", "status", "latency_ms", "message",
         "checked_at", "changed_at"),
        ((c, n, component, target, status(c, n), 2.5, "", now, now - dt.timedelta(hours=3))
         for c in cluster_ids for n, component, target in checks(c)),
    )  # fmt: skip
    week = dt.timedelta(days=size.history_days)
    w.write(
        HealthEvent,
        ("cluster_id", "node_id", "component", "target", "from_status", "to_status", "message",
         "at"),
        ((c, n, component, target, "healthy" if e % 2 == 0 else "unhealthy",
          "unhealthy" if e % 2 == 0 else "healthy", "connection refused" if e % 2 == 0 else "",
          now - week * (1 - e / size.events_per_cluster))
         for c in cluster_ids
         for e, (n, component, target) in zip(
             range(size.events_per_cluster), itertools.cycle(list(checks(c))), strict=False)),
    )  # fmt: skip
    step = dt.timedelta(minutes=size.sample_minutes)
    samples = int(week / step)
    rounds = size.sample_minutes  # at the default 60 s interval, merged into each sample
    w.write(
        HealthSample,
        ("cluster_id", "node_id", "component", "target", "status", "latency_ms", "checked_at",
         "samples"),
        ((c, n, component, target, "healthy", 1.0 + (t % 7) * 0.5, now - step * (samples - t),
          rounds)
         for c in cluster_ids[: size.history_clusters]
         for n, component, target in checks(c) for t in range(samples)),
    )  # fmt: skip


def setup_django() -> None:
    """Django from the repository's settings and the environment (``DATABASE_URL``)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clusterpanel.settings")
    import django

    django.setup()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Size(clusters=1000)
    parser.add_argument("--clusters", type=int, default=defaults.clusters)
    for field in (
        "nodes_per_cluster",
        "certificates_per_cluster",
        "jobs_per_cluster",
        "steps_per_job",
        "chunks_per_job",
        "history_clusters",
        "history_days",
        "sample_minutes",
    ):
        flag = "--" + field.replace("_", "-")
        parser.add_argument(flag, type=int, default=getattr(defaults, field), dest=field)
    parser.add_argument("--prefix", default="seed", help="cluster names <prefix>-<id>")
    args = vars(parser.parse_args(argv))
    prefix = args.pop("prefix")
    setup_django()
    started = time.monotonic()
    counts = seed(Size(**args), prefix=prefix)
    total = sum(counts.values())
    print(f"seeded {total:,} rows in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
