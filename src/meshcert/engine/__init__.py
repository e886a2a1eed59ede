"""meshcert.engine layer."""
