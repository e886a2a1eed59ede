"""The container engine layer: get a Docker engine that can run kind's privileged nodes, and prove it.

The bottom of meshcert's layers (STYLE §1): it knows about dockerd, runc, capabilities and host
limits, and nothing about Kubernetes, toolchains or clusters. Entry points: `engine.engine_up`,
`engine.engine_status`, `doctor.run_doctor`, `probe.verify_privileged`.
"""
