"""Every file the panel renders for one node of a binary-installed cluster (the certificates aside).

The units (``binary_units``), the kubelet and kube-proxy configuration (``binary_configs``), the
kubeconfigs with their certificates embedded (``binary_kubeconfig``), and on control-plane nodes
the audit policy and the static token file when kube-apiserver reads them. The certificate files
themselves are the node's bundle. Pure Python: no Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple, Protocol

from pki.domain.binary_configs import kube_proxy_config, kubelet_config
from pki.domain.binary_kubeconfig import node_kubeconfigs
from pki.domain.binary_kubeconfig import render as render_kubeconfig
from pki.domain.binary_layout import CA_FILES, KUBE_APISERVER, KUBE_PROXY, KUBELET
from pki.domain.binary_spec import (
    AUDIT_POLICY_FILE,
    KUBE_PROXY_CONFIG_FILE,
    KUBELET_CONFIG_FILE,
    TOKEN_FILE,
    BinarySpec,
)
from pki.domain.binary_units import node_units, service_user
from pki.domain.kubeadm import CA, CERT_MODE, KEY_MODE, NodeSpec
from pki.domain.x509 import PKIError

KIND_UNIT = "unit"
KIND_CONFIG = "config"
KIND_KUBECONFIG = "kubeconfig"
KIND_AUDIT_POLICY = "audit-policy"
KIND_TOKENS = "tokens"


class PemPair(Protocol):
    """A certificate and its key as PEM (``pki.services.certificates.binary_pems.BinaryPem``)."""

    @property
    def cert(self) -> bytes: ...

    @property
    def key(self) -> bytes: ...


class MissingCertificate(PKIError):
    """A file needs a certificate the ledger does not hold yet; ``name`` is its file base."""

    def __init__(self, name: str, node: str) -> None:
        super().__init__(
            f"the certificate {name} ({name}.pem) of node {node} is not issued yet; issue the "
            "missing certificates first"
        )
        self.name = name


class RenderedFile(NamedTuple):
    """One file for a node: where it goes, its bytes and mode, and what it is.

    ``secret`` files (kubeconfigs with their private key, the static token file) are 0600;
    ``owner`` is the user whose service reads the file (root unless it is read by a service that
    runs as the layout's service user).
    """

    path: str
    content: bytes
    mode: int
    kind: str
    secret: bool = False
    owner: str = "root"


def _pem(pems: Mapping[str, PemPair], name: str, node: NodeSpec) -> PemPair:
    try:
        return pems[name]
    except KeyError:
        raise MissingCertificate(name, node.name) from None


def node_files(
    spec: BinarySpec,
    node: NodeSpec,
    pems: Mapping[str, PemPair],
    *,
    audit_policy: str | None = None,
    token_csv: str | None = None,
) -> list[RenderedFile]:
    """The node's rendered files in a stable order: units (start order), configuration files,
    kubeconfigs, then the apiserver's audit policy and token file.

    ``pems`` is keyed by file base (``ca``, ``kubelet-client`` …); a kubeconfig whose certificate
    is absent raises ``MissingCertificate`` naming it. ``audit_policy`` is needed when
    ``spec.audit`` is on and ``token_csv`` when ``spec.static_tokens`` is, for control-plane
    nodes.
    """
    layout = spec.layout
    files: list[RenderedFile] = []
    units = node_units(spec, node)
    services = {unit.service for unit in units}
    for unit in units:
        files.append(RenderedFile(unit.path, unit.text.encode(), CERT_MODE, KIND_UNIT))
    if KUBELET in services:
        text = kubelet_config(spec, node)
        path = layout.config(KUBELET_CONFIG_FILE)
        files.append(RenderedFile(path, text.encode(), CERT_MODE, KIND_CONFIG))
    if KUBE_PROXY in services:
        text = kube_proxy_config(spec, node)
        path = layout.config(KUBE_PROXY_CONFIG_FILE)
        files.append(RenderedFile(path, text.encode(), CERT_MODE, KIND_CONFIG))
    kubeconfigs = node_kubeconfigs(node)
    if kubeconfigs:
        ca = _pem(pems, CA_FILES[CA], node)
    for kubeconfig in kubeconfigs:
        pair = _pem(pems, kubeconfig.cert, node)
        text = render_kubeconfig(
            spec, kubeconfig, node, ca_pem=ca.cert, cert_pem=pair.cert, key_pem=pair.key
        )
        owner = service_user(spec, kubeconfig.name) if kubeconfig.local else "root"
        path = layout.kubeconfig(kubeconfig.name)
        files.append(RenderedFile(path, text.encode(), KEY_MODE, KIND_KUBECONFIG, True, owner))
    if KUBE_APISERVER in services:
        apiserver_user = service_user(spec, KUBE_APISERVER)
        if spec.audit:
            if audit_policy is None:
                raise PKIError("audit logging is on but no audit policy was given")
            path = layout.config(AUDIT_POLICY_FILE)
            content = audit_policy.encode()
            files.append(
                RenderedFile(path, content, CERT_MODE, KIND_AUDIT_POLICY, False, apiserver_user)
            )
        if spec.static_tokens:
            if token_csv is None:
                raise PKIError("static tokens are in use but no token file was given")
            path = layout.config(TOKEN_FILE)
            content = token_csv.encode()
            files.append(RenderedFile(path, content, KEY_MODE, KIND_TOKENS, True, apiserver_user))
    return files


_KEY_DATA = re.compile(r"^(\s*client-key-data: ).*$", re.MULTILINE)
REDACTED = "REDACTED"


def redact_kubeconfig(text: str) -> str:
    """The kubeconfig with its embedded private key replaced by ``REDACTED`` (for previews)."""
    return _KEY_DATA.sub(lambda match: match.group(1) + REDACTED, text)
