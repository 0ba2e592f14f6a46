"""API serializers for clusters and nodes.

Validation runs through the models' ``full_clean`` so the API and the forms
give the same messages. Credentials are write-only.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from clusterpanel.api.fields import StrictCharField, StrictModelSerializer
from nodes.models import (
    CLUSTER_SECURITY_SETTINGS,
    CLUSTER_SETTINGS,
    Cluster,
    ComponentHealth,
    EtcdSnapshot,
    HealthEvent,
    Node,
    NodeRole,
    role_subcount,
)
from nodes.rules import validation
from nodes.rules.credentials import (
    CredentialError,
    bastion_credential_changes,
    credential_changes,
)
from nodes.services import FLAVOR_FIXED

HOST_KEY_STATES = ["unknown", "pending", "pinned", "changed"]


def _secret(max_length: int, **kwargs: Any) -> StrictCharField:
    """A write-only secret: accepted, never answered."""
    return StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=max_length,
        **kwargs,
    )


def _model_clean(instance: Any, attrs: dict[str, Any], exclude: list[str]) -> None:
    for field, value in attrs.items():
        setattr(instance, field, value)
    try:
        instance.full_clean(exclude=exclude, validate_unique=True)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict) from None


class ClusterSerializer(StrictModelSerializer):  # type: ignore[type-arg]
    extra_sans = serializers.ListField(child=StrictCharField(), required=False)
    node_counts = serializers.SerializerMethodField()
    bastion_host_key_fingerprint = StrictCharField(required=False, allow_blank=True)
    bastion_private_key = _secret(validation.MAX_PRIVATE_KEY)
    bastion_key_passphrase = _secret(validation.MAX_SECRET)
    bastion_password = _secret(validation.MAX_SECRET)
    bastion_credential_kind = serializers.ChoiceField(
        choices=["private key", "password", "none"], read_only=True
    )
    bastion_host_key_state = serializers.ChoiceField(
        choices=["unknown", "pending", "pinned"], read_only=True
    )

    class Meta:
        model = Cluster
        fields = [
            "id",
            *CLUSTER_SETTINGS,
            *CLUSTER_SECURITY_SETTINGS,
            "bastion_private_key",
            "bastion_key_passphrase",
            "bastion_password",
            "bastion_credential_kind",
            "bastion_host_key_state",
            "bastion_pending_host_key_fingerprint",
            "bastion_host_key_scanned_at",
            "node_counts",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "bastion_pending_host_key_fingerprint",
            "bastion_host_key_scanned_at",
            "created_at",
            "updated_at",
        ]

    def get_node_counts(self, cluster: Cluster) -> dict[str, int]:
        names = {role.value: role_subcount(role) for role in NodeRole}
        if all(hasattr(cluster, name) for name in names.values()):  # with_role_subcounts()
            return {role: getattr(cluster, name) for role, name in names.items()}
        counts = {role.value: 0 for role in NodeRole}
        for role in cluster.nodes.values_list("role", flat=True):
            counts[role] = counts.get(role, 0) + 1
        return counts

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (
            self.instance is not None
            and "flavor" in attrs
            and attrs["flavor"] != self.instance.flavor
        ):
            raise serializers.ValidationError({"flavor": [FLAVOR_FIXED]})
        instance = self.instance or Cluster()
        # Validate a copy so a failed update leaves the stored row untouched in memory.
        candidate = Cluster(
            **{f.attname: getattr(instance, f.attname) for f in Cluster._meta.fields}
        )
        candidate._state.adding = instance._state.adding
        try:
            attrs.update(
                bastion_credential_changes(
                    attrs.pop("bastion_private_key", ""),
                    attrs.pop("bastion_key_passphrase", ""),
                    attrs.pop("bastion_password", ""),
                )
            )
        except CredentialError as exc:
            raise serializers.ValidationError({exc.field: [str(exc)]}) from None
        _model_clean(candidate, attrs, exclude=[])
        if candidate.bastion_address:
            attrs["bastion_address"] = candidate.bastion_address
        attrs["kubernetes_version"] = candidate.kubernetes_version
        attrs["extra_sans"] = candidate.extra_sans
        return attrs


class NodeAddressField(serializers.IPAddressField):
    """An IP address without an IPv6 zone. Django's IPv6 cleaning drops a zone silently
    (``fe80::1%anything`` becomes ``fe80::1``); a zone is refused instead, so the stored address
    is what the operator typed and no text after a ``%`` passes unseen."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and "%" in data:
            try:
                validation.ip(data)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc)) from None
        return super().to_internal_value(data)


