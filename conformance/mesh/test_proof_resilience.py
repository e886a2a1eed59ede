"""Proof the suite can fail (issue 5 item 6), for retries: the retry policy is *removed* from the
route on the real mesh, and the M8 checker M8 itself uses reports it with a readable diff.

The realistic mistake is a VirtualService whose ``retries`` block was dropped. Istio then applies
its default policy (2 retries on 503, among others), so a failing request still reaches the
backends 3 times, not the 1 + 3 the intended policy asks for: exactly the case M8 chose N = 3 to
tell apart. The test passes when that is *detected*.
"""

from __future__ import annotations

import uuid

import pytest

from meshcert.conformance_support import attach_json
from meshcert.errors import InvariantViolation
from meshcert.invariants.violations import assert_no_violations
from meshcert.mesh.checks import retry_violations
from meshcert.mesh.echo import backend_attempts, send
from meshcert.mesh.resilience import wait_for_retries_active
from meshcert.mesh.routing import retry_route, timeout_route
from meshcert.mesh.suite import CONVERGENCE_TIMEOUT, MeshEnv, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

INTENDED_RETRIES = 3
#: Istio's default retry policy when a route names none (attempts: 2, retryOn includes
#: retriable-status-codes with 503); what the data plane does once the policy is removed.
ISTIO_DEFAULT_RETRIES = 2
REQUESTS = 10
FAILING = "http://server/?codes=503:1"


def test_proof_m8_removed_retries_detected(mesh_env: MeshEnv) -> None:
    ns, api, client = mesh_env.namespace, mesh_env.api, mesh_env.client

    def converge_on(retries: int, what: str) -> None:
        conv = wait_for_retries_active(
            api,
            ns,
            client,
            FAILING,
            backend_selector="app=server",
            attempts=retries,
            timeout=CONVERGENCE_TIMEOUT,
        )
        attach_json(f"M6_convergence_seconds ({what})", round(conv.time_to_converge, 2))

    with routing(mesh_env, [retry_route("server", ns, attempts=INTENDED_RETRIES)]):
        converge_on(INTENDED_RETRIES, "baseline: intended policy")  # verified pre-change baseline
        # The same route with its retries block dropped (a timeout keeps it a real route).
        with routing(mesh_env, [timeout_route("server", ns, timeout_s=10)]):
            converge_on(ISTIO_DEFAULT_RETRIES, "retries removed")
            marker = uuid.uuid4().hex
            batch = send(api, ns, client, f"{FAILING}&m={marker}", count=REQUESTS)
            assert set(batch.codes) == {"503"}, batch.codes
            per_request = backend_attempts(api, ns, "app=server", marker)
            with pytest.raises(InvariantViolation) as err:
                assert_no_violations(
                    retry_violations(
                        per_request,
                        requests=REQUESTS,
                        attempts=INTENDED_RETRIES,
                        route="VirtualService server",
                    )
                )
    message = str(err.value)
    attach_json("proof M8: detected violation", message)
    assert (
        f"[M8] Route VirtualService server: {REQUESTS} of {REQUESTS} failing requests did not reach the "
        f"backends 1 + 3 = 4 times; requests x attempts: {REQUESTS} x 3" in message
    ), message
