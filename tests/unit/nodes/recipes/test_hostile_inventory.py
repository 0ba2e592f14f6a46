"""The facts and preflight recipes build the same command lines whatever the inventory holds:
no node name, address, role or cluster setting enters a command, so none can be injected."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import pytest

from nodes.recipes import facts, preflight
from nodes.recipes.plan import ClusterSpec, Command, FileWrite, NodeTarget, Plan
from tests.payloads import Canary, payloads

CANARY = Canary.fresh()
PAYLOADS = payloads(CANARY)
PLAIN_CLUSTER = ClusterSpec("prod", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd")
PLAIN_NODES = [
    NodeTarget("cp-1", "10.0.0.11", "control-plane"),
    NodeTarget("w-1", "10.0.0.21", "worker"),
]


def _actions(plan: Plan) -> list[tuple[str | None, str, Command | FileWrite]]:
    return [
        (step.node, step.name, action)
        for phase in plan.phases
        for step in phase.steps
        for action in step.actions
    ]


def _lines(plan: Plan) -> list[str]:
    lines = []
    for _, _, action in _actions(plan):
        assert isinstance(action, Command), "a read-only recipe writes no files"
        lines.append(action.line)
        assert not action.stdin
    return lines


def _hostile_nodes(values: Sequence[str]) -> list[NodeTarget]:
    roles = ("control-plane", "worker", "etcd")
    return [
        NodeTarget(value, value if i % 2 else f"10.0.0.{i % 250 + 1}", roles[i % 3])
        for i, value in enumerate(values)
    ]


@pytest.mark.parametrize("recipe", [facts, preflight], ids=lambda r: r.KIND)
def test_every_command_line_is_the_same_for_hostile_names_addresses_and_clusters(
    recipe: ModuleType,
) -> None:
    plain = _lines(recipe.plan(PLAIN_CLUSTER, PLAIN_NODES, {}))
    per_node = len(plain) // len(PLAIN_NODES) if recipe is facts else None
    for start in range(0, len(PAYLOADS), 50):
        values = PAYLOADS[start : start + 50]
        cluster = ClusterSpec(
            values[0], values[1], values[2], values[3], values[4], values[5], values[6]
        )
        hostile = recipe.plan(cluster, _hostile_nodes(values), {})
        lines = _lines(hostile)
        assert not [line for line in lines if CANARY.token in line]
        # The same lines, node for node: one shape, whatever the values.
        assert set(lines) == set(plain)
        if per_node is not None:
            assert len(lines) == per_node * len(values)
        for node, _, action in _actions(hostile):
            assert node is None or node in values
            assert isinstance(action, Command) and CANARY.token not in action.stdin_label
