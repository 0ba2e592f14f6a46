"""The ``install`` job: a bare host made ready for ``kubeadm init`` or ``join``.

One phase ``install`` with, per node, in order: kernel modules (overlay, br_netfilter, loaded
and persisted in ``/etc/modules-load.d``), sysctls (the three of kubeadm's preflight, persisted in
``/etc/sysctl.d``), swap off and kept off (``/etc/fstab`` swap lines commented), the package
repository of the cluster's minor version (``pkgs.k8s.io``; its key as a file), the container
runtime the cluster names (containerd or CRI-O) on the systemd cgroup driver, and kubeadm,
kubelet and kubectl pinned to the cluster's version and held (``apt-mark hold`` / ``dnf
versionlock``), the kubelet enabled.

The package manager comes from the node's stored facts (``os_id``): Debian and Ubuntu use apt,
the RHEL family and Fedora dnf. A node without facts is refused: run the facts job first.

With ``offline_bundle`` (a directory on every node holding the ``.deb`` or ``.rpm`` files of the
runtime, kubeadm, kubelet, kubectl and their dependencies) no repository is written, no key
downloaded and the package managers install only those files with every remote source disabled:
an air-gapped host is never asked to reach the network.

Idempotent: every step checks first and says so (``clusterpanel: … already …``); files are
written only when they differ; the runtime is restarted only when its configuration changed.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clusterpanel.errors import InputError
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

KIND = "install"
MUTATING = True
PHASE = "install"

PARAMS = ("offline_bundle",)
MAX_PATH = 1024
_BUNDLE_PATH = re.compile(r"/[A-Za-z0-9._+@=:/-]*")
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")

APT_IDS = frozenset({"debian", "ubuntu"})
DNF_IDS = frozenset({"rhel", "centos", "rocky", "almalinux", "fedora"})
KUBE_PACKAGES = ("kubeadm", "kubelet", "kubectl")
MODULES = ("overlay", "br_netfilter")
SYSCTLS = (
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
    ("net.ipv4.ip_forward", "1"),
)
MODULES_FILE = "/etc/modules-load.d/k8s.conf"
SYSCTL_FILE = "/etc/sysctl.d/k8s.conf"
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CRIO_CONFIG = "/etc/crio/crio.conf.d/99-clusterpanel-cgroup.conf"
APT_KEY = "/etc/apt/keyrings/kubernetes-apt-keyring.asc"
APT_LIST = "/etc/apt/sources.list.d/kubernetes.list"
APT_CRIO_KEY = "/etc/apt/keyrings/cri-o-apt-keyring.asc"
APT_CRIO_LIST = "/etc/apt/sources.list.d/cri-o.list"
DNF_KEY = "/etc/pki/rpm-gpg/kubernetes.key"
DNF_REPO = "/etc/yum.repos.d/kubernetes.repo"
DNF_CRIO_KEY = "/etc/pki/rpm-gpg/cri-o.key"
DNF_CRIO_REPO = "/etc/yum.repos.d/cri-o.repo"
DNF_DOCKER_REPO = "/etc/yum.repos.d/docker-ce.repo"

# Every command: the usual root PATH (where the tools live), no prompts, no localised answers.
PRELUDE = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; "
    "export PATH LC_ALL=C DEBIAN_FRONTEND=noninteractive\n"
)
SAY = "clusterpanel:"  # the line a step's script ends with, read as the step's sentence

# containerd's CRI plugin on runc with the systemd cgroup driver (config version 2: containerd
# 1.x reads it, 2.x migrates it), the driver the kubelet uses under kubeadm.
CONTAINERD_TOML = b"""\
# Written by clusterpanel: the kubelet and the runtime must use the same cgroup driver (systemd).
version = 2

