"""Resilience builders, backend attempt parsing and load summaries (pure; no cluster)."""

from __future__ import annotations

import pytest

from meshcert.errors import ConfigError
from meshcert.mesh.echo import EchoBatch, Exchange
from meshcert.mesh.resilience import (
    SteadyLoad,
    attempts_by_request,
    connection_pool_rule,
    http_front_service,
    parse_attempts,
    resilient_route,
    summarize,
)

HOST = "chaos.ns.svc.cluster.local"


def test_route_carries_retry_policy_and_timeouts() -> None:
    vs = resilient_route(
        HOST, name="chaos", attempts=3, retry_on="reset,5xx", per_try_timeout_s=0.5, timeout_s=10
    )
    http = vs["spec"]["http"][0]
    assert vs["spec"]["hosts"] == [HOST]
    assert http["retries"] == {"attempts": 3, "retryOn": "reset,5xx", "perTryTimeout": "0.5s"}
    assert http["timeout"] == "10s"
    assert http["route"] == [{"destination": {"host": HOST}}]


def test_zero_attempts_is_explicit_and_carries_no_retry_on() -> None:
    # attempts: 0 must be present: without it Istio applies its default retry policy.
    http = resilient_route(HOST, name="c", attempts=0, retry_on="")["spec"]["http"][0]
    assert http["retries"] == {"attempts": 0}
    assert "timeout" not in http


@pytest.mark.parametrize(("attempts", "per_try"), [(-1, None), (1, 0.0)])
def test_route_rejects_bad_values(attempts: int, per_try: float | None) -> None:
    with pytest.raises(ConfigError):
        resilient_route(HOST, name="c", attempts=attempts, retry_on="5xx", per_try_timeout_s=per_try)


def test_connection_pool_rule() -> None:
    dr = connection_pool_rule(HOST, name="chaos", max_requests_per_connection=1, connect_timeout_s=0.5)
    assert dr["spec"]["host"] == HOST
    assert dr["spec"]["trafficPolicy"]["connectionPool"] == {
        "http": {"maxRequestsPerConnection": 1},
        "tcp": {"connectTimeout": "0.5s"},
    }


def test_front_service_declares_http() -> None:
    svc = http_front_service("chaos", selector={"app": "toxiproxy"}, port=80, target_port=18080)
    assert svc["spec"]["selector"] == {"app": "toxiproxy"}
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 18080, "appProtocol": "http"}]


def _line(ts: str, marker: str, rid: str, attempt: int) -> str:
    return (
        f"{ts}\tinfo\tendpoint\tHTTP/1.1 Request\tremoteAddr=127.0.0.6 method=GET url=/?m={marker} "
        f"host=server headers=map[X-Envoy-Attempt-Count:[{attempt}] X-Request-Id:[{rid}]] id=x"
    )


LOG = "\n".join([
    "2026-11-25T02:13:57.000000Z\tinfo\tEcho server is now ready",
    _line("2026-11-25T02:13:58.500000Z", "abc", "r1", 2),
    _line("2026-11-25T02:13:58.000000Z", "abc", "r1", 1),
    _line("2026-11-25T02:13:58.100000Z", "abc", "r2", 1),
    _line("2026-11-25T02:13:58.200000Z", "other", "r3", 1),
    "2026-11-25T02:13:58.300000Z\tinfo\tendpoint\tHTTP/1.1 Response\tcode=200 headers=map[] id=x",
])  # fmt: skip


def test_parse_attempts_keeps_marked_requests_only() -> None:
    got = parse_attempts(LOG, "abc", pod="server-1")
    assert [(a.request_id, a.number, a.pod) for a in got] == [("r1", 2, "server-1"), ("r1", 1, "server-1"),
                                                              ("r2", 1, "server-1")]  # fmt: skip


def test_attempts_grouped_in_arrival_order() -> None:
    groups = attempts_by_request(parse_attempts(LOG, "abc"))
    assert {k: [a.number for a in v] for k, v in groups.items()} == {"r1": [1, 2], "r2": [1]}
    r1 = groups["r1"]
    assert r1[1].at - r1[0].at == pytest.approx(0.5)


def test_summarize_counts_missing_answers_as_failures() -> None:
    responses = [Exchange(i, code="200", latency=0.01 * (i + 1)) for i in range(8)]
    responses.append(Exchange(8, code="503", latency=1.0))
    batch = EchoBatch(responses)
    out = summarize(batch, requested=10)
    assert out.codes == {"200": 8, "503": 1}
    assert out.success is not None and (out.success.k, out.success.n) == (8, 10)
    assert out.p99 is not None and out.p99.estimate == 1.0
    assert out.as_dict()["answered"] == 9


def test_steady_load_refuses_nonsense() -> None:
    with pytest.raises(ConfigError):
        SteadyLoad(None, "ns", "pod", "http://x/", qps=0, seconds=10)  # type: ignore[arg-type]


def test_summarize_uses_the_requested_confidence() -> None:
    responses = [Exchange(i, code="200", latency=0.001 * i) for i in range(1000)]
    out = summarize(EchoBatch(responses), requested=1000, confidence=0.999)
    assert out.success is not None and out.success.confidence == 0.999
    assert out.p99 is not None and out.p99.confidence == 0.999 and out.p99.upper is not None
