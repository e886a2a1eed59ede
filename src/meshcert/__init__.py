"""meshcert: a test harness and chaos/conformance suite for Kubernetes and service meshes."""

__version__ = "0.1.0"