class NodeSerializer(StrictModelSerializer):  # type: ignore[type-arg]
    address = NodeAddressField(protocol="both")
    labels = serializers.DictField(child=StrictCharField(allow_blank=True), required=False)
    taints = serializers.ListField(
        child=StrictCharField(),
        required=False,
        allow_null=True,
        help_text="key=value:Effect strings; null for the role's default taints "
        "(control-plane: node-role.kubernetes.io/control-plane:NoSchedule), [] for none.",
    )
    ssh_private_key = _secret(validation.MAX_PRIVATE_KEY)
    ssh_key_passphrase = _secret(validation.MAX_SECRET)
    ssh_password = _secret(validation.MAX_SECRET)
    sudo_password = _secret(
        validation.MAX_SECRET,
        allow_null=True,
        help_text="The password sudo asks for. Omitted or empty: keep the stored one; null: "
        "remove it (sudo then must not ask: sudo -n).",
    )
    has_credential = serializers.BooleanField(read_only=True)
    credential_kind = serializers.CharField(read_only=True)
    has_sudo_password = serializers.SerializerMethodField()
    host_key_fingerprint = StrictCharField(required=False, allow_blank=True)
    host_key_state = serializers.ChoiceField(
        choices=HOST_KEY_STATES,
        read_only=True,
        help_text="unknown: nothing pinned or scanned; pending: a scanned key waits for "
        "approval; pinned; changed: a job met another key than the pinned one.",
    )

    class Meta:
        model = Node
        fields = [
            "id",
            "cluster",
            "name",
            "address",
            "ssh_port",
            "ssh_user",
            "role",
            "labels",
            "taints",
            "status",
            "facts",
            "ssh_private_key",
            "ssh_key_passphrase",
            "ssh_password",
            "sudo_password",
            "has_credential",
            "credential_kind",
            "has_sudo_password",
            "host_key_state",
            "host_key_fingerprint",
            "host_key_approved_at",
            "pending_host_key_fingerprint",
            "host_key_scanned_at",
            "presented_host_key_fingerprint",
            "presented_at",
            "facts_read_at",
            "created_at",
            "updated_at",
        ]
        # Uniqueness is checked by Node.clean, which names the field that collides.
        validators: list[Any] = []
        read_only_fields = [
            "id",
            "status",
            "facts",
            "host_key_approved_at",
            "pending_host_key_fingerprint",
            "host_key_scanned_at",
            "presented_host_key_fingerprint",
            "presented_at",
            "facts_read_at",
            "created_at",
            "updated_at",
        ]

    def get_has_sudo_password(self, node: Node) -> bool:
        return bool(node.sudo_password)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (
            self.instance is not None
            and "cluster" in attrs
            and attrs["cluster"] != self.instance.cluster
        ):
            raise serializers.ValidationError(
                {"cluster": ["a node cannot move to another cluster"]}
            )
        try:
            changes = credential_changes(
                attrs.pop("ssh_private_key", ""),
                attrs.pop("ssh_key_passphrase", ""),
                attrs.pop("ssh_password", ""),
            )
        except CredentialError as exc:
            raise serializers.ValidationError({exc.field: [str(exc)]}) from None
        attrs.update(changes)
        if "sudo_password" in attrs:
            sudo_password = attrs.pop("sudo_password")
            if sudo_password is None:
                attrs["sudo_password"] = ""
            elif sudo_password:
                attrs["sudo_password"] = sudo_password
        instance = self.instance
        candidate = (
            Node(**{f.attname: getattr(instance, f.attname) for f in Node._meta.fields})
            if instance
            else Node()
        )
        if instance is not None:
            candidate._state.adding = False
        _model_clean(candidate, attrs, exclude=[])
        return attrs


class HostKeyStateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A node's host keys: the pinned one, a scanned one waiting, one a job was presented."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    host_key_state = serializers.ChoiceField(choices=HOST_KEY_STATES, read_only=True)
    host_key_type = serializers.CharField(read_only=True)
    host_key_fingerprint = serializers.CharField(read_only=True)
    host_key_approved_at = serializers.DateTimeField(read_only=True, allow_null=True)
    pending_host_key_type = serializers.CharField(read_only=True)
    pending_host_key_fingerprint = serializers.CharField(read_only=True)
    host_key_scanned_at = serializers.DateTimeField(read_only=True, allow_null=True)
    presented_host_key_fingerprint = serializers.CharField(read_only=True)
    presented_at = serializers.DateTimeField(read_only=True, allow_null=True)


class ScanAnswerSerializer(HostKeyStateSerializer):
    scanned_fingerprint = serializers.CharField(read_only=True)
    matches_pinned = serializers.BooleanField(read_only=True)


class ApproveHostKeySerializer(serializers.Serializer):  # type: ignore[type-arg]
    fingerprint = StrictCharField(
        max_length=60, help_text="SHA256:… of the scanned key, exactly as the scan answered it."
    )


class BastionHostKeyStateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    bastion_address = serializers.CharField(read_only=True)
    bastion_host_key_state = serializers.ChoiceField(
        choices=["unknown", "pending", "pinned"], read_only=True
    )
    bastion_host_key_fingerprint = serializers.CharField(read_only=True)
    bastion_pending_host_key_fingerprint = serializers.CharField(read_only=True)
    bastion_host_key_scanned_at = serializers.DateTimeField(read_only=True, allow_null=True)


class EtcdSnapshotSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A kept etcd snapshot: what it is, never its content (an admin download)."""

    class Meta:
        model = EtcdSnapshot
        fields = [
            "id",
            "cluster",
            "taken_at",
            "size",
            "sha256",
            "revision",
            "total_keys",
            "member",
            "job_id",
        ]
        read_only_fields = fields


class ComponentHealthSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """The latest result of one check (``node`` null: through the control-plane endpoint)."""

    node_name = serializers.CharField(source="node.name", read_only=True, allow_null=True)

    class Meta:
        model = ComponentHealth
        fields = [
            "component",
            "node",
            "node_name",
            "target",
            "status",
            "latency_ms",
            "message",
            "checked_at",
            "changed_at",
        ]
        read_only_fields = fields


class HealthEventSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A check that changed status (``from_status`` empty: its first result)."""

    class Meta:
        model = HealthEvent
        fields = [
            "id",
            "cluster",
            "node",
            "component",
            "target",
            "from_status",
            "to_status",
            "message",
            "at",
        ]
        read_only_fields = fields
