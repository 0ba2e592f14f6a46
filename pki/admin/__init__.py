"""The Django admin for the PKI: certificates and CAs, tokens and kubeadm settings.

Importing the package registers every model admin (Django's autodiscover imports ``pki.admin``).
"""

from pki.admin import bootstrap, certificates, config

__all__ = ["bootstrap", "certificates", "config"]
