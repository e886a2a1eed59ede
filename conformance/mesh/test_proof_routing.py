"""Proof the suite can fail (issue 5 item 6): deliberately wrong routing configurations are applied
to the real mesh, and the M2/M3 checkers (and convergence) report them with a readable diff.

These tests pass when the wrong configuration is *detected*: each expects InvariantViolation from
the same checker the real test uses, and checks that its message names what is wrong.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from meshcert.conformance_support import attach_json
from meshcert.errors import InvariantViolation
from meshcert.invariants.violations import assert_no_violations
from meshcert.mesh.adapter import Feature
from meshcert.mesh.checks import split_violations, table_violations, untagged_baseline, versions_are
from meshcert.mesh.echo import send
from meshcert.mesh.matching import PRECEDENCE_PROBES, PRECEDENCE_RULES, virtual_service
from meshcert.mesh.probe import (
    converge_batches_timed,
    converge_requests,
    unsupported,
)
from meshcert.mesh.routing import subsets_rule, weighted_route
from meshcert.mesh.suite import MeshEnv, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

URL = "http://server/"
#: 400 samples: a swapped 70/30 split is ~40 points off, far outside the 99.9 % interval.
SAMPLES = 400
PROBES = [replace(p, count=2) for p in PRECEDENCE_PROBES]
#: The header rule pointed at the wrong subset (v1 instead of v2).
WRONG_RULES = tuple(replace(r, backend="v1") if r.name == "header" else r for r in PRECEDENCE_RULES)
#: Short: the wrong table is converged (verified) before; this only shows convergence gives up
#: with the diff instead of passing.
GIVE_UP = 10.0


def test_proof_m2_swapped_weights_detected(mesh_env: MeshEnv) -> None:
    if reason := unsupported(mesh_env, Feature.WEIGHTED_ROUTING):
        pytest.skip(reason)
    ns = mesh_env.namespace
    expected = {"v1": 70, "v2": 30}
    swapped = {"v1": 30, "v2": 70}
    with routing(
        mesh_env,
        [subsets_rule("server", ns, ["v1", "v2"]), weighted_route("server", ns, {"v1": 100, "v2": 0})],
    ):
        converge_batches_timed(mesh_env, URL, versions_are(["v1"]), what="baseline: v1 only")
        with routing(mesh_env, [weighted_route("server", ns, swapped)]):
            converge_batches_timed(
                mesh_env, URL, versions_are(["v1", "v2"]), what="swapped split active", count=20
            )
            batch = send(mesh_env.api, ns, mesh_env.client, URL, count=SAMPLES)
            assert not batch.failure, batch.failure
            with pytest.raises(InvariantViolation) as err:
                assert_no_violations(
                    split_violations(batch.versions, expected, route="VirtualService server")
                )
    message = str(err.value)
    attach_json("proof M2: detected violation", message)
    assert "[M2] Route VirtualService server: v1 share:" in message, message
    assert "NOT consistent with p=0.7" in message, message


def test_proof_m3_wrong_subset_detected(mesh_env: MeshEnv) -> None:
    if reason := unsupported(mesh_env, Feature.HTTP):
        pytest.skip(reason)
    ns = mesh_env.namespace
    route = "VirtualService server"
    converge_requests(mesh_env, PROBES, untagged_baseline, what="baseline: every probe 200, untagged")
    with routing(
        mesh_env, [subsets_rule("server", ns, ["v1", "v2"]), virtual_service("server", ns, WRONG_RULES)]
    ):
        # The data plane converges to what was applied (the wrong table) ...
        conv = converge_requests(
            mesh_env, PROBES, lambda r: table_violations(WRONG_RULES, PROBES, r, default=None, route=route),
            what="wrong rule table applied",
        )  # fmt: skip
        attach_json("M6_convergence_seconds", conv.bounds.report())
        # ... and the M3 checker, against the intended table, names exactly the wrong probe.
        with pytest.raises(InvariantViolation) as err:
            assert_no_violations(
                table_violations(PRECEDENCE_RULES, PROBES, conv.observed, default=None, route=route)
            )
        message = str(err.value)
        attach_json("proof M3: detected violation", message)
        assert (
            "GET server/hdr [x-env: canary]: expected rule header (v2, 200), observed rule header (v1, 200)"
            in (message)
        ), message
        assert "[M3] 1 violation(s)" in message, f"only the header probe is wrong: {message}"
        # Convergence towards the intended table gives up with the same diff instead of passing.
        with pytest.raises(InvariantViolation, match=r"x-env: canary\]: expected rule header \(v2"):
            converge_requests(
                mesh_env, PROBES,
                lambda r: table_violations(PRECEDENCE_RULES, PROBES, r, default=None, route=route),
                what="intended rule table", timeout=GIVE_UP,
            )  # fmt: skip
