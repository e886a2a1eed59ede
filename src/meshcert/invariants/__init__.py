"""meshcert.invariants layer."""
