"""The reference mesh itself: istiod Ready, sidecars injected into the echo pods, every proxy's
config accepted (upstream Envoy refuses Istio-only filters by counting ``update_rejected``), and
the servers' proxies drop idle app connections before the app does (no keep-alive race)."""

from __future__ import annotations

import pytest
from kubernetes.client import CoreV1Api

from meshcert.conformance_support import attach_json
from meshcert.mesh.echo import APP_IDLE_TIMEOUT_S, HTTP_PORT, pod_names
from meshcert.mesh.istio import has_sidecar
from meshcert.mesh.suite import MeshEnv

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane]


def test_sidecars_injected_and_config_accepted(mesh_env: MeshEnv) -> None:
    attach_json("echo_workload_ready_seconds", round(mesh_env.ready_seconds, 1))
    core = CoreV1Api(mesh_env.api)
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(mesh_env.namespace).items if p.metadata}
    injected = {name for name, p in pods.items() if has_sidecar(p)}
    assert mesh_env.client in injected
    assert mesh_env.plain not in injected, "the opted-out pod must not carry a sidecar"
    assert {n for n in pods if n.startswith("server-")} <= injected
    mesh_env.mesh.assert_config_accepted(mesh_env.namespace)


def test_server_proxies_drop_idle_app_connections_before_the_app(mesh_env: MeshEnv) -> None:
    ns = mesh_env.namespace
    seen = {
        pod: mesh_env.mesh.inbound_idle_timeouts(ns, pod) for pod in pod_names(mesh_env.api, ns, "app=server")
    }
    attach_json("inbound_idle_timeouts", seen)
    assert len(seen) == 2, seen
    for pod, clusters in seen.items():
        idle = clusters.get(f"inbound|{HTTP_PORT}||")
        assert idle is not None and idle < APP_IDLE_TIMEOUT_S, (
            f"{pod}: inbound idle timeout {idle} s, {clusters}"
        )
