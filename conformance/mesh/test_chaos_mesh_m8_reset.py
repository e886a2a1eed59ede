"""M8 with the chaos machinery: connection resets injected by a real Toxiproxy on the mesh path
are masked by the mesh's retries; attempts are counted at the backend.

Where Toxiproxy sits. The path is: echo client → client sidecar (applies the VirtualService's
retry policy) → Toxiproxy pod → ``server`` Service → server sidecar → echo server. Toxiproxy runs
in its own *uninjected* namespace (the test's throwaway namespace), fronted by a Service
``chaos`` whose one port declares ``appProtocol: http``, so the client's sidecar treats
``chaos.<ns>`` as an HTTP service and applies retries to it; with no sidecar on the Toxiproxy pod,
auto-mTLS sends it plaintext, and Toxiproxy forwards the bytes to ``server.<mesh-ns>:80``, whose
sidecars accept plaintext under the default PERMISSIVE mode. Had Toxiproxy carried a sidecar, the
reset would hit the hop between Toxiproxy and its own proxy, not the hop the retry policy covers.

The fault. ``reset_peer`` (timeout 0) on the downstream stream with toxicity p: Toxiproxy decides
per connection with probability p; a toxic connection forwards the request, then answers the
first response bytes with a TCP RST. So every attempt reaches the backend (and is counted there
by X-Request-Id) and a toxic attempt ends in a reset the client's proxy sees before any response
header — the case ``retryOn: reset`` covers. A DestinationRule sets
``maxRequestsPerConnection: 1`` so every attempt opens its own connection: otherwise surviving
(non-toxic) pooled connections would carry most requests and p would not be a per-attempt rate.

Oracles: without retries, failures are a real fraction near p (the fault bites); with N retries,
success ≥ 1 - p^(N+1) (the Wilson upper bound of the observed rate, at the suite's 99.9 %
CONFIDENCE, reaches it), no request reaches
the backends more than 1+N times, every request reaches them at least once, and every failed
request used all 1+N attempts.
"""

from __future__ import annotations

import uuid

import pytest

from meshcert.conformance_support import attach_json
from meshcert.faults.incluster import in_cluster_toxiproxy
from meshcert.faults.toxics import toxic
from meshcert.faults.toxiproxy import ResetPeer, Stream, Toxic
from meshcert.invariants.stats import wilson_interval
from meshcert.kube.apply import apply_manifests
from meshcert.mesh.checks import CONFIDENCE
from meshcert.mesh.echo import SERVICE_HTTP_PORT, EchoBatch, send
from meshcert.mesh.resilience import (
    backend_attempt_log,
    connection_pool_rule,
    http_front_service,
    resilient_route,
    wait_for_retries_active,
)
from meshcert.mesh.routing import fqdn
from meshcert.mesh.suite import CONVERGENCE_TIMEOUT, MeshEnv, converge_batches, routing

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.mesh,
    pytest.mark.dataplane,
    pytest.mark.conformance,
    pytest.mark.chaos,
]

#: Per-attempt reset probability. 0.5 makes the unmasked failure rate large and every attempt
#: count from 1 to 1+N common enough to be seen in one run.
P = 0.5
#: 3 retries, not Istio's default of 2 (retriable 503 included): the convergence probe can then
#: tell our policy from the mesh default. Bound: 1 - 0.5^4 = 0.9375.
ATTEMPTS = 3
RETRY_ON = "reset,connect-failure,refused-stream,5xx"
#: 400 requests: a mesh that does not retry sits near 0.5, ~18 Wilson half-widths below the
#: bound; a correct one fails the one-sided check with probability well under 5 %.
REQUESTS = 400
#: Baseline without retries: 200 requests estimate the unmasked failure rate to ±7 points.
BASELINE = 200
#: Requests per second from the client: ~10 s per run, far below what the path can carry.
QPS = 40
#: The proxy in_cluster_toxiproxy creates for its upstream.
PROXY = "upstream"


def _send(env: MeshEnv, url: str, count: int) -> EchoBatch:
    # The echo client's --timeout bounds the whole paced batch; 30 s covers a slow start.
    return send(env.api, env.namespace, env.client, url, count=count, qps=QPS, deadline=count / QPS + 30)


