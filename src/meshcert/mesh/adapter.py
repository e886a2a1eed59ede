"""The MeshAdapter Protocol: what a suite may ask of any mesh implementation.

Why it exists: the M-invariants (DESIGN.md §4) are about routing and security behaviour, not about
Istio; a suite names a `Feature`, asks the adapter whether the mesh supports it, and skips with the
adapter's reason when it does not ("features a mesh lacks are reported unsupported, not failed",
like Gateway API conformance's SupportedFeatures). What it is not: routing resources are not part
of the Protocol yet — they are mesh-native (Istio VirtualService/DestinationRule) in this session
and move to Gateway API GAMMA HTTPRoutes when a second mesh needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Feature(StrEnum):
    """Mesh capabilities the M-tests depend on, one per invariant family."""

    HTTP = "http"
    GRPC = "grpc"
    TCP = "tcp"
    WEIGHTED_ROUTING = "weighted-routing"
    TIMEOUTS = "timeouts"
    RETRIES = "retries"
    MTLS_STRICT = "mtls-strict"
    FAULT_INJECTION = "fault-injection"
    MIRRORING = "mirroring"
    CONSISTENT_HASH = "consistent-hash"
    #: Gateway API HTTPRoute/GRPCRoute with a Service parent (the GAMMA mesh profile).
    GAMMA = "gamma"
    AMBIENT = "ambient"
    WASM = "wasm"


@dataclass(frozen=True)
class Support:
    """Whether a feature is supported and, if not, why (the skip reason a report shows)."""

    feature: Feature
    supported: bool
    reason: str = ""


@dataclass(frozen=True)
class InstallResult:
    """What an install did and how long each phase took (seconds, for the report)."""

    implementation: str
    version: str
    image_load_seconds: float
    control_plane_ready_seconds: float


@dataclass(frozen=True)
class ProxyEndpoint:
    """One upstream endpoint as a client's proxy sees it (for E10: mesh view == EndpointSlices)."""

    address: str
    port: int
    healthy: bool


class MeshAdapter(Protocol):
    """One mesh implementation installed on one cluster."""

    @property
    def implementation(self) -> str:
        """Name and version for reports, e.g. ``istio 1.31-eed52ebb66ad (envoy 1.40.0)``."""
        ...

    def install(self) -> InstallResult:
        """Install the control plane; returns when it is Ready and proxies would accept config."""
        ...

    def uninstall(self) -> None: ...

    def inject_namespace(self, namespace: str) -> None:
        """Make pods created in ``namespace`` from now on part of the mesh."""
        ...

    def support(self, feature: Feature) -> Support: ...

    def assert_config_accepted(self, namespace: str) -> None:
        """The convergence signal's safety half: raise if any proxy in ``namespace`` rejected
        config pushed to it (a rejected push keeps the old config, so traffic checks alone would
        call a broken change "converged" to the old behaviour)."""
        ...

    def endpoint_view(self, namespace: str, pod: str, service_host: str, port: int) -> list[ProxyEndpoint]:
        """The endpoints of ``service_host:port`` in ``pod``'s proxy."""
        ...
