"""GAMMA variants of M2 (weights, HTTP and gRPC), M3 (matching precedence), M4 (filters) and M11
(mirroring): the same oracles as the Istio-native tests, with Gateway API HTTPRoutes/GRPCRoutes
whose parent is the ``server`` Service.

The Gateway API CRDs come from the gateway-api module pinned by toolchain/istio (installed once,
cluster-scoped, left in place like the mesh's own CRDs). GAMMA backends are Services, so each
version gets one (``server-v1``/``server-v2``). The M3 route lists its rules lowest-precedence
first: only the mesh's own precedence sorting can satisfy the oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from meshcert.conformance_support import attach_json
from meshcert.errors import ConfigError, ToolchainError
from meshcert.invariants.violations import Violation, assert_no_violations
from meshcert.kube.apply import apply_manifests
from meshcert.mesh.adapter import Feature
from meshcert.mesh.checks import (
    fraction_violations,
    split_violations,
    table_summary,
    table_violations,
    untagged_baseline,
    versions_are,
)
from meshcert.mesh.echo import GRPC_PORT, send
from meshcert.mesh.filters import FILTERS, baseline_violations, filter_violations, observed
from meshcert.mesh.filters import PROBES as FILTER_PROBES
from meshcert.mesh.gamma import (
    filter_http_route,
    install_gateway_api_crds,
    matching_http_route,
    mirror_http_route,
    route_conditions,
    version_services,
    weighted_grpc_route,
    weighted_http_route,
)
from meshcert.mesh.matching import PRECEDENCE_PROBES, PRECEDENCE_RULES
from meshcert.mesh.mirroring import converge_mirror, echo_copies, mirrored_batch
from meshcert.mesh.probe import (
    Results,
    converge_batches_timed,
    converge_requests,
    unsupported,
)
from meshcert.mesh.suite import MeshEnv, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

URL = "http://server/"
GRPC_URL = f"grpc://server:{GRPC_PORT}"
#: As in M2: 400 samples; at checks.CONFIDENCE (99.9 %) the half-width is ~7.5 points at p = 0.7.
SAMPLES = 400
PROBES = [replace(p, count=2) for p in PRECEDENCE_PROBES]


@pytest.fixture(scope="module")
def gamma(mesh_env: MeshEnv) -> str:
    """Gateway API CRDs installed (idempotent) and one Service per server version."""
    try:
        version = install_gateway_api_crds(mesh_env.api, run_id=mesh_env.run_id)
    except (ToolchainError, ConfigError) as e:
        pytest.skip(f"GAMMA unavailable: the Gateway API CRDs could not be installed: {e}")
    apply_manifests(mesh_env.api, version_services("server", ["v1", "v2"]), namespace=mesh_env.namespace,
                    run_id=mesh_env.run_id)  # fmt: skip
    return version


def test_gamma_m2_weights(mesh_env: MeshEnv, gamma: str) -> None:
    if reason := unsupported(mesh_env, Feature.GAMMA, Feature.WEIGHTED_ROUTING):
        pytest.skip(reason)
    ns = mesh_env.namespace
    base = send(mesh_env.api, ns, mesh_env.client, URL, count=20)
    assert set(base.versions) == {"v1", "v2"}, f"baseline: {dict(base.versions)}"
    with routing(mesh_env, [weighted_http_route("server", {"v1": 100, "v2": 0})]):
        conv = converge_batches_timed(
            mesh_env, URL, versions_are(["v1"]), what="HTTPRoute: all traffic on v1"
        )
        attach_json("M6_convergence_seconds (weight 100/0)", conv.bounds.report())
        attach_json("HTTPRoute parent conditions", route_conditions(mesh_env.api, ns, "server-weights"))
        zero = send(mesh_env.api, ns, mesh_env.client, URL, count=SAMPLES)
        assert_no_violations(
            split_violations(zero.versions, {"v1": 100, "v2": 0}, route="HTTPRoute server-weights")
        )
        weights = {"v1": 70, "v2": 30}
        apply_manifests(
            mesh_env.api, [weighted_http_route("server", weights)], namespace=ns, run_id=mesh_env.run_id
        )
        # From the verified v1-only state, the change shows as v2 answering (0.7^20 < 0.1 % miss).
        conv = converge_batches_timed(
            mesh_env, URL, versions_are(["v1", "v2"]), what="HTTPRoute: 70/30", count=20
        )
        attach_json("M6_convergence_seconds (weight 70/30)", conv.bounds.report())
        batch = send(mesh_env.api, ns, mesh_env.client, URL, count=SAMPLES)
        assert not batch.failure, batch.failure
        attach_json("GAMMA M2 observed", {"versions": dict(batch.versions), "n": len(batch.responses)})
        assert_no_violations(split_violations(batch.versions, weights, route="HTTPRoute server-weights"))


def test_gamma_m2_grpc_weights(mesh_env: MeshEnv, gamma: str) -> None:
    if reason := unsupported(mesh_env, Feature.GAMMA, Feature.GRPC, Feature.WEIGHTED_ROUTING):
        pytest.skip(reason)
    ns = mesh_env.namespace
    base = send(mesh_env.api, ns, mesh_env.client, GRPC_URL, count=20)
    assert set(base.versions) == {"v1", "v2"}, f"baseline (gRPC): {dict(base.versions)} {base.failure}"
    with routing(mesh_env, [weighted_grpc_route("server", {"v1": 0, "v2": 100})]):
        conv = converge_batches_timed(mesh_env, GRPC_URL, versions_are(["v2"]), what="GRPCRoute: all on v2")
        attach_json("M6_convergence_seconds (gRPC weight 0/100)", conv.bounds.report())
        conditions = route_conditions(mesh_env.api, ns, "server-grpc-weights", plural="grpcroutes")
        attach_json("GRPCRoute parent conditions", conditions)
        weights = {"v1": 70, "v2": 30}
        apply_manifests(
            mesh_env.api, [weighted_grpc_route("server", weights)], namespace=ns, run_id=mesh_env.run_id
        )
        conv = converge_batches_timed(mesh_env, GRPC_URL, versions_are(["v1", "v2"]), what="GRPCRoute: 70/30",
                                      count=20)  # fmt: skip
        attach_json("M6_convergence_seconds (gRPC weight 70/30)", conv.bounds.report())
        batch = send(mesh_env.api, ns, mesh_env.client, GRPC_URL, count=SAMPLES)
        assert not batch.failure, batch.failure
        attach_json("GAMMA gRPC M2 observed", {"versions": dict(batch.versions), "n": len(batch.responses)})
        assert_no_violations(split_violations(batch.versions, weights, route="GRPCRoute server-grpc-weights"))


def _table(default: str | None) -> Callable[[Results], list[Violation]]:
    return lambda r: table_violations(
        PRECEDENCE_RULES, PROBES, r, default=default, route="HTTPRoute server-matching"
    )


def test_gamma_m3_matching_precedence(mesh_env: MeshEnv, gamma: str) -> None:
    if reason := unsupported(mesh_env, Feature.GAMMA):
        pytest.skip(reason)
    ns = mesh_env.namespace
    converge_requests(mesh_env, PROBES, untagged_baseline, what="baseline: every probe 200, untagged")
    with routing(mesh_env, [matching_http_route("server", PRECEDENCE_RULES)]):
        conv = converge_requests(mesh_env, PROBES, _table(None), what="HTTPRoute rule table (no default)")
        attach_json("M6_convergence_seconds", conv.bounds.report())
        attach_json("GAMMA M3 rule/version/code per probe, no default", table_summary(PROBES, conv.observed))
        attach_json("HTTPRoute parent conditions", route_conditions(mesh_env.api, ns, "server-matching"))
        apply_manifests(mesh_env.api, [matching_http_route("server", PRECEDENCE_RULES, default="v1")],
                        namespace=ns, run_id=mesh_env.run_id)  # fmt: skip
        conv = converge_requests(mesh_env, PROBES, _table("v1"), what="HTTPRoute rule table with default")
        attach_json("M6_convergence_seconds (default added)", conv.bounds.report())
        attach_json("GAMMA M3 rule/version/code per probe, default v1", table_summary(PROBES, conv.observed))


def test_gamma_m4_header_rewrite_redirect(mesh_env: MeshEnv, gamma: str) -> None:
    if reason := unsupported(mesh_env, Feature.GAMMA):
        pytest.skip(reason)
    ns, route = mesh_env.namespace, "HTTPRoute server-filters"
    converge_requests(mesh_env, FILTER_PROBES, baseline_violations, what="baseline: no filter")
    http_route = filter_http_route("server", FILTERS)
    with routing(mesh_env, [http_route]):
        conv = converge_requests(
            mesh_env,
            FILTER_PROBES,
            lambda r: filter_violations(r, route=route),
            what="HTTPRoute filters applied",
        )
        attach_json("M6_convergence_seconds", conv.bounds.report())
        attach_json("GAMMA M4 observed", observed(conv.observed))
        attach_json("HTTPRoute parent conditions", route_conditions(mesh_env.api, ns, "server-filters"))


#: As M11: 25 % of 400 requests (99.9 % Wilson half-width ~7.1 points).
MIRROR_PERCENT, MIRROR_N = 25, 400
V2 = "app=server,version=v2"


def test_gamma_m11_mirror_fraction(mesh_env: MeshEnv, gamma: str) -> None:
    if reason := unsupported(mesh_env, Feature.GAMMA, Feature.MIRRORING):
        pytest.skip(reason)
    ns, route = mesh_env.namespace, "HTTPRoute server-mirror"

    # Baseline: the same route mirroring 0 %; the change under test is only its percentage (a
    # second HTTPRoute on the same parent would conflict with it, and the older one would win).
    def v2_copies(marker: str) -> int:
        return echo_copies(mesh_env, V2, marker)

    def mirror(percent: int) -> dict[str, Any]:
        return mirror_http_route("server", version="v1", mirror_service="server-v2", percent=percent)

    with routing(mesh_env, [mirror(0)]):
        converge_batches_timed(mesh_env, URL, versions_are(["v1"]), what="baseline: HTTPRoute v1, mirror 0 %")
        _, k = mirrored_batch(mesh_env, v2_copies, count=20)
        assert k == 0, "baseline: v2 must receive nothing at 0 %"
        apply_manifests(mesh_env.api, [mirror(MIRROR_PERCENT)], namespace=ns, run_id=mesh_env.run_id)
        attach_json("M6_convergence_seconds", converge_mirror(mesh_env, v2_copies))
        b, k = mirrored_batch(mesh_env, v2_copies, count=MIRROR_N)
        # The primary answers every request, from v1 only: the mirror never shows to the client.
        assert not b.failure and b.codes == {"200": MIRROR_N} and set(b.versions) == {"v1"}, (
            dict(b.codes), dict(b.versions), b.failure,
        )  # fmt: skip
        p = MIRROR_PERCENT / 100
        attach_json("GAMMA M11 mirrored copies", {"k": k, "n": MIRROR_N, "p": p})
        attach_json("HTTPRoute parent conditions", route_conditions(mesh_env.api, ns, "server-mirror"))
        assert_no_violations(fraction_violations("M11", "mirrored fraction", k, MIRROR_N, p, route=route))
