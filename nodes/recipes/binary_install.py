"""The ``binary-install`` job: the release binaries of a binary-installed cluster, from the
offline bundle the operator placed on the panel host (pure, no Django; glue ``nodes.binary_jobs``).

Nothing is downloaded: the panel checked the tarballs against the bundle's ``SHA256SUMS`` before
the plan is built (``nodes.binary_bundle``). Per node, in phases that each wait for the one
before, every node in parallel:

1. ``service user``: ``id -u kube || useradd --system --no-create-home --shell /usr/sbin/nologin
   kube`` (the user the services run as, the group of the files they read).
2. ``upload``: the tarballs the node needs (the Kubernetes server tarball on every Kubernetes
   node, etcd's on etcd members, the CNI plugins on kubelet nodes) into ``<prefix>/staging``,
   streamed from the panel host's bundle directory (``FileStream``: never held in memory; one
   already there with the right digest is not sent again), then ``sha256sum -c`` there: what
   arrived is what the panel checked.
3. ``install``: ``tar -xzf`` into the staging directory, ``install -m 0755`` of the node's
   binaries into ``<prefix>/bin`` (control plane: kube-apiserver, kube-controller-manager,
   kube-scheduler, kubectl; kubelet nodes: kubelet, kube-proxy; etcd members: etcd, etcdctl)
   and of the CNI plugins into ``/opt/cni/bin``; etcd's data directory (0700) and the API
   server's audit log directory made the service user's; the staging directory removed.

Step names carry the versions, so a retry with another bundle installs again.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes.binary_common import (
    ETCD,
    BinaryCluster,
    BinaryNode,
    Layout,
    read_said,
    refuse_unknown,
    service_user_command,
)
from nodes.recipes.plan import (
    ClusterSpec,
    Command,
    FileStream,
    FileWrite,
    NodeTarget,
    Phase,
    Plan,
    Step,
)

KIND = "binary-install"
MUTATING = True
PARAMS: tuple[str, ...] = ()

KUBERNETES = "kubernetes"
ETCD_RELEASE = "etcd"
CNI = "cni"
# The binaries each service needs, from which tarball.
BINARIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "etcd": (ETCD_RELEASE, ("etcd", "etcdctl")),
    "kube-apiserver": (KUBERNETES, ("kube-apiserver", "kubectl")),
    "kube-controller-manager": (KUBERNETES, ("kube-controller-manager",)),
    "kube-scheduler": (KUBERNETES, ("kube-scheduler",)),
    "kubelet": (KUBERNETES, ("kubelet",)),
    "kube-proxy": (KUBERNETES, ("kube-proxy",)),
}
KUBELET = "kubelet"


@dataclass(frozen=True)
class Tarball:
    """One release tarball of the bundle: its file name, the checksum the panel verified, where
    it is on the panel host and its size. The plan names the file; the executor streams it
    (a Kubernetes server tarball is hundreds of MiB: never read whole)."""

    name: str
    sha256: str
    source: str  # absolute path on the panel host
    size: int


@dataclass(frozen=True)
class Bundle:
    """The offline release bundle: the Kubernetes server, etcd and CNI plugin tarballs."""

    kubernetes_version: str  # v1.31.2
    etcd_version: str  # v3.5.16
    cni_version: str  # v1.5.1
    kubernetes: Tarball
    etcd: Tarball
    cni: Tarball

    def tarball(self, release: str) -> Tarball:
        return {KUBERNETES: self.kubernetes, ETCD_RELEASE: self.etcd, CNI: self.cni}[release]

    @property
    def id(self) -> str:
        return f"{self.kubernetes_version}, etcd {self.etcd_version}, cni {self.cni_version}"


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """binary-install takes no parameters: the version is the cluster's, the bundle the panel's."""
    refuse_unknown(KIND, params, PARAMS)
    return {}


def releases_for(services: Sequence[str]) -> list[str]:
    """The tarballs a node with ``services`` needs, in a fixed order."""
    wanted = {BINARIES[s][0] for s in services if s in BINARIES}
    if KUBELET in services:
        wanted.add(CNI)
    return [r for r in (KUBERNETES, ETCD_RELEASE, CNI) if r in wanted]


def binaries_for(services: Sequence[str], release: str) -> list[str]:
    names: list[str] = []
    for service in services:
        found = BINARIES.get(service)
        if found and found[0] == release:
            names.extend(n for n in found[1] if n not in names)
    return names


def _source_dir(bundle: Bundle, release: str, extracted: str) -> str:
    """Where a tarball's binaries are once extracted (the release tarballs' own layout)."""
    if release == KUBERNETES:
        return posixpath.join(extracted, "kubernetes", "server", "bin")
    if release == ETCD_RELEASE:
        return posixpath.join(extracted, f"etcd-{bundle.etcd_version}-linux-amd64")
    return extracted


def upload_step(
    name: str, layout: Layout, node: BinaryNode, bundle: Bundle, services: Sequence[str]
) -> Step:
    """The node's tarballs into the staging directory, then checked there with ``sha256sum -c``."""
    q = shlex.quote
    tarballs = [bundle.tarball(r) for r in releases_for(services)]
    sums = "".join(f"{t.sha256}  {t.name}\n" for t in tarballs).encode()
    writes = [
        FileStream(posixpath.join(layout.staging, t.name), t.source, t.size, t.sha256, 0o644)
        for t in tarballs
    ]
    sums_file = FileWrite(posixpath.join(layout.staging, "SHA256SUMS"), sums, 0o644)
    check = Command(
        f"cd {q(layout.staging)} && sha256sum -c --strict SHA256SUMS && "
        f"echo {q(f'clusterpanel: {len(tarballs)} tarballs uploaded and checked')}",
        timeout=600.0,
    )
    return Step(name, node.name, (*writes, sums_file, check), read_said)


