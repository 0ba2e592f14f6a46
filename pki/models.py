"""PKI models: certificate authorities, certificates, tokens."""
