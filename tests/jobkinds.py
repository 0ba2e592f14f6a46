"""Job kinds for tests only: steps that run local shell commands through the job's reporter.

The worker imports this module (``celery worker --include tests.jobkinds``); tests import it
too, so the web side knows the kinds. A kind's params list its steps::

    {"phases": [{"name": "p1", "steps": [{"name": "s1", "node": "cp-1", "command": "echo hi",
                                          "checks": [{"name": "swap", "status": "pass"}]}]}],
     "raise": false, "fail_with": ""}

Steps of a phase run in parallel threads, as the executor fans them out over nodes, so the
reporter is exercised from several threads. It uses the real plan types of ``nodes.recipes``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clusterpanel.errors import InputError
from clusterpanel.jobs.registry import JobFailed, JobKind, RunResult, register
from nodes.recipes.plan import Check, Command, Outcome, Phase, Plan, Step
from tests import binary_sources

SHELL = "test-shell"  # mutating
READ_ONLY = "test-read"  # not mutating


def validate(params: Mapping[str, Any]) -> dict[str, Any]:
    phases = params.get("phases", [])
    if not isinstance(phases, list):
        raise InputError("phases must be a list", "params.phases")
    return dict(params)


def build_plan(job: Any) -> Plan:
    return Plan(
        kind=job.kind,
        phases=tuple(
            Phase(
                name=phase["name"],
                steps=tuple(
                    Step(step["name"], step.get("node"), (Command(step.get("command", "true")),))
                    for step in phase["steps"]
                ),
            )
            for phase in job.params.get("phases", [])
        ),
    )


def preview(job: Any) -> dict[str, Any]:
    return build_plan(job).preview()


def _pump(pipe: Any, stream: str, handle: Any) -> None:
    for block in iter(lambda: pipe.read1(4096), b""):
        handle.output(stream, block)


def _run_step(job: Any, reporter: Any, phase: str, spec: dict[str, Any]) -> str:
    node = spec.get("node")
    if reporter.cancel_event.is_set():
        reporter.skip_step(phase, spec["name"], node, "cancelled")
        return "cancelled"
    if reporter.previous(phase, spec["name"], node) is not None:
        reporter.skip_step(phase, spec["name"], node, "succeeded in an earlier attempt")
        return "succeeded"
    handle = reporter.start_step(phase, spec["name"], node)
    process = subprocess.Popen(
        ["/bin/sh", "-c", spec.get("command", "true")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so that a cancel stops the shell's children too
    )
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, "stdout", handle)),
        threading.Thread(target=_pump, args=(process.stderr, "stderr", handle)),
    ]
    for pump in pumps:
        pump.start()
    while process.poll() is None:
        if reporter.cancel_event.wait(0.1):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    for pump in pumps:
        pump.join()
    code = process.wait()
    checks = tuple(
        Check(c.get("node", node), c["name"], c["status"], c.get("message", ""))
        for c in spec.get("checks", [])
    )
    if code == 0:
        outcome = Outcome("succeeded", "done", {"exit": code}, checks)
    else:
        outcome = Outcome("failed", f"exited with code {code}", {"exit": code}, checks)
    handle.finish(outcome, code)
    return outcome.status


def run(job: Any, reporter: Any) -> RunResult:
    if job.params.get("raise"):
        raise ValueError("a bug in the kind")
    plan = build_plan(job)
    reporter.planned(plan)
    failed = ""
    for phase in job.params.get("phases", []):
        if failed or reporter.cancel_event.is_set():
            for spec in phase["steps"]:
                why = "cancelled" if reporter.cancel_event.is_set() else "an earlier phase failed"
                reporter.skip_step(phase["name"], spec["name"], spec.get("node"), why)
            continue
        name = phase["name"]
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda s, n=name: _run_step(job, reporter, n, s),
                                    phase["steps"]))  # fmt: skip
        if "failed" in results:
            failed = phase["name"]
    if job.params.get("fail_with"):
        raise JobFailed(job.params["fail_with"])
    if reporter.cancel_event.is_set():
        return RunResult("cancelled", "cancelled")
    if failed:
        return RunResult("failed", f"a step of phase {failed} failed")
    steps = sum(len(p["steps"]) for p in job.params.get("phases", []))
    return RunResult("succeeded", f"all {steps} steps succeeded")


register(JobKind(SHELL, "Test shell steps", True, validate, preview, run))
register(JobKind(READ_ONLY, "Test read-only shell steps", False, validate, preview, run))


# The node files of binary-installed clusters the tests prepare (tests/binary_sources.py), in the
# worker as in the tests.
binary_sources.register()
