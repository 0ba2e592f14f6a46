"""clusterpanel: a control panel for self-hosted Kubernetes clusters."""
