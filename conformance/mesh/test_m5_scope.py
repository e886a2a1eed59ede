"""M5: scope. A route on service A never affects service B; a consumer route (a VirtualService in
the client's namespace, exportTo ".") steers that namespace's clients and nobody else.

B is the ``client`` Service of the echo set (the client pod is an echo server too), so the first
test needs no extra pod; the second adds one namespace with one injected client pod.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshcert.conformance_support import attach_json
from meshcert.kube.apply import apply_manifests
from meshcert.kube.namespaces import create_namespace, delete_namespace
from meshcert.kube.waits import wait_for_pods_ready
from meshcert.mesh.adapter import Feature
from meshcert.mesh.checks import codes_are, versions_are
from meshcert.mesh.echo import echo_manifests, pod_names, send
from meshcert.mesh.probe import converge_batches_timed, unsupported
from meshcert.mesh.routing import subsets_rule
from meshcert.mesh.suite import WORKLOAD_READY_TIMEOUT, MeshEnv, routing
from meshcert.mesh.traffic import consumer_route, fault_route

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

A, B = "http://server/", "http://client/"
#: 100 requests to B: a route leaking onto B with even a 5 % effect would show in one of them
#: with probability 1 - 0.95^100 > 99 %.
N = 100


def test_m5_route_on_a_never_affects_b(mesh_env: MeshEnv) -> None:
    if reason := unsupported(mesh_env, Feature.FAULT_INJECTION):
        pytest.skip(reason)
    ns = mesh_env.namespace
    for url in (A, B):
        base = send(mesh_env.api, ns, mesh_env.client, url, count=10)
        assert set(base.codes) == {"200"}, f"baseline {url}: {dict(base.codes)} {base.failure}"
    with routing(mesh_env, [fault_route("server", ns, abort_percent=100)]):
        conv = converge_batches_timed(mesh_env, A, codes_are("503"), what="A aborted with 503")
        attach_json("M6_convergence_seconds", conv.bounds.report())
        b = send(mesh_env.api, ns, mesh_env.client, B, count=N)
        attach_json("M5 B while A aborts", {"n": len(b.responses), "codes": dict(b.codes)})
        assert not b.failure and b.codes == {"200": N}, (
            f"B affected by A's route: {dict(b.codes)} {b.failure}"
        )
        assert set(b.versions) == {"v1"} and all(r.hostname.startswith("client-") for r in b.responses)
        a = send(mesh_env.api, ns, mesh_env.client, A, count=10)
        assert a.codes == {"503": 10}, f"A's route no longer applied: {dict(a.codes)}"


@pytest.fixture
def consumer(mesh_env: MeshEnv) -> Iterator[MeshEnv]:
    """A second injected namespace with one echo client (the consumer)."""
    name = f"{mesh_env.namespace}-c"[:63].rstrip("-")
    create_namespace(mesh_env.api, name, run_id=mesh_env.run_id)
    try:
        mesh_env.mesh.inject_namespace(name)
        apply_manifests(mesh_env.api, echo_manifests("client", "v1", with_service=False), namespace=name,
                        run_id=mesh_env.run_id)  # fmt: skip
        wait_for_pods_ready(
            mesh_env.api, name, label_selector="app=client", count=1, timeout=WORKLOAD_READY_TIMEOUT
        )
        client = pod_names(mesh_env.api, name, "app=client")[0]
        yield MeshEnv(mesh_env.mesh, mesh_env.api, name, client, "", mesh_env.run_id, 0.0)
    finally:
        delete_namespace(mesh_env.api, name, wait=False)


def test_m5_consumer_route_stays_in_its_namespace(mesh_env: MeshEnv, consumer: MeshEnv) -> None:
    if reason := unsupported(mesh_env, Feature.WEIGHTED_ROUTING):
        pytest.skip(reason)
    ns = mesh_env.namespace
    url = f"http://server.{ns}/"
    for env in (mesh_env, consumer):
        base = send(env.api, env.namespace, env.client, url, count=20)
        assert set(base.versions) == {"v1", "v2"}, f"baseline from {env.namespace}: {dict(base.versions)}"
    with (
        routing(mesh_env, [subsets_rule("server", ns, ["v1", "v2"])]),
        routing(consumer, [consumer_route("server", ns, subset="v2", name="server-consumer")]),
    ):
        conv = converge_batches_timed(
            consumer, url, versions_are(["v2"]), what="consumer namespace routed to v2"
        )
        attach_json("M6_convergence_seconds", conv.bounds.report())
        # The producer namespace's client must still see both versions (P(one version only in
        # 40 balanced requests) = 2 * 0.5^40).
        own = send(mesh_env.api, ns, mesh_env.client, url, count=40)
        attach_json("M5 producer-namespace versions while consumer route active", dict(own.versions))
        assert set(own.versions) == {"v1", "v2"}, f"consumer route leaked: {dict(own.versions)}"
        mesh_env.mesh.assert_config_accepted(ns)
