"""M8: retries, counted at the backend. With ``attempts: N`` on 5xx, an always-failing request
reaches the backends exactly 1+N times; with failure rate p, success is at least 1-p^(N+1)."""

from __future__ import annotations

import uuid

import pytest

from meshcert.conformance_support import attach_json
from meshcert.invariants.stats import wilson_interval
from meshcert.mesh.echo import backend_attempts, send
from meshcert.mesh.routing import retry_route, timeout_route
from meshcert.mesh.suite import MeshEnv, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

ATTEMPTS = 2
#: 200 requests at p = 0.5: expected success 1 - 0.5^3 = 0.875; the Wilson upper bound of the
#: observed rate must reach it (a mesh that does not retry sits near 0.5, far below).
REQUESTS = 200


def _url(marker: str, codes: str) -> str:
    return f"http://server/?codes={codes}&m={marker}"


def test_m8_attempts_counted_at_backend(mesh_env: MeshEnv) -> None:
    ns = mesh_env.namespace
    # Baseline without retries (attempts 0 is explicit: Istio's default policy retries some errors).
    base = uuid.uuid4().hex
    with routing(mesh_env, [timeout_route("server", ns, timeout_s=10)]):
        b = send(mesh_env.api, ns, mesh_env.client, _url(base, "503:1"), count=5)
    assert set(b.codes) == {"503"}, b.codes
    with routing(mesh_env, [retry_route("server", ns, attempts=ATTEMPTS)]):
        marker = ""
        for _ in range(30):  # converge: until one failing request is retried (1 s apart)
            marker = uuid.uuid4().hex
            send(mesh_env.api, ns, mesh_env.client, _url(marker, "503:1"), count=1)
            if max(backend_attempts(mesh_env.api, ns, "app=server", marker).values(), default=0) > 1:
                break
        else:
            pytest.fail("retry policy never took effect within 30 probes")
        mesh_env.mesh.assert_config_accepted(ns)
        marker = uuid.uuid4().hex
        batch = send(mesh_env.api, ns, mesh_env.client, _url(marker, "503:1"), count=10)
        assert set(batch.codes) == {"503"}, batch.codes
        per_request = backend_attempts(mesh_env.api, ns, "app=server", marker)
        attach_json("M8_attempts_per_request", sorted(per_request.values()))
        assert len(per_request) == 10, per_request
        assert set(per_request.values()) == {1 + ATTEMPTS}, per_request

        marker = uuid.uuid4().hex
        flaky = send(mesh_env.api, ns, mesh_env.client, _url(marker, "503:1,200:1"), count=REQUESTS)
        ok = flaky.codes["200"]
        ci = wilson_interval(ok, len(flaky.responses))
        attach_json("M8_success", str(ci))
        assert ci.upper >= 1 - 0.5 ** (ATTEMPTS + 1), f"success {ok}/{len(flaky.responses)}: {ci}"
        assert max(backend_attempts(mesh_env.api, ns, "app=server", marker).values()) <= 1 + ATTEMPTS
