"""M7: route timeouts. A backend slower than the timeout gives 504 at about the timeout; a faster
one gives 200. The backend delay comes from the echo server itself (``?delay=``)."""

from __future__ import annotations

import pytest

from meshcert.conformance_support import attach_json
from meshcert.mesh.echo import send
from meshcert.mesh.routing import timeout_route
from meshcert.mesh.suite import MeshEnv, converge_batches, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

TIMEOUT = 1.0
#: Backend delay 3x the timeout: a 504 at ~1 s cannot be confused with the backend's answer at 3 s.
SLOW = "http://server/?delay=3s"
FAST = "http://server/?delay=100ms"
#: Latency measured by the client includes two sidecar hops; 0.5 s above the timeout bounds that
#: on a loaded host while staying far below the 3 s the backend would take.
SLACK = 0.5


def test_m7_timeout_gives_504_at_timeout(mesh_env: MeshEnv) -> None:
    ns = mesh_env.namespace
    baseline = send(mesh_env.api, ns, mesh_env.client, SLOW, count=1, request_timeout=10)
    assert [r.code for r in baseline.responses] == ["200"], baseline
    with routing(mesh_env, [timeout_route("server", ns, timeout_s=TIMEOUT)]):
        conv = converge_batches(
            mesh_env, SLOW, lambda b: "" if set(b.codes) == {"504"} else f"codes {dict(b.codes)}",
            what="slow backend answered 504", count=1, request_timeout=10,
        )  # fmt: skip
        attach_json("M6_convergence_seconds", round(conv.time_to_converge, 2))
        slow = send(mesh_env.api, ns, mesh_env.client, SLOW, count=5, request_timeout=10)
        assert [r.code for r in slow.responses] == ["504"] * 5, slow.responses
        latencies = [r.latency for r in slow.responses]
        attach_json("M7_504_latencies", latencies)
        assert all(TIMEOUT - 0.05 <= t <= TIMEOUT + SLACK for t in latencies), latencies
        fast = send(mesh_env.api, ns, mesh_env.client, FAST, count=5, request_timeout=10)
        assert [r.code for r in fast.responses] == ["200"] * 5, fast.responses
