"""Inventory: clusters and their nodes."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone

from clusterpanel.errors import Conflict
from clusterpanel.security.fields import EncryptedTextField
from clusterpanel.validators import ListLimit
from nodes import validators
from nodes.rules import validation
from nodes.rules.credentials import BASTION_FIELDS, CredentialError, check_private_key


class KeyAlgorithm(models.TextChoices):
    RSA_2048 = "RSA-2048", "RSA 2048"
    RSA_3072 = "RSA-3072", "RSA 3072"
    RSA_4096 = "RSA-4096", "RSA 4096"
    ECDSA_P256 = "ECDSA-P256", "ECDSA P-256"
    ECDSA_P384 = "ECDSA-P384", "ECDSA P-384"


class EtcdTopology(models.TextChoices):
    STACKED = "stacked", "Stacked (etcd on the control-plane nodes)"
    EXTERNAL = "external", "External etcd nodes"


class ClusterFlavor(models.TextChoices):
    KUBEADM = "kubeadm", "kubeadm (static pods)"
    BINARY = "binary", "Binaries under systemd (cfssl-style certificates)"


class ContainerRuntime(models.TextChoices):
    CONTAINERD = "containerd", "containerd"
    CRIO = "cri-o", "CRI-O"


class ClusterQuerySet(models.QuerySet["Cluster"]):
    def with_role_counts(self) -> ClusterQuerySet:
        counts = {
            f"{role.value.replace('-', '_')}_count": models.Count(
                # distinct: joined with the certificates, a node would count once per row.
                "nodes",
                filter=models.Q(nodes__role=role.value),
                distinct=True,
            )
            for role in NodeRole
        }
        return self.annotate(node_count=models.Count("nodes", distinct=True), **counts)

    def with_role_subcounts(self) -> ClusterQuerySet:
        """Annotate ``<role>_nodes`` (``control_plane_nodes``, ...): the cluster's nodes of each
        role, one subquery per role. For a page of clusters the database counts the page's
        nodes only, where the join of ``with_role_counts`` groups every cluster's nodes before
        the page is cut (20 ms at 1,000 clusters), and no node row is read into Python."""
        return self.annotate(
            **{
                role_subcount(role): Coalesce(
                    models.Subquery(
                        Node.objects.filter(cluster=models.OuterRef("pk"), role=role.value)
                        .order_by()
                        .values("cluster")
                        .annotate(n=models.Count("pk"))
                        .values("n"),
                        output_field=models.IntegerField(),
                    ),
                    0,
                )
                for role in NodeRole
            }
        )

    def with_next_expiry(self) -> ClusterQuerySet:
        """Annotate the soonest NotAfter of active certificates and CAs (reverse relations
        from the PKI app, by name, so that this app does not import it).

        Subqueries, not joins: joined with the nodes of ``with_role_counts`` as well, every
        cluster's rows would multiply (nodes times certificates times CAs) before being counted."""
        return self.annotate(
            next_leaf_expiry=self._soonest_active("certificates"),
            next_ca_expiry=self._soonest_active("certificate_authorities"),
        )

    def _soonest_active(self, relation: str) -> models.Subquery:
        related = self.model._meta.get_field(relation).related_model
        assert related is not None and not isinstance(related, str)
        soonest = (
            related._default_manager.filter(cluster=models.OuterRef("pk"), status="active")
            .order_by("not_after")
            .values("not_after")[:1]
        )
        return models.Subquery(soonest, output_field=models.DateTimeField())


_VALIDITY = [validators.validate_validity_days]


