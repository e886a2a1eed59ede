"""M2: weighted routing. The observed split lies inside a binomial confidence interval of the
configured weight; a weight-0 backend receives nothing; the set of backends reached equals the set
with weight > 0. Each change converges from a verified pre-change baseline (M6) and its time is
recorded as a test property."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meshcert.conformance_support import attach_json
from meshcert.invariants.violations import assert_no_violations
from meshcert.mesh.checks import split_violations
from meshcert.mesh.echo import EchoBatch, send
from meshcert.mesh.routing import subsets_rule, weighted_route
from meshcert.mesh.suite import MeshEnv, converge_batches, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

URL = "http://server/"
ROUTE = "VirtualService server"
#: 400 samples: at the suite's CONFIDENCE (99.9 %, mesh/checks.py) the Wilson half-width is
#: ~7.5 points at p = 0.7, so a 10-point routing error is caught ~90 % of the time, while a
#: correct split fails ~0.1 % of runs (at 95 % it failed one CI run: 298/400 = 0.745).
SAMPLES = 400


def only(version: str) -> Callable[[EchoBatch], str]:
    def check(b: EchoBatch) -> str:
        return (
            ""
            if not b.failure and set(b.versions) == {version}
            else f"versions {dict(b.versions)} {b.failure}"
        )

    return check


def test_m2_baseline_reaches_both_versions(mesh_env: MeshEnv) -> None:
    batch = send(mesh_env.api, mesh_env.namespace, mesh_env.client, URL, count=20)
    assert set(batch.versions) == {"v1", "v2"}, batch.versions


def test_m2_weight_zero_gets_nothing(mesh_env: MeshEnv) -> None:
    # Baseline: without routing config both versions answer.
    assert set(send(mesh_env.api, mesh_env.namespace, mesh_env.client, URL, count=20).versions) == {
        "v1",
        "v2",
    }
    ns = mesh_env.namespace
    with routing(
        mesh_env,
        [subsets_rule("server", ns, ["v1", "v2"]), weighted_route("server", ns, {"v1": 100, "v2": 0})],
    ):
        conv = converge_batches(mesh_env, URL, only("v1"), what="all traffic on v1 (v2 weight 0)")
        attach_json("M6_convergence_seconds", round(conv.time_to_converge, 2))
        batch = send(mesh_env.api, ns, mesh_env.client, URL, count=SAMPLES)
        assert not batch.failure, batch.failure
        assert_no_violations(split_violations(batch.versions, {"v1": 100, "v2": 0}, route=ROUTE))


def test_m2_split_within_binomial_interval(mesh_env: MeshEnv) -> None:
    ns = mesh_env.namespace
    dr = subsets_rule("server", ns, ["v1", "v2"])
    with routing(mesh_env, [dr, weighted_route("server", ns, {"v1": 100, "v2": 0})]):
        converge_batches(mesh_env, URL, only("v1"), what="baseline: all traffic on v1")
        with routing(mesh_env, [weighted_route("server", ns, {"v1": 70, "v2": 30})]):
            # Verified baseline is v1-only; the change is visible once v2 answers (P(no v2 in 20
            # requests | 30 %) = 0.7^20 < 0.1 %).
            conv = converge_batches(
                mesh_env,
                URL,
                lambda b: "" if b.versions["v2"] else "no v2 yet",
                what="v2 reached",
                count=20,
                consecutive=1,
            )
            attach_json("M6_convergence_seconds", round(conv.time_to_converge, 2))
            batch = send(mesh_env.api, ns, mesh_env.client, URL, count=SAMPLES)
            assert not batch.failure, batch.failure
            attach_json("M2_split", dict(batch.versions))
            assert_no_violations(split_violations(batch.versions, {"v1": 70, "v2": 30}, route=ROUTE))