def test_m8_reset_peer_masked_by_retries(mesh_env: MeshEnv, namespace: str) -> None:
    env, api = mesh_env, mesh_env.api
    upstream = f"{fqdn('server', env.namespace)}:{SERVICE_HTTP_PORT}"
    with in_cluster_toxiproxy(api, namespace, upstream=upstream, run_id=env.run_id) as (tp, proxy):
        front = http_front_service("chaos", selector={"app": proxy.name}, port=80, target_port=proxy.port)
        apply_manifests(api, [front], namespace=namespace, run_id=env.run_id)
        host = fqdn("chaos", namespace)
        url = f"http://{host}/"
        pool = connection_pool_rule(host, name="chaos", max_requests_per_connection=1)
        fault = Toxic(ResetPeer(timeout=0), stream=Stream.DOWNSTREAM, toxicity=P)

        # Baseline: the path through Toxiproxy works, then with no retries the fault bites.
        with routing(env, [pool, resilient_route(host, name="chaos", attempts=0, retry_on="")]):
            conv = converge_batches(
                env, url, lambda b: "" if set(b.codes) == {"200"} else f"codes {dict(b.codes)} {b.failure}",
                what="client → toxiproxy → server answers 200",
            )  # fmt: skip
            wait_for_retries_active(api, env.namespace, env.client, f"{url}?codes=503:1",
                                    backend_selector="app=server", attempts=0,
                                    timeout=CONVERGENCE_TIMEOUT)  # fmt: skip
            with toxic(tp, PROXY, fault):
                base = _send(env, url, BASELINE)
        assert not base.failure, base.failure
        failed = len(base.responses) - base.codes["200"]
        unmasked = wilson_interval(failed, len(base.responses), confidence=CONFIDENCE)
        attach_json("M8_chaos_unmasked_failure_rate", str(unmasked))
        print(f"M8 chaos baseline (no retries): failures {unmasked}")
        # The fault is real: without retries a large share fails (p/2 is far below p = 0.5).
        assert unmasked.lower >= P / 2, f"reset_peer barely bites without retries: {unmasked}"

        with routing(env, [pool, resilient_route(host, name="chaos", attempts=ATTEMPTS, retry_on=RETRY_ON)]):
            active = wait_for_retries_active(api, env.namespace, env.client, f"{url}?codes=503:1",
                                             backend_selector="app=server", attempts=ATTEMPTS,
                                             timeout=CONVERGENCE_TIMEOUT)  # fmt: skip
            attach_json("M6_convergence_seconds", round(active.time_to_converge + conv.time_to_converge, 2))
            env.mesh.assert_config_accepted(env.namespace)
            marker = uuid.uuid4().hex
            with toxic(tp, PROXY, fault):
                batch = _send(env, f"{url}?m={marker}", REQUESTS)
            per_request = backend_attempt_log(api, env.namespace, "app=server", marker)

    assert not batch.failure, batch.failure
    n = len(batch.responses)
    assert n == REQUESTS, f"{n}/{REQUESTS} answers"
    ok = batch.codes["200"]
    success = wilson_interval(ok, n, confidence=CONFIDENCE)
    bound = 1 - P ** (ATTEMPTS + 1)
    counts = sorted(len(v) for v in per_request.values())
    histogram = {k: counts.count(k) for k in sorted(set(counts))}
    total_attempts = sum(counts)
    reset_rate = (
        wilson_interval(total_attempts - ok, total_attempts, confidence=CONFIDENCE)
        if total_attempts
        else None
    )
    attach_json(
        "M8_chaos",
        {"success": str(success), "bound": bound, "attempts_histogram": histogram,
         "codes": dict(batch.codes), "observed_reset_rate": str(reset_rate)},
    )  # fmt: skip
    print(f"M8 chaos: success {success}; bound {bound:.4f}; attempts {histogram}; resets {reset_rate}")
    assert success.upper >= bound, f"success {success} below 1-p^(N+1) = {bound:.4f}"
    assert len(per_request) == REQUESTS, f"{len(per_request)} request ids at the backends, sent {REQUESTS}"
    assert max(counts) <= 1 + ATTEMPTS, f"more than 1+N attempts: {histogram}"
    assert n - ok <= histogram.get(1 + ATTEMPTS, 0), (
        f"{n - ok} failures but only {histogram.get(1 + ATTEMPTS, 0)} requests used all attempts"
    )
