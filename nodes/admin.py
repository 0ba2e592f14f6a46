"""Admin for clusters and nodes. Secret fields show only whether they are set; what the panel's
checks and jobs record about a node (status, facts, the pinned host key and its approval) is
read-only here."""

from __future__ import annotations

from django.contrib import admin

from clusterpanel.web.panel_admin import PanelInline, PanelModelAdmin, ReadOnlyPanelAdmin
from nodes.models import (
    AlertDelivery,
    AlertSettings,
    Cluster,
    ComponentHealth,
    EtcdSnapshot,
    ExpiryNotice,
    Finding,
    HealthEvent,
    HealthSample,
    Node,
    RenewalPolicy,
    ScannedCertificate,
)


class NodeInline(PanelInline, admin.TabularInline):  # type: ignore[type-arg]
    model = Node
    fields = ["name", "address", "role", "status"]
    readonly_fields = ["name", "address", "role", "status"]
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Cluster)
class ClusterAdmin(PanelModelAdmin):
    list_display = [
        "name",
        "kubernetes_version",
        "control_plane_endpoint",
        "etcd_topology",
        "key_algorithm",
        "created_at",
    ]
    list_filter = ["etcd_topology", "key_algorithm", "container_runtime", "kubernetes_version"]
    search_fields = ["name", "control_plane_endpoint", "description"]
    inlines = [NodeInline]
    # The bastion's credential is set through the panel or the API, never shown.
    exclude = ["bastion_private_key", "bastion_key_passphrase", "bastion_password"]
    readonly_fields = ["bastion_credential"]
    # The bastion's key is pinned by approving a scan (or typed on the cluster form, audited).
    panel_managed_fields = [
        "bastion_host_key_type",
        "bastion_host_key",
        "bastion_host_key_fingerprint",
        "bastion_pending_host_key_type",
        "bastion_pending_host_key",
        "bastion_pending_host_key_fingerprint",
        "bastion_host_key_scanned_at",
    ]

    @admin.display(description="bastion credential")
    def bastion_credential(self, cluster: Cluster) -> str:
        return cluster.bastion_credential_kind


@admin.register(Node)
class NodeAdmin(PanelModelAdmin):
    list_display = [
        "name",
        "cluster",
        "address",
        "role",
        "status",
        "credential",
        "host_key_fingerprint",
    ]
    list_filter = ["role", "status", "cluster"]
    search_fields = ["name", "address", "cluster__name", "host_key_fingerprint"]
    # Credentials are excluded from the form: they are set through the panel or the API.
    exclude = ["ssh_private_key", "ssh_key_passphrase", "ssh_password", "sudo_password"]
    readonly_fields = ["credential"]
    # Set by the panel's checks and jobs, and pinned with the approver recorded: a host key
    # pinned through the node form or the API, never typed in here.
    panel_managed_fields = [
        "status",
        "facts",
        "host_key_type",
        "host_key",
        "host_key_fingerprint",
        "host_key_approved_at",
        "host_key_approved_by",
        "pending_host_key_type",
        "pending_host_key",
        "pending_host_key_fingerprint",
        "host_key_scanned_at",
        "presented_host_key_fingerprint",
        "presented_at",
        "facts_read_at",
    ]

    @admin.display(description="credential")
    def credential(self, node: Node) -> str:
        return f"set ({node.credential_kind})" if node.has_credential else "not set"


@admin.register(EtcdSnapshot)
class EtcdSnapshotAdmin(ReadOnlyPanelAdmin):
    """What is known about each kept snapshot; never its content (an audited API download).
    Rows are written by etcd-backup jobs and removed by their retention, never here: a row
    deleted here would leave its sealed file behind."""

    list_display = ["cluster", "taken_at", "size", "revision", "total_keys", "member"]
    list_filter = ["cluster", "taken_at"]
    search_fields = ["cluster__name", "sha256"]
    exclude = ["token"]
    panel_managed_fields = [
        "cluster", "taken_at", "size", "sha256", "revision", "total_keys", "etcd_hash",
        "member", "job_id",
    ]  # fmt: skip


@admin.register(ComponentHealth)
class ComponentHealthAdmin(ReadOnlyPanelAdmin):
    list_display = ["cluster", "component", "node", "target", "status", "latency_ms", "checked_at"]
    list_filter = ["status", "component", "cluster"]
    search_fields = ["cluster__name", "node__name", "component", "target"]


@admin.register(HealthSample)
class HealthSampleAdmin(ReadOnlyPanelAdmin):
    list_display = ["cluster", "component", "node", "target", "status", "latency_ms", "checked_at"]
    list_filter = ["status", "component", "cluster"]


@admin.register(HealthEvent)
class HealthEventAdmin(ReadOnlyPanelAdmin):
    list_display = ["cluster", "component", "node", "target", "from_status", "to_status", "at"]
    list_filter = ["to_status", "component", "cluster"]


@admin.register(Finding)
class FindingAdmin(ReadOnlyPanelAdmin):
    list_display = ["cluster", "node", "kind", "severity", "path", "last_seen", "resolved_at"]
    list_filter = ["severity", "kind", "cluster"]
    search_fields = ["cluster__name", "node__name", "path", "message"]


@admin.register(ScannedCertificate)
class ScannedCertificateAdmin(ReadOnlyPanelAdmin):
    list_display = ["cluster", "node", "path", "subject", "not_after", "scanned_at"]
    list_filter = ["cluster"]
    search_fields = ["cluster__name", "node__name", "path", "subject", "fingerprint"]


@admin.register(AlertSettings)
class AlertSettingsAdmin(ReadOnlyPanelAdmin):
    """Where a cluster's alerts go; edited on its Alerts tab (audited there). The webhook secret
    is never shown."""

    list_display = ["cluster", "webhook_url", "updated_at"]
    exclude = ["webhook_secret"]


@admin.register(RenewalPolicy)
class RenewalPolicyAdmin(ReadOnlyPanelAdmin):
    """A cluster's renewal policy; edited on its Alerts tab or the API (audited there)."""

    list_display = ["cluster", "enabled", "days_before", "time_zone", "last_run_at", "last_job"]
    list_filter = ["enabled"]


@admin.register(ExpiryNotice)
class ExpiryNoticeAdmin(ReadOnlyPanelAdmin):
    list_display = ["cluster", "key", "digest_key", "created_at"]
    search_fields = ["cluster__name", "key"]


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyPanelAdmin):
    list_display = ["cluster", "key", "channel", "status", "attempts", "delivered_at", "created_at"]
    list_filter = ["status", "channel", "cluster"]
    search_fields = ["cluster__name", "key", "subject"]
