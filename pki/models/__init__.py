"""PKI models: certificate authorities and certificates (certificates.py); bootstrap tokens,
static tokens and certificate keys (tokens.py); per-cluster kubeadm settings
(kubeadm_settings.py); a binary-installed cluster's layout (binary_settings.py)."""

from pki.models.binary_settings import *  # noqa: F403
from pki.models.certificates import *  # noqa: F403
from pki.models.kubeadm_settings import *  # noqa: F403
from pki.models.tokens import *  # noqa: F403
