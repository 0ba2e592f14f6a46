"""Django-aware glue between the inventory, the stored PKI and the pure modules.

The pure modules decide *what* a certificate holds (``pki.domain.kubeadm``) and sign
it (``pki.domain.x509``);
this package reads the topology from the database, hands the stored CAs and keys to them and writes
the results back, always inside one transaction so that a refused request writes nothing.

Every failure a user can cause surfaces as ``PKIInputError`` with the name of the input field at
fault, which the API turns into ``{"errors": {field: [...]}}`` and the pages into form errors.

One module per job: ``spec`` (the inventory as a ``ClusterSpec``), ``store`` (rows in and out),
``authorities`` (CAs and ``sa`` keys), ``issuing`` (issue, reissue, renew), ``checks`` (coverage,
SANs, endpoints), ``expiry_tables``, ``bundles`` (node bundles, user kubeconfigs),
``binary_bundles`` and ``binary_pems`` (a binary install's certificate files), ``pki_imports``
(kubeadm and cfssl imports, cfssl signing), ``panel_identities`` (the panel's own health
identity), ``reports`` (inspection of stored and uploaded PEM)
and ``errors``. Callers import from ``pki.services.certificates`` itself.
"""

from __future__ import annotations

from pki.services.certificates.authorities import (
    ca_certificates,
    ensure_cluster_cas,
    service_account_key,
    shared_control_plane_files,
    stored_service_account_key,
)
from pki.services.certificates.binary_bundles import (
    binary_bundle_files,
    binary_nodes_bundle_files,
)
from pki.services.certificates.bundles import (
    build_bundle,
    download_bundle,
    node_bundle_files,
    nodes_bundle_files,
    user_kubeconfig,
)
from pki.services.certificates.checks import (
    CoverageReport,
    StaleCertificate,
    check_san,
    coverage,
    endpoint_checks,
)
from pki.services.certificates.errors import PKIInputError
from pki.services.certificates.expiry_tables import expiration
from pki.services.certificates.issuing import IssueResult, issue_missing, reissue, renew
from pki.services.certificates.panel_identities import health_identity
from pki.services.certificates.pki_imports import (
    ImportResult,
    cfssl_sign,
    create_ca_from_cfssl_csr,
    import_cfssl_ca,
    import_kubeadm_archive,
)
from pki.services.certificates.reports import inspect_stored, inspect_upload
from pki.services.certificates.spec import (
    apiserver_port,
    binary_settings_of,
    cluster_spec,
    current_plan,
    is_binary,
    node_spec,
)
from pki.services.certificates.store import active_cas, active_tree

__all__ = [
    "CoverageReport",
    "ImportResult",
    "IssueResult",
    "PKIInputError",
    "StaleCertificate",
    "active_cas",
    "active_tree",
    "apiserver_port",
    "binary_bundle_files",
    "binary_nodes_bundle_files",
    "binary_settings_of",
    "build_bundle",
    "ca_certificates",
    "cfssl_sign",
    "check_san",
    "cluster_spec",
    "coverage",
    "create_ca_from_cfssl_csr",
    "current_plan",
    "download_bundle",
    "endpoint_checks",
    "ensure_cluster_cas",
    "expiration",
    "health_identity",
    "import_cfssl_ca",
    "import_kubeadm_archive",
    "inspect_stored",
    "inspect_upload",
    "is_binary",
    "issue_missing",
    "node_bundle_files",
    "node_spec",
    "nodes_bundle_files",
    "reissue",
    "renew",
    "service_account_key",
    "shared_control_plane_files",
    "stored_service_account_key",
    "user_kubeconfig",
]
