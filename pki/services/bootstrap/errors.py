"""The error raised when a cluster cannot produce a join command or kubeadm-certs now."""

from __future__ import annotations

from clusterpanel.errors import Conflict


class JoinUnavailable(Conflict):
    """The cluster cannot produce a join command now (no usable token, no CA yet)."""


class NoUsableToken(JoinUnavailable):
    """No bootstrap token is fit for joining. The message says why; each caller adds its own
    way out (the API its ``new_token`` parameter, a page its button)."""
