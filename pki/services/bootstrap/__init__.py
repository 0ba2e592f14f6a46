"""Django glue for bootstrap tokens, join commands, kubeadm configuration and static tokens.

The rules live in the pure modules in ``pki.domain`` (``tokens``, ``join``, ``upload_certs``,
``kubeadm_config``, ``static_tokens``, ``loadbalancer``); this package reads the
models, calls those modules and turns their errors into ``InputError``s keyed by the field the
user typed, so the API answers 400 naming the field and forms re-show with the error.
Every function that creates, reveals or hands out a secret takes the ``Actor`` and writes the
audit event in its own transaction, so a page, the API and a job record the same thing.

One module per job: ``bootstrap_tokens``, ``join_commands`` (join commands and certificate keys),
``kubeadm_certs`` (the kubeadm-certs Secret), ``kubeadm_settings``, ``kubeadm_files`` (kubeadm
``--config`` files), ``load_balancer_configs``, ``static_token_store`` and ``errors``. Callers
import from ``pki.services.bootstrap`` itself.
"""

from __future__ import annotations

from pki.services.bootstrap.bootstrap_tokens import (
    MIN_JOIN_TOKEN_LIFETIME,
    TokenRequest,
    create_token,
    parse_groups,
    reveal_token,
    revoke_token,
    secret_manifest,
    token_create_command,
    usable_join_token,
    validate_token_request,
)
from pki.services.bootstrap.errors import JoinUnavailable, NoCertificateKey, NoUsableToken
from pki.services.bootstrap.join_commands import (
    CERTIFICATE_KEY_TTL,
    MIN_CERTIFICATE_KEY_LIFETIME,
    ROLES,
    JoinCommand,
    ca_cert_hashes,
    ensure_certificate_key,
    join_card_preview,
    join_command,
    join_command_preview,
    masked_token,
    new_join_token,
    require_certificate_key,
    require_join_token,
    usable_certificate_key,
    validate_role,
)
from pki.services.bootstrap.kubeadm_certs import download_kubeadm_certs
from pki.services.bootstrap.kubeadm_files import (
    KubeadmConfig,
    cluster_config_input,
    cluster_configuration_preview,
    init_node,
    kubeadm_config_for,
    kubeadm_config_preview,
)
from pki.services.bootstrap.kubeadm_settings import (
    EXTRA_ARG_COMPONENTS,
    audit_policy_text,
    save_settings,
    settings_for,
    validate_settings,
)
from pki.services.bootstrap.load_balancer_configs import NGINX_STREAM_MODULE, load_balancer_config
from pki.services.bootstrap.static_token_store import (
    ImportResult,
    add_static_token,
    delete_static_token,
    download_static_tokens,
    import_static_tokens,
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
    "NoCertificateKey",
    "NoUsableToken",
    "TokenRequest",
    "add_static_token",
    "audit_policy_text",
    "ca_cert_hashes",
    "cluster_config_input",
    "cluster_configuration_preview",
    "create_token",
    "delete_static_token",
    "download_kubeadm_certs",
    "download_static_tokens",
    "ensure_certificate_key",
    "import_static_tokens",
    "init_node",
    "join_card_preview",
    "join_command",
    "join_command_preview",
    "kubeadm_config_for",
    "kubeadm_config_preview",
    "load_balancer_config",
    "masked_token",
    "new_join_token",
    "parse_groups",
    "require_certificate_key",
    "require_join_token",
    "reveal_token",
    "revoke_token",
    "save_settings",
    "secret_manifest",
    "settings_for",
    "token_create_command",
    "usable_certificate_key",
    "usable_join_token",
    "validate_role",
    "validate_settings",
    "validate_token_request",
]
