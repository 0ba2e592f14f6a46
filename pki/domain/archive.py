"""Safe reading of an uploaded archive of ``/etc/kubernetes`` (or of its ``pki/`` folder).

The archive comes from a browser, so it is treated as hostile: nothing is written to disk, and every
member is checked before its bytes are read. Refused, each with a ``PKIError`` naming the member:

- names that could escape a directory (``..`` components, absolute paths, drive letters,
  backslashes, NUL bytes) and duplicate names;
- anything but regular files and directories (symlinks, hard links, devices, FIFOs, sparse files);
- more than ``max_members`` members, or more than ``max_bytes`` of file content in total.

Compressed tarballs are decompressed with the same byte budget *before* ``tarfile`` sees them, so a
decompression bomb costs at most the budget, not the memory of the worker.

The result maps names the importer understands to file contents: paths relative to
``/etc/kubernetes/pki`` (``ca.crt``, ``etcd/peer.key``) and kubeconfig names (``admin.conf``).
"""

from __future__ import annotations

import bz2
import io
import lzma
import posixpath
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pki.domain.x509 import PKIError

# A kubeadm tree has about 30 files of a few KiB each; these limits leave room for backups and
# extra files while keeping a hostile upload cheap.
MAX_MEMBERS = 500
MAX_BYTES = 8 * 1024 * 1024

# Archive roots the operator is likely to have packed, outermost first.
_KNOWN_ROOTS = (("etc", "kubernetes"), ("kubernetes",))
# Room for tar headers, padding and end blocks on top of the file content budget.
_TAR_OVERHEAD_PER_MEMBER = 3 * 512
_TAR_OVERHEAD = 20 * 512


@dataclass(frozen=True)
class _Member:
    """One regular file of the archive, before its content is read."""

    name: str
    size: int


def read_archive(
    data: bytes, *, max_members: int = MAX_MEMBERS, max_bytes: int = MAX_BYTES
) -> dict[str, bytes]:
    """Read a tar, tar.gz/.bz2/.xz or zip upload into ``{pki-relative path or conf name: bytes}``.

    The archive root may be ``etc/kubernetes/``, ``kubernetes/``, ``pki/`` or the files
    themselves. In an ``/etc/kubernetes`` layout only ``pki/**`` and the top-level ``*.conf``
    files are returned; manifests and other files are left out.
    """
    if not isinstance(data, bytes | bytearray):
        raise PKIError("the archive must be bytes")
    data = bytes(data)
    if not data:
        raise PKIError("the archive is empty")
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        files = _read_zip(data, max_members, max_bytes)
    else:
        files = _read_tar(data, max_members, max_bytes)
    if not files:
        raise PKIError("the archive holds no files")
    return _normalise(files)


# --------------------------------------------------------------------------- names


def _safe_name(raw: str) -> str:
    """Archive member name as a clean relative POSIX path, or ``PKIError`` naming the member."""
    if "\x00" in raw:
        raise PKIError(f"{raw!r}: member names must not contain NUL bytes")
    if "\\" in raw:
        # Harmless on Linux, a directory separator for any Windows tool that unpacks it later.
        raise PKIError(f"{raw!r}: member names must not contain backslashes")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise PKIError(f"{raw!r}: absolute paths are not allowed in the archive")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PKIError(f"{raw!r}: '..' path components are not allowed in the archive")
    return "/".join(parts)


def _check_count(count: int, max_members: int) -> None:
    if count > max_members:
        raise PKIError(f"the archive has more than {max_members} members")