class Cluster(models.Model):
    """A Kubernetes cluster the panel manages: its kubeadm-level settings.

    The fields mirror kubeadm's ClusterConfiguration so that the certificates and
    configuration the panel renders match what kubeadm would have produced.
    """

    name = models.CharField(
        max_length=63, unique=True, validators=[validators.validate_dns1123_label]
    )
    kubernetes_version = models.CharField(
        max_length=20, default="v1.31.0", validators=[validators.validate_kubernetes_version]
    )
    control_plane_endpoint = models.CharField(
        max_length=260,
        validators=[validators.validate_endpoint],
        help_text="host[:port] of the API server or its load balancer; IPv6 in brackets.",
    )
    cluster_name = models.CharField(
        max_length=63, default="kubernetes", validators=[validators.validate_dns1123_label]
    )
    pod_subnet = models.CharField(
        max_length=64, default="10.244.0.0/16", validators=[validators.validate_pod_subnet]
    )
    service_subnet = models.CharField(
        max_length=64, default="10.96.0.0/12", validators=[validators.validate_service_subnet]
    )
    dns_domain = models.CharField(
        max_length=253, default="cluster.local", validators=[validators.validate_dns1123_subdomain]
    )
    # Chosen at creation: it decides the certificate plan, the files on the nodes and the jobs.
    flavor = models.CharField(
        max_length=16, choices=ClusterFlavor.choices, default=ClusterFlavor.KUBEADM
    )
    etcd_topology = models.CharField(
        max_length=16, choices=EtcdTopology.choices, default=EtcdTopology.STACKED
    )
    key_algorithm = models.CharField(
        max_length=16, choices=KeyAlgorithm.choices, default=KeyAlgorithm.RSA_2048
    )
    certificate_validity_days = models.PositiveIntegerField(default=365, validators=_VALIDITY)
    ca_validity_days = models.PositiveIntegerField(default=3650, validators=_VALIDITY)
    container_runtime = models.CharField(
        max_length=16, choices=ContainerRuntime.choices, default=ContainerRuntime.CONTAINERD
    )
    extra_sans = models.JSONField(
        default=list,
        blank=True,
        validators=[
            ListLimit(validation.MAX_EXTRA_SANS, validation.MAX_SAN_LENGTH),
            validators.validate_sans,
        ],
    )
    etcd_snapshot_retention = models.PositiveIntegerField(
        "etcd snapshots kept",
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="The newest this many etcd snapshots are kept; older ones are deleted.",
    )
    etcd_backup_interval_hours = models.PositiveIntegerField(
        "etcd backup every (hours)",
        default=0,
        validators=[MaxValueValidator(24 * 365)],
        help_text="An etcd backup is taken when the newest snapshot is this many hours old; "
        "0 takes none on a schedule.",
    )
    health_interval_seconds = models.PositiveIntegerField(
        "health checks every (seconds)",
        default=60,
        validators=[MinValueValidator(10), MaxValueValidator(24 * 3600)],
        help_text="How often the panel checks the cluster's components.",
    )
    # When the next health round is due; a round claims it by moving it (see nodes.health.tasks).
    health_next_at = models.DateTimeField(null=True, blank=True, editable=False)
    description = models.TextField(
        blank=True,
        max_length=validation.MAX_DESCRIPTION,
        validators=[MaxLengthValidator(validation.MAX_DESCRIPTION)],
    )

    # How the panel reaches the cluster's hosts: settings an admin decides (edit_cluster_security),
    # since they decide which machine the panel trusts and through which one it connects.
    trust_on_first_use = models.BooleanField(
        "trust host keys on first use",
        default=False,
        help_text="Pin the key a node presents at its first connection instead of refusing it "
        "until an operator approves a scanned key. A changed key is always refused.",
    )
    bastion_address = models.CharField(
        max_length=253,
        blank=True,
        validators=[validators.validate_host],
        help_text="Jump host the panel connects through (IP address or DNS name); empty: none.",
    )
    bastion_port = models.PositiveIntegerField(default=22, validators=[validators.validate_port])
    bastion_user = models.CharField(
        max_length=32, default="root", validators=[validators.validate_ssh_user]
    )
    bastion_private_key = EncryptedTextField(
        blank=True,
        max_length=validation.MAX_PRIVATE_KEY,
        validators=[MaxLengthValidator(validation.MAX_PRIVATE_KEY)],
    )
    bastion_key_passphrase = EncryptedTextField(
        blank=True,
        max_length=validation.MAX_SECRET,
        validators=[MaxLengthValidator(validation.MAX_SECRET)],
    )
    bastion_password = EncryptedTextField(
        blank=True,
        max_length=validation.MAX_SECRET,
        validators=[MaxLengthValidator(validation.MAX_SECRET)],
    )
    bastion_host_key_type = models.CharField(max_length=64, blank=True)
    bastion_host_key = models.TextField(blank=True)
    bastion_host_key_fingerprint = models.CharField(
        "pinned bastion host key fingerprint",
        max_length=60,
        blank=True,
        validators=[validators.validate_fingerprint],
        help_text="SHA256:… of the bastion's host key; connections presenting another are refused.",
    )
    bastion_pending_host_key_type = models.CharField(max_length=64, blank=True)
    bastion_pending_host_key = models.TextField(blank=True)
    bastion_pending_host_key_fingerprint = models.CharField(max_length=60, blank=True)
    bastion_host_key_scanned_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ClusterQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def endpoint_host(self) -> str:
        return validation.split_endpoint(self.control_plane_endpoint)[0]

    @property
    def endpoint_port(self) -> int:
        return validation.split_endpoint(self.control_plane_endpoint)[1]

    @property
    def normalized_endpoint(self) -> str:
        return validation.format_endpoint(self.endpoint_host, self.endpoint_port)

    @property
    def etcd_member_count(self) -> int:
        """Members of the cluster's etcd: its control-plane nodes when etcd is stacked on them,
        its etcd nodes otherwise. Uses the ``with_role_counts`` annotations when present."""
        stacked = self.etcd_topology == EtcdTopology.STACKED
        role = NodeRole.CONTROL_PLANE if stacked else NodeRole.ETCD
        annotated = getattr(self, f"{role.value.replace('-', '_')}_count", None)
        if annotated is not None:
            return int(annotated)
        return self.nodes.filter(role=role).count()

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        # Each validity's own bounds are its field validator's (validation.validity_days).
        certificate, ca = self.certificate_validity_days, self.ca_validity_days
        if certificate is not None and ca is not None and ca >= 1 and certificate > ca:
            errors.setdefault("certificate_validity_days", []).append(
                f"{certificate} days is longer than the CA validity "
                f"({ca} days): certificates cannot outlive their CA"
            )
        # Bad values are reported by the field validators; here only normalise good ones.
        try:
            self.kubernetes_version = validation.kubernetes_version(self.kubernetes_version)
        except ValueError:
            pass
        else:
            if self.pk is not None:
                self._check_downgrade(errors)
        pods: validation.IPNetwork | None = None
        services: validation.IPNetwork | None = None
        with contextlib.suppress(ValueError):  # reported by the field validators
            pods = validation.cidr(self.pod_subnet)
            services = validation.cidr(self.service_subnet)
        if pods is not None and services is not None:
            if validation.overlapping(pods, services):
                errors.setdefault("pod_subnet", []).append(
                    f"pod subnet {pods} overlaps the service subnet {services}"
                )
            if self.pk is not None:
                for node in self.nodes.all():
                    for label, network in (("pod_subnet", pods), ("service_subnet", services)):
                        if validation.address_in(node.address, network):
                            errors.setdefault(label, []).append(
                                f"{network} contains the address {node.address} of node {node.name}"
                            )
        if self.pk is not None and self.etcd_topology == EtcdTopology.STACKED:
            members = list(self.nodes.filter(role=NodeRole.ETCD).values_list("name", flat=True))
            if members:
                errors.setdefault("etcd_topology", []).append(
                    f"nodes of role etcd ({', '.join(members)}) need external etcd: give them "
                    "another role or remove them first"
                )
        if isinstance(self.extra_sans, list):
            with contextlib.suppress(ValueError, AttributeError):
                self.extra_sans = [validation.subject_alt_name(s) for s in self.extra_sans]
        self._check_bastion(errors)
        if errors:
            raise ValidationError(errors)

    def _check_bastion(self, errors: dict[str, list[str]]) -> None:
        """The bastion's credential follows the nodes' rules; one is needed to use a bastion."""
        with contextlib.suppress(ValueError):  # reported by the field validator
            if self.bastion_address:
                self.bastion_address = validation.host(self.bastion_address)
        if self.bastion_private_key:
            try:
                check_private_key(self.bastion_private_key, self.bastion_key_passphrase or "")
            except CredentialError as exc:
                errors.setdefault(BASTION_CREDENTIAL_FIELDS[exc.field], []).append(str(exc))
        elif self.bastion_key_passphrase:
            errors.setdefault("bastion_key_passphrase", []).append(
                "a passphrase was given without a private key"
            )
        if self.bastion_address and not (self.bastion_private_key or self.bastion_password):
            errors.setdefault("bastion_private_key", []).append(
                "a bastion needs a private key or a password to log in with"
            )

    def pin_bastion_fingerprint(self) -> None:
        """A fingerprint typed by hand replaces a bastion key scanned earlier."""
        fingerprint = self.bastion_host_key_fingerprint
        if fingerprint and fingerprint == self.bastion_pending_host_key_fingerprint:
            self.bastion_host_key_type = self.bastion_pending_host_key_type
            self.bastion_host_key = self.bastion_pending_host_key
        elif not fingerprint or (
            self.bastion_host_key and host_key_fingerprint(self.bastion_host_key) != fingerprint
        ):
            self.bastion_host_key_type = self.bastion_host_key = ""

    @property
    def has_bastion(self) -> bool:
        return bool(self.bastion_address)

    @property
    def bastion_credential_kind(self) -> str:
        if self.bastion_private_key:
            return "private key"
        if self.bastion_password:
            return "password"
        return "none"

    @property
    def bastion_host_key_state(self) -> str:
        """``unknown``, ``pending`` (a scanned key waits for approval) or ``pinned``."""
        return host_key_state(
            self.bastion_host_key_fingerprint, self.bastion_pending_host_key_fingerprint, ""
        )

    def _check_downgrade(self, errors: dict[str, list[str]]) -> None:
        """kubeadm only ever upgrades a control plane; files rendered for an older version than
        the one the cluster runs would describe components it no longer has."""
        stored = Cluster.objects.filter(pk=self.pk).values_list("kubernetes_version", flat=True)
        before = stored.first()
        try:
            older = validation.version_tuple(self.kubernetes_version) < validation.version_tuple(
                before or ""
            )
        except ValueError:
            return  # a row stored before versions were checked: nothing to compare with
        if older:
            errors.setdefault("kubernetes_version", []).append(
                f"{self.kubernetes_version} is older than {before}, the cluster's version: "
                "downgrades are refused (kubeadm only upgrades a cluster)"
            )


