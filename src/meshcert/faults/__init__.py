"""meshcert.faults layer."""
