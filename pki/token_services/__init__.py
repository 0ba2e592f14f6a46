"""Django glue for bootstrap tokens, join commands, kubeadm configuration and static tokens.

The rules live in the pure modules (``pki.tokens``, ``pki.join``, ``pki.upload_certs``,
``pki.kubeadm_config``, ``pki.static_tokens``, ``nodes.loadbalancer``); this package reads the
models, calls those modules and turns their errors into Django ``ValidationError``s keyed by the
field the user typed, so the API answers 400 naming the field and forms re-show with the error.
Views call these functions and add the audit event; nothing here writes to the audit log, so that
the caller decides what the user did (a reveal, a download) and records it once.

One module per job: ``tokens`` (bootstrap tokens), ``join`` (join commands and certificate keys),
``kubeadm_certs`` (the kubeadm-certs Secret), ``kubeadm_settings``, ``kubeadm_files`` (kubeadm
``--config`` files), ``load_balancer``, ``static_tokens`` and ``errors``. Callers import from
``pki.token_services`` itself.
"""

from __future__ import annotations

from pki.token_services.errors import JoinUnavailable, NoUsableToken
from pki.token_services.join import (
    CERTIFICATE_KEY_TTL,
    MIN_CERTIFICATE_KEY_LIFETIME,
    ROLES,
    JoinCommand,
    ca_cert_hashes,
    current_certificate_key,
    join_command,
    validate_role,
)
from pki.token_services.kubeadm_certs import audited_kubeadm_certs, kubeadm_certs_manifest
from pki.token_services.kubeadm_files import (
    KubeadmConfig,
    audited_kubeadm_config,
    cluster_config_input,
    cluster_configuration_preview,
    init_node,
    kubeadm_config_for,
)
from pki.token_services.kubeadm_settings import (
    EXTRA_ARG_COMPONENTS,
    audit_policy_text,
    save_settings,
    settings_for,
    validate_settings,
)
from pki.token_services.load_balancer import NGINX_STREAM_MODULE, load_balancer_config
from pki.token_services.static_tokens import (
    ImportResult,
    add_static_token,
    import_static_tokens,
    render_static_tokens,
)
from pki.token_services.tokens import (
    MIN_JOIN_TOKEN_LIFETIME,
    TokenRequest,
    create_token,
    parse_groups,
    secret_manifest,
    token_create_command,
    usable_join_token,
    validate_token_request,
)

__all__ = [
    "CERTIFICATE_KEY_TTL",
    "EXTRA_ARG_COMPONENTS",
    "MIN_CERTIFICATE_KEY_LIFETIME",
    "MIN_JOIN_TOKEN_LIFETIME",
    "NGINX_STREAM_MODULE",
    "ROLES",
    "ImportResult",
    "JoinCommand",
    "JoinUnavailable",
    "KubeadmConfig",
    "NoUsableToken",
    "TokenRequest",
    "add_static_token",
    "audit_policy_text",
    "audited_kubeadm_certs",
    "audited_kubeadm_config",
    "ca_cert_hashes",
    "cluster_config_input",
    "cluster_configuration_preview",
    "create_token",
    "current_certificate_key",
    "import_static_tokens",
    "init_node",
    "join_command",
    "kubeadm_certs_manifest",
    "kubeadm_config_for",
    "load_balancer_config",
    "parse_groups",
    "render_static_tokens",
    "save_settings",
    "secret_manifest",
    "settings_for",
    "token_create_command",
    "usable_join_token",
    "validate_role",
    "validate_settings",
    "validate_token_request",
]
