"""The log-bucket histogram: percentile accuracy, exact merge, JSON round trip."""

from __future__ import annotations

import math
import random

import pytest

from meshcert.load.histogram import GROWTH, LogHistogram


def _exact(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(1, math.ceil(q / 100 * len(s))) - 1]


@pytest.mark.parametrize("q", [0, 1, 50, 90, 95, 99, 99.9, 100])
def test_percentiles_within_one_bucket_of_exact(q: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(math.log(100), 0.8) for _ in range(20_000)]
    got = LogHistogram.of(values).percentile(q)
    assert got == pytest.approx(_exact(values, q), rel=GROWTH)


def test_resolves_a_100ms_shift_far_inside_15_percent() -> None:
    rng = random.Random(1)
    base = [rng.uniform(0.5, 2.0) for _ in range(200)]
    shifted = LogHistogram.of(b + 100.0 for b in base).percentile(50)
    p50 = LogHistogram.of(base).percentile(50)
    assert p50 is not None and shifted is not None
    assert shifted - p50 == pytest.approx(100.0, abs=1.5)


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(3)
    a = [rng.expovariate(0.1) for _ in range(1000)]
    b = [rng.expovariate(0.01) for _ in range(1000)]
    merged = LogHistogram.of(a)
    merged.merge(LogHistogram.of(b))
    whole = LogHistogram.of(a + b)
    assert merged.counts == whole.counts and merged.n == whole.n
    assert merged.minimum == whole.minimum and merged.maximum == whole.maximum
    assert merged.total == pytest.approx(whole.total)


def test_json_round_trip_and_empty() -> None:
    h = LogHistogram.of([1.0, 2.0, 300.0])
    back = LogHistogram.from_json(h.to_json())
    assert back == h
    empty = LogHistogram.from_json(LogHistogram().to_json())
    assert empty.percentile(50) is None and empty.n == 0 and empty.mean is None


def test_percentile_interval_brackets_the_estimate() -> None:
    h = LogHistogram.of(float(i) for i in range(1, 1001))
    lo, hi = h.percentile_interval(99, z=1.96) or (0.0, 0.0)
    assert lo <= (h.percentile(99) or 0) <= hi
    assert lo >= 980 and hi <= 1000
