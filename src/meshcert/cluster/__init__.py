"""meshcert.cluster layer."""
