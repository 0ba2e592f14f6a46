"""The ``upgrade`` job: the whole cluster to a target version, as kubeadm's upgrade guide does it
(pure, no Django; the glue is ``nodes.lifecycle_jobs``).

Checks first, refusing before anything runs (InputError naming ``version``): the version skew
policy — one minor version at a time, no downgrade, the same version is nothing to do; no
kubelet newer than the target API server nor more than three minors older than it. Then, in
phases that each wait for the one before (each phase a single step or steps of one stage, so
that a retry continues at the step that failed):

1. ``plan``: the skew verdict and the order, as a step (shown by the preview).
2. ``health``: every API server's ``/livez``, every node Ready (``kubectl get nodes -o json``),
   every etcd member healthy (``etcdctl endpoint health --cluster`` with the panel's client
   certificate).
3. ``etcd snapshot`` and ``backup``: ``etcdctl snapshot save`` on the first member and a copy of
   ``/etc/kubernetes`` on every node, both in ``/etc/kubernetes/backup/<UTC>-pre-upgrade/``
   (0700), before anything changes.
4. ``packages``: the target minor's repository (pkgs.k8s.io has one per minor) and the target's
   kubeadm, kubelet and kubectl found in it (``apt-cache madison`` / ``dnf list
   --showduplicates``), or in the offline bundle.
5. The first control-plane node: kubeadm to the target (held), ``kubeadm version -o short`` at
   least the target, ``kubeadm upgrade plan <v>``, ``kubeadm upgrade apply <v> --yes`` (never
   ``--force``, never ``--ignore-preflight-errors``); the other control-plane nodes, one at a
   time: kubeadm, ``kubeadm upgrade node``.
6. Per node — control-plane nodes one at a time, then the workers in batches (``batch_percent``
   of them, at least one; a worker first gets kubeadm and ``kubeadm upgrade node``): cordon and
   drain (a failed drain — a PodDisruptionBudget names its pods — uncordons the batch and stops
   the job there; never forced), kubelet and kubectl to the target (held), ``systemctl
   daemon-reload && systemctl restart kubelet``, wait until the node is Ready at the target,
   uncordon.
7. ``verify``: every node reports the target; the glue then records the cluster's version.

kubectl runs on the first control-plane node with ``--kubeconfig /etc/kubernetes/admin.conf``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes import external_etcd as etcd
from nodes.recipes import install
from nodes.recipes.etcd_backup import PanelClient, snapshot_script
from nodes.recipes.plan import (
    ClusterSpec,
    Command,
    FileWrite,
    NodeTarget,
    Outcome,
    Phase,
    Plan,
    Step,
    StepContext,
    default_read,
)
from nodes.recipes.remove_node import KUBECTL, SAY

KIND = "upgrade"
MUTATING = True

BACKUP_ROOT = "/etc/kubernetes/backup"
DRAIN_FAILED = "clusterpanel-drain-failed:"
READY_ATTEMPTS = 60
READY_PAUSE = 5
APPLY_TIMEOUT = 1800.0  # kubeadm waits up to 5 minutes for each static pod it replaces
MAX_SECONDS = 24 * 3600
_VERSION = re.compile(r"v?(\d{1,3})\.(\d{1,3})\.(\d{1,5})")
_EVICTING = re.compile(r'error when evicting pods/"([^"]+)" -n "([^"]+)"')
_STAMP = re.compile(r"[0-9]{8}T[0-9]{6}Z")

DEFAULTS: dict[str, Any] = {
    "batch_percent": 20,
    "grace_period": -1,
    "drain_timeout": 300,
    "drain_retries": 1,
}
PARAMS = ("version", *DEFAULTS, "offline_bundle")

Version = tuple[int, int, int]


def parse_version(text: str, name: str = "version") -> Version:
    match = _VERSION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InputError(f"{text!r} is not a Kubernetes version such as v1.32.0 or 1.32.0", name)
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def show(version: Version) -> str:
    return "v{}.{}.{}".format(*version)


@dataclass(frozen=True)
class Upgrade:
    """The cluster as the inventory knows it. ``control_planes``: the joined control-plane nodes,
    the first (init) node first; ``workers``: the joined workers; ``managers``: each node's
    package manager (apt/dnf); ``kubelets``: the kubelet version each node last reported."""

    control_planes: tuple[NodeTarget, ...]
    workers: tuple[NodeTarget, ...]
    etcd_members: tuple[NodeTarget, ...]
    managers: Mapping[str, str]
    client: PanelClient | None
    stamp: str  # UTC, e.g. 20250101T120000Z: the backup directory's name
    kubelets: Mapping[str, str] = field(default_factory=dict)

    @property
    def nodes(self) -> tuple[NodeTarget, ...]:
        return (*self.control_planes, *self.workers)


# Parameters


def _int(params: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = params.get(name, DEFAULTS[name])
    if value == "":
        value = DEFAULTS[name]
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,9}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"must be a whole number from {low} to {high}", name)
    return value


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``version`` (required, v1.32.0 or 1.32.0), ``batch_percent`` (workers per batch, default
    20 %, at least one node), ``grace_period`` (s, default -1: the pod's own), ``drain_timeout``
    (s, default 300), ``drain_retries`` (default 1), ``offline_bundle`` (as for install)."""
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        known = ", ".join(PARAMS)
        raise InputError(f"unknown parameter {unknown[0]!r}; upgrade takes {known}", unknown[0])
    version = params.get("version")
    if not isinstance(version, str) or not version.strip():
        raise InputError("name the target version, such as v1.32.0", "version")
    validated: dict[str, Any] = {"version": show(parse_version(version))}
    validated["batch_percent"] = _int(params, "batch_percent", 1, 100)
    validated["grace_period"] = _int(params, "grace_period", -1, MAX_SECONDS)
    validated["drain_timeout"] = _int(params, "drain_timeout", 1, MAX_SECONDS)
    validated["drain_retries"] = _int(params, "drain_retries", 0, 10)
    bundle = params.get("offline_bundle")
    validated.update(install.validate_params({"offline_bundle": bundle} if bundle else {}))
    return validated


