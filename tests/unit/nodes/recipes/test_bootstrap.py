"""The bootstrap and join plans: phases in order, exact command lines, files and modes, and no
secret in any command line or preview (no hosts; the kubeadm files are plain bytes here)."""

from __future__ import annotations

import json

import pytest

from clusterpanel.errors import InputError
from nodes.recipes import bootstrap, join, kubeadm_join
from nodes.recipes.distribute_pki import BundleFile
from nodes.recipes.kubeadm_join import KubeadmInputs
from nodes.recipes.plan import ClusterSpec, Command, FileWrite, NodeTarget, Outcome, StepContext

SPEC = ClusterSpec("prod", "1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd", "lb:6443")
TOKEN = "abcdef.0123456789abcdef"
KEY = "f" * 64
NODES = [
    NodeTarget("cp-1", "10.0.0.11", "control-plane"),
    NodeTarget("cp-2", "10.0.0.12", "control-plane"),
    NodeTarget("cp-3", "10.0.0.13", "control-plane"),
    NodeTarget("w-1", "10.0.0.21", "worker"),
    NodeTarget("w-2", "10.0.0.22", "worker"),
]
CP_BUNDLE = {
    "pki/ca.crt": BundleFile(b"CA", 0o644),
    "pki/ca.key": BundleFile(b"CAKEY", 0o600),
    "admin.conf": BundleFile(b"ADMIN", 0o600),
    "kubelet.conf": BundleFile(b"KUBELET", 0o600),
}
WORKER_BUNDLE = {
    "pki/ca.crt": BundleFile(b"CA", 0o644),
    "kubelet.conf": BundleFile(b"KUBELET", 0o600),
}


def _inputs(**overrides: object) -> KubeadmInputs:
    fields: dict[str, object] = {
        "init_node": "cp-1",
        "bundles": {
            n.name: CP_BUNDLE if n.role == "control-plane" else WORKER_BUNDLE for n in NODES
        },
        "init_config": f"certificateKey: {KEY}\ntoken: {TOKEN}\n".encode(),
        "certificate_key_id": "7",
        "token_id": "abcdef",
        "token_config": f"token: {TOKEN}\n".encode(),
        "join_configs": {n.name: f"token: {TOKEN}\n".encode() for n in NODES[1:]},
        "labels": {"w-2": {"node-role.kubernetes.io/worker": ""}},
        "taints": {"w-2": ["dedicated=gpu:NoSchedule"]},
    }
    fields.update(overrides)
    return KubeadmInputs(**fields)  # type: ignore[arg-type]


def _lines(step: object) -> list[str]:
    return [a.line for a in step.actions if isinstance(a, Command)]  # type: ignore[attr-defined]


def _files(step: object) -> list[FileWrite]:
    return [a for a in step.actions if isinstance(a, FileWrite)]  # type: ignore[attr-defined]


def test_bootstrap_phases_come_in_kubeadm_order_control_planes_one_at_a_time() -> None:
    plan = bootstrap.plan(SPEC, NODES, {"cni_manifest_path": "/opt/cni/calico.yaml"}, _inputs())
    assert [p.name for p in plan.phases] == [
        "probe", "preflight", "pki", "init", "upload-certs", "token",
        "join cp-2", "join cp-3", "join workers", "cni", "labels and taints",
    ]  # fmt: skip
    phases = {p.name: p for p in plan.phases}
    assert [s.node for s in phases["join cp-2"].steps] == ["cp-2"]
    assert [s.node for s in phases["join workers"].steps] == ["w-1", "w-2"]
    (init,) = phases["init"].steps
    assert init.node == "cp-1"
    assert (
        "kubeadm init --config /etc/kubernetes/kubeadm-init.yaml --skip-token-print "
        "--skip-phases=show-join-command"
    ) in _lines(init)[0]
    assert "[ -f /etc/kubernetes/manifests/kube-apiserver.yaml ]" in _lines(init)[0]
    (upload,) = phases["upload-certs"].steps
    assert upload.name == "upload-certs (certificate key 7)"
    assert _lines(upload)[0].endswith(
        "kubeadm init phase upload-certs --upload-certs --skip-certificate-key-print "
        "--config /etc/kubernetes/kubeadm-init.yaml"
    )
    (token,) = phases["token"].steps
    assert token.name == "bootstrap token abcdef"
    assert "get secret bootstrap-token-abcdef -o name --ignore-not-found" in _lines(token)[0]
    assert "kubeadm token create --config /etc/kubernetes/kubeadm-token.yaml" in _lines(token)[0]
    (cni,) = phases["cni"].steps
    assert _lines(cni)[0].endswith(
        "kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout=60s apply -f "
        "/opt/cni/calico.yaml"
    )
    (labels,) = phases["labels and taints"].steps
    assert labels.node == "cp-1"
    assert [line.split("\n")[-1] for line in _lines(labels)] == [
        "kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout=60s label node w-2 "
        "node-role.kubernetes.io/worker= --overwrite",
        "kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout=60s taint node w-2 "
        "dedicated=gpu:NoSchedule --overwrite",
    ]


