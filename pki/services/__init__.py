"""Django-aware PKI operations: ``certificates`` (CAs, the kubeadm tree, imports, checks) and
``bootstrap`` (tokens, join commands, kubeadm-certs, kubeadm files and settings, static tokens,
load balancers); ``identities`` is the one role check of every path that signs a requested
identity or grants a token. Each service function owns its transaction and its audit event."""
