"""meshcert.mesh layer."""
