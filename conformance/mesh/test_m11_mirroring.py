"""M11: mirroring. About p % of the requests are copied to the mirror (counted in the mirror
backend's own log, binomial interval); a failing or slow mirror never changes the primary's
answers (status, version, latency)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshcert.conformance_support import attach_json
from meshcert.invariants.stats import wilson_interval
from meshcert.invariants.violations import assert_no_violations
from meshcert.kube.apply import apply_manifests
from meshcert.kube.waits import wait_for_pods_ready
from meshcert.mesh.adapter import Feature
from meshcert.mesh.checks import CONFIDENCE, fraction_violations, versions_are
from meshcert.mesh.echo import send
from meshcert.mesh.mirroring import converge_mirror, echo_copies, mirrored_batch, sink_copies
from meshcert.mesh.probe import unsupported
from meshcert.mesh.routing import subsets_rule, weighted_route
from meshcert.mesh.suite import (
    WORKLOAD_READY_TIMEOUT,
    MeshEnv,
    converge_batches,
    routing,
)
from meshcert.mesh.traffic import mirror_route, sink_manifests

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

ROUTE = "VirtualService server"
V2 = "app=server,version=v2"
PERCENT = 25
#: 400 requests: 99.9 % Wilson half-width ~7.1 points at p = 0.25 (checks.CONFIDENCE).
N = 400
#: The sink holds /slow requests this long before its 500: a primary waiting on the mirror
#: would take > 5 s instead of milliseconds (up to ~0.7 s on a loaded host).
SINK_DELAY = 5


def test_m11_mirror_fraction(mesh_env: MeshEnv) -> None:
    if reason := unsupported(mesh_env, Feature.MIRRORING):
        pytest.skip(reason)
    ns = mesh_env.namespace

    def v2_copies(marker: str) -> int:
        return echo_copies(mesh_env, V2, marker)

    with routing(
        mesh_env,
        [subsets_rule("server", ns, ["v1", "v2"]), weighted_route("server", ns, {"v1": 100, "v2": 0})],
    ):
        converge_batches(
            mesh_env, "http://server/", versions_are(["v1"]), what="baseline: v1 only, no mirror"
        )
        _, k = mirrored_batch(mesh_env, v2_copies, count=20)
        assert k == 0, "baseline: v2 must receive nothing before the mirror"
        mirror = mirror_route(
            "server", ns, subset="v1", mirror_host="server", mirror_subset="v2", percent=PERCENT
        )
        with routing(mesh_env, [mirror]):
            attach_json(
                "M6_convergence_seconds",
                converge_mirror(mesh_env, v2_copies),
            )
            b, k = mirrored_batch(mesh_env, v2_copies, count=N)
            assert not b.failure and b.codes == {"200": N} and set(b.versions) == {"v1"}, (
                dict(b.codes),
                b.versions,
            )
            attach_json(
                "M11 mirrored copies",
                {"k": k, "n": N, "p": PERCENT / 100, "ci": str(wilson_interval(k, N, confidence=CONFIDENCE))},
            )
            assert_no_violations(
                fraction_violations("M11", "mirrored fraction", k, N, PERCENT / 100, route=ROUTE)
            )


@pytest.fixture
def sink(mesh_env: MeshEnv) -> Iterator[str]:
    """The failing (500) / slow (/slow: 500 after SINK_DELAY s) mirror target, in the mesh."""
    apply_manifests(mesh_env.api, sink_manifests("sink", delay_s=SINK_DELAY), namespace=mesh_env.namespace,
                    run_id=mesh_env.run_id)  # fmt: skip
    wait_for_pods_ready(mesh_env.api, mesh_env.namespace, label_selector="app=sink", count=1,
                        timeout=WORKLOAD_READY_TIMEOUT)  # fmt: skip
    yield "sink"


def test_m11_failing_mirror_never_affects_primary(mesh_env: MeshEnv, sink: str) -> None:
    if reason := unsupported(mesh_env, Feature.MIRRORING):
        pytest.skip(reason)
    ns = mesh_env.namespace

    def at_sink(marker: str) -> int:
        return sink_copies(mesh_env, marker)

    fast = send(mesh_env.api, ns, mesh_env.client, f"http://{sink}/", count=2)
    slow = send(mesh_env.api, ns, mesh_env.client, f"http://{sink}/slow", count=1, request_timeout=10)
    assert fast.codes == {"500": 2}, (
        f"the sink must fail when called directly: {dict(fast.codes)} {fast.failure}"
    )
    assert slow.codes == {"500": 1} and slow.responses[0].latency >= SINK_DELAY, slow.responses
    _, k = mirrored_batch(mesh_env, at_sink, count=5)
    assert k == 0, "baseline: the sink must receive nothing before the mirror"
    dr = subsets_rule("server", ns, ["v1", "v2"])
    with routing(mesh_env, [dr, mirror_route("server", ns, subset="v1", mirror_host=sink, percent=100)]):
        attach_json(
            "M6_convergence_seconds",
            converge_mirror(mesh_env, at_sink),
        )
        report = {}
        for path in ("/", "/slow"):
            b, k = mirrored_batch(mesh_env, at_sink, count=100, path=path)
            latencies = sorted(r.latency for r in b.responses)
            report[path] = {"codes": dict(b.codes), "versions": dict(b.versions), "copies_at_sink": k,
                            "max_latency_s": latencies[-1] if latencies else None}  # fmt: skip
            assert not b.failure and b.codes == {"200": 100}, (
                f"{path}: primary affected: {dict(b.codes)} {b.failure}"
            )
            assert set(b.versions) == {"v1"}, f"{path}: {dict(b.versions)}"
            # The primary answers in milliseconds; waiting on the sink would cost SINK_DELAY s.
            assert latencies[-1] < SINK_DELAY / 2, f"{path}: primary latency up to {latencies[-1]:.2f}s"
            # 100 % mirroring: every request must have been copied, so the failure was exercised.
            assert_no_violations(fraction_violations("M11", f"{path} copies at the failing sink", k, 100, 1.0,
                                                     route=ROUTE))  # fmt: skip
        attach_json("M11 failing mirror", report)
