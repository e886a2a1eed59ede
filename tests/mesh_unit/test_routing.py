"""Routing/security manifest builders and the install spec."""

from __future__ import annotations

import pytest

from meshcert.errors import ConfigError
from meshcert.mesh.adapter import Feature
from meshcert.mesh.echo import APP_IDLE_TIMEOUT_S
from meshcert.mesh.istio import operator_spec
from meshcert.mesh.routing import inbound_idle_sidecar, peer_authentication, timeout_route, weighted_route
from meshcert.mesh.suite import INBOUND_IDLE_TIMEOUT_S


def test_weights_keep_zero_weight_backends() -> None:
    vs = weighted_route("server", "ns", {"v1": 100, "v2": 0})
    route = vs["spec"]["http"][0]["route"]
    assert [(r["destination"]["subset"], r["weight"]) for r in route] == [("v1", 100), ("v2", 0)]
    assert vs["spec"]["hosts"] == ["server.ns.svc.cluster.local"]


@pytest.mark.parametrize("weights", [{"v1": 50, "v2": 49}, {"v1": 101, "v2": -1}])
def test_weights_must_sum_to_100(weights: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="sum to 100"):
        weighted_route("server", "ns", weights)


def test_timeout_route_disables_retries() -> None:
    http = timeout_route("server", "ns", timeout_s=0.5)["spec"]["http"][0]
    assert http["timeout"] == "0.5s"
    assert http["retries"] == {"attempts": 0}


def test_peer_authentication_rejects_unknown_modes() -> None:
    assert peer_authentication("STRICT")["spec"] == {"mtls": {"mode": "STRICT"}}
    with pytest.raises(ConfigError):
        peer_authentication("strict")


def test_install_spec_is_offline_and_upstream_envoy_safe() -> None:
    spec = operator_spec(hub="meshcert", tag="t")["spec"]
    assert (spec["hub"], spec["tag"], spec["profile"]) == ("meshcert", "t", "minimal")
    values = spec["values"]
    assert values["global"]["imagePullPolicy"] == "Never"
    assert values["pilot"]["env"] == {
        "PILOT_ENABLE_ALPN_FILTER": "false",
        "PILOT_ENABLE_METADATA_EXCHANGE": "false",
    }
    assert values["telemetry"]["enabled"] is False
    # no registry host anywhere in what istioctl is given
    assert "." not in spec["hub"].split("/")[0]


def test_features_not_in_sidecar_mode_are_unsupported_not_failed() -> None:
    from pathlib import Path

    from kubernetes.client import ApiClient

    from meshcert.mesh.istio import IstioMesh

    mesh = IstioMesh(ApiClient(), Path("/nonexistent"), Path("/nonexistent"), "x")
    assert not mesh.support(Feature.AMBIENT).supported
    assert "sidecar" in mesh.support(Feature.AMBIENT).reason
    assert mesh.support(Feature.WEIGHTED_ROUTING).supported


def test_inbound_idle_sidecar_sets_only_the_inbound_pool() -> None:
    sc = inbound_idle_sidecar("idle", idle_timeout_s=3.0)
    assert sc["kind"] == "Sidecar" and "workloadSelector" not in sc["spec"]  # the whole namespace
    assert sc["spec"] == {"inboundConnectionPool": {"http": {"idleTimeout": "3s"}}}  # egress default
    with pytest.raises(ConfigError, match="idle_timeout_s: must be > 0"):
        inbound_idle_sidecar("idle", idle_timeout_s=0)


def test_the_proxy_drops_idle_connections_before_the_echo_app_does() -> None:
    assert 0 < INBOUND_IDLE_TIMEOUT_S < APP_IDLE_TIMEOUT_S
