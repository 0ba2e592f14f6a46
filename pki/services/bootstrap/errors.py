"""The error raised when a cluster cannot produce a join command or kubeadm-certs now."""

from __future__ import annotations

from clusterpanel.errors import Conflict


class JoinUnavailable(Conflict):
    """The cluster cannot produce a join command now (no usable token, no CA yet)."""


class NoUsableToken(JoinUnavailable):
    """No bootstrap token is fit for joining. The message says why; each caller adds its own
    way out (the API its ``new_token`` parameter, a page its button)."""


class NoCertificateKey(JoinUnavailable):
    """No certificate key has an hour left. Reading never makes one: each caller adds its own
    way out (the API its ``certificate-key`` endpoint, a page its button)."""

    def __init__(self, message: str, cluster_pk: int) -> None:
        super().__init__(message)
        self.cluster_pk = cluster_pk
