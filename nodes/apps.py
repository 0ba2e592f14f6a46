from __future__ import annotations

from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "nodes"
    verbose_name = "Inventory"

    def ready(self) -> None:
        from nodes.jobs import register_kinds

        register_kinds()
