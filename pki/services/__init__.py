"""Django-aware glue between the inventory, the stored PKI and the pure modules.

The pure modules decide *what* a certificate holds (``pki.kubeadm``) and sign it (``pki.x509``);
this package reads the topology from the database, hands the stored CAs and keys to them and writes
the results back, always inside one transaction so that a refused request writes nothing.

Every failure a user can cause surfaces as ``PKIInputError`` with the name of the input field at
fault, which the API turns into ``{"errors": {field: [...]}}`` and the pages into form errors.

One module per job: ``spec`` (the inventory as a ``ClusterSpec``), ``store`` (rows in and out),
``authorities`` (CAs and ``sa`` keys), ``issuing`` (issue, reissue, renew), ``checks`` (coverage,
SANs, endpoints), ``expiry_tables``, ``bundles`` (node bundles, user kubeconfigs), ``imports``
(kubeadm and cfssl imports, cfssl signing), ``inspection`` and ``errors``. Callers import from
``pki.services`` itself.
"""

from __future__ import annotations

from pki.services.authorities import (
    ca_certificates,
    ensure_cluster_cas,
    service_account_key,
    shared_control_plane_files,
)
from pki.services.bundles import (
    FORBIDDEN_GROUPS,
    build_bundle,
    node_bundle_files,
    user_kubeconfig,
)
from pki.services.checks import (
    CoverageReport,
    StaleCertificate,
    check_san,
    coverage,
    endpoint_checks,
)
from pki.services.errors import PKIInputError
from pki.services.expiry_tables import expiration
from pki.services.imports import (
    ImportResult,
    cfssl_sign,
    create_ca_from_cfssl_csr,
    import_cfssl_ca,
    import_kubeadm_archive,
)
from pki.services.inspection import inspect_stored, inspect_upload
from pki.services.issuing import IssueResult, issue_missing, reissue, renew
from pki.services.spec import apiserver_port, cluster_spec, current_plan, node_spec
from pki.services.store import active_cas, active_tree

__all__ = [
    "FORBIDDEN_GROUPS",
    "CoverageReport",
    "ImportResult",
    "IssueResult",
    "PKIInputError",
    "StaleCertificate",
    "active_cas",
    "active_tree",
    "apiserver_port",
    "build_bundle",
    "ca_certificates",
    "cfssl_sign",
    "check_san",
    "cluster_spec",
    "coverage",
    "create_ca_from_cfssl_csr",
    "current_plan",
    "endpoint_checks",
    "ensure_cluster_cas",
    "expiration",
    "import_cfssl_ca",
    "import_kubeadm_archive",
    "inspect_stored",
    "inspect_upload",
    "issue_missing",
    "node_bundle_files",
    "node_spec",
    "reissue",
    "renew",
    "service_account_key",
    "shared_control_plane_files",
    "user_kubeconfig",
]
