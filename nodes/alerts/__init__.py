"""Alerts: per-cluster delivery settings, once-only deliveries by key (webhook and e-mail),
certificate expiry bands, and the Prometheus metrics of the panel."""