def test_kubeadm_files_are_secret_0600_and_no_secret_reaches_a_command_line_or_the_preview() -> (
    None
):
    manifest = "kind: Namespace\n"
    plan = bootstrap.plan(SPEC, NODES, {"cni_manifest": manifest}, _inputs())
    preview = json.dumps(plan.preview())
    assert TOKEN not in preview and KEY not in preview and "CAKEY" not in preview
    for phase in plan.phases:
        for step in phase.steps:
            for line in _lines(step):
                assert TOKEN not in line and KEY not in line
            for write in _files(step):
                if write.path.startswith("/etc/kubernetes/kubeadm-"):
                    assert write.mode == 0o600 and write.secret and write.skip_if_identical
    join_step = next(p for p in plan.phases if p.name == "join cp-2").steps[0]
    (config,) = _files(join_step)
    assert config.path == "/etc/kubernetes/kubeadm-join.yaml"
    assert "kubeadm join --config /etc/kubernetes/kubeadm-join.yaml" in _lines(join_step)[0]
    assert "rm -f /etc/kubernetes/kubeadm-join.yaml" in _lines(join_step)[0]
    (cni,) = next(p for p in plan.phases if p.name == "cni").steps
    (apply,) = cni.actions
    assert isinstance(apply, Command) and apply.stdin == manifest.encode()
    assert apply.line.endswith("apply -f -")
    # Every command waits longer than the tool it runs may take.
    for phase in plan.phases:
        for step in phase.steps:
            for action in step.actions:
                if isinstance(action, Command) and "kubeadm join" in action.line:
                    assert action.timeout > kubeadm_join.JOIN_TIMEOUT


def test_the_pki_before_a_join_leaves_out_what_kubeadm_join_makes_itself() -> None:
    plan = bootstrap.plan(SPEC, NODES, {}, _inputs())
    pki = next(p for p in plan.phases if p.name == "pki")
    written = {s.node: {w.path for w in _files(s)} for s in pki.steps}
    assert "/etc/kubernetes/kubelet.conf" in written["cp-1"]
    assert "/etc/kubernetes/kubelet.conf" not in written["cp-2"]
    assert "/etc/kubernetes/pki/ca.key" in written["cp-2"]
    assert "w-1" not in written  # ca.crt and kubelet.conf: kubeadm join writes both
    cni = next(p for p in plan.phases if p.name == "cni").steps[0]
    assert cni.node is None
    assert "no CNI manifest" in cni.read(StepContext(None, (), {})).message


def test_joined_nodes_are_neither_probed_nor_joined_again() -> None:
    inputs = _inputs(joined=frozenset({"cp-1", "cp-2"}))
    plan = bootstrap.plan(SPEC, NODES, {}, inputs)
    names = [p.name for p in plan.phases]
    assert "join cp-2" not in names and "join cp-3" in names
    probe = next(p for p in plan.phases if p.name == "probe")
    assert [s.node for s in probe.steps] == ["cp-3", "w-1", "w-2"]


