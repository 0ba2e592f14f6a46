"""Each node's files of a binary-installed cluster, as the jobs write them: the one place where
the jobs meet the certificate bundles and the rendered units, configs and kubeconfigs.

``node_files(cluster, node)`` answers every file the panel holds for the node, as
``NodeFile(path, content, mode, secret)`` with absolute paths in the binary layout:

- the certificates and keys: ``pki.services.certificates.binary_bundles.binary_bundle_files
  (cluster, node)`` — the node's ``<cert_dir>/<name>.pem`` and ``<name>-key.pem`` files;
- the units, configs and kubeconfigs: ``pki.services.binary_files.binary_node_files(cluster,
  node)`` — ``<unit_dir>/<service>.service``, ``<config_dir>/*.kubeconfig``, the kubelet and
  kube-proxy configs, the audit policy …

Either may answer a sequence of objects with ``path``, ``content``, ``mode`` and optionally
``secret`` and ``owner`` attributes (``pki.domain.binary_node.RenderedFile``), of ``(path, content,
mode[, secret])`` tuples, or a mapping of path to an object with ``content`` and ``mode``; content
as bytes or text. ``owner`` is the user whose service reads the file (root unless a service runs as
the layout's service user); the group is the service user's. A file is secret when it says so, when
it is a key (``*-key.pem``) or when no one but its owner may read it (mode ``0600``). Another source
(the import of an existing cluster's files) may come first: ``register_source``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nodes.recipes.binary_common import NodeFile

if TYPE_CHECKING:  # the models are not imported here, so a source may register before setup
    from nodes.models import Cluster, Node

# A source answers a node's files, or None when it holds none for this cluster.
Source = Callable[["Cluster", "Node"], Sequence[NodeFile] | None]
_SOURCES: list[Source] = []


def register_source(source: Source) -> None:
    """Ask ``source`` first (before the PKI's bundles and renderers)."""
    if source not in _SOURCES:
        _SOURCES.append(source)


def node_files(cluster: Cluster, node: Node) -> list[NodeFile]:
    for source in _SOURCES:
        found = source(cluster, node)
        if found is not None:
            return list(found)
    return [*_certificates(cluster, node), *_rendered(cluster, node)]


# The PKI is imported when asked, like the models above: this module is imported before setup.
def _certificates(cluster: Cluster, node: Node) -> list[NodeFile]:
    from pki.services.certificates.binary_bundles import binary_bundle_files

    return as_node_files(binary_bundle_files(cluster, node))


def _rendered(cluster: Cluster, node: Node) -> list[NodeFile]:
    from pki.services.binary_files import binary_node_files

    return as_node_files(binary_node_files(cluster, node))


def _secret(path: str, mode: int, said: Any) -> bool:
    return bool(said) or path.endswith("-key.pem") or mode & 0o077 == 0


def _one(path: Any, content: Any, mode: Any, secret: Any = False, owner: Any = "root") -> NodeFile:
    data = content.encode() if isinstance(content, str) else bytes(content)
    hidden = _secret(str(path), int(mode), secret)
    return NodeFile(str(path), data, int(mode), hidden, str(owner or "root"))


def as_node_files(found: Any) -> list[NodeFile]:
    """The files a source answered, in any of the shapes above, as ``NodeFile``s."""
    if isinstance(found, Mapping):
        return [
            _one(path, f.content, f.mode, getattr(f, "secret", False)) for path, f in found.items()
        ]
    files: list[NodeFile] = []
    for item in found if isinstance(found, Iterable) else ():
        if isinstance(item, NodeFile):
            files.append(item)
        elif hasattr(item, "path"):  # RenderedFile (a NamedTuple) and the like
            secret, owner = getattr(item, "secret", False), getattr(item, "owner", "root")
            files.append(_one(item.path, item.content, item.mode, secret, owner))
        else:
            files.append(_one(*item[:4]))
    return files
