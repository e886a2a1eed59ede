"""M10: outlier detection ejects an always-failing endpoint after K consecutive 5xx answers (never
more than maxEjectionPercent of the hosts), and a bounded connection pool turns excess requests
away at once with 503 (Envoy's upstream overflow, flag UO) instead of queuing them.

Oracles: the order of answers at the client (K failures, then only healthy hosts), the requests
that reached the failing pod counted by its own sidecar, and the client proxy's own view (hosts
flagged failed_outlier_check, outlier_detection.* and overflow counters). Retries are off
(attempts 0) so every failure reaches the client and none is hidden by a retry elsewhere.
"""

from __future__ import annotations

import pytest

from meshcert.conformance_support import attach_json
from meshcert.invariants.violations import ObjectRef, assert_no_violations
from meshcert.mesh.echo import send
from meshcert.mesh.outlier import (
    EjectionRun,
    OverflowRun,
    check_ejection,
    check_ejection_cap,
    check_overflow,
    outlier_rule,
    pool_rule,
)
from meshcert.mesh.outlier_probe import (
    client_counters,
    client_ejected_hosts,
    failing_pods,
    healthy_hosts,
    requests_reached,
    wait_for_client_cluster,
    with_stats_client,
)
from meshcert.mesh.routing import timeout_route
from meshcert.mesh.suite import MeshEnv, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

URL = "http://server/"
K = 3
#: Ten requests a second one after another: each is answered in milliseconds, so at most one is
#: in flight when the K-th failure ejects the host, and the order of answers is the order sent.
QPS = 10
#: 50 sequential requests over 3 hosts reach the failing one K=3 times within ~9 requests on
#: average; P(fewer than 3 visits in 20 requests) < 2 %, which leaves >= 30 clean answers after.
RUN = 50
MIN_CLEAN = 30
#: Longer than the whole test: the ejected host must stay out while we look (Envoy doubles it
#: per repeated ejection; once is enough here).
BASE_EJECTION_S = 120
#: The backend sleeps 2 s; a request queued behind it would take >= 2 s, an overflow is local.
SLOW_URL = "http://server/?delay=2s"
FAST_S = 0.5
CONCURRENT = 10


@pytest.fixture(scope="module")
def env(mesh_env: MeshEnv) -> MeshEnv:
    """``mesh_env`` with a client whose sidecar keeps the Envoy stats M10 reads."""
    return with_stats_client(mesh_env)


def test_m10_ejects_failing_endpoint_after_k_errors(env: MeshEnv) -> None:
    ns, ref = env.namespace, ObjectRef("Service", "server", env.namespace)
    no_retries = timeout_route("server", ns, timeout_s=10)
    with routing(env, [no_retries]), failing_pods(env, 1) as bad:
        [(bad_pod, bad_ip)] = bad.items()
        # Verified baseline: without outlier detection the failing pod keeps failing.
        base = send(env.api, ns, env.client, URL, count=30, deadline=20)
        failed = sum(n for code, n in base.codes.items() if code.startswith("5"))
        assert failed >= K and base.codes["200"], f"baseline {dict(base.codes)} {base.failure}"
        rule = outlier_rule(
            "server",
            ns,
            consecutive_5xx=K,
            interval_s=1,
            base_ejection_s=BASE_EJECTION_S,
            max_ejection_percent=50,
        )
        with routing(env, [rule]):
            conv = wait_for_client_cluster(
                env,
                f"outlier_detection.consecutive_5xx={K}",
                lambda c: (c.get("outlier_detection") or {}).get("consecutive_5xx") == K,
            )
            attach_json("M6_convergence_seconds", round(conv.time_to_converge, 2))
            before = client_counters(env)
            run_batch = send(env.api, ns, env.client, URL, count=RUN, qps=QPS, deadline=30)
            assert not run_batch.failure, run_batch.failure
            run = EjectionRun.of(run_batch.responses)
            after = client_counters(env)
            ejected = client_ejected_hosts(env)
            reached = requests_reached(env, bad_pod)
            clean = send(env.api, ns, env.client, URL, count=100, deadline=20)
            reached_after = requests_reached(env, bad_pod)
            attach_json(
                "M10_ejection",
                {
                    "errors_before_ejection": run.errors,
                    "requests_until_ejection": run.last_error_index + 1,
                    "approx_seconds_until_ejection": round(run.last_error_index / QPS, 2),
                    "ejected_hosts": sorted(ejected),
                    "failing_pod": f"{bad_pod} {bad_ip}",
                    "counters_before": before.__dict__,
                    "counters_after": after.__dict__,
                    "clean_batch": dict(clean.codes),
                    "failing_pod_requests_during_clean_batch": reached_after - reached,
                },
            )
            found = check_ejection(
                run, consecutive_5xx=K, min_clean=MIN_CLEAN, healthy_hosts=healthy_hosts(env), ref=ref
            )
            found += check_ejection_cap(len(ejected), hosts=3, max_ejection_percent=50, expected=1, ref=ref)
            assert_no_violations(found, context="outlier detection, 1 failing of 3")
            assert ejected == {f"{bad_ip}:8080"}, ejected
            assert after.ejections_active == 1, after
            assert not clean.failure and set(clean.codes) == {"200"}, dict(clean.codes)
            assert reached >= K, f"the failing pod's sidecar counted only {reached} requests"
            assert reached_after == reached, f"failing pod still received {reached_after - reached} requests"


