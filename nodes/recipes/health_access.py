"""``health-access``: the panel's health role on a cluster the bootstrap did not make.

The ``bootstrap`` job applies the role of the panel's health identity (``clusterpanel:health``:
``get`` on ``/livez``, ``/readyz`` and ``/healthz``) and its binding right after ``kubeadm init``.
A cluster bootstrapped before that, or one whose PKI was imported, has neither: the health checks
then rely on the default ``system:public-info-viewer`` binding, which hardened clusters remove.
This job applies the same manifest, with ``kubectl apply -f -`` and ``admin.conf`` on one
control-plane node; apply is idempotent, so running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodes.recipes.binary_common import refuse_unknown
from nodes.recipes.bootstrap import health_rbac_phase
from nodes.recipes.plan import Plan

KIND = "health-access"
# It changes the cluster (an RBAC object), so it waits for a bootstrap or an upgrade to end.
MUTATING = True


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    refuse_unknown(KIND, params, ())
    return {}


def plan(node: str, manifest: bytes) -> Plan:
    """The role applied from ``node``, a control-plane node holding ``admin.conf``."""
    return Plan(KIND, (health_rbac_phase(node, manifest),))
