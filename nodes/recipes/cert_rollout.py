"""The ``cert-rollout`` job: renewed certificates written onto the nodes and every component that
reads them restarted, one control-plane node at a time.

Renewed files on disk change nothing until the processes that read them restart: kube-apiserver,
kube-controller-manager, kube-scheduler and (stacked) etcd are static pods that keep the old
certificates in memory, and ``kubeadm certs renew`` restarts none of them. So, per control-plane
node, in name order, one phase ``roll out <node>`` with one step (its name carries the start of
the node's new apiserver serial, so a retry of the same rollout skips the nodes already done and
resumes at the failed one, while a rollout of a later renewal runs again):

1. every file that will be replaced with other content marks the components that read it as
   pending (``/etc/kubernetes/manifests-rollout/pending/<component>``): a restart that failed
   half-way is still owed on the retry, when the files already are the new ones;
2. replaced files are backed up and the bundle written as ``distribute-pki`` does (keys 0600,
   identical files left alone);
3. each pending static pod is restarted the kubeadm way: its manifest moved from
   ``/etc/kubernetes/manifests`` to ``/etc/kubernetes/manifests-rollout/``, a bounded wait until
   ``crictl ps --name <component> -q`` lists no container, the manifest moved back, a bounded wait
   until the container is back; ``systemctl restart kubelet`` when ``kubelet.conf`` changed;
4. a bounded wait until that node's apiserver answers ``/livez`` (verified with the cluster CA) and
   serves the new certificate (its serial, read with ``openssl s_client``).

The first failure stops the rollout: later nodes are not touched, and the job's explanation
names the node and what did not happen. Workers come last, in parallel: only ``kubelet.conf``,
and kubelet restarted only where that file changed. External etcd members are not rolled out
here (their etcd runs under systemd, not as a static pod).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes import distribute_pki
from nodes.recipes.distribute_pki import ROOT, BundleFile
from nodes.recipes.plan import (
    Action,
    ClusterSpec,
    Command,
    FileWrite,
    NodeTarget,
    Outcome,
    Phase,
    Plan,
    Step,
    StepContext,
)

KIND = "cert-rollout"
MUTATING = True
SAY = "clusterpanel:"
MANIFESTS = f"{ROOT}/manifests"
HOLDING = f"{ROOT}/manifests-rollout"
PENDING = f"{HOLDING}/pending"
WORKERS_PHASE = "workers"
DEFAULT_WAIT = 180
MAX_WAIT = 1800
# Time a step's commands get on top of their own waits (SSH, crictl answering slowly).
SLACK = 60.0

STATIC_PODS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
KUBELET = "kubelet"

# Which component reads which file of a kubeadm control-plane node (the flags kubeadm's static
# pod manifests and kubelet configuration pass). A file no component reads (admin.conf, the
# front-proxy and etcd CA keys, healthcheck-client) restarts nothing; an unknown file restarts
# the apiserver, to be safe (the audit policy is one).
READERS: Mapping[str, tuple[str, ...]] = {
    "pki/ca.crt": ("kube-apiserver", "kube-controller-manager", KUBELET),
    "pki/ca.key": ("kube-controller-manager",),
    "pki/apiserver.crt": ("kube-apiserver",),
    "pki/apiserver.key": ("kube-apiserver",),
    "pki/apiserver-kubelet-client.crt": ("kube-apiserver",),
    "pki/apiserver-kubelet-client.key": ("kube-apiserver",),
    "pki/apiserver-etcd-client.crt": ("kube-apiserver",),
    "pki/apiserver-etcd-client.key": ("kube-apiserver",),
    "pki/front-proxy-ca.crt": ("kube-apiserver", "kube-controller-manager"),
    "pki/front-proxy-client.crt": ("kube-apiserver",),
    "pki/front-proxy-client.key": ("kube-apiserver",),
    "pki/sa.pub": ("kube-apiserver",),
    "pki/sa.key": ("kube-apiserver", "kube-controller-manager"),
    "pki/etcd/ca.crt": ("etcd", "kube-apiserver"),
    "pki/etcd/server.crt": ("etcd",),
    "pki/etcd/server.key": ("etcd",),
    "pki/etcd/peer.crt": ("etcd",),
    "pki/etcd/peer.key": ("etcd",),
    "controller-manager.conf": ("kube-controller-manager",),
    "scheduler.conf": ("kube-scheduler",),
    "kubelet.conf": (KUBELET,),
    "admin.conf": (),
    "super-admin.conf": (),
    "pki/front-proxy-ca.key": (),
    "pki/etcd/ca.key": (),
    "pki/etcd/healthcheck-client.crt": (),
    "pki/etcd/healthcheck-client.key": (),
}


@dataclass(frozen=True)
class NodeRollout:
    """What the panel holds for one node: its bundle files (relative to ``/etc/kubernetes``) and,
    for a control-plane node, the serial of its apiserver certificate (upper-case hex)."""

    files: Mapping[str, BundleFile] = field(repr=False)
    apiserver_serial: str = ""


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``wait_seconds``: how long each wait (a container gone or back, /livez, the new serial)
    may take before the node counts as failed."""
    for key in params:
        if key != "wait_seconds":
            raise InputError(f"cert-rollout has no parameter {key!r}", key)
    wait = params.get("wait_seconds", DEFAULT_WAIT)
    if isinstance(wait, bool) or not isinstance(wait, int) or not 1 <= wait <= MAX_WAIT:
        raise InputError(
            f"wait_seconds must be a whole number from 1 to {MAX_WAIT}", "wait_seconds"
        )
    return {"wait_seconds": wait}


