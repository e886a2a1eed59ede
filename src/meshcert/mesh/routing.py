"""Istio routing and security resources the M-tests apply, as plain manifests (pure; unit-tested).

Why mesh-native (VirtualService, DestinationRule, PeerAuthentication) rather than Gateway API
GAMMA HTTPRoutes: the Gateway API CRDs are not in istioctl's embedded charts and would have to be
installed from another module; the invariants are the same either way, and a GAMMA variant can
be added beside these builders without changing the tests' oracles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshcert.errors import ConfigError

NETWORKING = "networking.istio.io/v1"
SECURITY = "security.istio.io/v1"


def inbound_idle_sidecar(name: str, *, idle_timeout_s: float) -> dict[str, Any]:
    """A namespace-wide Sidecar whose inbound pools (sidecar → app) drop a connection idle for
    ``idle_timeout_s``: below the app's own idle timeout, the proxy closes first and never sends
    on a connection the app is closing (Istio's advice for that 503). Egress stays the default."""
    if idle_timeout_s <= 0:
        raise ConfigError("inbound_idle_sidecar", "idle_timeout_s", f"must be > 0, got {idle_timeout_s}")
    return {
        "apiVersion": NETWORKING,
        "kind": "Sidecar",
        "metadata": {"name": name},
        "spec": {"inboundConnectionPool": {"http": {"idleTimeout": f"{idle_timeout_s:g}s"}}},
    }


def fqdn(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def subsets_rule(service: str, namespace: str, versions: list[str]) -> dict[str, Any]:
    """A DestinationRule naming one subset per ``version`` label (weights route to subsets)."""
    return {
        "apiVersion": NETWORKING,
        "kind": "DestinationRule",
        "metadata": {"name": service},
        "spec": {
            "host": fqdn(service, namespace),
            "subsets": [{"name": v, "labels": {"version": v}} for v in versions],
        },
    }


def weighted_route(service: str, namespace: str, weights: Mapping[str, int]) -> dict[str, Any]:
    """A VirtualService splitting ``service``'s HTTP traffic across subsets by weight.

    Istio requires the weights of one route to sum to 100; a weight of 0 is kept in the list on
    purpose (M2: a zero-weight backend must receive nothing, not be merely absent).
    """
    if sum(weights.values()) != 100 or any(w < 0 for w in weights.values()):
        raise ConfigError("weighted_route", "weights", f"must be >= 0 and sum to 100, got {dict(weights)}")
    host = fqdn(service, namespace)
    return {
        "apiVersion": NETWORKING,
        "kind": "VirtualService",
        "metadata": {"name": service},
        "spec": {
            "hosts": [host],
            "http": [
                {
                    "route": [
                        {"destination": {"host": host, "subset": subset}, "weight": weight}
                        for subset, weight in weights.items()
                    ]
                }
            ],
        },
    }


def timeout_route(service: str, namespace: str, *, timeout_s: float) -> dict[str, Any]:
    """A VirtualService with a route timeout (M7) and no retries, so the timeout is the only
    thing that can end a slow request (Istio's default retry policy would otherwise retry it)."""
    host = fqdn(service, namespace)
    return {
        "apiVersion": NETWORKING,
        "kind": "VirtualService",
        "metadata": {"name": service},
        "spec": {
            "hosts": [host],
            "http": [
                {
                    "timeout": f"{timeout_s}s",
                    "retries": {"attempts": 0},
                    "route": [{"destination": {"host": host}}],
                }
            ],
        },
    }


def retry_route(service: str, namespace: str, *, attempts: int, retry_on: str = "5xx") -> dict[str, Any]:
    """A VirtualService retrying up to ``attempts`` times on ``retry_on`` (M8)."""
    host = fqdn(service, namespace)
    return {
        "apiVersion": NETWORKING,
        "kind": "VirtualService",
        "metadata": {"name": service},
        "spec": {
            "hosts": [host],
            "http": [
                {
                    "retries": {"attempts": attempts, "retryOn": retry_on, "perTryTimeout": "2s"},
                    "route": [{"destination": {"host": host}}],
                }
            ],
        },
    }


def peer_authentication(mode: str, *, name: str = "default") -> dict[str, Any]:
    """Namespace-wide PeerAuthentication (M15): STRICT refuses plaintext, PERMISSIVE accepts both."""
    if mode not in ("STRICT", "PERMISSIVE", "DISABLE"):
        raise ConfigError("peer_authentication", "mode", f"unknown mTLS mode {mode!r}")
    return {
        "apiVersion": SECURITY,
        "kind": "PeerAuthentication",
        "metadata": {"name": name},
        "spec": {"mtls": {"mode": mode}},
    }
