"""The error raised when a cluster cannot produce a join command or kubeadm-certs now."""

from __future__ import annotations


class JoinUnavailable(Exception):
    """The cluster cannot produce a join command now (no usable token, no CA yet)."""
