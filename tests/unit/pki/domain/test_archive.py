"""Uploaded archives are read without trusting their names, types or sizes."""

from __future__ import annotations

import gzip
import io
import re
import stat
import tarfile
import zipfile

import pytest

from pki.domain.archive import read_archive
from pki.domain.x509 import PKIError

CA = b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN RSA PRIVATE KEY-----\nkey\n-----END RSA PRIVATE KEY-----\n"
CONF = b"apiVersion: v1\nkind: Config\n"


def _tar(entries: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                archive.addfile(entry)
                continue
            name, content = entry
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def _zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            archive.writestr(name, content)
    return buffer.getvalue()


KUBEADM_TREE = [
    ("etc/kubernetes/admin.conf", CONF),
    ("etc/kubernetes/manifests/kube-apiserver.yaml", b"kind: Pod\n"),
    ("etc/kubernetes/pki/ca.crt", CA),
    ("etc/kubernetes/pki/ca.key", KEY),
    ("etc/kubernetes/pki/etcd/ca.crt", CA),
]
EXPECTED = {"admin.conf": CONF, "ca.crt": CA, "ca.key": KEY, "etcd/ca.crt": CA}


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_it_reads_an_etc_kubernetes_tarball_in_every_compression(mode: str) -> None:
    assert read_archive(_tar(KUBEADM_TREE, mode)) == EXPECTED


@pytest.mark.parametrize(
    "root",
    ["etc/kubernetes/", "./etc/kubernetes/", "kubernetes/"],
)
def test_it_strips_the_usual_roots_and_drops_files_outside_pki(root: str) -> None:
    entries = [(root + name.removeprefix("etc/kubernetes/"), data) for name, data in KUBEADM_TREE]
    assert read_archive(_zip(entries)) == EXPECTED


def test_it_reads_a_pki_folder_archive() -> None:
    data = _tar([("pki/ca.crt", CA), ("pki/etcd/ca.crt", CA), ("pki/sa.key", KEY)], "w:gz")
    assert read_archive(data) == {"ca.crt": CA, "etcd/ca.crt": CA, "sa.key": KEY}


def test_it_keeps_subfolders_when_only_etcd_was_packed() -> None:
    data = _tar([("etc/kubernetes/pki/etcd/ca.crt", CA), ("etc/kubernetes/pki/etcd/ca.key", KEY)])
    assert read_archive(data) == {"etcd/ca.crt": CA, "etcd/ca.key": KEY}


def test_it_reads_files_packed_directly() -> None:
    data = _zip([("ca.crt", CA), ("etcd/ca.crt", CA), ("admin.conf", CONF)])
    assert read_archive(data) == {"ca.crt": CA, "etcd/ca.crt": CA, "admin.conf": CONF}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../x", "'..' path components"),
        ("pki/../../etc/passwd", "'..' path components"),
        ("/etc/kubernetes/pki/ca.key", "absolute paths"),
        ("C:/Windows/x", "absolute paths"),
        ("pki\\..\\x", "backslashes"),
    ],
)
def test_it_rejects_names_that_escape_the_tree(name: str, message: str) -> None:
    for data in (
        _tar([("pki/ca.crt", CA), (name, b"x")]),
        _zip([("pki/ca.crt", CA), (name, b"x")]),
    ):
        with pytest.raises(PKIError, match=message) as excinfo:
            read_archive(data)
        assert repr(name) in str(excinfo.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_special("pki/ca.key", tarfile.SYMTYPE, "/root/.ssh/id_rsa"), "links are not allowed"),
        (_special("pki/ca.key", tarfile.LNKTYPE, "pki/ca.crt"), "links are not allowed"),
        (_special("pki/dev", tarfile.CHRTYPE), "only regular files"),
        (_special("pki/fifo", tarfile.FIFOTYPE), "only regular files"),
    ],
)
def test_it_rejects_links_and_devices_in_a_tar(entry: tarfile.TarInfo, message: str) -> None:
    with pytest.raises(PKIError, match=message) as excinfo:
        read_archive(_tar([("pki/ca.crt", CA), entry]))
    assert repr(entry.name) in str(excinfo.value)


def test_it_rejects_a_symlink_in_a_zip() -> None:
    link = zipfile.ZipInfo("pki/ca.key")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(PKIError, match=re.escape("'pki/ca.key': links are not allowed")):
        read_archive(_zip([("pki/ca.crt", CA), (link, b"/root/.ssh/id_rsa")]))


def test_it_rejects_too_many_members() -> None:
    entries = [(f"pki/f{i}.crt", b"x") for i in range(11)]
    assert len(read_archive(_tar(entries[:10]), max_members=10)) == 10
    for data in (_tar(entries), _zip(entries)):
        with pytest.raises(PKIError, match="more than 10 members"):
            read_archive(data, max_members=10)


def test_it_names_the_member_that_breaks_the_size_budget() -> None:
    entries = [("pki/a.crt", b"a" * 600), ("pki/big.crt", b"b" * 600)]
    for data in (_tar(entries, "w:gz"), _zip(entries)):
        with pytest.raises(
            PKIError, match=re.escape("'pki/big.crt': the archive holds more than 1000 bytes")
        ):
            read_archive(data, max_bytes=1000)


def test_it_stops_a_gzip_bomb_before_inflating_it() -> None:
    # 64 MiB of zeros in one member compresses to about 64 KiB.
    bomb = _tar([("pki/bomb.crt", bytes(64 * 1024 * 1024))], "w:gz")
    assert len(bomb) < 200_000
    with pytest.raises(PKIError, match=re.escape("'pki/bomb.crt': the archive holds more than")):
        read_archive(bomb)


def test_it_stops_a_zip_bomb_by_its_declared_size() -> None:
    bomb = _zip([("pki/bomb.crt", bytes(64 * 1024 * 1024))])
    assert len(bomb) < 200_000
    with pytest.raises(PKIError, match=re.escape("'pki/bomb.crt': the archive holds more than")):
        read_archive(bomb)


def test_it_catches_a_zip_member_that_lies_about_its_size() -> None:
    data = bytearray(_zip([("pki/ca.crt", b"A" * 5000)]))
    # Rewrite the declared uncompressed size (local header and central directory) to 10 bytes.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature) + offset
        data[at : at + 4] = (10).to_bytes(4, "little")
    with pytest.raises(PKIError, match=re.escape("'pki/ca.crt'")):
        read_archive(bytes(data))


def test_it_rejects_duplicate_names() -> None:
    with pytest.raises(PKIError, match="holds this file twice"):
        read_archive(_tar([("pki/ca.crt", CA), ("./pki/ca.crt", b"evil")]))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"just some text" * 100, "not a tar"),
        (gzip.compress(b"not a tar at all" * 100, mtime=0), "not a tar"),
        (gzip.compress(b"x" * 1000, mtime=0)[:-20], "truncated"),
        (b"PK\x03\x04garbage", "zip archive is damaged"),
    ],
)
def test_it_rejects_things_that_are_not_archives(data: bytes, message: str) -> None:
    with pytest.raises(PKIError, match=message):
        read_archive(data)


def test_it_rejects_an_archive_with_only_directories() -> None:
    folder = tarfile.TarInfo("pki")
    folder.type = tarfile.DIRTYPE
    with pytest.raises(PKIError, match="no files"):
        read_archive(_tar([folder]))
