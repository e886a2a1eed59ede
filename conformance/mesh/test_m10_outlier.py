"""M10: outlier detection ejects an always-failing endpoint after K consecutive 5xx answers (never
more than maxEjectionPercent of the hosts), and a bounded connection pool turns excess requests
away at once with 503 (Envoy's upstream overflow, flag UO) instead of queuing them.

Oracles: the order of answers at the client (K failures, then only healthy hosts), the requests
that reached the failing pod counted by its own sidecar, and the client proxy's own view (hosts
flagged failed_outlier_check, outlier_detection.* and overflow counters). Retries are off
(attempts 0) so every failure reaches the client and none is hidden by a retry elsewhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes.client import AppsV1Api

from meshcert.conformance_support import attach_json
from meshcert.faults.scale import wait_for_no_pods
from meshcert.invariants.convergence import Converged, Observation, converge
from meshcert.invariants.violations import ObjectRef, assert_no_violations
from meshcert.kube.apply import apply_manifests
from meshcert.kube.client import call
from meshcert.kube.waits import wait_for_pods_ready
from meshcert.mesh.echo import pod_names, send
from meshcert.mesh.envoy_stats import parse_stats
from meshcert.mesh.outlier import (
    EjectionRun,
    OutlierCounters,
    OverflowRun,
    check_ejection,
    check_ejection_cap,
    check_overflow,
    cluster_config,
    ejected_hosts,
    failing_backend_manifests,
    inbound_requests,
    outbound_cluster,
    outlier_counters,
    outlier_rule,
    pool_rule,
    stats_client_manifests,
)
from meshcert.mesh.routing import fqdn, timeout_route
from meshcert.mesh.suite import CONVERGENCE_TIMEOUT, WORKLOAD_READY_TIMEOUT, MeshEnv, routing

pytestmark = [pytest.mark.e2e, pytest.mark.mesh, pytest.mark.dataplane, pytest.mark.conformance]

URL = "http://server/"
PORT = 80
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


def _stats(env: MeshEnv, pod: str, filter_: str) -> dict[str, int]:
    return parse_stats(env.mesh.proxy_request(env.namespace, pod, f"stats?filter={filter_}"))


def _counters(env: MeshEnv) -> OutlierCounters:
    cluster = outbound_cluster("server", env.namespace, PORT)
    return outlier_counters(_stats(env, env.client, "outlier_detection|overflow"), cluster)


def _client_cluster(env: MeshEnv) -> dict[str, Any]:
    cluster = outbound_cluster("server", env.namespace, PORT)
    dump = env.mesh.proxy_request(env.namespace, env.client, "config_dump?resource=dynamic_active_clusters")
    return cluster_config(dump, cluster) or {}


def _wait_cluster(env: MeshEnv, what: str, ok: Callable[[dict[str, Any]], bool]) -> Converged[dict[str, Any]]:
    """Convergence read from the client's Envoy config (not from traffic: every request to the
    failing host would spend one of the K errors being measured)."""

    def probe() -> Observation[dict[str, Any]]:
        c = _client_cluster(env)
        return Observation(ok(c), c, f"client cluster config lacks {what}")

    result = converge(probe, what=f"client proxy runs {what}", timeout=CONVERGENCE_TIMEOUT)
    env.mesh.assert_config_accepted(env.namespace)
    return result


def _wait_endpoints(env: MeshEnv, ips: set[str]) -> None:
    def probe() -> Observation[set[str]]:
        seen = env.mesh.endpoint_view(env.namespace, env.client, fqdn("server", env.namespace), PORT)
        healthy = {e.address for e in seen if e.healthy}
        return Observation(ips <= healthy, healthy, f"missing {sorted(ips - healthy)}")

    converge(probe, what="client proxy sees the failing pods", timeout=CONVERGENCE_TIMEOUT, consecutive=1)


@contextmanager
def failing_pods(env: MeshEnv, replicas: int) -> Iterator[dict[str, str]]:
    """``replicas`` always-failing pods behind Service server for the block: name → pod IP."""
    selector = "app=server,version=bad"
    apply_manifests(
        env.api,
        failing_backend_manifests("server", "bad", replicas=replicas),
        namespace=env.namespace,
        run_id=env.run_id,
    )
    try:
        pods = wait_for_pods_ready(
            env.api, env.namespace, label_selector=selector, count=replicas, timeout=WORKLOAD_READY_TIMEOUT
        )
        ips = {str(p.metadata.name): str(p.status.pod_ip) for p in pods if p.metadata and p.status}
        _wait_endpoints(env, set(ips.values()))
        yield ips
    finally:
        apps = AppsV1Api(env.api)
        call("delete server-bad", apps.delete_namespaced_deployment, "server-bad", env.namespace)
        wait_for_no_pods(env.api, env.namespace, selector, timeout=WORKLOAD_READY_TIMEOUT)


@pytest.fixture(scope="module")
def env(mesh_env: MeshEnv) -> MeshEnv:
    """``mesh_env`` whose client is an injected echo client keeping the Envoy stats M10 reads
    (the shared client's sidecar drops them, like every Istio sidecar by default)."""
    apply_manifests(
        mesh_env.api, stats_client_manifests("probe"), namespace=mesh_env.namespace, run_id=mesh_env.run_id
    )
    [pod] = wait_for_pods_ready(
        mesh_env.api, mesh_env.namespace, label_selector="app=probe", count=1, timeout=WORKLOAD_READY_TIMEOUT
    )
    assert pod.metadata is not None
    return dataclasses.replace(mesh_env, client=str(pod.metadata.name))


def _healthy_hosts(env: MeshEnv) -> set[str]:
    return set(pod_names(env.api, env.namespace, "app=server,version in (v1,v2)"))


def test_m10_ejects_failing_endpoint_after_k_errors(env: MeshEnv) -> None:
    ns, ref = env.namespace, ObjectRef("Service", "server", env.namespace)
    no_retries = timeout_route("server", ns, timeout_s=10)
    with routing(env, [no_retries]), failing_pods(env, 1) as bad:
        [(bad_pod, bad_ip)] = bad.items()
        # Verified baseline: without outlier detection the failing pod keeps failing.
        base = send(env.api, ns, env.client, URL, count=30, request_timeout=20)
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
            conv = _wait_cluster(
                env,
                f"outlier_detection.consecutive_5xx={K}",
                lambda c: (c.get("outlier_detection") or {}).get("consecutive_5xx") == K,
            )
            attach_json("M6_convergence_seconds", round(conv.time_to_converge, 2))
            before = _counters(env)
            run_batch = send(env.api, ns, env.client, URL, count=RUN, qps=QPS, request_timeout=30)
            assert not run_batch.failure, run_batch.failure
            run = EjectionRun.of(run_batch.responses)
            after = _counters(env)
            ejected = ejected_hosts(
                env.mesh.proxy_request(ns, env.client, "clusters?format=json"),
                outbound_cluster("server", ns, PORT),
            )
            reached = inbound_requests(_stats(env, bad_pod, "downstream_rq_total"))
            clean = send(env.api, ns, env.client, URL, count=100, request_timeout=20)
            reached_after = inbound_requests(_stats(env, bad_pod, "downstream_rq_total"))
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
                run, consecutive_5xx=K, min_clean=MIN_CLEAN, healthy_hosts=_healthy_hosts(env), ref=ref
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
            _wait_cluster(
                env,
                f"outlier_detection.max_ejection_percent={max_percent}",
                lambda c: (c.get("outlier_detection") or {}).get("max_ejection_percent") == max_percent,
            )
            batch = send(env.api, ns, env.client, URL, count=80, qps=20, request_timeout=30)
            assert not batch.failure, batch.failure
            counters = _counters(env)
            ejected = ejected_hosts(
                env.mesh.proxy_request(ns, env.client, "clusters?format=json"),
                outbound_cluster("server", ns, PORT),
            )
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
    slow = send(env.api, ns, env.client, SLOW_URL, count=CONCURRENT, request_timeout=30)
    assert set(slow.codes) == {"200"}, f"baseline without a pool limit: {dict(slow.codes)} {slow.failure}"
    pool = pool_rule("server", ns, max_connections=1, max_pending=1, max_requests_per_connection=1)
    with routing(env, [timeout_route("server", ns, timeout_s=10), pool]):
        conv = _wait_cluster(
            env,
            "circuit breaker max_pending_requests=1",
            lambda c: any(
                t.get("max_pending_requests") == 1
                for t in (c.get("circuit_breakers") or {}).get("thresholds") or []
            ),
        )
        attach_json("M6_convergence_seconds", round(conv.time_to_converge, 2))
        before = _counters(env)
        batch = send(env.api, ns, env.client, SLOW_URL, count=CONCURRENT, request_timeout=30)
        after = _counters(env)
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