def readers(path: str, stacked: bool) -> tuple[str, ...]:
    found = READERS.get(path, ("kube-apiserver",))
    return tuple(c for c in found if stacked or c != "etcd")


def plan(
    cluster: ClusterSpec,
    nodes: Sequence[NodeTarget],
    params: Mapping[str, Any],
    inputs: Mapping[str, NodeRollout] | None = None,
) -> Plan:
    wait = validate_params(params)["wait_seconds"]
    stacked = cluster.etcd_topology != "external"
    phases = []
    workers = []
    for node in nodes:
        if node.role not in ("control-plane", "worker"):
            continue  # external etcd members: see the module's docstring
        rollout = (inputs or {}).get(node.name)
        if rollout is None or not rollout.files:
            raise InputError(f"{node.name} has no certificates to roll out", "nodes")
        if node.role == "control-plane":
            phases.append(control_plane_phase(node, rollout, stacked, wait))
        else:
            workers.append(worker_step(node, rollout))
    if not phases and not workers:
        raise InputError("cert-rollout needs control-plane or worker nodes", "nodes")
    if workers:
        phases.append(Phase(WORKERS_PHASE, tuple(workers)))
    return Plan(KIND, tuple(phases))


def phase_name(node: NodeTarget) -> str:
    return f"roll out {node.name}"


def step_name(rollout: NodeRollout) -> str:
    return f"new certificates (apiserver serial {rollout.apiserver_serial[:16]})"


def control_plane_phase(node: NodeTarget, rollout: NodeRollout, stacked: bool, wait: int) -> Phase:
    if not rollout.apiserver_serial or not all(
        c in "0123456789ABCDEF" for c in rollout.apiserver_serial
    ):
        raise ValueError(f"{node.name} needs its apiserver serial in upper-case hex")
    distribute_pki.check_bundle(node, rollout.files)
    writes = _writes(rollout.files)
    pods = [c for c in STATIC_PODS if stacked or c != "etcd"]
    actions: tuple[Action, ...] = (
        mark_command(rollout.files, stacked),
        distribute_pki.backup_command(writes),
        *writes,
        *(restart_static_pod(c, wait) for c in pods),
        restart_kubelet(),
        livez_command(node.address, wait),
        serial_command(node.address, rollout.apiserver_serial, wait),
    )
    return Phase(phase_name(node), (Step(step_name(rollout), node.name, actions, read),))


def worker_step(node: NodeTarget, rollout: NodeRollout) -> Step:
    files = {p: f for p, f in rollout.files.items() if p == "kubelet.conf"}
    if not files:
        raise InputError(f"the worker {node.name} has no kubelet.conf to roll out", "nodes")
    distribute_pki.check_bundle(node, files)
    writes = _writes(files)
    digest = writes[0].sha256[:12]
    actions: tuple[Action, ...] = (
        mark_command(files, False),
        distribute_pki.backup_command(writes),
        *writes,
    )
    return Step(f"kubelet.conf {digest}", node.name, (*actions, restart_kubelet()), read)


def _writes(files: Mapping[str, BundleFile]) -> list[FileWrite]:
    return [
        FileWrite(
            f"{ROOT}/{path}",
            f.content,
            mode=f.mode,
            secret=path.endswith(".key") or f.mode & 0o077 == 0,
            skip_if_identical=True,
        )
        for path, f in sorted(files.items())
    ]


def mark_command(files: Mapping[str, BundleFile], stacked: bool) -> Command:
    """Before the writes: each component reading a file that is missing or differs is pending."""
    q = shlex.quote
    calls = []
    for path, f in sorted(files.items()):
        components = readers(path, stacked)
        if components:
            write = FileWrite(f"{ROOT}/{path}", f.content)
            calls.append(f"mark {q(write.path)} {write.sha256} {' '.join(components)}")
    script = f"""set -e
mkdir -p -m 0700 {PENDING}
mark() {{
  f=$1; sum=$2; shift 2
  if [ -f "$f" ] && [ "$(sha256sum < "$f" | cut -c1-64)" = "$sum" ]; then return 0; fi
  for c in "$@"; do : > {PENDING}/"$c"; done
}}
{chr(10).join(calls)}
echo "{SAY} to restart: $(ls {PENDING} | tr '\\n' ' ')"
"""
    return Command(script, timeout=60.0)