# The node credential's field names (nodes.rules.credentials) and the bastion's matching ones.
BASTION_CREDENTIAL_FIELDS = BASTION_FIELDS
# How the panel connects to the cluster's hosts: editable only with edit_cluster_security.
CLUSTER_SECURITY_SETTINGS = [
    "trust_on_first_use",
    "bastion_address",
    "bastion_port",
    "bastion_user",
    "bastion_host_key_fingerprint",
]
CLUSTER_SECRETS = list(BASTION_CREDENTIAL_FIELDS.values())

# The settings an operator edits, in display order; forms and the API share them.
CLUSTER_SETTINGS = [
    "name",
    # Chosen at creation; the files of the two flavors differ, so it never changes afterwards.
    "flavor",
    "kubernetes_version",
    "control_plane_endpoint",
    "cluster_name",
    "pod_subnet",
    "service_subnet",
    "dns_domain",
    "etcd_topology",
    "key_algorithm",
    "certificate_validity_days",
    "ca_validity_days",
    "container_runtime",
    "extra_sans",
    "etcd_backup_interval_hours",
    "etcd_snapshot_retention",
    "health_interval_seconds",
    "description",
]


class NodeRole(models.TextChoices):
    CONTROL_PLANE = "control-plane", "Control plane"
    WORKER = "worker", "Worker"
    ETCD = "etcd", "etcd"


