"""E10: the mesh's endpoint view equals the ready EndpointSlice set within a deadline, also after
a scale change (the client's Envoy is asked through pilot-agent, from inside the sidecar)."""

from __future__ import annotations

import pytest
from kubernetes.client import AppsV1Api, DiscoveryV1Api

from meshcert.conformance_support import attach_json
from meshcert.invariants.convergence import Observation, converge
from meshcert.kube.waits import ready_addresses
from meshcert.mesh.echo import HTTP_PORT, SERVICE_HTTP_PORT
from meshcert.mesh.routing import fqdn
from meshcert.mesh.suite import CONVERGENCE_TIMEOUT, MeshEnv

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.endpoints]


def _probe(env: MeshEnv, replicas: int) -> Observation[str]:
    """Equal sets, and as many ready addresses as server pods (so a stale equal view fails)."""
    slices = (
        DiscoveryV1Api(env.api)
        .list_namespaced_endpoint_slice(env.namespace, label_selector="kubernetes.io/service-name=server")
        .items
    )
    want = ready_addresses(slices)
    view = env.mesh.endpoint_view(env.namespace, env.client, fqdn("server", env.namespace), SERVICE_HTTP_PORT)
    got = {e.address for e in view if e.healthy and e.port == HTTP_PORT}
    diff = f"missing {sorted(want - got)}, extra {sorted(got - want)}" if want != got else ""
    if not diff and len(want) != replicas:
        diff = f"{len(want)} ready addresses, want {replicas}"
    return Observation(not diff, f"slices {sorted(want)} proxy {sorted(got)}", diff)


def test_e10_mesh_view_equals_endpointslices(mesh_env: MeshEnv) -> None:
    converge(
        lambda: _probe(mesh_env, 2), what="proxy endpoints == EndpointSlices", timeout=CONVERGENCE_TIMEOUT
    )
    apps = AppsV1Api(mesh_env.api)
    apps.patch_namespaced_deployment_scale("server-v2", mesh_env.namespace, {"spec": {"replicas": 2}})
    try:
        conv = converge(
            lambda: _probe(mesh_env, 3),
            what="proxy endpoints == EndpointSlices after scale-up",
            # A new injected pod starts its sidecar first, then the app, before it is Ready.
            timeout=CONVERGENCE_TIMEOUT * 4,
        )
        attach_json("E10 convergence after scale-up (s)", round(conv.time_to_converge, 2))
    finally:
        apps.patch_namespaced_deployment_scale("server-v2", mesh_env.namespace, {"spec": {"replicas": 1}})
    mesh_env.mesh.assert_config_accepted(mesh_env.namespace)
