"""Proof the suite can fail (issue 5 item 6), for retries: the retry policy is *removed* from the
route on the real mesh, and the M8 checker M8 itself uses reports it with a readable diff.

The realistic mistake is a VirtualService whose ``retries`` block was dropped: the mesh then
applies whatever its default is (Istio documents 2 retries; the test reads what really happens), not
the 1 + 3 attempts the intended policy asks for. The test passes when that is *detected*, with
the attempts the data plane really made in the message.
"""

from __future__ import annotations

import copy
import uuid

import pytest

from meshcert.conformance_support import attach_json
from meshcert.errors import InvariantViolation
from meshcert.invariants.violations import assert_no_violations
from meshcert.kube.apply import apply_manifests
from meshcert.mesh.checks import retry_violations
from meshcert.mesh.echo import send
from meshcert.mesh.resilience import backend_attempts, wait_for_attempts, wait_for_retries_active
from meshcert.mesh.routing import retry_route
from meshcert.mesh.suite import CONVERGENCE_TIMEOUT, MeshEnv, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

INTENDED_RETRIES = 3
REQUESTS = 10
ROUTE = "VirtualService server"
FAILING = "http://server/?codes=503:1"


def test_proof_m8_removed_retries_detected(mesh_env: MeshEnv) -> None:
    ns, api, client = mesh_env.namespace, mesh_env.api, mesh_env.client

    intended = retry_route("server", ns, attempts=INTENDED_RETRIES)
    removed = copy.deepcopy(intended)
    del removed["spec"]["http"][0]["retries"]  # the same route with its retries block dropped

    with routing(mesh_env, [intended]):
        conv = wait_for_retries_active(api, ns, client, FAILING, backend_selector="app=server",
                                       attempts=INTENDED_RETRIES, timeout=CONVERGENCE_TIMEOUT)  # fmt: skip
        attach_json("M6_convergence_seconds (baseline: intended policy)", round(conv.time_to_converge, 2))
        apply_manifests(api, [removed], namespace=ns, run_id=mesh_env.run_id)
        # Gone: the failing request reached a backend (its log line is in), but not 1 + 3 times.
        conv = wait_for_attempts(
            api, ns, client, FAILING, backend_selector="app=server", timeout=CONVERGENCE_TIMEOUT,
            accept=lambda n: n >= 1 and n != 1 + INTENDED_RETRIES, what="intended retry policy gone",
        )  # fmt: skip
        attach_json("M6_convergence_seconds (retries removed)", round(conv.time_to_converge, 2))
        marker = uuid.uuid4().hex
        batch = send(api, ns, client, f"{FAILING}&m={marker}", count=REQUESTS)
        assert set(batch.codes) == {"503"}, batch.codes
        per_request = backend_attempts(api, ns, "app=server", marker)
        observed = sorted(set(per_request.values()))
        with pytest.raises(InvariantViolation) as err:
            assert_no_violations(
                retry_violations(per_request, requests=REQUESTS, attempts=INTENDED_RETRIES, route=ROUTE)
            )
    message = str(err.value)
    attach_json("proof M8: detected violation", message)
    assert len(observed) == 1, f"every request should get the same default treatment: {per_request}"
    assert (
        f"[M8] Route {ROUTE}: {REQUESTS} of {REQUESTS} failing requests did not reach the "
        f"backends 1 + 3 = 4 times; requests x attempts: {REQUESTS} x {observed[0]}" in message
    ), message
