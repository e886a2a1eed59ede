"""The overhead benchmark's statistics and parsers (pure; no cluster)."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from meshcert.errors import MeshError
from meshcert.mesh.overhead import (
    CLIENT_CONCURRENCY,
    ContainerStat,
    RunSample,
    bootstrap_interval,
    check_run,
    client_argv,
    container_use,
    paired_deltas,
    parse_crictl_stats,
    parse_run,
    t_cdf,
    t_interval,
    t_quantile,
)


@pytest.mark.parametrize(
    ("df", "want"),
    # Two-sided 95 % critical values from any t table.
    [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042), (1000, 1.962)],
)
def test_t_quantile_matches_tables(df: int, want: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(want, abs=1e-3)


def test_t_cdf_is_symmetric_and_inverts() -> None:
    assert t_cdf(0.0, 5) == pytest.approx(0.5)
    assert t_cdf(-1.3, 7) == pytest.approx(1 - t_cdf(1.3, 7))
    assert t_quantile(0.1, 3) == pytest.approx(-t_quantile(0.9, 3))
    assert t_cdf(t_quantile(0.9, 3), 3) == pytest.approx(0.9, abs=1e-9)


def test_t_interval_by_hand() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    ci = t_interval(values)
    half = 2.7764 * statistics.stdev(values) / math.sqrt(5)
    assert ci.mean == 3.0
    assert (ci.lower, ci.upper) == pytest.approx((3 - half, 3 + half), abs=1e-3)
    assert ci.n == 5 and ci.method == "t"


def test_t_interval_needs_two_values() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        t_interval([1.0])


def test_bootstrap_is_reproducible_and_inside_the_data_range() -> None:
    values = [4.0, 6.0, 5.0, 7.0, 3.0]
    a, b = bootstrap_interval(values), bootstrap_interval(values)
    assert a == b
    assert 3.0 <= a.lower <= a.mean <= a.upper <= 7.0
    # With 5 values the percentile bootstrap is narrower than the t-interval (why t is quoted).
    t = t_interval(values)
    assert a.upper - a.lower < t.upper - t.lower


def test_constant_deltas_give_a_zero_width_interval() -> None:
    ci = t_interval(paired_deltas([3.0, 4.0, 5.0], [1.0, 2.0, 3.0]))
    assert (ci.mean, ci.lower, ci.upper) == (2.0, 2.0, 2.0)


def test_unpaired_repeats_are_refused() -> None:
    with pytest.raises(ValueError, match="unpaired"):
        paired_deltas([1.0], [1.0, 2.0])


def _answer(i: int, code: str, latency: str, active: int) -> str:
    lines = ["Url=http://server/", f"Latency={latency}", f"ActiveRequests={active}", f"StatusCode={code}"]
    return "".join(f"[{i}] {line}\n" for line in lines)


def test_parse_run_times_only_200s_and_flags_client_limit() -> None:
    text = _answer(0, "200", "2.5ms", 1) + _answer(1, "503", "1ms", 3) + _answer(2, "200", "1.5s", 25)
    run = parse_run(text, requested=3, wall_seconds=4.0)
    assert run.latencies == [0.0025, 1.5]
    assert run.codes == {"200": 2, "503": 1}
    assert run.max_active == 25 and run.saturated
    assert run.limited_share == pytest.approx(1 / 3)
    assert run.quantiles() == {"p50": 0.0025, "p90": 1.5, "p99": 1.5}


def test_exactly_the_client_limit_is_not_saturation() -> None:
    run = parse_run(_answer(0, "200", "1ms", CLIENT_CONCURRENCY), requested=1, wall_seconds=1.0)
    assert not run.saturated


def _stat(ns: str, pod: str, container: str, cpu: int, mem: int) -> dict[str, object]:
    return {
        "attributes": {"labels": {"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.name": pod,
                                  "io.kubernetes.container.name": container}},
        "cpu": {"usageCoreNanoSeconds": {"value": str(cpu)}},
        "memory": {"workingSetBytes": {"value": str(mem)}},
    }  # fmt: skip


def test_crictl_stats_and_container_use() -> None:
    before = parse_crictl_stats(json.dumps({"stats": [_stat("b", "client-1", "istio-proxy", 10**9, 1)]}))
    after = parse_crictl_stats(json.dumps({"stats": [
        _stat("b", "client-1", "istio-proxy", 3 * 10**9, 40 * 2**20),
        _stat("b", "server-1", "istio-proxy", 5, 5),
    ]}))  # fmt: skip
    assert before == [ContainerStat("b", "client-1", "istio-proxy", 10**9, 1)]
    use = container_use(before, after, namespace="b", container="istio-proxy", pod_prefix="client-")
    assert use.cpu_seconds == 2.0 and use.working_set_mib == 40.0
    assert use.per_1k_requests_ms(4000) == 500.0  # 2 s of CPU over 4 thousand requests


def test_container_use_wants_exactly_one_match() -> None:
    stats = [ContainerStat("b", "server-1", "istio-proxy", 1, 1)]
    with pytest.raises(MeshError, match="want one istio-proxy"):
        container_use(stats, stats, namespace="b", container="istio-proxy", pod_prefix="client-")


def test_crictl_garbage_is_a_mesh_error() -> None:
    with pytest.raises(MeshError, match="not JSON"):
        parse_crictl_stats("FATA[0000] connect: no such file")


def test_client_argv_paces_and_bounds_the_run() -> None:
    argv = client_argv("http://server/", qps=500, seconds=10, headers={"X-Payload": "xx"})
    assert argv[:2] == ["/usr/local/bin/client", "http://server/"]
    assert "--count=5000" in argv and "--qps=500" in argv
    assert "--timeout=60s" in argv  # 3 x 10 s + 30 s: a busy host may stretch the run
    assert argv[-1] == "--header=X-Payload:xx"


def test_check_run_accepts_99_percent_and_refuses_less() -> None:
    ok = "".join(_answer(i, "200", "1ms", 1) for i in range(99)) + _answer(99, "503", "1ms", 1)
    assert check_run(parse_run(ok, requested=100, wall_seconds=1), what="x").codes == {"200": 99, "503": 1}
    with pytest.raises(MeshError, match="98/100 answered 200"):
        check_run(RunSample(100, [0.1] * 98, {"200": 98}, 1, 1.0), what="x")
