"""The Configuration tab of a binary-installed cluster: each node's rendered files.

Thin: the access check, a call into ``pki.services.binary_files``, a render. The page lists the
node's units, configuration files and kubeconfigs with a preview of each (private keys and token
values masked) and records nothing; downloading a file that carries a secret is the audited act,
and the page links it only for a role the identity policy gives it to.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from clusterpanel.errors import InputError
from clusterpanel.security.audit import Actor
from clusterpanel.web.access import get_for_user
from clusterpanel.web.responses import download
from nodes.models import Cluster, Node
from pki.services import binary_files

_CONTENT_TYPES = {".service": "text/plain", ".csv": "text/csv"}


def _content_type(name: str) -> str:
    for suffix, content_type in _CONTENT_TYPES.items():
        if name.endswith(suffix):
            return content_type
    return "application/yaml"


@require_GET
def node_files(request: HttpRequest, pk: int, node_pk: int) -> HttpResponse:
    """One node's rendered files with their previews (every role that sees the cluster)."""
    cluster = get_for_user(request, Cluster, pk)
    node = get_object_or_404(Node, pk=node_pk, cluster=cluster)
    context: dict[str, Any] = {"cluster": cluster, "node": node}
    try:
        rendered = binary_files.binary_node_files(cluster, node)
    except InputError as error:
        context["error"] = error.text()
        return render(request, "pki/binary_files.html", context, status=409)
    actor = Actor.from_request(request)
    # A fixed-size table: the few files one node's role gets, in install order: no paging.
    context["files"] = [
        {
            "name": binary_files.file_name(item),
            "path": item.path,
            "mode": f"{item.mode:04o}",
            "owner": item.owner,
            "kind": item.kind,
            "secret": item.secret,
            "downloadable": binary_files.downloadable(node, item, actor),
            "preview": binary_files.binary_file_preview(item),
        }
        for item in rendered
    ]
    return render(request, "pki/binary_files.html", context)


@require_GET
def node_file_download(request: HttpRequest, pk: int, node_pk: int, name: str) -> HttpResponse:
    """One rendered file in clear; one carrying a secret as the identity policy decides, audited."""
    cluster = get_for_user(request, Cluster, pk)
    node = get_object_or_404(Node, pk=node_pk, cluster=cluster)
    try:
        rendered = binary_files.download_binary_file(
            cluster, node, name, actor=Actor.from_request(request)
        )
    except InputError as error:
        if error.field == "file":
            raise Http404(error.text()) from None
        context = {"cluster": cluster, "node": node, "error": error.text()}
        return render(request, "pki/binary_files.html", context, status=409)
    return download(rendered.content, name, _content_type(name))
