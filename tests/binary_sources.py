"""Node files of binary-installed clusters for tests: what ``nodes.binary_files.node_files``
answers for a cluster a test prepared, instead of the PKI's bundles and renderers.

The job runs in the jobs worker, another process: a test writes each node's files as JSON under
``<data dir>/binary-node-files/<cluster id>/<node name>.json`` (``write_node_files``), and the
source registered here (by ``tests.jobkinds``, which the worker and the tests import) reads them
back. A cluster without such a directory gets the panel's own files.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nodes import binary_files
from nodes.recipes.binary_common import NodeFile


def _root() -> Path:
    from django.conf import settings

    return Path(settings.DATA_DIR) / "binary-node-files"


def write_node_files(cluster: Any, node: Any, files: Sequence[NodeFile]) -> None:
    directory = _root() / str(cluster.pk)
    directory.mkdir(parents=True, exist_ok=True)
    rows = [[f.path, base64.b64encode(f.content).decode(), f.mode, f.secret] for f in files]
    (directory / f"{node.name}.json").write_text(json.dumps(rows))


def forget(cluster: Any) -> None:
    shutil.rmtree(_root() / str(cluster.pk), ignore_errors=True)


def source(cluster: Any, node: Any) -> list[NodeFile] | None:
    directory = _root() / str(cluster.pk)
    if not directory.is_dir():
        return None
    path = directory / f"{node.name}.json"
    if not path.exists():
        return []
    rows = json.loads(path.read_text())
    return [NodeFile(p, base64.b64decode(c), int(m), bool(s)) for p, c, m, s in rows]


def register() -> None:
    binary_files.register_source(source)
