"""meshcert.report layer."""
