"""M10 builders, Envoy readers and checkers: good states pass, bad states give a readable diff."""

from __future__ import annotations

import json

import pytest

from meshcert.errors import ConfigError, InvariantViolation, MeshError
from meshcert.invariants.violations import ObjectRef, assert_no_violations
from meshcert.mesh.echo import Exchange
from meshcert.mesh.envoy_stats import cluster_config, parse_stats
from meshcert.mesh.outlier import (
    STATS_ANNOTATION,
    STATS_REGEXPS,
    EjectionRun,
    OverflowRun,
    check_ejection,
    check_ejection_cap,
    check_overflow,
    ejected_hosts,
    failing_backend_manifests,
    inbound_requests,
    max_ejected,
    outbound_cluster,
    outlier_counters,
    outlier_rule,
    pool_rule,
    stats_client_manifests,
)

REF = ObjectRef("Service", "server", "ns")
CLUSTER = outbound_cluster("server", "ns", 80)


def ok(i: int, host: str) -> Exchange:
    return Exchange(i, code="200", hostname=host, version="v1")


def bad(i: int) -> Exchange:
    return Exchange(i, code="503")


def test_failing_backend_serves_grpc_on_the_http_port() -> None:
    [dep] = failing_backend_manifests("server", "bad", replicas=2)
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--grpc=8080" in args and "--port=8081" in args and "--port=8080" not in args
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["metadata"]["labels"] == {"app": "server", "version": "bad"}
    assert "downstream_rq_total" in dep["spec"]["template"]["metadata"]["annotations"][STATS_ANNOTATION]
    [client] = stats_client_manifests("probe")
    regexps = client["spec"]["template"]["metadata"]["annotations"][STATS_ANNOTATION].split(",")
    assert regexps == list(STATS_REGEXPS) and all("," not in r for r in STATS_REGEXPS)
    assert client["spec"]["template"]["metadata"]["labels"]["app"] == "probe"
    with pytest.raises(ConfigError, match="replicas"):
        failing_backend_manifests("server", "bad", replicas=0)


def test_outlier_and_pool_rules() -> None:
    od = outlier_rule(
        "server", "ns", consecutive_5xx=3, interval_s=1, base_ejection_s=60, max_ejection_percent=50
    )
    assert od["spec"]["host"] == "server.ns.svc.cluster.local"
    assert od["spec"]["trafficPolicy"]["outlierDetection"] == {
        "consecutive5xxErrors": 3,
        "interval": "1s",
        "baseEjectionTime": "60s",
        "maxEjectionPercent": 50,
    }
    with pytest.raises(ConfigError, match="max_ejection_percent"):
        outlier_rule(
            "server", "ns", consecutive_5xx=3, interval_s=1, base_ejection_s=1, max_ejection_percent=0
        )
    pool = pool_rule("server", "ns", max_connections=1, max_pending=1, max_requests_per_connection=1)
    assert pool["spec"]["trafficPolicy"]["connectionPool"] == {
        "tcp": {"maxConnections": 1},
        "http": {"http1MaxPendingRequests": 1, "maxRequestsPerConnection": 1},
    }


def test_cluster_config_found_in_either_dump_shape() -> None:
    cluster = {"name": CLUSTER, "outlier_detection": {"consecutive_5xx": 3}}
    full = {"configs": [{"dynamic_active_clusters": [{"version_info": "1", "cluster": cluster}]}]}
    filtered = {"configs": [{"version_info": "1", "cluster": cluster}]}
    for doc in (full, filtered):
        found = cluster_config(json.dumps(doc), CLUSTER)
        assert found is not None and found["outlier_detection"]["consecutive_5xx"] == 3
    assert cluster_config(json.dumps(full), "outbound|80||other") is None
    with pytest.raises(MeshError, match="not JSON"):
        cluster_config("<html>", CLUSTER)


def test_counters_and_ejected_hosts() -> None:
    stats = parse_stats(
        f"cluster.{CLUSTER};.outlier_detection.ejections_active: 1\n"
        f"cluster.{CLUSTER}.outlier_detection.ejections_overflow: 4\n"
        f"cluster.{CLUSTER}.upstream_rq_pending_overflow: 8\n"
        "cluster.other.outlier_detection.ejections_active: 9\n"
    )
    c = outlier_counters(stats, CLUSTER)
    assert (c.ejections_active, c.ejections_overflow, c.pending_overflow, c.cx_overflow) == (1, 4, 8, 0)
    doc = {
        "cluster_statuses": [
            {
                "name": CLUSTER,
                "host_statuses": [
                    {
                        "address": {"socket_address": {"address": "10.0.0.1", "port_value": 8080}},
                        "health_status": {"failed_outlier_check": True, "eds_health_status": "HEALTHY"},
                    },
                    {
                        "address": {"socket_address": {"address": "10.0.0.2", "port_value": 8080}},
                        "health_status": {"eds_health_status": "HEALTHY"},
                    },
                ],
            }
        ]
    }
    assert ejected_hosts(json.dumps(doc), CLUSTER) == {"10.0.0.1:8080"}