def test_m10_ejections_capped_by_max_ejection_percent(env: MeshEnv) -> None:
    ns, ref = env.namespace, ObjectRef("Service", "server", env.namespace)
    max_percent = 25  # 4 hosts: one may be ejected (25 %), a second would make 50 %
    with routing(env, [timeout_route("server", ns, timeout_s=10)]), failing_pods(env, 2):
        rule = outlier_rule(
            "server",
            ns,
            consecutive_5xx=K,
            interval_s=1,
            base_ejection_s=BASE_EJECTION_S,
            max_ejection_percent=max_percent,
        )
        with routing(env, [rule]):
            wait_for_client_cluster(
                env,
                f"outlier_detection.max_ejection_percent={max_percent}",
                lambda c: (c.get("outlier_detection") or {}).get("max_ejection_percent") == max_percent,
            )
            batch = send(env.api, ns, env.client, URL, count=80, qps=20, deadline=30)
            assert not batch.failure, batch.failure
            counters = client_counters(env)
            ejected = client_ejected_hosts(env)
            attach_json(
                "M10_ejection_cap",
                {"codes": dict(batch.codes), "ejected": sorted(ejected), "counters": counters.__dict__},
            )
            found = check_ejection_cap(
                len(ejected), hosts=4, max_ejection_percent=max_percent, expected=1, ref=ref
            )
            assert_no_violations(found, context="2 failing of 4, maxEjectionPercent 25")
            assert counters.ejections_active == 1, counters
            # The second failing host stayed in: it kept failing and its ejections were refused.
            failed = sum(n for code, n in batch.codes.items() if code.startswith("5"))
            assert failed > K and counters.ejections_overflow >= 1, (dict(batch.codes), counters)


def test_m10_pool_overflow_fails_fast(env: MeshEnv) -> None:
    ns, ref = env.namespace, ObjectRef("Service", "server", env.namespace)
    slow = send(env.api, ns, env.client, SLOW_URL, count=CONCURRENT, deadline=30)
    assert set(slow.codes) == {"200"}, f"baseline without a pool limit: {dict(slow.codes)} {slow.failure}"
    pool = pool_rule("server", ns, max_connections=1, max_pending=1, max_requests_per_connection=1)
    with routing(env, [timeout_route("server", ns, timeout_s=10), pool]):
        conv = wait_for_client_cluster(
            env,
            "circuit breaker max_pending_requests=1",
            lambda c: any(
                t.get("max_pending_requests") == 1
                for t in (c.get("circuit_breakers") or {}).get("thresholds") or []
            ),
        )
        attach_json("M6_convergence_seconds", round(conv.time_to_converge, 2))
        before = client_counters(env)
        batch = send(env.api, ns, env.client, SLOW_URL, count=CONCURRENT, deadline=30)
        after = client_counters(env)
        assert not batch.failure, batch.failure
        run = OverflowRun.of(batch.responses)
        attach_json(
            "M10_overflow",
            {
                "admitted": run.admitted,
                "rejected": run.rejected,
                "rejected_latencies_s": sorted(run.rejected_latencies),
                "admitted_latencies_s": sorted(r.latency for r in batch.responses if r.code == "200"),
                "pending_overflow_delta": after.pending_overflow - before.pending_overflow,
            },
        )
        found = check_overflow(
            run,
            fast_s=FAST_S,
            pool_capacity=2,
            overflow_counted=after.pending_overflow - before.pending_overflow,
            ref=ref,
        )
        assert_no_violations(
            found, context=f"{CONCURRENT} concurrent 2 s requests, pool 1 connection + 1 pending"
        )
