"""Syntax every module shares: DNS-1123 names and Kubernetes versions.

The DNS rules are k8s.io/apimachinery's ``IsDNS1123Label``, ``IsDNS1123Subdomain`` and
``IsWildcardDNS1123Subdomain``, which kubeadm applies to node names, SANs and endpoints.
cfssl accepts a looser host syntax (underscores) and keeps its own pattern in ``cfssl``.
"""

from __future__ import annotations

import re

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1123_LABEL_RE = re.compile(DNS1123_LABEL)
DNS1123_SUBDOMAIN_RE = re.compile(rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*")
WILDCARD_DNS1123_RE = re.compile(rf"\*\.{DNS1123_LABEL}(\.{DNS1123_LABEL})*")

# ``v1.31.2`` or ``1.31.2``, with an optional pre-release or build suffix (``v1.31.0-rc.1``).
VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)([-+][0-9A-Za-z.+-]+)?")


def is_dns1123_label(value: str) -> bool:
    return len(value) <= DNS1123_LABEL_MAX and DNS1123_LABEL_RE.fullmatch(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= DNS1123_SUBDOMAIN_MAX and DNS1123_SUBDOMAIN_RE.fullmatch(value) is not None


def is_wildcard_dns1123_subdomain(value: str) -> bool:
    """``*.`` followed by a subdomain."""
    return len(value) <= DNS1123_SUBDOMAIN_MAX and WILDCARD_DNS1123_RE.fullmatch(value) is not None


def parse_version(value: object, *, suffix: bool = True) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a Kubernetes version, or None; ``suffix=False`` refuses
    pre-release and build suffixes."""
    match = VERSION_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None or (match.group(4) and not suffix):
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))
