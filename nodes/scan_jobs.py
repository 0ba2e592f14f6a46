"""The ``cert-scan`` job kind: the recipe's read-only scan on every node, then one step on the
worker that compares what the nodes hold with the panel's ledger and keeps the findings."""

from __future__ import annotations

from typing import Any

from clusterpanel.jobs.registry import JobKind, RunResult, register
from nodes.models import Node
from nodes.recipes import cert_scan
from nodes.recipes.plan import Outcome, Phase, Plan, Step, StepContext

RECORD_PHASE = "findings"
RECORD_STEP = "compare with the panel's ledger"


def _plan(job: Any, nodes: list[Node]) -> Plan:
    from nodes import jobs

    plan: Plan = jobs.build_plan(jobs.Recipe(cert_scan, "Scan certificates"), job, nodes)

    def record(context: StepContext) -> Outcome:
        from nodes.health import drift, scan_store

        scanned, silent = [], []
        for node in nodes:
            outcome = context.earlier.get((cert_scan.PHASE, cert_scan.STEP, node.name))
            if outcome is None or outcome.status != "succeeded":
                silent.append(node.name)
                continue
            scanned.append(
                drift.ScannedNode(
                    node.name,
                    node.role,
                    str(node.address),
                    list(outcome.data.get("certificates", ())),
                    list(outcome.data.get("keys", ())),
                )
            )
        result = scan_store.record_scan(job.cluster, scanned, nodes)
        message = f"{len(result.rows)} certificates on {len(scanned)} nodes, "
        message += f"{len(result.findings)} findings"
        if silent:
            return Outcome("failed", message + f"; not scanned: {', '.join(silent)}")
        return Outcome("succeeded", message, {"findings": len(result.findings)})

    step = Step(RECORD_STEP, None, read=record)
    return Plan(plan.kind, (*plan.phases, Phase(RECORD_PHASE, (step,))))


def _preview(job: Any) -> dict[str, Any]:
    from nodes import jobs

    return _plan(job, jobs.job_nodes(job)).preview()


class _FreshAttempt:
    """A scan is read again on retry: the files may have changed since."""

    def __init__(self, reporter: Any) -> None:
        self._reporter = reporter

    def previous(self, phase: str, step: str, node: str | None) -> Outcome | None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reporter, name)


def _run(job: Any, reporter: Any) -> RunResult:
    from nodes import jobs

    nodes = jobs.job_nodes(job)
    execution = jobs.execute_plan(job, _FreshAttempt(reporter), _plan(job, nodes), nodes)
    return RunResult(execution.status, execution.explanation)


def register_kinds() -> None:
    register(
        JobKind(
            name=cert_scan.KIND,
            label="Scan certificates",
            mutating=cert_scan.MUTATING,
            validate_params=cert_scan.validate_params,
            preview=_preview,
            run=_run,
        )
    )