def role_subcount(role: NodeRole) -> str:
    """The name of a role's annotation from ``ClusterQuerySet.with_role_subcounts``."""
    return f"{role.value.replace('-', '_')}_nodes"


class NodeStatus(models.TextChoices):
    NEW = "new", "New"
    PROVISIONING = "provisioning", "Provisioning"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    UNREACHABLE = "unreachable", "Unreachable"


class Node(models.Model):
    """A machine of a cluster, reached over SSH.

    The SSH credential is encrypted at rest and write-only: forms and the API
    accept it but never show it. The host key is pinned: a job refuses a host
    whose key differs from the approved one.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="nodes")
    name = models.CharField(max_length=253, validators=[validators.validate_dns1123_subdomain])
    address = models.GenericIPAddressField()
    ssh_port = models.PositiveIntegerField(
        "SSH port", default=22, validators=[validators.validate_port]
    )
    ssh_user = models.CharField(
        "SSH user", max_length=32, default="root", validators=[validators.validate_ssh_user]
    )
    role = models.CharField(max_length=16, choices=NodeRole.choices, default=NodeRole.WORKER)
    labels = models.JSONField(
        default=dict,
        blank=True,
        validators=[ListLimit(validation.MAX_LABELS), validators.validate_labels],
    )
    # None: kubeadm's default for the role (control-plane nodes get
    # node-role.kubernetes.io/control-plane:NoSchedule); []: no taints at all.
    taints = models.JSONField(
        null=True,
        blank=True,
        default=None,
        validators=[ListLimit(validation.MAX_TAINTS), validators.validate_taints],
    )
    status = models.CharField(max_length=16, choices=NodeStatus.choices, default=NodeStatus.NEW)
    facts = models.JSONField(default=dict, blank=True)

    ssh_private_key = EncryptedTextField(
        blank=True,
        max_length=validation.MAX_PRIVATE_KEY,
        validators=[MaxLengthValidator(validation.MAX_PRIVATE_KEY)],
    )
    ssh_key_passphrase = EncryptedTextField(
        blank=True,
        max_length=validation.MAX_SECRET,
        validators=[MaxLengthValidator(validation.MAX_SECRET)],
    )
    ssh_password = EncryptedTextField(
        blank=True,
        max_length=validation.MAX_SECRET,
        validators=[MaxLengthValidator(validation.MAX_SECRET)],
    )

    host_key_type = models.CharField(max_length=64, blank=True)
    host_key = models.TextField(blank=True, help_text="Base64 public host key, as in known_hosts.")
    host_key_fingerprint = models.CharField(
        "pinned host key fingerprint",
        max_length=60,
        blank=True,
        validators=[validators.validate_fingerprint],
        help_text="SHA256:… as `ssh-keygen -lf` prints it. Connections presenting another "
        "key are refused.",
    )
    host_key_approved_at = models.DateTimeField(null=True, blank=True)
    host_key_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # A scanned key waiting for an operator to compare its fingerprint and approve it.
    pending_host_key_type = models.CharField(max_length=64, blank=True)
    pending_host_key = models.TextField(blank=True)
    pending_host_key_fingerprint = models.CharField(max_length=60, blank=True)
    host_key_scanned_at = models.DateTimeField(null=True, blank=True)
    # The key a job was last presented when it differed from the pinned one (the job stopped).
    presented_host_key_fingerprint = models.CharField(max_length=60, blank=True)
    presented_at = models.DateTimeField(null=True, blank=True)

    sudo_password = EncryptedTextField(
        blank=True,
        max_length=validation.MAX_SECRET,
        validators=[MaxLengthValidator(validation.MAX_SECRET)],
        help_text="Password sudo asks for; empty: sudo must not ask (sudo -n).",
    )
    facts_read_at = models.DateTimeField(null=True, blank=True)
    # Set by the jobs that make a machine part of the running cluster (bootstrap, join), cleared
    # by remove-node: which nodes a later join or upgrade must leave alone or go through.
    joined_at = models.DateTimeField(null=True, blank=True)
    # The kubelet version the node last reported (join, upgrade): the cluster's recorded version
    # moves only when every node reports the target.
    kubelet_version = models.CharField(max_length=32, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "name"],
                name="node_name_unique_in_cluster",
                violation_error_message="A node with this name already exists in the cluster.",
            ),
            models.UniqueConstraint(
                fields=["cluster", "address"],
                name="node_address_unique_in_cluster",
                violation_error_message="A node with this address already exists in the cluster.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.address})"

    @property
    def has_credential(self) -> bool:
        return bool(self.ssh_private_key or self.ssh_password)

    @property
    def credential_kind(self) -> str:
        if self.ssh_private_key:
            return "private key"
        if self.ssh_password:
            return "password"
        return "none"

    @property
    def host_key_state(self) -> str:
        """``unknown`` (nothing pinned or scanned), ``pending`` (a scanned key waits for
        approval), ``pinned``, or ``changed`` (a job met another key than the pinned one)."""
        return host_key_state(
            self.host_key_fingerprint,
            self.pending_host_key_fingerprint,
            self.presented_host_key_fingerprint,
        )

    def _cluster_or_conflict(self) -> Cluster | None:
        """The node's cluster; Conflict when it was deleted by a concurrent request.

        Validation reads the cluster lazily, so a cluster deleted between loading
        the node and validating the change surfaces here first.
        """
        if not self.cluster_id:
            return None
        try:
            return self.cluster
        except Cluster.DoesNotExist:
            raise Conflict(f"{self} was deleted while it was being changed.") from None

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        cluster = self._cluster_or_conflict()
        if (
            cluster is not None
            and self.role == NodeRole.ETCD
            and cluster.etcd_topology == EtcdTopology.STACKED
        ):
            errors.setdefault("role", []).append(
                f"cluster {cluster.name} runs etcd stacked on its control-plane nodes; a node of "
                "role etcd needs a cluster with external etcd"
            )
        if cluster is not None and self.address:
            for label, value in (("pod", cluster.pod_subnet), ("service", cluster.service_subnet)):
                try:
                    network = validation.cidr(value)
                    inside = validation.address_in(str(self.address), network)
                except ValueError:
                    continue
                if inside:
                    errors.setdefault("address", []).append(
                        f"{self.address} lies inside the cluster's {label} subnet {network}"
                    )
            # Say which field collides, by name, before the database constraint would.
            siblings = Node.objects.filter(cluster=cluster).exclude(pk=self.pk)
            if self.name and siblings.filter(name=self.name).exists():
                errors.setdefault("name", []).append(
                    f"a node named {self.name} already exists in cluster {cluster.name}"
                )
            if siblings.filter(address=self.address).exists():
                errors.setdefault("address", []).append(
                    f"address {self.address} is already used by another node of {cluster.name}"
                )
        if self.pk is not None and self.name:
            self._check_rename(errors)
        if self.ssh_private_key:
            try:
                check_private_key(self.ssh_private_key, self.ssh_key_passphrase or "")
            except CredentialError as exc:
                errors.setdefault(exc.field, []).append(str(exc))
        elif self.ssh_key_passphrase:
            errors.setdefault("ssh_key_passphrase", []).append(
                "a passphrase was given without a private key"
            )
        if errors:
            raise ValidationError(errors)

    def _check_rename(self, errors: dict[str, list[str]]) -> None:
        """A node's name is in its certificates (CN, SANs) and its kubelet identity; kubeadm
        cannot rename a node either. Renaming one with issued certificates is refused."""
        stored = Node.objects.filter(pk=self.pk).values_list("name", flat=True).first()
        if stored is None or stored == self.name:
            return
        # Reverse relation from pki.Certificate, so this app needs no import of pki.
        if self.certificates.filter(status="active").exists():
            errors.setdefault("name", []).append(
                f"{stored} has issued certificates that carry its name; remove the node and "
                f"add it again as {self.name} instead of renaming it"
            )

    def validate_constraints(self, exclude: Any = None) -> None:
        # clean() already names duplicate names and addresses per field.
        exclude = set(exclude or ()) | {"name", "address"}
        super().validate_constraints(exclude=exclude)

    def approve_fingerprint(self, user: Any) -> None:
        """Record who approved the pinned fingerprint (set from a form or the API)."""
        self.host_key_approved_at = timezone.now() if self.host_key_fingerprint else None
        self.host_key_approved_by = (
            user if self.host_key_fingerprint and getattr(user, "pk", None) else None
        )
        if self.host_key_fingerprint and (
            self.host_key_fingerprint == self.pending_host_key_fingerprint
        ):
            # The fingerprint of the scanned key, typed by hand: that key is the one approved.
            self.host_key_type, self.host_key = self.pending_host_key_type, self.pending_host_key
            self.pending_host_key_type = self.pending_host_key = ""
            self.pending_host_key_fingerprint = ""
        elif (
            self.host_key_fingerprint
            and self.host_key
            and (host_key_fingerprint(self.host_key) != self.host_key_fingerprint)
        ):
            # A fingerprint typed by hand replaces a key learned earlier.
            self.host_key_type = self.host_key = ""

    def pin_host_key(self, key_type: str, key_base64: str, user: Any) -> None:
        """Approve a host key; later connections must present exactly this key."""
        self.host_key_type = key_type
        self.host_key = key_base64
        self.host_key_fingerprint = host_key_fingerprint(key_base64)
        self.host_key_approved_at = timezone.now()
        self.host_key_approved_by = user if getattr(user, "pk", None) else None


def host_key_state(pinned: str, pending: str, presented: str) -> str:
    """The state of a host key from its pinned, pending and last presented fingerprints."""
    # A changed key outranks everything: the host may not be the machine it was.
    if pinned and presented and presented != pinned:
        return "changed"
    if pending and pending != pinned:
        return "pending"
    return "pinned" if pinned else "unknown"


def host_key_fingerprint(key_base64: str) -> str:
    """``SHA256:…`` exactly as ``ssh-keygen -lf`` prints it (unpadded base64)."""
    digest = hashlib.sha256(base64.b64decode(key_base64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class EtcdSnapshot(models.Model):
    """One ``etcdctl snapshot save`` of a cluster's etcd, kept encrypted by the panel.

    A snapshot holds every Secret of the cluster. Its bytes are sealed with the panel's
    encryption key (``clusterpanel.security.crypto.seal_bytes``, bound to this row's ``token``)
    into a file under ``<data dir>/etcd-snapshots/``, not into the database: snapshots are
    megabytes to gigabytes, and a database that grows by one of them per day makes every
    database backup and dump that much larger and slower. The row holds what the list shows
    and what checks the file: size, SHA-256 of the plain snapshot, etcd's revision and key count.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="etcd_snapshots")
    taken_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Names the sealed file and is authenticated with it, so a file cannot be swapped in.
    token = models.CharField(max_length=32, unique=True)
    size = models.PositiveBigIntegerField(help_text="Bytes of the plain snapshot.")
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the plain snapshot.")
    revision = models.PositiveBigIntegerField(default=0)
    total_keys = models.PositiveBigIntegerField(default=0)
    etcd_hash = models.PositiveBigIntegerField(default=0, help_text="snapshot status' hash.")
    member = models.CharField(max_length=255, blank=True, help_text="The endpoint snapshotted.")
    job_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-taken_at", "-pk"]

    def __str__(self) -> str:
        return f"etcd snapshot {self.pk} of {self.cluster_id} at {self.taken_at:%Y-%m-%d %H:%M}"


class HealthStatus(models.TextChoices):
    HEALTHY = "healthy", "healthy"
    DEGRADED = "degraded", "degraded"
    UNHEALTHY = "unhealthy", "unhealthy"
    UNKNOWN = "unknown", "unknown"


class ComponentHealth(models.Model):
    """The latest result of one check: a component of a cluster on one node (no node: through
    the control-plane endpoint), at one target (an address and port, a URL, a socket)."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="health")
    node = models.ForeignKey(
        Node, on_delete=models.CASCADE, null=True, blank=True, related_name="health"
    )
    component = models.CharField(max_length=64)
    target = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=HealthStatus.choices)
    latency_ms = models.FloatField(default=0)
    message = models.CharField(max_length=1000, blank=True)
    checked_at = models.DateTimeField(default=timezone.now)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["cluster_id", "component", "node_id", "target"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "node", "component", "target"],
                name="component_health_unique",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["cluster", "component"], name="component_health_cc")]

    def __str__(self) -> str:
        return f"{self.component} {self.target}: {self.status}"


class HealthSample(models.Model):
    """A check's history for the latency sparklines: one row per check and quarter hour, the
    rounds of that quarter merged into it (``samples`` of them; the highest latency, the last
    status and time). Pruned after ``CLUSTERPANEL_HEALTH_HISTORY_DAYS``.

    Raw results would be 15 times the rows at the default 60 s interval (90 at the 10 s
    minimum): for 1,000 clusters of 95 checks, 137 million rows a day instead of 9 million, and
    the Health tab would read a day of them for each sparkline."""

    # No index of its own: ``health_sample_cluster_at`` starts with the cluster. A second one
    # costs every round's inserts, and PostgreSQL would pick it for the Health tab's day of
    # samples, reading the cluster's whole history (7x the rows) and filtering it by time.
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+", db_index=False)
    node = models.ForeignKey(
        Node, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    component = models.CharField(max_length=64)
    target = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=HealthStatus.choices)
    latency_ms = models.FloatField(default=0)
    checked_at = models.DateTimeField(default=timezone.now)
    samples = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [
            models.Index(fields=["cluster", "checked_at"], name="health_sample_cluster_at"),
            models.Index(fields=["checked_at"], name="health_sample_at"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.component} {self.target} at {self.checked_at:%Y-%m-%d %H:%M:%S}: {self.status}"
        )


class HealthEvent(models.Model):
    """A check that changed status: from → to, with the message of the new status."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="health_events")
    node = models.ForeignKey(
        Node, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    component = models.CharField(max_length=64)
    target = models.CharField(max_length=300)
    from_status = models.CharField(max_length=16, choices=HealthStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=HealthStatus.choices)
    message = models.CharField(max_length=1000, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["cluster", "at"], name="health_event_cluster_at")]

    def __str__(self) -> str:
        return f"{self.component} {self.from_status or 'new'} -> {self.to_status}"


# The certificate scan's findings live beside the health code, alert settings and deliveries in
# their own modules (the renewal policy too); imported here, the app's models are these too.
from nodes.alerts.models import AlertDelivery as AlertDelivery  # noqa: E402
from nodes.alerts.models import AlertSettings as AlertSettings  # noqa: E402
from nodes.alerts.models import ExpiryNotice as ExpiryNotice  # noqa: E402
from nodes.health.findings import Finding as Finding  # noqa: E402
from nodes.health.findings import ScannedCertificate as ScannedCertificate  # noqa: E402
from nodes.renewal.models import RenewalPolicy as RenewalPolicy  # noqa: E402