class _Budget:
    """Running total of file content, so the first member that breaks the limit is named."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0

    def take(self, name: str, size: int) -> None:
        self.used += size
        if self.used > self.max_bytes:
            raise PKIError(
                f"{name!r}: the archive holds more than {self.max_bytes} bytes uncompressed"
            )


# --------------------------------------------------------------------------- tar


def _read_tar(data: bytes, max_members: int, max_bytes: int) -> dict[str, bytes]:
    limit = max_bytes + max_members * _TAR_OVERHEAD_PER_MEMBER + _TAR_OVERHEAD
    raw, truncated = _decompress(data, limit)
    if not _looks_like_tar(raw):
        raise PKIError("not a tar, tar.gz, tar.bz2, tar.xz or zip archive")
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
            files = _read_tar_members(archive, max_members, max_bytes)
    except tarfile.TarError as exc:
        if truncated:
            raise _too_big(limit) from None
        raise PKIError(f"the tar archive is damaged: {exc}") from None
    # The budget above the content limit leaves every member header inside the first ``limit``
    # bytes, so an oversized member has been named already; what remains is header padding abuse.
    if truncated:
        raise _too_big(limit)
    return files


def _too_big(limit: int) -> PKIError:
    return PKIError(f"the archive expands to more than {limit} bytes")


def _looks_like_tar(raw: bytes) -> bool:
    # POSIX and GNU tar headers carry "ustar" at offset 257; pre-POSIX archives are not accepted.
    return len(raw) >= 512 and raw[257:262] == b"ustar"


def _read_tar_members(
    archive: tarfile.TarFile, max_members: int, max_bytes: int
) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    budget = _Budget(max_bytes)
    count = 0
    # Iterating reads one header at a time, so the count limit stops a huge archive early.
    for info in archive:
        count += 1
        _check_count(count, max_members)
        name = _safe_name(info.name)
        if info.isdir():
            continue
        _check_tar_type(info)
        budget.take(info.name, info.size)
        extracted = archive.extractfile(info)
        if extracted is None:  # pragma: no cover - regular files always have a data stream
            raise PKIError(f"{info.name!r}: cannot read the member")
        _add(files, name, info.name, extracted.read(info.size))
    return files


def _check_tar_type(info: tarfile.TarInfo) -> None:
    if info.issym() or info.islnk():
        raise PKIError(
            f"{info.name!r}: links are not allowed in the archive (points to {info.linkname!r})"
        )
    if info.issparse():
        raise PKIError(f"{info.name!r}: sparse files are not allowed in the archive")
    if not info.isreg():
        raise PKIError(f"{info.name!r}: only regular files are allowed (devices, FIFOs are not)")


def _decompress(data: bytes, limit: int) -> tuple[bytes, bool]:
    """Plain tar bytes of a possibly compressed upload: at most ``limit`` bytes, and whether the
    output was cut there."""
    if data.startswith(b"\x1f\x8b"):
        return _inflate(data, limit, lambda: zlib.decompressobj(wbits=16 + zlib.MAX_WBITS), "gzip")
    if data.startswith(b"BZh"):
        return _inflate(data, limit, bz2.BZ2Decompressor, "bzip2")
    if data.startswith(b"\xfd7zXZ\x00"):
        return _inflate(data, limit, lzma.LZMADecompressor, "xz")
    return data, False


def _inflate(data: bytes, limit: int, factory: Callable[[], Any], kind: str) -> tuple[bytes, bool]:
    """Decompress every stream of ``data`` (gzip allows several) while counting the output."""
    output = bytearray()
    pending = data
    while pending:
        decompressor = factory()
        try:
            output += _drain(decompressor, pending, limit - len(output))
        except (zlib.error, OSError, lzma.LZMAError, EOFError) as exc:
            raise PKIError(f"the {kind} data is damaged: {exc}") from None
        if len(output) > limit:
            # Keep the head: the tar reader names the member that breaks the budget from it.
            return bytes(output[:limit]), True
        if not decompressor.eof:
            raise PKIError(f"the {kind} data is truncated")
        pending = decompressor.unused_data
        # Trailing zero padding after a gzip stream is common (tape block sizes); ignore it.
        if not pending.strip(b"\x00"):
            break
    return bytes(output), False


def _drain(decompressor: Any, data: bytes, room: int) -> bytes:
    # Ask for at most room + 1 bytes so that going over the limit is detected without inflating
    # the rest of the bomb.
    chunk: bytes = decompressor.decompress(data, max(room, 0) + 1)
    out = bytearray(chunk)
    while len(out) <= room and not decompressor.eof:
        more = _more_output(decompressor, room - len(out) + 1)
        if not more:
            break
        out += more
    return bytes(out)


def _more_output(decompressor: Any, max_length: int) -> bytes:
    # zlib keeps input it could not yet process in unconsumed_tail; bz2 and lzma keep it inside.
    tail = getattr(decompressor, "unconsumed_tail", None)
    if tail is not None:
        return decompressor.decompress(tail, max_length)
    if getattr(decompressor, "needs_input", True):
        return b""
    return decompressor.decompress(b"", max_length)


# --------------------------------------------------------------------------- zip


def _read_zip(data: bytes, max_members: int, max_bytes: int) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise PKIError(f"the zip archive is damaged: {exc}") from None
    with archive:
        infos = archive.infolist()
        _check_count(len(infos), max_members)
        members = list(_zip_members(infos, max_bytes))
        files: dict[str, bytes] = {}
        for info, member in members:
            _add(files, member.name, info.filename, _read_zip_member(archive, info))
        return files


def _zip_members(
    infos: Iterable[zipfile.ZipInfo], max_bytes: int
) -> Iterable[tuple[zipfile.ZipInfo, _Member]]:
    budget = _Budget(max_bytes)
    for info in infos:
        name = _safe_name(info.filename)
        mode = info.external_attr >> 16
        if info.is_dir() or stat.S_ISDIR(mode):
            continue
        # Only archives made on Unix carry a file type; zero means "no type recorded".
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            kind = "links" if stat.S_ISLNK(mode) else "special files"
            raise PKIError(f"{info.filename!r}: {kind} are not allowed in the archive")
        if info.flag_bits & 0x1:
            raise PKIError(f"{info.filename!r}: encrypted zip members are not supported")
        # The declared size is checked first; the read below enforces it against a lying header.
        budget.take(info.filename, info.file_size)
        yield info, _Member(name, info.file_size)


def _read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with archive.open(info) as handle:
            content = handle.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
        raise PKIError(f"{info.filename!r}: cannot read the member: {exc}") from None
    if len(content) != info.file_size:
        raise PKIError(f"{info.filename!r}: the member's size does not match its header")
    return content


# --------------------------------------------------------------------------- layout


def _add(files: dict[str, bytes], name: str, raw_name: str, content: bytes) -> None:
    if not name:
        raise PKIError(f"{raw_name!r}: the member has no file name")
    if name in files:
        # Two members with one name would let the second silently replace the first.
        raise PKIError(f"{raw_name!r}: the archive holds this file twice")
    files[name] = content


def _normalise(files: dict[str, bytes]) -> dict[str, bytes]:
    """Strip the archive root and keep what lives under ``pki/`` plus top-level kubeconfigs."""
    parts = {name: name.split("/") for name in files}
    prefix = _common_directory(list(parts.values()))
    if "pki" in prefix:
        # Packed from inside the tree (``pki/``, ``etc/kubernetes/pki/``, even ``pki/etcd/``):
        # keep whatever follows the last ``pki`` component.
        cut = len(prefix) - prefix[::-1].index("pki")
        return {"/".join(p[cut:]): files[name] for name, p in parts.items()}
    for root in _KNOWN_ROOTS:
        if tuple(prefix[: len(root)]) == root:
            parts = {name: p[len(root) :] for name, p in parts.items()}
            break
    if any(p[0] == "pki" for p in parts.values()):
        return _etc_kubernetes_layout(files, parts)
    return {"/".join(p): files[name] for name, p in parts.items()}


def _etc_kubernetes_layout(
    files: dict[str, bytes], parts: dict[str, list[str]]
) -> dict[str, bytes]:
    result: dict[str, bytes] = {}
    for name, p in parts.items():
        if p[0] == "pki" and len(p) > 1:
            result["/".join(p[1:])] = files[name]
        elif len(p) == 1 and posixpath.splitext(p[0])[1] == ".conf":
            result[p[0]] = files[name]
    return result


def _common_directory(paths: list[list[str]]) -> list[str]:
    """Longest run of leading directory components shared by every file path."""
    directories = [p[:-1] for p in paths]
    common: list[str] = []
    # Paths differ in depth; the shortest one ends the shared run.
    for components in zip(*directories, strict=False):
        if len(set(components)) != 1:
            break
        common.append(components[0])
    return common
