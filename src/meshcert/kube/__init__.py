"""meshcert.kube layer."""