def _wait_loop(condition: str, wait: int, failure: str) -> str:
    """A shell loop polling ``condition`` each second, failing with ``failure`` after ``wait``."""
    return f"""end=$(($(date +%s) + {wait}))
until {condition}; do
  if [ "$(date +%s)" -ge "$end" ]; then echo "{SAY} {failure}" >&2; exit 1; fi
  sleep 1
done"""


def restart_static_pod(component: str, wait: int) -> Command:
    """Move the manifest out, wait until the container is gone, move it back, wait until it runs.

    A component that is not pending is left alone; one whose container does not stop gets its
    manifest back before the step fails, so the node is never left without it."""
    manifest = f"{MANIFESTS}/{component}.yaml"
    held = f"{HOLDING}/{component}.yaml"
    running = f'[ -n "$(crictl ps --name {component} -q)" ]'
    gone = f'[ -z "$(crictl ps --name {component} -q)" ]'
    script = f"""set -e
if [ ! -e {PENDING}/{component} ] && [ ! -e {held} ]; then
  echo "{SAY} {component} reads no changed file: not restarted"; exit 0
fi
if [ -e {manifest} ]; then mv {manifest} {held}; fi
if [ ! -e {held} ]; then
  echo "{SAY} no static pod manifest {manifest} to restart {component} with" >&2; exit 1
fi
end=$(($(date +%s) + {wait}))
until {gone}; do
  if [ "$(date +%s)" -ge "$end" ]; then
    mv {held} {manifest}
    echo "{SAY} the {component} container was still running {wait} s after its manifest was \
moved out" >&2
    exit 1
  fi
  sleep 1
done
mv {held} {manifest}
{_wait_loop(running, wait, f"the {component} container did not come back within {wait} s")}
rm -f {PENDING}/{component}
echo "{SAY} {component} restarted"
"""
    return Command(script, timeout=2 * wait + SLACK)


def restart_kubelet() -> Command:
    script = f"""set -e
if [ ! -e {PENDING}/{KUBELET} ]; then echo "{SAY} kubelet.conf unchanged: kubelet not restarted"
else systemctl restart kubelet; rm -f {PENDING}/{KUBELET}; echo "{SAY} kubelet restarted"; fi
"""
    return Command(script, timeout=120.0)


def _endpoint(address: str) -> str:
    return f"[{address}]:6443" if ":" in address else f"{address}:6443"


def livez_command(address: str, wait: int) -> Command:
    url = shlex.quote(f"https://{_endpoint(address)}/livez")
    check = f"curl --cacert {ROOT}/pki/ca.crt -sf {url} >/dev/null"
    script = f"""set -e
{_wait_loop(check, wait, f"the apiserver at {url} did not answer /livez within {wait} s")}
echo "{SAY} /livez answered"
"""
    # curl waits for each answer at most --max-time's default (none): the loop's end bounds it.
    return Command(script, timeout=wait + SLACK)


def serial_command(address: str, serial: str, wait: int) -> Command:
    endpoint = shlex.quote(_endpoint(address))
    want = serial.lstrip("0") or "0"
    served = (
        f"openssl s_client -connect {endpoint} </dev/null 2>/dev/null "
        "| openssl x509 -noout -serial | sed 's/^serial=0*//' | tr a-f A-F"
    )
    check = f'[ "$({served})" = {want} ]'
    failure = f"the apiserver at {endpoint} still served another certificate after {wait} s"
    script = f"""set -e
{_wait_loop(check, wait, failure + " (serial $(" + served + "), want " + want + ")")}
echo "{SAY} the apiserver serves the new certificate (serial {serial})"
"""
    return Command(script, timeout=wait + SLACK)


def read(context: StepContext) -> Outcome:
    """The panel's own lines say what happened; on a failure the last of stderr says why."""
    said = [
        line.removeprefix(SAY).strip()
        for output in context.outputs
        for line in output.stdout.splitlines()
        if line.startswith(SAY)
    ]
    for output in context.outputs:
        if output.timed_out or output.exit_code != 0:
            why = [
                line.removeprefix(SAY).strip()
                for line in output.stderr.splitlines()
                if line.startswith(SAY)
            ]
            if why:
                return Outcome("failed", why[-1])
            if output.timed_out:
                return Outcome("failed", "timed out")
            tail = output.stderr.strip().splitlines()[-1:] or [""]
            return Outcome("failed", f"exited with code {output.exit_code} {tail[0]}".strip())
    return Outcome("succeeded", "; ".join(said))
