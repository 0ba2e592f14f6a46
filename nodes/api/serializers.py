"""API serializers for clusters and nodes.

Validation runs through the models' ``full_clean`` so the API and the forms
give the same messages. Credentials are write-only.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from clusterpanel.api.fields import StrictCharField, StrictModelSerializer
from nodes.models import CLUSTER_SETTINGS, Cluster, Node, NodeRole
from nodes.rules import validation
from nodes.rules.credentials import CredentialError, credential_changes


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

    class Meta:
        model = Cluster
        fields = ["id", *CLUSTER_SETTINGS, "node_counts", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def get_node_counts(self, cluster: Cluster) -> dict[str, int]:
        counts = {role.value: 0 for role in NodeRole}
        for node in cluster.nodes.all():
            counts[node.role] = counts.get(node.role, 0) + 1
        return counts

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance or Cluster()
        # Validate a copy so a failed update leaves the stored row untouched in memory.
        candidate = Cluster(
            **{f.attname: getattr(instance, f.attname) for f in Cluster._meta.fields}
        )
        candidate._state.adding = instance._state.adding
        _model_clean(candidate, attrs, exclude=[])
        attrs["kubernetes_version"] = candidate.kubernetes_version
        attrs["extra_sans"] = candidate.extra_sans
        return attrs


class NodeSerializer(StrictModelSerializer):  # type: ignore[type-arg]
    labels = serializers.DictField(child=StrictCharField(allow_blank=True), required=False)
    taints = serializers.ListField(
        child=StrictCharField(),
        required=False,
        allow_null=True,
        help_text="key=value:Effect strings; null for the role's default taints "
        "(control-plane: node-role.kubernetes.io/control-plane:NoSchedule), [] for none.",
    )
    ssh_private_key = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=validation.MAX_PRIVATE_KEY,
    )
    ssh_key_passphrase = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=validation.MAX_SECRET,
    )
    ssh_password = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=validation.MAX_SECRET,
    )
    has_credential = serializers.BooleanField(read_only=True)
    credential_kind = serializers.CharField(read_only=True)
    host_key_fingerprint = StrictCharField(required=False, allow_blank=True)

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
            "has_credential",
            "credential_kind",
            "host_key_fingerprint",
            "host_key_approved_at",
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
            "created_at",
            "updated_at",
        ]

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
