"""SLO verdicts: measured value, sample size and interval on every item; Wilson interval values."""

from __future__ import annotations

import pytest

from meshcert.errors import LoadError
from meshcert.invariants.stats import wilson_interval
from meshcert.load.histogram import LogHistogram
from meshcert.load.slo import SloSpec, evaluate


def test_wilson_matches_published_values() -> None:
    # Textbook values of the 95 % Wilson score interval (z = 1.959964), computed independently.
    ci = wilson_interval(0, 10)
    assert ci.lower == pytest.approx(0.0, abs=1e-12) and ci.upper == pytest.approx(0.2775, abs=1e-4)
    ci = wilson_interval(5, 10)
    assert (ci.lower, ci.upper) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def _lat(n: int, ms: float) -> LogHistogram:
    return LogHistogram.of([ms] * n)


def test_all_items_pass_with_sizes_and_intervals() -> None:
    slo = SloSpec(p50_ms=50, p95_ms=80, p99_ms=100, max_error_ratio=0.01)
    v = evaluate(slo, latency_ms=_lat(1000, 20), requests=1000, failures=2, planned=1000, sent=990)
    assert v.ok and not v.failed
    by = {i.name: i for i in v.items}
    assert set(by) == {"p50_ms", "p95_ms", "p99_ms", "error_ratio", "achieved_rate_ratio"}
    assert by["p99_ms"].sample_size == 1000 and by["p99_ms"].measured == pytest.approx(20, rel=0.01)
    err = by["error_ratio"]
    assert err.measured == 0.002 and err.sample_size == 1000
    assert err.interval is not None and err.interval[0] < 0.002 < err.interval[1] and err.conclusive
    assert by["achieved_rate_ratio"].measured == 0.99 and by["achieved_rate_ratio"].sample_size == 1000


def test_each_item_fails_on_its_own() -> None:
    v = evaluate(
        SloSpec(p99_ms=10, max_error_ratio=0.01, min_rate_ratio=0.95),
        latency_ms=_lat(100, 20),
        requests=100,
        failures=5,
        planned=100,
        sent=90,
    )
    assert {i.name for i in v.failed} == {"p99_ms", "error_ratio", "achieved_rate_ratio"}
    assert "FAIL" in v.describe() and "n=100" in v.describe()


def test_small_samples_are_inconclusive() -> None:
    # 0 failures of 20 passes a 5 % bound, but the Wilson upper bound (16 %) does not exclude it.
    v = evaluate(
        SloSpec(max_error_ratio=0.05), latency_ms=_lat(20, 1), requests=20, failures=0, planned=20, sent=20
    )
    item = v.items[0]
    assert item.ok and not item.conclusive


def test_no_samples_never_pass() -> None:
    v = evaluate(
        SloSpec(p50_ms=100, max_error_ratio=0.1),
        latency_ms=LogHistogram(),
        requests=0,
        failures=0,
        planned=10,
        sent=0,
    )
    assert not v.ok and all(i.measured is None or i.name == "achieved_rate_ratio" for i in v.items)


def test_bad_specs_and_counts_are_rejected() -> None:
    with pytest.raises(LoadError):
        SloSpec(p50_ms=0)
    with pytest.raises(LoadError):
        SloSpec(max_error_ratio=1.5)
    with pytest.raises(LoadError):
        evaluate(SloSpec(), latency_ms=LogHistogram(), requests=1, failures=2, planned=1, sent=1)
