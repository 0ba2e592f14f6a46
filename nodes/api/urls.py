"""REST routes of the inventory (included under /api/v1/ by clusterpanel/api/urls.py)."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from nodes.api.findings import FindingViewSet
from nodes.api.views import ClusterViewSet, EtcdSnapshotViewSet, HealthEventViewSet, NodeViewSet

router = SimpleRouter()
router.register("clusters", ClusterViewSet, basename="cluster")
router.register("nodes", NodeViewSet, basename="node")
router.register("health-events", HealthEventViewSet, basename="health-event")
router.register("etcd-snapshots", EtcdSnapshotViewSet, basename="etcd-snapshot")
router.register("findings", FindingViewSet, basename="finding")

urlpatterns = router.urls
