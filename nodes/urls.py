from __future__ import annotations

from django.urls import path

from nodes import backup_views, finding_views, health_views, metrics, views
from nodes.alerts import views as alert_views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("metrics", metrics.metrics, name="metrics"),
    path("clusters/", views.cluster_list, name="cluster_list"),
    path("clusters/new/", views.cluster_create, name="cluster_create"),
    path("clusters/<int:pk>/", views.cluster_detail, name="cluster_detail"),
    path("clusters/<int:pk>/edit/", views.cluster_edit, name="cluster_edit"),
    path("clusters/<int:pk>/delete/", views.cluster_delete, name="cluster_delete"),
    path("clusters/<int:pk>/backups/", backup_views.cluster_backups, name="cluster_backups"),
    path(
        "clusters/<int:pk>/backups/<int:snapshot_pk>/download/",
        backup_views.backup_download,
        name="backup_download",
    ),
    path("clusters/<int:pk>/alerts/", alert_views.cluster_alerts, name="cluster_alerts"),
    path(
        "clusters/<int:pk>/alerts/renewal/",
        alert_views.cluster_renewal_policy,
        name="cluster_renewal_policy",
    ),
    path(
        "clusters/<int:pk>/alerts/test/", alert_views.cluster_alert_test, name="cluster_alert_test"
    ),
    path("clusters/<int:pk>/health/", health_views.cluster_health, name="cluster_health"),
    path(
        "clusters/<int:pk>/health/check/",
        health_views.cluster_health_check,
        name="cluster_health_check",
    ),
    path("clusters/<int:pk>/nodes/new/", views.node_create, name="node_create"),
    path(
        "clusters/<int:pk>/bastion-host-key/scan/",
        views.cluster_bastion_scan,
        name="cluster_bastion_scan",
    ),
    path(
        "clusters/<int:pk>/bastion-host-key/approve/",
        views.cluster_bastion_approve,
        name="cluster_bastion_approve",
    ),
    path("findings/", finding_views.findings_page, name="findings"),
    path("findings/<int:pk>/silence/", finding_views.finding_silence, name="finding_silence"),
    path("certificates/fleet/", finding_views.certificate_fleet, name="certificate_fleet"),
    path("nodes/<int:pk>/", views.node_detail, name="node_detail"),
    path("nodes/<int:pk>/host-key/scan/", views.node_host_key_scan, name="node_host_key_scan"),
    path(
        "nodes/<int:pk>/host-key/approve/",
        views.node_host_key_approve,
        name="node_host_key_approve",
    ),
    path("nodes/<int:pk>/edit/", views.node_edit, name="node_edit"),
    path("nodes/<int:pk>/row/", views.node_row, name="node_row"),
    path("nodes/<int:pk>/delete/", views.node_delete, name="node_delete"),
]