# Checks


def skew_verdict(current: str, target: str, *, tool: str = "kubeadm") -> str:
    """The skew policy's verdict on ``current`` → ``target``, or InputError naming ``version``.

    ``tool`` is who refuses in the messages: kubeadm itself, or the panel for a binary install
    (which follows the same policy: one minor at a time, no downgrade).
    """
    have, want = parse_version(current, "cluster"), parse_version(target)
    no_downgrade = f"{tool} does not downgrade" if tool else "no downgrade"
    one_minor = f"{tool} upgrades one minor at a time" if tool else "one minor at a time"
    if want == have:
        raise InputError(
            f"the cluster already runs {show(have)}: there is nothing to upgrade", "version"
        )
    if want < have:
        raise InputError(
            f"{show(want)} is older than the cluster's {show(have)}: {no_downgrade}", "version"
        )
    if want[0] != have[0] or want[1] > have[1] + 1:
        step = f"v{have[0]}.{have[1] + 1}"
        raise InputError(
            f"{show(want)} skips a minor version: {one_minor}, "
            f"v{have[0]}.{have[1]} → {step}; upgrade to {step} first",
            "version",
        )
    if want[1] == have[1]:
        return f"{show(have)} → {show(want)}: a patch release of the same minor, allowed"
    return f"{show(have)} → {show(want)}: one minor version up, allowed"


