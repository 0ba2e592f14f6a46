"""Pure kubeadm and x509 logic: no Django, nothing of the panel but its one error base.

What a certificate holds (``kubeadm``), signing (``x509``), kubeconfigs, cfssl, expiry bands,
inspection, archives and imports, bootstrap tokens, join commands, kubeadm-certs
(``upload_certs``), kubeadm configuration files, audit policies, static token files,
load-balancer configs, the YAML dumper and which identities are privileged (``identities``).
The services in ``pki.services`` feed these modules from the database; the import contract in
``pyproject.toml`` keeps Django out.
"""
