from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshcert.invariants.stats import (
    Method,
    binom_cdf,
    check_proportion,
    clopper_pearson_interval,
    min_samples_for_upper_bound,
    percentile,
    percentile_ci,
    required_sample_size,
    wilson_interval,
)


def test_known_intervals() -> None:
    w = wilson_interval(50, 100)
    assert (round(w.lower, 4), round(w.upper, 4)) == (0.4038, 0.5962)
    cp = clopper_pearson_interval(0, 100)
    assert cp.lower == 0 and round(cp.upper, 4) == 0.0362  # the "rule of three" neighbourhood
    cp = clopper_pearson_interval(50, 100)
    assert (round(cp.lower, 4), round(cp.upper, 4)) == (0.3983, 0.6017)


def test_binom_cdf_matches_direct_sum() -> None:
    n, p = 30, 0.3
    for k in range(n + 1):
        direct = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))
        assert binom_cdf(k, n, p) == pytest.approx(direct, abs=1e-10)


def test_check_proportion_verdicts() -> None:
    good = check_proportion(480, 1000, 0.5)
    assert good.consistent and "consistent with p=0.5" in str(good)
    bad = check_proportion(300, 1000, 0.5, method=Method.CLOPPER_PEARSON)
    assert not bad.consistent and "NOT consistent" in str(bad)
    assert check_proportion(0, 1000, 0).consistent
    assert not check_proportion(1, 1000, 0).consistent  # weight 0 must get nothing
    assert check_proportion(1000, 1000, 1).consistent
    with pytest.raises(ValueError):
        check_proportion(1, 0, 0.5)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 2000), data=st.data())
def test_intervals_contain_the_estimate_and_nest(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    for interval in (wilson_interval(k, n), clopper_pearson_interval(k, n)):
        assert 0 <= interval.lower <= k / n <= interval.upper <= 1
    wide = clopper_pearson_interval(k, n, confidence=0.99)
    narrow = clopper_pearson_interval(k, n, confidence=0.9)
    assert wide.lower <= narrow.lower + 1e-12 and narrow.upper <= wide.upper + 1e-12


def test_clopper_pearson_coverage_by_simulation() -> None:
    rng = random.Random(1234)  # fixed seed: a deterministic check of the ≥95 % coverage promise
    p, n, trials = 0.2, 50, 400
    covered = 0
    for _ in range(trials):
        k = sum(rng.random() < p for _ in range(n))
        ci = clopper_pearson_interval(k, n)
        covered += ci.lower <= p <= ci.upper
    assert covered / trials >= 0.93  # 95 % nominal, exact method is conservative; slack for 400 trials


def test_percentiles() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert percentile(samples, 0.5) == 50 and percentile(samples, 0.99) == 99
    est = percentile_ci(samples, 0.5)
    assert est.lower is not None and est.upper is not None and est.lower <= 50 <= est.upper
    assert (est.lower, est.upper) == (40.0, 61.0)  # standard order-statistic ranks for n=100, median
    p99 = percentile_ci(samples, 0.99)
    assert p99.upper is None and "n too small" in str(p99)
    assert min_samples_for_upper_bound(0.99) == 368
    big = percentile_ci([float(i) for i in range(368)], 0.99)
    assert big.upper is not None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=400), st.sampled_from([0.5, 0.9, 0.99])
)
def test_percentile_ci_brackets_estimate(samples: list[float], q: float) -> None:
    est = percentile_ci(samples, q)
    assert est.n == len(samples)
    if est.lower is not None:
        assert est.lower <= est.estimate
    if est.upper is not None:
        assert est.estimate <= est.upper


def test_required_sample_size() -> None:
    assert required_sample_size(0.05) == 385
    assert required_sample_size(0.05, p=0.1) == 139
    assert required_sample_size(0.01, confidence=0.99) > required_sample_size(0.01)