def test_a_failed_check_blocks_the_gate_unless_named() -> None:
    from nodes.recipes.plan import Check

    node = NODES[3]
    probe = Outcome(
        "succeeded", checks=(Check("w-1", "swap", "fail", "swap is on (/swap.img, 1.0 GiB)"),)
    )
    context = StepContext(None, (), {("probe", "probe", "w-1"): probe})
    blocked = kubeadm_join.read_gate(SPEC, [node], [], context)
    assert (
        blocked.status == "failed" and "swap is on" in blocked.message and "w-1" in blocked.message
    )
    passed = kubeadm_join.read_gate(SPEC, [node], ["swap"], context)
    assert passed.status == "succeeded" and "ignored as asked: swap" in passed.message


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"ignore_preflight_errors": "all"}, "ignore_preflight_errors"),
        ({"ignore_preflight_errors": "swap;rm"}, "ignore_preflight_errors"),
        ({"cni_manifest": "a\0b"}, "cni_manifest"),
        ({"cni_manifest": "x" * (bootstrap.MAX_CNI_MANIFEST + 1)}, "cni_manifest"),
        ({"cni_manifest_path": "relative.yaml"}, "cni_manifest_path"),
        ({"cni_manifest_path": "/opt/../etc/shadow"}, "cni_manifest_path"),
        ({"cni_manifest": "kind: X", "cni_manifest_path": "/a.yaml"}, "cni_manifest_path"),
        ({"force": True}, "force"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as refused:
        bootstrap.validate_params(params)
    assert refused.value.field == field


def test_join_touches_the_new_nodes_and_the_init_node_only() -> None:
    new = [
        NodeTarget("cp-4", "10.0.0.14", "control-plane"),
        NodeTarget("w-3", "10.0.0.23", "worker"),
    ]
    inputs = _inputs(
        bundles={"cp-4": CP_BUNDLE, "w-3": WORKER_BUNDLE},
        join_configs={"cp-4": b"token", "w-3": b"token"},
        labels={},
        taints={},
    )
    plan = join.plan(SPEC, new, {}, inputs, (), 2)
    assert [p.name for p in plan.phases] == [
        "apiserver certificates", "probe", "preflight", "pki", "upload-certs", "token",
        "join cp-4", "join workers",
    ]  # fmt: skip
    touched = {s.node for p in plan.phases for s in p.steps if s.node}
    assert touched == {"cp-1", "cp-4", "w-3"}
    worker_only = join.plan(SPEC, new[1:], {}, inputs, (), 0)
    assert "upload-certs" not in [p.name for p in worker_only.phases]
    with pytest.raises(InputError, match="joined already"):
        join.plan(SPEC, new, {}, _inputs(joined=frozenset({"w-3"})), (), 0)
    with pytest.raises(InputError, match="bootstrap job"):
        join.plan(SPEC, NODES[:1], {}, inputs, (), 0)


def test_a_missing_san_fails_the_first_step_with_gos_error() -> None:
    error = "cp-4: x509: certificate is valid for cp-4, kubernetes, not 10.0.0.14"
    phase = join.san_phase([error], 2)
    outcome = phase.steps[0].read(StepContext(None, (), {}))
    assert outcome.status == "failed" and error in outcome.message


def test_the_health_role_is_applied_after_init_from_stdin_with_admin_conf() -> None:
    manifest = b"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
    plan = bootstrap.plan(SPEC, NODES, {}, _inputs(health_rbac=manifest))
    names = [p.name for p in plan.phases]
    assert names[names.index("init") + 1] == "health-rbac"
    (step,) = next(p for p in plan.phases if p.name == "health-rbac").steps
    # A stable name on the init node: a retry after a later failure does not apply it again.
    assert (step.name, step.node) == ("apply the panel's health role", "cp-1")
    (command,) = step.actions
    assert isinstance(command, Command)
    assert command.line == kubeadm_join.PRELUDE + (
        "kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout=60s apply -f -"
    )
    assert command.stdin == manifest and command.timeout > 60
    assert command.stdin_label == f"the health role and its binding ({len(manifest)} bytes)"
    # Without the manifest (a plan built by hand), no phase.
    assert "health-rbac" not in [p.name for p in bootstrap.plan(SPEC, NODES, {}, _inputs()).phases]


def test_checks_ignored_by_the_panel_are_ignored_by_kubeadm_init_and_join_under_its_names() -> None:
    """kubeadm runs its own preflight: without the flag, a check the operator chose to ignore
    (one CPU on a test box) would stop kubeadm init after the panel's gate let it through."""
    ignored = ["cpus", "port-6443", "swap", "unique-mac", "cgroup-driver"]
    params = {"cni_manifest_path": "/opt/cni/calico.yaml", "ignore_preflight_errors": ignored}
    plan = bootstrap.plan(SPEC, NODES, params, _inputs(ignored=tuple(ignored)))
    phases = {p.name: p for p in plan.phases}
    flag = "--ignore-preflight-errors=NumCPU,Port-6443,Swap"
    (init,) = phases["init"].steps
    assert f"--skip-phases=show-join-command {flag}\n" in _lines(init)[0]
    for phase in ("join cp-2", "join workers"):
        for step in phases[phase].steps:
            assert (
                f"kubeadm join --config /etc/kubernetes/kubeadm-join.yaml {flag} || rc="
                in (_lines(step)[0])
            )
    # Nothing ignored, or only checks kubeadm does not have: no flag at all.
    for nothing in ((), ("unique-mac", "time")):
        plain = bootstrap.plan(SPEC, NODES, params, _inputs(ignored=nothing))
        lines = [line for phase in plain.phases for step in phase.steps for line in _lines(step)]
        assert not [line for line in lines if "--ignore-preflight-errors" in line]
