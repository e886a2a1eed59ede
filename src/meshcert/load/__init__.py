"""meshcert.load layer."""
