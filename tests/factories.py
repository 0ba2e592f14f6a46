"""Builders for the rows tests start from: clusters, nodes and users.

Plain functions with valid defaults; every other keyword goes to the model as it is, so a test
names only what it is about. Rows are written with ``objects.create`` and not ``full_clean``d, so a
test can still build a row that the forms and the API would refuse.

Node names and addresses left out are picked per cluster and role, following the convention the
tests read best: ``cp-1`` at 10.0.0.11, ``cp-2`` at 10.0.0.12, ``w-1`` at 10.0.0.21, ``etcd-1`` at
10.0.0.31 …, skipping whatever the cluster already uses.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group, User

from nodes.models import Cluster, Node, NodeRole

DEFAULT_ENDPOINT = "lb.example.internal:6443"
ROLES = ("viewer", "operator", "admin")

# Per node role: the name prefix and the network the role's addresses count up from.
_NAME_PREFIXES = {NodeRole.CONTROL_PLANE: "cp", NodeRole.WORKER: "w", NodeRole.ETCD: "etcd"}
_ADDRESS_BASES = {NodeRole.CONTROL_PLANE: 10, NodeRole.WORKER: 20, NodeRole.ETCD: 30}
_OTHER_ADDRESS_BASE = 40
_NODE_NETWORK = ipaddress.IPv4Address("10.0.0.0")


def make_cluster(name: str | None = None, **overrides: Any) -> Cluster:
    """A cluster with the model's defaults (kubeadm's: RSA-2048, stacked etcd, 10.96.0.0/12 …)
    behind ``lb.example.internal:6443``; ``name`` defaults to an unused ``cluster-<n>``."""
    if name is None:
        used = set(Cluster.objects.values_list("name", flat=True))
        name = next(n for n in (f"cluster-{i}" for i in itertools.count(1)) if n not in used)
    fields = {"control_plane_endpoint": DEFAULT_ENDPOINT, **overrides}
    return Cluster.objects.create(name=name, **fields)


def make_node(
    cluster: Cluster,
    role: str = NodeRole.CONTROL_PLANE,
    name: str | None = None,
    address: str | None = None,
    **overrides: Any,
) -> Node:
    """A node of ``cluster`` (a control-plane node unless ``role`` says otherwise; note that the
    model's own default is a worker). Name and address default to the next free ones of the role:
    the n-th control-plane node is ``cp-<n>`` at 10.0.0.(10 + n), the n-th worker ``w-<n>`` at
    10.0.0.(20 + n), the n-th etcd member ``etcd-<n>`` at 10.0.0.(30 + n)."""
    siblings = Node.objects.filter(cluster=cluster)
    if name is None:
        prefix = _NAME_PREFIXES.get(role, str(role))
        names = set(siblings.values_list("name", flat=True))
        name = next(n for n in (f"{prefix}-{i}" for i in itertools.count(1)) if n not in names)
    if address is None:
        addresses = set(siblings.values_list("address", flat=True))
        first = _ADDRESS_BASES.get(role, _OTHER_ADDRESS_BASE) + siblings.filter(role=role).count()
        candidates = (str(_NODE_NETWORK + offset) for offset in itertools.count(first + 1))
        address = next(a for a in candidates if a not in addresses)
    return Node.objects.create(cluster=cluster, name=name, address=address, role=role, **overrides)


def make_nodes(cluster: Cluster, nodes: Iterable[tuple[str, str, str]]) -> list[Node]:
    """Nodes of ``cluster`` from ``(name, address, role)`` rows, in order."""
    return [make_node(cluster, role, name, address) for name, address, role in nodes]


def make_user(username: str, role: str | None = None) -> User:
    """A user with the password ``<username>-Passw0rd!`` in the group of ``role`` (None: none)."""
    user = User.objects.create_user(username=username, password=f"{username}-Passw0rd!")
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    return user


def make_personas() -> dict[str, User]:
    """An admin, an operator, a viewer and an outsider (no role), each named after its role."""
    users = {role: make_user(role, role) for role in ROLES}
    users["outsider"] = make_user("outsider")
    # Admins also use the Django admin, which needs the staff flag.
    users["admin"].is_staff = True
    users["admin"].save(update_fields=["is_staff"])
    return users