def kubelet_problems(kubelets: Mapping[str, str], target: Version) -> list[str]:
    """Kubelets the target API server would not serve: newer than it, or more than three minor
    versions older (the kubelet skew policy)."""
    problems = []
    for name, text in sorted(kubelets.items()):
        if not text:
            continue
        try:
            have = parse_version(text)
        except InputError:
            continue
        if have[:2] > target[:2] or have > target:
            problems.append(f"the kubelet of {name} is {show(have)}, newer than {show(target)}")
        elif have[0] == target[0] and have[1] < target[1] - 3:
            problems.append(
                f"the kubelet of {name} is {show(have)}, more than three minor versions older "
                f"than {show(target)}"
            )
    return problems


def check(cluster: ClusterSpec, upgrade: Upgrade, params: Mapping[str, Any]) -> str:
    verdict = skew_verdict(cluster.kubernetes_version, params["version"])
    problems = kubelet_problems(upgrade.kubelets, parse_version(params["version"]))
    if problems:
        raise InputError(
            "; ".join(problems) + ": a kubelet is never newer than the API server", "version"
        )
    if not upgrade.control_planes:
        raise InputError(f"cluster {cluster.name} has no joined control-plane node", "nodes")
    return verdict


def batches(workers: Sequence[NodeTarget], percent: int) -> list[list[NodeTarget]]:
    """The workers in batches of ``percent`` of them (rounded down), at least one node each."""
    size = max(1, len(workers) * percent // 100)
    return [list(workers[i : i + size]) for i in range(0, len(workers), size)]


# Reading answers


def _read(context: StepContext) -> Outcome:
    outcome = default_read(context)
    said = [
        line.removeprefix(SAY).strip()
        for output in context.outputs
        for line in output.stdout.splitlines() + output.stderr.splitlines()
        if line.startswith(SAY)
    ]
    if outcome.status == "failed":
        tail = context.outputs[-1].stderr.strip().splitlines() if context.outputs else []
        detail = "; ".join(said) or (tail[-1] if tail else "")
        return Outcome("failed", f"{outcome.message}: {detail}" if detail else outcome.message)
    return Outcome("succeeded", "; ".join(said))


def read_drain(context: StepContext) -> Outcome:
    """A failed drain names its node and, when a PodDisruptionBudget blocked it, the pods."""
    outcome = default_read(context)
    text = "\n".join(o.stdout + "\n" + o.stderr for o in context.outputs)
    if outcome.status == "succeeded":
        return Outcome("succeeded", "; ".join(
            line.removeprefix(SAY).strip() for line in text.splitlines() if line.startswith(SAY)
        ))  # fmt: skip
    node = next(
        (line.removeprefix(DRAIN_FAILED).strip() for line in text.splitlines()
         if line.startswith(DRAIN_FAILED)), "",
    )  # fmt: skip
    pods = sorted({f"{ns}/{pod}" for pod, ns in _EVICTING.findall(text)})
    where = f"the drain of {node}" if node else "the drain"
    if "disruption budget" in text and pods:
        message = (
            f"{where} is blocked by a PodDisruptionBudget: {', '.join(pods)} cannot be evicted; "
            f"{node or 'the node'} uncordoned, not upgraded (let the budget allow an eviction "
            "or move those pods, then retry)"
        )
    else:
        tail = [line for line in text.splitlines() if line.strip()][-1:]
        message = f"{where} failed ({outcome.message}); uncordoned, not upgraded"
        if tail:
            message += f": {tail[0]}"
    return Outcome("failed", message, {"node": node, "pods": pods})


def _read_nodes(expected: Sequence[str], target: Version | None, phase: str) -> Any:
    """``kubectl get nodes -o json``: every expected node Ready; at ``target`` when given."""

    def read(context: StepContext) -> Outcome:
        outcome = default_read(context)
        if outcome.status == "failed" or not context.outputs:
            return _read(context)
        items = json.loads(context.outputs[-1].stdout).get("items", [])
        found: dict[str, tuple[bool, str]] = {}
        for item in items:
            conditions = item.get("status", {}).get("conditions", [])
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            version = item.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")
            found[item.get("metadata", {}).get("name", "")] = (ready, version)
        problems = []
        for name in expected:
            if name not in found:
                problems.append(f"{name} is not in the cluster")
            elif not found[name][0]:
                problems.append(f"{name} is not Ready")
            elif target is not None and found[name][1] != show(target):
                problems.append(f"{name} reports {found[name][1] or 'no version'}")
        versions = {name: version for name, (_, version) in found.items()}
        if problems:
            return Outcome("failed", "; ".join(problems), {"kubelets": versions})
        what = f"at {show(target)}" if target is not None else "Ready"
        return Outcome("succeeded", f"{len(expected)} nodes {what}", {"kubelets": versions})

    return read


def _read_kubeadm_version(target: Version) -> Any:
    def read(context: StepContext) -> Outcome:
        outcome = _read(context)
        if outcome.status == "failed":
            return outcome
        said = context.outputs[-1].stdout.strip().splitlines()
        try:
            have = parse_version(said[-1] if said else "")
        except InputError:
            return Outcome("failed", f"kubeadm version -o short answered {said!r}")
        if have < target:
            return Outcome("failed", f"kubeadm is {show(have)}, older than {show(target)}")
        return Outcome("succeeded", f"kubeadm {show(have)} installed and held")

    return read


def _read_ready(context: StepContext) -> Outcome:
    outcome = _read(context)
    if outcome.status == "failed":
        return outcome
    seen = []
    for output in context.outputs:
        item = json.loads(output.stdout[output.stdout.index("{") :])
        version = item.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")
        seen.append(f"{item.get('metadata', {}).get('name')} Ready at {version}")
    return Outcome("succeeded", "; ".join(seen))


# Commands


def _command(script: str, timeout: float = 120.0) -> Command:
    return Command(install.PRELUDE + script.strip() + "\n", timeout=timeout)


def _single(phase: str, step: Step) -> Phase:
    return Phase(phase, (step,))


def livez_line(node: NodeTarget) -> str:
    server = f"https://{etcd.host_in_url(node.address)}:6443"
    return f"{KUBECTL} --server {shlex.quote(server)} get --raw /livez"


def availability_script(manager: str, versions: install.Versions, bundle: str | None) -> str:
    """Exits 1 naming every one of kubeadm, kubelet, kubectl whose target version is missing."""
    q = shlex.quote
    if bundle is not None:
        found = " ".join(
            f"ls {q(bundle)}/{pattern} >/dev/null 2>&1 || missing=\"$missing {p}\";"
            for p, pattern in zip(install.KUBE_PACKAGES,
                                  install.bundle_patterns(manager, versions, install.KUBE_PACKAGES),
                                  strict=True)
        )  # fmt: skip
        where = f"the offline bundle {bundle}"
        refresh = ""
    elif manager == "apt":
        found = " ".join(
            f"apt-cache madison {p} | awk -F'|' '{{gsub(/ /, \"\", $2); print $2}}' | "
            f'grep -qx {q(versions.deb)} || missing="$missing {p}";'
            for p in install.KUBE_PACKAGES
        )
        where = f"the {versions.minor} repository"
        refresh = "apt-get update -q >/dev/null\n"
    else:
        found = " ".join(
            f"dnf list -q --showduplicates --disableexcludes=kubernetes {p} 2>/dev/null | "
            f'grep -q {q(" " + versions.full + "-")} || missing="$missing {p}";'
            for p in install.KUBE_PACKAGES
        )
        where = f"the {versions.minor} repository"
        refresh = ""
    return (
        f"set -u\n{refresh}missing=''\n{found}\n"
        f'if [ -n "$missing" ]; then echo "{SAY} no {versions.full} of$missing in {where}" >&2; '
        "exit 1; fi\n"
        f"echo '{SAY} kubeadm, kubelet, kubectl {versions.full} available in {where}'\n"
    )


def backup_script(directory: str) -> str:
    q = shlex.quote(directory)
    return (
        "set -e\n"
        f"if [ -e {q}/.complete ]; then echo '{SAY} {directory} already holds the copy'; exit 0; "
        "fi\n"
        f"mkdir -p -m 0700 {shlex.quote(BACKUP_ROOT)} {q}\n"
        "for f in /etc/kubernetes/* /etc/kubernetes/.[!.]*; do\n"
        f'  [ -e "$f" ] || continue; [ "$f" = {shlex.quote(BACKUP_ROOT)} ] && continue\n'
        f'  cp -a "$f" {q}/\n'
        "done\n"
        f"touch {q}/.complete\n"
        f"echo '{SAY} /etc/kubernetes copied to {directory}'\n"
    )


def drain_script(nodes: Sequence[NodeTarget], params: Mapping[str, Any]) -> str:
    """Cordon and drain each node in turn, retried; at the first failure every node of the batch
    is uncordoned and the script exits 1 naming the node."""
    names = " ".join(shlex.quote(n.name) for n in nodes)
    drain = (
        f'{KUBECTL} drain "$n" --ignore-daemonsets --delete-emptydir-data '
        f"--grace-period={int(params['grace_period'])} --timeout={int(params['drain_timeout'])}s"
    )
    return (
        "set -u\n"
        f"for n in {names}; do\n"
        f'  {KUBECTL} cordon "$n" || {{ echo "{DRAIN_FAILED}$n"; {KUBECTL} uncordon {names}; '
        "exit 1; }\n"
        "  i=0; drained=no\n"
        f"  while [ $i -le {int(params['drain_retries'])} ]; do\n"
        f"    if {drain}; then drained=yes; break; fi\n"
        "    i=$((i + 1))\n"
        "  done\n"
        '  if [ "$drained" = no ]; then\n'
        f'    echo "{DRAIN_FAILED}$n"; {KUBECTL} uncordon {names}; exit 1\n'
        "  fi\n"
        f'  echo "{SAY} $n drained"\n'
        "done\n"
    )


def drain_timeout(count: int, params: Mapping[str, Any]) -> float:
    """Longer than every drain of the batch may take: each attempt's ``--timeout`` and the pods'
    grace periods, for every retry."""
    attempt = int(params["drain_timeout"]) + max(0, int(params["grace_period"])) + 30
    return float(count * (int(params["drain_retries"]) + 1) * attempt + 120)


def ready_command(node: NodeTarget, target: Version) -> Command:
    q = shlex.quote
    path = '{.status.nodeInfo.kubeletVersion} {.status.conditions[?(@.type=="Ready")].status}'
    probe = f"{KUBECTL} get node {q(node.name)} -o jsonpath={q(path)}"
    want = f"{show(target)} True"
    script = (
        "i=0\n"
        f'while out=$({probe} 2>&1); [ "$out" != {q(want)} ]; do\n'
        "  i=$((i + 1))\n"
        f'  if [ "$i" -ge {READY_ATTEMPTS} ]; then '
        f'echo "{SAY} {node.name} not Ready at {show(target)}: $out" >&2; exit 1; fi\n'
        f"  sleep {READY_PAUSE}\n"
        "done\n"
        f"{KUBECTL} get node {q(node.name)} -o json\n"
    )
    return _command(script, timeout=READY_ATTEMPTS * (READY_PAUSE + 15) + 60.0)


# The plan


def plan(cluster: ClusterSpec, upgrade: Upgrade, params: Mapping[str, Any]) -> Plan:
    params = validate_params(params)
    verdict = check(cluster, upgrade, params)
    target = parse_version(params["version"])
    versions = install.Versions.of(params["version"])
    bundle = params.get("offline_bundle")
    if not _STAMP.fullmatch(upgrade.stamp):
        raise ValueError(f"bad stamp {upgrade.stamp!r}")
    for node in upgrade.nodes:
        if upgrade.managers.get(node.name) not in ("apt", "dnf"):
            raise InputError(f"{node.name} has no facts yet: run facts first", "nodes")
    first, *others = upgrade.control_planes
    groups = [(f"control plane {n.name}", [n]) for n in upgrade.control_planes]
    worker_batches = batches(upgrade.workers, params["batch_percent"])
    groups += [
        (f"workers {i}/{len(worker_batches)}", batch) for i, batch in enumerate(worker_batches, 1)
    ]
    order = "; ".join(f"{label}: {', '.join(n.name for n in nodes)}" for label, nodes in groups)
    summary = Outcome(
        "succeeded",
        f"{verdict}. kubeadm upgrade apply on {first.name}"
        + (f", kubeadm upgrade node on {', '.join(n.name for n in others)}" if others else "")
        + f"; then kubelets in this order — {order}",
    )
    phases = [Phase("plan", (Step(verdict, None, read=lambda _c: summary),))]
    phases.append(_health(upgrade, first))
    directory = f"{BACKUP_ROOT}/{upgrade.stamp}-pre-upgrade"
    if upgrade.etcd_members and upgrade.client is not None:
        phases.append(_snapshot(upgrade, directory))
    phases.append(Phase("backup", tuple(
        Step("copy /etc/kubernetes", n.name, (_command(backup_script(directory)),), _read)
        for n in upgrade.nodes
    )))  # fmt: skip
    phases.append(Phase("packages", tuple(
        Step(f"kubeadm, kubelet, kubectl {versions.full} available", n.name,
             (*(install.kube_repository(upgrade.managers[n.name], versions) if bundle is None
                else ()),
              _command(availability_script(upgrade.managers[n.name], versions, bundle), 600.0)),
             _read)
        for n in upgrade.nodes
    )))  # fmt: skip

    def kubeadm(node: NodeTarget) -> Step:
        package = install.kube_packages(upgrade.managers[node.name], versions, bundle, ["kubeadm"])
        gate = _command("kubeadm version -o short")
        return Step(f"kubeadm {versions.full}", node.name, (package, gate),
                    _read_kubeadm_version(target))  # fmt: skip

    v = shlex.quote(show(target))
    phases += [
        _single(f"kubeadm on {first.name}", kubeadm(first)),
        _single(f"upgrade plan on {first.name}", Step(f"kubeadm upgrade plan {show(target)}",
                first.name, (_command(f"kubeadm upgrade plan {v}", 600.0),), _read)),
        _single(f"upgrade apply on {first.name}", Step(f"kubeadm upgrade apply {show(target)}",
                first.name, (_command(f"kubeadm upgrade apply {v} --yes", APPLY_TIMEOUT),),
                _read)),
    ]  # fmt: skip
    for node in others:
        phases += [
            _single(f"kubeadm on {node.name}", kubeadm(node)),
            _single(f"upgrade node on {node.name}", Step("kubeadm upgrade node", node.name,
                    (_command("kubeadm upgrade node", APPLY_TIMEOUT),), _read)),
        ]  # fmt: skip
    for label, nodes in groups:
        phases += _node_phases(label, nodes, first, upgrade, versions, target, bundle, params)
    everyone = [n.name for n in upgrade.nodes]
    verify = Step(f"every node at {show(target)}", first.name,
                  (_command(f"{KUBECTL} get nodes -o json"),),
                  _read_nodes(everyone, target, "verify"))  # fmt: skip
    phases.append(Phase("verify", (verify,)))
    return Plan(KIND, tuple(phases))


def _health(upgrade: Upgrade, first: NodeTarget) -> Phase:
    steps = [
        Step(f"/livez of {n.name}", first.name, (_command(livez_line(n)),), _read)
        for n in upgrade.control_planes
    ]
    steps.append(Step("every node Ready", first.name, (_command(f"{KUBECTL} get nodes -o json"),),
                      _read_nodes([n.name for n in upgrade.nodes], None, "health")))  # fmt: skip
    if upgrade.etcd_members and upgrade.client is not None:
        member = upgrade.etcd_members[0]
        work = f"/var/tmp/clusterpanel-upgrade-{upgrade.stamp}"  # noqa: S108
        files = _client_files(work, upgrade.client)
        endpoints = [etcd.client_url(m.address) for m in upgrade.etcd_members]
        client = etcd.ClientCert(f"{work}/ca.crt", f"{work}/client.crt", f"{work}/client.key")
        probe = etcd.etcdctl(endpoints, client, "endpoint", "health", "--cluster", "-w", "json",
                             timeout=etcd.PROBE_TIMEOUT)  # fmt: skip
        q = shlex.quote(work)
        steps.append(Step("etcd members healthy", member.name, (
            Command(f"rm -rf {q} && mkdir -m 0700 -p {q}", timeout=30), *files,
            _command(f"trap 'rm -rf {q}' EXIT\n{probe}", 60.0),
        ), etcd.read_health(len(upgrade.etcd_members))))  # fmt: skip
    return Phase("health", tuple(steps))


def _client_files(directory: str, client: PanelClient) -> tuple[FileWrite, ...]:
    return (
        FileWrite(f"{directory}/ca.crt", client.ca_pem, mode=0o600),
        FileWrite(f"{directory}/client.crt", client.cert_pem, mode=0o600),
        FileWrite(f"{directory}/client.key", client.key_pem, mode=0o600, secret=True),
    )


def _snapshot(upgrade: Upgrade, directory: str) -> Phase:
    assert upgrade.client is not None
    member = upgrade.etcd_members[0]
    q = shlex.quote(directory)
    actions: tuple[Command | FileWrite, ...] = (
        Command(f"mkdir -p -m 0700 {shlex.quote(BACKUP_ROOT)} {q}", timeout=30),
        *_client_files(directory, upgrade.client),
        Command(snapshot_script(directory, upgrade.etcd_members, member), timeout=600),
    )
    return _single("etcd snapshot", Step("etcd snapshot", member.name, actions, _read))


def _node_phases(
    label: str,
    nodes: Sequence[NodeTarget],
    first: NodeTarget,
    upgrade: Upgrade,
    versions: install.Versions,
    target: Version,
    bundle: str | None,
    params: Mapping[str, Any],
) -> list[Phase]:
    names = ", ".join(n.name for n in nodes)
    phases = []
    if nodes[0].role == "worker":
        phases.append(Phase(f"{label}: kubeadm", tuple(
            Step(f"kubeadm {versions.full}, kubeadm upgrade node", n.name, (
                install.kube_packages(upgrade.managers[n.name], versions, bundle, ["kubeadm"]),
                _command("kubeadm upgrade node", APPLY_TIMEOUT),
            ), _read)
            for n in nodes
        )))  # fmt: skip
    drain = Command(install.PRELUDE + drain_script(nodes, params),
                    timeout=drain_timeout(len(nodes), params))  # fmt: skip
    restart = _command("systemctl daemon-reload && systemctl restart kubelet")
    uncordon = " ".join(shlex.quote(n.name) for n in nodes)
    phases += [
        Phase(f"{label}: drain", (Step(f"cordon and drain {names}", first.name, (drain,),
                                       read_drain),)),
        Phase(f"{label}: kubelet", tuple(
            Step(f"kubelet, kubectl {versions.full}", n.name, (
                install.kube_packages(upgrade.managers[n.name], versions, bundle,
                                      ["kubelet", "kubectl"]), restart,
            ), _read)
            for n in nodes
        )),
        Phase(f"{label}: ready", (Step(f"{names} Ready at {show(target)}", first.name,
                                       tuple(ready_command(n, target) for n in nodes),
                                       _read_ready),)),
        Phase(f"{label}: uncordon", (Step(f"uncordon {names}", first.name, (
            _command(f"{KUBECTL} uncordon {uncordon}"),), _read),)),
    ]  # fmt: skip
    return phases