def test_ejection_after_exactly_k_errors_passes() -> None:
    responses = [ok(0, "a"), bad(1), ok(2, "b"), bad(3), bad(4)] + [ok(i, "ab"[i % 2]) for i in range(5, 35)]
    run = EjectionRun.of(responses)
    assert (run.errors, run.last_error_index, run.clean_after) == (3, 4, 30)
    assert check_ejection(run, consecutive_5xx=3, min_clean=30, healthy_hosts={"a", "b"}, ref=REF) == []


def test_never_ejected_reports_counts_and_extra_host() -> None:
    responses = [bad(0), ok(1, "a"), bad(2), bad(3), bad(4), ok(5, "c"), bad(6), ok(7, "b")]
    found = check_ejection(
        EjectionRun.of(responses), consecutive_5xx=3, min_clean=30, healthy_hosts={"a", "b"}, ref=REF
    )
    with pytest.raises(InvariantViolation) as e:
        assert_no_violations(found)
    text = str(e.value)
    assert "5 failed answer(s) before ejection, expected consecutive5xxErrors=3 (never ejected)" in text
    assert "failing endpoint still answered at request 6 of 8: only 1 clean answers after it" in text
    assert "missing: {a}, extra: {}" in text


def test_ejection_cap() -> None:
    assert max_ejected(4, 25) == 1 and max_ejected(3, 10) == 1 and max_ejected(4, 50) == 2
    assert check_ejection_cap(1, hosts=4, max_ejection_percent=25, expected=1, ref=REF) == []
    [over] = check_ejection_cap(2, hosts=4, max_ejection_percent=25, expected=1, ref=REF)
    assert "2 of 4 hosts ejected, above maxEjectionPercent=25 (at most 1)" in str(over)
    [none] = check_ejection_cap(0, hosts=3, max_ejection_percent=50, expected=1, ref=REF)
    assert "0 of 3 hosts ejected, expected 1" in str(none)


def _concurrent(admitted: int, rejected: int, rejected_latency: float) -> list[Exchange]:
    return [Exchange(i, code="200", latency=2.0) for i in range(admitted)] + [
        Exchange(admitted + i, code="503", latency=rejected_latency) for i in range(rejected)
    ]


def test_fast_overflow_passes() -> None:
    run = OverflowRun.of(_concurrent(2, 8, 0.01))
    assert check_overflow(run, fast_s=0.5, pool_capacity=2, overflow_counted=8, ref=REF) == []


def test_queued_overflow_is_reported() -> None:
    run = OverflowRun.of(_concurrent(2, 3, 1.9) + _concurrent(0, 1, 0.01))
    found = check_overflow(run, fast_s=0.5, pool_capacity=2, overflow_counted=2, ref=REF)
    text = "\n".join(map(str, found))
    assert "3 rejection(s) slower than 0.5s (queued, then failed): [1.9, 1.9, 1.9]" in text
    assert "4 503s but upstream_rq_pending_overflow rose by 2" in text


def test_unbounded_pool_is_reported() -> None:
    run = OverflowRun.of(_concurrent(10, 0, 0.0))
    text = "\n".join(map(str, check_overflow(run, fast_s=0.5, pool_capacity=2, overflow_counted=0, ref=REF)))
    assert "no request was turned away: 10 admitted past a pool of 2" in text
    assert "no request was admitted" not in text
    nobody = check_overflow(
        OverflowRun.of(_concurrent(0, 3, 0.01)), fast_s=0.5, pool_capacity=2, overflow_counted=3, ref=REF
    )
    assert [v.message for v in nobody] == ["no request was admitted at all"]


def test_inbound_requests_counts_only_inbound_listeners() -> None:
    stats = parse_stats(
        "http.inbound_0.0.0.0_8080;.downstream_rq_total: 7\n"
        "http.outbound_0.0.0.0_80.downstream_rq_total: 100\n"
        "http.admin.downstream_rq_total: 50\n"
    )
    assert inbound_requests(stats) == 7
