"""PKI models: certificate authorities and certificates (certificates.py), and
bootstrap tokens, static tokens and certificate keys (tokens.py)."""

from pki.models.certificates import *  # noqa: F403
from pki.models.tokens import *  # noqa: F403
