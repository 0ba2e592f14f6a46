from __future__ import annotations

from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "nodes"
    verbose_name = "Inventory"

    def ready(self) -> None:
        from clusterpanel.security import sealed_files
        from nodes import metrics
        from nodes.etcd_snapshots import reseal_files
        from nodes.health.services import metric_rows
        from nodes.jobs import register_kinds

        register_kinds()
        sealed_files.register("etcd snapshots", reseal_files)
        metrics.register_health_source(metric_rows)
