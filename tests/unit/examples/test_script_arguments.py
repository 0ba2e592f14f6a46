"""The examples' argument and inventory handling, before anything is sent to a panel."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture(scope="module")
def examples() -> Iterator[dict[str, ModuleType]]:
    """The scripts imported as modules (they import their client from their own directory)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import api_story
        import clusterpanel_cli
        import panel_client

        yield {"story": api_story, "cli": clusterpanel_cli, "client": panel_client}
    finally:
        sys.path.remove(str(EXAMPLES))
        for name in ("api_story", "clusterpanel_cli", "panel_client"):
            sys.modules.pop(name, None)


def test_nodes_from_arguments_and_inventory(examples: dict[str, Any], tmp_path: Path) -> None:
    story, client = examples["story"], examples["client"]
    assert story.parse_node("worker", "w-1=10.0.0.21") == {
        "name": "w-1", "address": "10.0.0.21", "role": "worker"
    }  # fmt: skip
    assert story.parse_node("control-plane", "cp-1=10.0.0.11:2222")["ssh_port"] == 2222
    assert story.parse_node("worker", "w-2=[fd00::21]:22") == {
        "name": "w-2", "address": "fd00::21", "role": "worker", "ssh_port": 22
    }  # fmt: skip
    assert story.parse_node("worker", "w-3=fd00::23")["address"] == "fd00::23"
    for wrong in ("w-1", "=10.0.0.1", "w-1=10.0.0.1:ssh", "w-1=[fd00::1]x"):
        with pytest.raises(client.UsageError):
            story.parse_node("worker", wrong)

    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps(
            {
                "cluster": {"name": "prod", "pod_subnet": "10.244.0.0/16"},
                "ssh_key_file": "/keys/panel",
                "nodes": [{"name": "cp-1", "address": "10.0.0.11", "role": "control-plane"}],
            }
        )
    )
    args = story.parser().parse_args(
        ["--inventory", str(inventory), "--endpoint", "lb:6443", "--worker", "w-1=10.0.0.21",
         "--ssh-user", "ops"]
    )  # fmt: skip
    cluster, nodes = story.inventory(args)
    assert cluster == {
        "name": "prod", "pod_subnet": "10.244.0.0/16", "control_plane_endpoint": "lb:6443"
    }  # fmt: skip
    assert [(n["name"], n["role"], n["ssh_user"], n["ssh_key_file"]) for n in nodes] == [
        ("cp-1", "control-plane", "ops", "/keys/panel"),
        ("w-1", "worker", "ops", "/keys/panel"),
    ]
    no_control_plane = story.parser().parse_args(
        ["--cluster", "x", "--endpoint", "lb:6443", "--worker", "w=10.0.0.2", "--ssh-key", "k"]
    )
    with pytest.raises(client.UsageError, match="at least one control-plane"):
        story.inventory(no_control_plane)


def test_job_parameters_and_the_panel_url(examples: dict[str, Any]) -> None:
    cli, client = examples["cli"], examples["client"]
    params = cli.parse_params(["confirm=prod", "ignore_preflight_errors=swap,cpus"], ["snapshot=3"])
    assert params == {"confirm": "prod", "ignore_preflight_errors": "swap,cpus", "snapshot": 3}
    with pytest.raises(client.UsageError):
        cli.parse_params(["novalue"], [])
    with pytest.raises(client.UsageError):
        cli.parse_params([], ["snapshot=three"])
    panel = client.PanelClient("https://panel.example.com/api/v1/", "t")
    assert panel.url("clusters/", {"cluster": 3, "x": None}) == (
        "https://panel.example.com/api/v1/clusters/?cluster=3"
    )
    with pytest.raises(client.UsageError):
        client.PanelClient("file:///etc/passwd", "t")
