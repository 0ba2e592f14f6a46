"""kubeconfig files in the exact shape kubeadm writes them, and their parsing.

kubeadm builds a ``clientcmdapi.Config`` and writes it with ``clientcmd.Write``, which goes through
JSON and therefore emits keys in alphabetical order, block style, with CA, certificate and key
embedded as base64 ``*-data`` fields. ``render_kubeconfig`` produces the same text.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import yaml

from pki.domain.x509 import PKIError, load_certificate, subject_identity
from pki.domain.yaml import load_document


@dataclass(frozen=True)
class ParsedKubeconfig:
    """The parts of a single-cluster, single-user kubeconfig."""

    cluster_name: str
    server: str
    ca_cert_pem: bytes
    client_cert_pem: bytes
    client_key_pem: bytes
    user: str
    context: str


def _b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def render_kubeconfig(
    cluster_name: str,
    server: str,
    ca_cert_pem: bytes,
    client_cert_pem: bytes,
    client_key_pem: bytes,
    user: str,
    context: str | None = None,
) -> str:
    """kubeconfig with one cluster, one user and one context selected: ``<user>@<cluster>`` as
    kubeadm names it, unless ``context`` names it otherwise."""
    if not server.startswith("https://"):
        raise PKIError(f"kubeconfig server must be an https:// URL, got {server!r}")
    context = context or f"{user}@{cluster_name}"
    document = {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {
                    "certificate-authority-data": _b64(ca_cert_pem),
                    "server": server,
                },
                "name": cluster_name,
            }
        ],
        "contexts": [{"context": {"cluster": cluster_name, "user": user}, "name": context}],
        "current-context": context,
        "kind": "Config",
        "preferences": {},
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client_cert_pem),
                    "client-key-data": _b64(client_key_pem),
                },
            }
        ],
    }
    # No line wrapping: Go's YAML writer keeps the long base64 values on one line.
    return yaml.safe_dump(document, sort_keys=True, default_flow_style=False, width=2**31 - 1)


def _one(items: object, what: str, name: str | None = None) -> dict:
    if not isinstance(items, list) or not items:
        raise PKIError(f"kubeconfig has no {what}")
    if name is not None:
        for item in items:
            if isinstance(item, dict) and item.get("name") == name:
                return item
        raise PKIError(f"kubeconfig has no {what[:-1]} named {name!r}")
    if not isinstance(items[0], dict):
        raise PKIError(f"kubeconfig {what} entry is not a mapping")
    return items[0]


def _data(section: dict, key: str) -> bytes:
    value = section.get(key)
    if not isinstance(value, str):
        raise PKIError(f"kubeconfig lacks embedded {key}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PKIError(f"kubeconfig {key} is not valid base64") from None


def parse_kubeconfig(text: str) -> ParsedKubeconfig:
    """Parts of a kubeconfig with embedded credentials, following its current context."""
    try:
        doc = load_document(text)
    except yaml.YAMLError as exc:
        raise PKIError(f"kubeconfig is not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Config":
        raise PKIError("not a kubeconfig: expected a mapping with kind: Config")
    current = doc.get("current-context")
    context = _one(doc.get("contexts"), "contexts", current if current else None)
    ctx = context.get("context") or {}
    cluster = _one(doc.get("clusters"), "clusters", ctx.get("cluster"))
    user = _one(doc.get("users"), "users", ctx.get("user"))
    cluster_body = cluster.get("cluster") or {}
    user_body = user.get("user") or {}
    server = cluster_body.get("server")
    if not isinstance(server, str) or not server:
        raise PKIError("kubeconfig cluster has no server")
    return ParsedKubeconfig(
        cluster_name=str(cluster.get("name")),
        server=server,
        ca_cert_pem=_data(cluster_body, "certificate-authority-data"),
        client_cert_pem=_data(user_body, "client-certificate-data"),
        client_key_pem=_data(user_body, "client-key-data"),
        user=str(user.get("name")),
        context=str(context.get("name")),
    )


def client_identity(text: str) -> tuple[str, tuple[str, ...]]:
    """The user (CN) and groups (O) of the kubeconfig's embedded client certificate: the identity
    whoever holds the file is to the API server, whatever the kubeconfig's user entry is named.
    PKIError if the file or its certificate does not parse."""
    return subject_identity(load_certificate(parse_kubeconfig(text).client_cert_pem).subject)
