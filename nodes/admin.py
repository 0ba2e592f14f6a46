"""Admin for clusters and nodes. Secret fields show only whether they are set."""

from __future__ import annotations

from django.contrib import admin

from nodes.models import Cluster, Node


class NodeInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Node
    fields = ["name", "address", "role", "status"]
    readonly_fields = ["name", "address", "role", "status"]
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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
    exclude = ["ssh_private_key", "ssh_key_passphrase", "ssh_password"]
    readonly_fields = ["credential", "host_key_approved_at", "host_key_approved_by"]

    @admin.display(description="credential")
    def credential(self, node: Node) -> str:
        return f"set ({node.credential_kind})" if node.has_credential else "not set"