def install_command(
    layout: Layout, bundle: Bundle, services: Sequence[str], *, clean: bool = True
) -> Command:
    """Unpack the node's tarballs in the staging directory and install its binaries."""
    q = shlex.quote
    lines = ["set -e", f"bin={q(posixpath.join(layout.install_prefix, 'bin'))}"]
    lines.append(f'install -d -m 0755 "$bin" {q(layout.cni_bin_dir)}')
    for release in releases_for(services):
        tarball = bundle.tarball(release)
        extracted = posixpath.join(layout.staging, release)
        lines.append(f"rm -rf {q(extracted)} && mkdir -p {q(extracted)}")
        lines.append(
            f"tar -xzf {q(posixpath.join(layout.staging, tarball.name))} -C {q(extracted)}"
        )
        source = _source_dir(bundle, release, extracted)
        if release == CNI:
            lines.append(
                f"find {q(source)} -maxdepth 1 -type f -exec install -m 0755 {{}} "
                f"{q(layout.cni_bin_dir)}/ \\;"
            )
            lines.append(f"echo 'clusterpanel: CNI plugins {bundle.cni_version} installed'")
            continue
        names = binaries_for(services, release)
        sources = " ".join(q(posixpath.join(source, n)) for n in names)
        lines.append(f'install -m 0755 {sources} "$bin"/')
        version = bundle.kubernetes_version if release == KUBERNETES else bundle.etcd_version
        said = f"clusterpanel: {' '.join(names)} {version} installed"
        lines.append(f"echo {q(said)}")
    # The directories the services write, theirs (they run as the service user).
    owner = f"-o {q(layout.service_user)} -g {q(layout.service_user)}"
    if ETCD in services:
        lines.append(f"install -d -m 0700 {owner} {q(layout.etcd_data_dir)}")
    if "kube-apiserver" in services and layout.audit_log_dir:
        lines.append(f"install -d -m 0750 {owner} {q(layout.audit_log_dir)}")
    if clean:
        lines.append(f"rm -rf {q(layout.staging)}")
    return Command("\n".join(lines), timeout=900.0)


def install_step(
    name: str, layout: Layout, node: BinaryNode, bundle: Bundle, services: Sequence[str]
) -> Step:
    return Step(name, node.name, (install_command(layout, bundle, services),), read_said)


def install_phases(
    cluster: BinaryCluster, bundle: Bundle, nodes: Sequence[BinaryNode]
) -> tuple[Phase, ...]:
    layout = cluster.layout
    user = Phase(
        "service user",
        tuple(
            Step(f"service user {layout.service_user}", n.name, (service_user_command(layout),))
            for n in nodes
        ),
    )
    upload = Phase(
        "upload",
        tuple(upload_step(f"upload {bundle.id}", layout, n, bundle, n.services) for n in nodes),
    )
    install = Phase(
        "install",
        tuple(install_step(f"install {bundle.id}", layout, n, bundle, n.services) for n in nodes),
    )
    return user, upload, install


def check(cluster: BinaryCluster) -> None:
    """Every node runs a service; an etcd node runs etcd."""
    for node in cluster.nodes:
        if not node.services:
            raise InputError(f"{node.name} runs no service of the cluster", "nodes")
        if node.target.role == "etcd" and ETCD not in node.services:
            raise InputError(f"the etcd node {node.name} runs no etcd", "nodes")


def plan(
    spec: ClusterSpec,
    nodes: Sequence[NodeTarget],
    params: Mapping[str, Any],
    inputs: tuple[BinaryCluster, Bundle],
) -> Plan:
    validate_params(params)
    cluster, bundle = inputs
    check(cluster)
    return Plan(KIND, install_phases(cluster, bundle, cluster.nodes))