[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true
"""
CRIO_CONF = b"""\
# Written by clusterpanel: the kubelet and the runtime must use the same cgroup driver (systemd).
[crio.runtime]
cgroup_manager = "systemd"
"""


@dataclass(frozen=True)
class Versions:
    """The cluster's version in each spelling the package managers want."""

    full: str  # 1.31.2
    minor: str  # v1.31

    @property
    def deb(self) -> str:
        return f"{self.full}-1.1"  # pkgs.k8s.io's Debian revision

    @classmethod
    def of(cls, version: str) -> Versions:
        match = _VERSION.fullmatch(version.strip())
        if match is None:
            raise InputError(f"the cluster's version {version!r} is not vX.Y.Z", "cluster")
        major, minor, patch = match.groups()
        return cls(f"{major}.{minor}.{patch}", f"v{major}.{minor}")


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``offline_bundle``: an absolute directory path on the nodes (optional)."""
    for key in params:
        if key not in PARAMS:
            known = ", ".join(PARAMS)
            raise InputError(f"unknown parameter {key!r}; install takes {known}", key)
    validated: dict[str, Any] = {}
    bundle = params.get("offline_bundle")
    if bundle not in (None, ""):
        if not isinstance(bundle, str):
            raise InputError("must be a directory path (text)", "offline_bundle")
        if len(bundle) > MAX_PATH:
            raise InputError(f"at most {MAX_PATH} characters", "offline_bundle")
        if not _BUNDLE_PATH.fullmatch(bundle):
            raise InputError(
                "must be an absolute path (starting with /) of letters, digits and . _ + @ = : - /",
                "offline_bundle",
            )
        parts = bundle.split("/")
        if ".." in parts or "." in parts:
            raise InputError("must not contain . or .. components", "offline_bundle")
        validated["offline_bundle"] = "/" + "/".join(p for p in parts if p)
    return validated


def package_manager(facts: Mapping[str, Any] | None, node: str) -> str:
    """``apt`` or ``dnf`` from the node's facts; InputError when they are missing or foreign."""
    os_id = (facts or {}).get("os_id")
    if not os_id:
        raise InputError(
            f"{node} has no facts yet: run facts first, so that install knows its package manager",
            "nodes",
        )
    if os_id in APT_IDS:
        return "apt"
    if os_id in DNF_IDS:
        return "dnf"
    supported = ", ".join(sorted(APT_IDS | DNF_IDS))
    raise InputError(f"{node} runs {os_id}; install supports {supported}", "nodes")


def plan(
    cluster: ClusterSpec,
    nodes: Sequence[NodeTarget],
    params: Mapping[str, Any],
    inputs: Mapping[str, Mapping[str, Any]] | None = None,
) -> Plan:
    """``inputs`` maps node names to their stored facts."""
    params = validate_params(params)
    versions = Versions.of(cluster.kubernetes_version)
    bundle = params.get("offline_bundle")
    steps: list[Step] = []
    for node in nodes:
        facts = (inputs or {}).get(node.name)
        manager = package_manager(facts, node.name)
        os_id = str((facts or {}).get("os_id"))
        steps += node_steps(cluster, versions, node.name, manager, os_id, bundle)
    return Plan(KIND, (Phase(PHASE, tuple(steps)),))


def node_steps(
    cluster: ClusterSpec,
    versions: Versions,
    node: str,
    manager: str,
    os_id: str,
    bundle: str | None,
) -> list[Step]:
    runtime = cluster.container_runtime
    steps = [
        _step("kernel modules", node, *_modules()),
        _step("sysctls", node, *_sysctls()),
        _step("swap off", node, _command(_SWAP)),
    ]
    if bundle is None:
        steps.append(
            _step("package repository", node, *_repository(manager, os_id, versions, runtime))
        )
    steps.append(_step("container runtime", node, *_runtime(manager, os_id, runtime, bundle)))
    steps.append(
        _step("kubeadm, kubelet, kubectl", node, _kube_packages(manager, versions, bundle))
    )
    return steps


# Steps


def _read(context: StepContext) -> Outcome:
    """Exit codes decide (default_read); the sentence is the script's last ``clusterpanel:``."""
    outcome = default_read(context)
    said = [
        line.removeprefix(SAY).strip()
        for output in context.outputs
        for line in output.stdout.splitlines()
        if line.startswith(SAY)
    ]
    if outcome.status == "failed":
        tail = context.outputs[-1].stderr.strip().splitlines() if context.outputs else []
        detail = f": {tail[-1]}" if tail else ""
        return Outcome("failed", outcome.message + detail)
    return Outcome("succeeded", "; ".join(said))


def _step(name: str, node: str, *actions: Command | FileWrite) -> Step:
    return Step(name, node, tuple(actions), _read)


def _command(script: str, timeout: float = 120.0) -> Command:
    return Command(PRELUDE + script.strip() + "\n", timeout=timeout)


def _file(path: str, content: bytes, mode: int = 0o644) -> FileWrite:
    return FileWrite(path, content, mode=mode, skip_if_identical=True)


def _modules() -> tuple[Command | FileWrite, ...]:
    content = "".join(f"{m}\n" for m in MODULES).encode()
    lines = [
        # /sys/module/<name> exists for a loaded module and for one built into the kernel.
        f"if [ -d /sys/module/{m} ]; then echo '{SAY} {m} already loaded'; "
        f"else modprobe -- {m} && echo '{SAY} {m} loaded'; fi"
        for m in MODULES
    ]
    return _file(MODULES_FILE, content), _command("set -e\n" + "\n".join(lines))


def _sysctls() -> tuple[Command | FileWrite, ...]:
    content = "".join(f"{key} = {value}\n" for key, value in SYSCTLS).encode()
    tests = " && ".join(f'[ "$(sysctl -n {key} 2>/dev/null)" = {value} ]' for key, value in SYSCTLS)
    script = (
        f"if {tests}; then echo '{SAY} sysctls already set'\n"
        f"else sysctl --system >/dev/null && echo '{SAY} sysctls applied'; fi"
    )
    return _file(SYSCTL_FILE, content), _command(script)


# A swap line: a first field that is no comment, then the mount point, then the type "swap".
_SPACE, _FIELD = "[[:space:]]", "[^[:space:]]"
_SWAP_LINE = rf"^{_SPACE}*[^#[:space:]]{_FIELD}*{_SPACE}+{_FIELD}+{_SPACE}+swap({_SPACE}|$)"
_SWAP_NOTE = "# swap kept off for the kubelet (clusterpanel)"
_SWAP = rf"""
set -e
if [ "$(tail -n +2 /proc/swaps | wc -l)" -gt 0 ]; then swapoff -a; echo '{SAY} swap turned off'
else echo '{SAY} swap already off'; fi
if [ -f /etc/fstab ] && grep -Eq '{_SWAP_LINE}' /etc/fstab; then
  # Rewritten in place (not renamed over): /etc/fstab keeps its inode, owner and labels.
  t=$(mktemp)
  sed -E 's/({_SWAP_LINE}.*)$/# \1 {_SWAP_NOTE}/' /etc/fstab > "$t"
  cat "$t" > /etc/fstab; rm -f "$t"
  echo '{SAY} swap lines of /etc/fstab commented out'
else echo '{SAY} no swap line in /etc/fstab'; fi
"""


def _download_key(url: str, path: str) -> str:
    q = shlex.quote
    return (
        f"if [ -s {q(path)} ]; then echo '{SAY} {path} already there'; else "
        f"curl -fsSL --proto '=https' --retry 3 {q(url)} -o {q(path)} && "
        f"chmod 0644 {q(path)} && echo '{SAY} {path} downloaded'; fi"
    )


def _repository(
    manager: str, os_id: str, versions: Versions, runtime: str
) -> tuple[Command | FileWrite, ...]:
    """The repository files of the cluster's minor version and their keys (downloaded once)."""
    core = f"https://pkgs.k8s.io/core:/stable:/{versions.minor}"
    crio = f"https://pkgs.k8s.io/addons:/cri-o:/stable:/{versions.minor}"
    keys: list[str] = []
    files: list[FileWrite] = []
    if manager == "apt":
        keys.append(_download_key(f"{core}/deb/Release.key", APT_KEY))
        files.append(_file(APT_LIST, f"deb [signed-by={APT_KEY}] {core}/deb/ /\n".encode()))
        if runtime == "cri-o":
            keys.append(_download_key(f"{crio}/deb/Release.key", APT_CRIO_KEY))
            line = f"deb [signed-by={APT_CRIO_KEY}] {crio}/deb/ /\n"
            files.append(_file(APT_CRIO_LIST, line.encode()))
    else:
        keys.append(_download_key(f"{core}/rpm/repodata/repomd.xml.key", DNF_KEY))
        files.append(
            _file(DNF_REPO, _rpm_repo("kubernetes", "Kubernetes", f"{core}/rpm/", DNF_KEY))
        )
        if runtime == "cri-o":
            keys.append(_download_key(f"{crio}/rpm/repodata/repomd.xml.key", DNF_CRIO_KEY))
            files.append(
                _file(DNF_CRIO_REPO, _rpm_repo("cri-o", "CRI-O", f"{crio}/rpm/", DNF_CRIO_KEY))
            )
        else:
            # containerd.io is Docker's package; RHEL clones use the CentOS tree.
            tree = {"fedora": "fedora", "rhel": "rhel"}.get(os_id, "centos")
            docker = f"https://download.docker.com/linux/{tree}"
            content = (
                "[docker-ce-stable]\nname=Docker CE Stable\n"
                f"baseurl={docker}/$releasever/$basearch/stable\nenabled=1\ngpgcheck=1\n"
                f"gpgkey={docker}/gpg\n"
            ).encode()
            files.append(_file(DNF_DOCKER_REPO, content))
    get_curl = (
        "{ apt-get update -q && apt-get install -y -q ca-certificates curl; }"
        if manager == "apt"
        else "dnf install -y -q curl"
    )
    curl = f"command -v curl >/dev/null 2>&1 || {get_curl}"
    directory = "/etc/apt/keyrings" if manager == "apt" else "/etc/pki/rpm-gpg"
    script = "set -e\n" + curl + f"\nmkdir -p -m 0755 {directory}\n" + "\n".join(keys)
    return (_command(script, timeout=300.0), *files)


def _rpm_repo(section: str, name: str, baseurl: str, key: str) -> bytes:
    return (
        f"[{section}]\nname={name}\nbaseurl={baseurl}\nenabled=1\ngpgcheck=1\ngpgkey=file://{key}\n"
    ).encode()


def _runtime_package(manager: str, runtime: str) -> str:
    if runtime == "cri-o":
        return "cri-o"
    return "containerd" if manager == "apt" else "containerd.io"


def _installed_test(manager: str, package: str) -> str:
    q = shlex.quote
    if manager == "apt":
        status = f"dpkg-query -W --showformat='${{Status}}' {q(package)} 2>/dev/null"
        return f"{status} | grep -q 'install ok installed'"
    return f"rpm -q {q(package)} >/dev/null 2>&1"


def _offline_install(manager: str, bundle: str, pattern: str, *more: str) -> str:
    """Install the bundle's files matching ``pattern`` (and ``more`` patterns): local files only,
    every source disabled."""
    files = " ".join(f"{shlex.quote(bundle)}/{p}" for p in (pattern, *more))
    if manager == "apt":
        # No `apt-get update` and --no-download: apt installs the given files (resolving their
        # dependencies among them and what is installed) or fails; it never fetches.
        return (
            "apt-get install -y -q --no-download --no-install-recommends "
            f"--allow-change-held-packages {files}"
        )
    return (
        "dnf install -y -q --disablerepo='*' --setopt=install_weak_deps=False "
        f"--disableexcludes=all {files}"
    )


def _bundle_check(manager: str, bundle: str) -> str:
    suffix = "deb" if manager == "apt" else "rpm"
    q = shlex.quote(bundle)
    return (
        f"ls {q}/*.{suffix} >/dev/null 2>&1 || "
        f"{{ echo 'the offline bundle {bundle} holds no .{suffix} files on this node' >&2; "
        "exit 1; }"
    )


def _runtime(
    manager: str, os_id: str, runtime: str, bundle: str | None
) -> tuple[Command | FileWrite, ...]:
    package = _runtime_package(manager, runtime)
    service = "crio" if runtime == "cri-o" else "containerd"
    if bundle is not None:
        install = (
            _bundle_check(manager, bundle)
            + "\n"
            + _offline_install(manager, bundle, f"*.{'deb' if manager == 'apt' else 'rpm'}")
        )
    elif manager == "apt":
        install = f"apt-get update -q\napt-get install -y -q {package}"
    else:
        install = f"dnf install -y -q {package}"
    packages = (
        f"set -e\nif {_installed_test(manager, package)}; then "
        f"echo '{SAY} {package} already installed'\nelse\n{install}\n"
        f"echo '{SAY} {package} installed'\nfi"
    )
    config, content = (
        (CRIO_CONFIG, CRIO_CONF) if runtime == "cri-o" else (CONTAINERD_CONFIG, CONTAINERD_TOML)
    )
    applied = shlex.quote(f"{config}.applied")
    # Restarted only when the configuration is newer than its last restart: a re-run on a
    # working node does not restart the runtime under its containers.
    restart = (
        f"set -e\nif [ ! -e {applied} ] || [ {shlex.quote(config)} -nt {applied} ]; then\n"
        f"systemctl enable {service}\nsystemctl restart {service}\ntouch {applied}\n"
        f"echo '{SAY} {service} restarted on the systemd cgroup driver'\n"
        f"else echo '{SAY} {service} already runs this configuration'; fi"
    )
    return _command(packages, timeout=900.0), _file(config, content), _command(restart)


def kube_repository(manager: str, versions: Versions) -> tuple[Command | FileWrite, ...]:
    """The package repository of ``versions``' minor (pkgs.k8s.io has one per minor version) and
    its key, alone: what an upgrade points a node to before it installs the next minor."""
    core = f"https://pkgs.k8s.io/core:/stable:/{versions.minor}"
    if manager == "apt":
        key = _download_key(f"{core}/deb/Release.key", APT_KEY)
        listing = _file(APT_LIST, f"deb [signed-by={APT_KEY}] {core}/deb/ /\n".encode())
        directory = "/etc/apt/keyrings"
    else:
        key = _download_key(f"{core}/rpm/repodata/repomd.xml.key", DNF_KEY)
        listing = _file(DNF_REPO, _rpm_repo("kubernetes", "Kubernetes", f"{core}/rpm/", DNF_KEY))
        directory = "/etc/pki/rpm-gpg"
    return _command(f"set -e\nmkdir -p -m 0755 {directory}\n{key}", timeout=300.0), listing


def bundle_patterns(manager: str, versions: Versions, packages: Sequence[str]) -> list[str]:
    """The offline bundle's file names of ``packages`` at ``versions`` (shell patterns)."""
    if manager == "apt":
        return [f"{p}_{versions.full}-*.deb" for p in packages]
    return [f"{p}-{versions.full}-*.rpm" for p in packages]


def kube_packages(
    manager: str, versions: Versions, bundle: str | None, packages: Sequence[str]
) -> Command:
    """``packages`` (some of kubeadm, kubelet, kubectl) pinned to ``versions`` and held: the
    hold lifted for the install (``--allow-change-held-packages`` / ``versionlock delete``) and
    set again after it, as kubeadm's upgrade guide does with ``apt-mark unhold`` and ``hold``."""
    return _kube_packages(manager, versions, bundle, tuple(packages))


def _kube_packages(
    manager: str,
    versions: Versions,
    bundle: str | None,
    packages: tuple[str, ...] = KUBE_PACKAGES,
) -> Command:
    names = " ".join(packages)
    # All three from a bundle: every file of it (their dependencies too); fewer: only theirs.
    patterns = ["*.deb" if manager == "apt" else "*.rpm"]
    if packages != KUBE_PACKAGES:
        patterns = bundle_patterns(manager, versions, packages)
    if manager == "apt":
        have = (
            'have() { case "$(dpkg-query -W --showformat=\'${Version}\' "$1" 2>/dev/null)" in '
            f"{versions.full}-*) return 0 ;; *) return 1 ;; esac; }}\n"
            'held() { apt-mark showhold | grep -qx "$1"; }'
        )
        pinned = " ".join(f"{p}={versions.deb}" for p in packages)
        install = (
            f"apt-get update -q\napt-get install -y -q --allow-change-held-packages {pinned}"
            if bundle is None
            else _offline_install(manager, bundle, *patterns)
        )
        hold = f"apt-mark hold {names}"
    else:
        have = (
            'have() { [ "$(rpm -q --qf \'%{VERSION}\' "$1" 2>/dev/null)" = '
            f"{versions.full} ]; }}\n"
            "held() { dnf versionlock list --disablerepo='*' 2>/dev/null | "
            f'grep -q "^$1-[0-9]*:{re.escape(versions.full)}-"; }}'
        )
        pinned = " ".join(f"{p}-{versions.full}" for p in packages)
        plugin = _installed_test(manager, "python3-dnf-plugin-versionlock")
        if bundle is None:
            install = (
                f"{plugin} || dnf install -y -q 'dnf-command(versionlock)'\n"
                f"dnf versionlock delete {names} >/dev/null 2>&1 || true\n"
                f"dnf install -y -q --disableexcludes=kubernetes {pinned}"
            )
        else:
            install = (
                f"dnf versionlock delete --disablerepo='*' {names} >/dev/null 2>&1 || true\n"
                + _offline_install(manager, bundle, *patterns)
            )
        # Offline, versionlock resolves the names among installed packages only.
        local = "" if bundle is None else "--disablerepo='*' "
        hold = f"dnf versionlock add {local}{pinned}"
    checks = " && ".join(f"have {p} && held {p}" for p in packages)
    script = (
        f"set -e\n{have}\nif {checks}; then\n"
        f"echo '{SAY} {names} {versions.full} already installed and held'\nelse\n"
        + (_bundle_check(manager, bundle) + "\n" if bundle is not None else "")
        + f"{install}\n"
        + "\n".join(
            f"have {p} || {{ echo '{p} {versions.full} was not installed' >&2; exit 1; }}"
            for p in packages
        )
        + f"\n{hold}\necho '{SAY} {names} {versions.full} installed and held'\nfi\n"
        "systemctl is-enabled --quiet kubelet 2>/dev/null || systemctl enable kubelet\n"
    )
    return _command(script, timeout=900.0)
