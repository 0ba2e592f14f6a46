"""The offline release bundle of binary-installed clusters, read and checked on the panel host.

The operator places the release tarballs in ``CLUSTERPANEL_BINARY_BUNDLE_DIR``:
``kubernetes-server-<version>-linux-amd64.tar.gz`` (one per version the clusters run or upgrade
to), ``etcd-v<version>-linux-amd64.tar.gz``, ``cni-plugins-linux-amd64-v<version>.tgz`` and a
``SHA256SUMS`` file (``sha256sum`` output) naming each of them. Every tarball is checked against
``SHA256SUMS`` before a byte of it is sent to a node; a missing file, one that ``SHA256SUMS``
does not name, or a checksum that differs fails the job naming the file. When several etcd or
CNI releases are there, the newest is taken.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from django.conf import settings

from clusterpanel.jobs.registry import JobFailed
from nodes.recipes.binary_install import Bundle, Tarball
from nodes.recipes.upgrade import parse_version, show

SUMS = "SHA256SUMS"
_ETCD = re.compile(r"etcd-(v\d+\.\d+\.\d+)-linux-amd64\.tar\.gz")
_CNI = re.compile(r"cni-plugins-linux-amd64-(v\d+\.\d+\.\d+)\.tgz")
_SUM_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](\S+)")
_CHUNK = 1 << 20


def bundle_dir() -> Path:
    return Path(settings.CLUSTERPANEL_BINARY_BUNDLE_DIR)


def kubernetes_tarball(version: str) -> str:
    return f"kubernetes-server-{version}-linux-amd64.tar.gz"


def _sums(directory: Path) -> dict[str, str]:
    path = directory / SUMS
    try:
        text = path.read_text()
    except OSError:
        raise JobFailed(f"the release bundle has no {SUMS} in {directory}") from None
    found = {}
    for line in text.splitlines():
        match = _SUM_LINE.fullmatch(line.strip())
        if match:
            found[match.group(2).removeprefix("./")] = match.group(1).lower()
    return found


def _newest(directory: Path, pattern: re.Pattern[str], what: str) -> tuple[str, str]:
    found = []
    for path in directory.iterdir() if directory.is_dir() else ():
        match = pattern.fullmatch(path.name)
        if match:
            found.append((parse_version(match.group(1)), path.name))
    if not found:
        raise JobFailed(f"the release bundle in {directory} holds no {what} tarball")
    version, name = max(found)
    return show(version), name


def sha256_of(path: Path) -> str:
    """The file's sha256, read a chunk at a time (a release tarball is hundreds of MiB)."""
    hashed = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            hashed.update(block)
    return hashed.hexdigest()


def _tarball(directory: Path, name: str, sums: dict[str, str], *, verify: bool) -> Tarball:
    path = directory / name
    if not path.is_file():
        raise JobFailed(f"the release bundle in {directory} has no {name}")
    expected = sums.get(name)
    if expected is None:
        raise JobFailed(f"{SUMS} of the release bundle does not name {name}")
    if verify:
        actual = sha256_of(path)
        if actual != expected:
            raise JobFailed(
                f"{name} does not match {SUMS}: its sha256 is {actual}, {SUMS} says {expected}; "
                "nothing was sent to any node"
            )
    # The path, not the bytes: the executor streams the file to the nodes.
    return Tarball(name, expected, str(path.resolve()), path.stat().st_size)


def load_bundle(version: str, *, verify: bool = True) -> Bundle:
    """The bundle for Kubernetes ``version``, every tarball checked against ``SHA256SUMS``
    (``verify=False`` for a preview, which sends nothing). ``JobFailed`` names what is wrong."""
    directory = bundle_dir()
    version = show(parse_version(version, "version"))
    sums = _sums(directory)
    etcd_version, etcd_name = _newest(directory, _ETCD, "etcd")
    cni_version, cni_name = _newest(directory, _CNI, "CNI plugins")
    return Bundle(
        kubernetes_version=version,
        etcd_version=etcd_version,
        cni_version=cni_version,
        kubernetes=_tarball(directory, kubernetes_tarball(version), sums, verify=verify),
        etcd=_tarball(directory, etcd_name, sums, verify=verify),
        cni=_tarball(directory, cni_name, sums, verify=verify),
    )
