"""M6: convergence after every change. A route's weights change several times (100/0 → 0/100 →
50/50, twice, from a verified 50/50 start); each change waits, from the verified previous state,
for N consecutive correct batches. Each convergence instant is bracketed by the probe that first
saw it (lower: that probe started, upper: its answers were in, both from the moment the API
server stored the change); p50 and max of the upper bounds are reported and bounded."""

from __future__ import annotations

import time

import pytest

from meshcert.conformance_support import attach_json
from meshcert.invariants.violations import assert_no_violations
from meshcert.kube.apply import apply_manifests
from meshcert.mesh.adapter import Feature
from meshcert.mesh.checks import ConvergenceSummary, convergence_violations, versions_are
from meshcert.mesh.echo import send
from meshcert.mesh.probe import ConvergenceBounds, converge_batches_timed, unsupported
from meshcert.mesh.routing import subsets_rule, weighted_route
from meshcert.mesh.suite import CONVERGENCE_TIMEOUT, MeshEnv, converge_batches, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

URL = "http://server/"
CHANGES = [{"v1": 100, "v2": 0}, {"v1": 0, "v2": 100}, {"v1": 50, "v2": 50}] * 2
#: 20 requests per batch: a 50/50 batch lacks one version with probability 2 * 0.5^20 (~2e-6).
BATCH = 20


def test_m6_repeated_weight_changes_converge(mesh_env: MeshEnv) -> None:
    if reason := unsupported(mesh_env, Feature.WEIGHTED_ROUTING):
        pytest.skip(reason)
    ns = mesh_env.namespace
    base = send(mesh_env.api, ns, mesh_env.client, URL, count=BATCH)
    assert set(base.versions) == {"v1", "v2"}, f"baseline: {dict(base.versions)}"
    bounds: list[ConvergenceBounds] = []
    start = {"v1": 50, "v2": 50}
    with routing(mesh_env, [subsets_rule("server", ns, ["v1", "v2"]), weighted_route("server", ns, start)]):
        converge_batches(mesh_env, URL, versions_are(["v1", "v2"]), what="baseline 50/50", count=BATCH)
        for i, weights in enumerate(CHANGES):
            apply_manifests(mesh_env.api, [weighted_route("server", ns, weights)], namespace=ns,
                            run_id=mesh_env.run_id)  # fmt: skip
            since = time.monotonic()
            want = [v for v, w in weights.items() if w > 0]
            what = f"change {i}: {weights}"
            conv = converge_batches_timed(
                mesh_env, URL, versions_are(want), what=what, since=since, count=BATCH
            )
            bounds.append(conv.bounds)
    summary = ConvergenceSummary(tuple(b.upper for b in bounds))
    attach_json("M6_convergence_seconds", {
        **summary.as_report(),
        "changes": [{"to": w, "lower_s": round(b.lower, 2), "upper_s": round(b.upper, 2),
                     "probes": b.attempts} for w, b in zip(CHANGES, bounds, strict=True)],
    })  # fmt: skip
    assert_no_violations(
        convergence_violations(summary, budget=CONVERGENCE_TIMEOUT, route="VirtualService server")
    )
