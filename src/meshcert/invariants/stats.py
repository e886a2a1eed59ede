"""Binomial confidence intervals, percentile estimates with distribution-free bounds, sample sizes.

Why: DESIGN.md §4 "Statistics": a check on a ratio or percentile states its sample size and
confidence bound; weight/fraction checks (M2, M8, M9, M11) use binomial intervals, never a fixed
±5 % on 100 samples; E9/P8/chaos SLOs report p50/p99 with n and an interval.

Methods (textbook; no scipy): Wilson score interval (Wilson 1927) and the exact Clopper-Pearson
interval (Clopper & Pearson 1934) via the regularized incomplete beta function, evaluated with
the Lentz continued fraction (Numerical Recipes §6.4); the order-statistic interval for a quantile
(Hahn & Meeker, "Statistical Intervals", §5.2): ranks l < u with
P(X_(l) ≤ ξ_q ≤ X_(u)) = Σ_{i=l}^{u-1} C(n,i) q^i (1-q)^(n-i) ≥ 1-alpha.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist

DEFAULT_CONFIDENCE = 0.95  # the conventional level; every function takes `confidence=` to change it
_EPS = 1e-15  # continued-fraction convergence / tiny-number guard (double precision)
_MAX_ITER = 500  # the beta continued fraction converges in O(sqrt(max(a, b))) steps; ample here
_BISECT_STEPS = 100  # halves [0, 1] to below double precision


class Method(StrEnum):
    WILSON = "wilson"
    CLOPPER_PEARSON = "clopper-pearson"


@dataclass(frozen=True)
class BinomialInterval:
    k: int
    n: int
    lower: float
    upper: float
    confidence: float
    method: Method

    def __str__(self) -> str:
        return (
            f"{self.k}/{self.n} = {self.k / self.n if self.n else float('nan'):.4f}, "
            f"{self.confidence * 100:g}% {self.method} CI [{self.lower:.4f}, {self.upper:.4f}]"
        )


def _check_args(k: int, n: int, confidence: float) -> None:
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def wilson_interval(k: int, n: int, *, confidence: float = DEFAULT_CONFIDENCE) -> BinomialInterval:
    """Wilson score interval: good coverage even for small n and p near 0 or 1."""
    _check_args(k, n, confidence)
    z = _z(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lower = 0.0 if k == 0 else max(0.0, centre - half)
    upper = 1.0 if k == n else min(1.0, centre + half)
    return BinomialInterval(k, n, lower, upper, confidence, Method.WILSON)


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, _MAX_ITER + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c if abs(1 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c if abs(1 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1 - math.exp(log_front) * _betacf(b, a, 1 - x) / b


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X ≤ k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return betainc(n - k, k + 1, 1 - p)


def _bisect(fn: Callable[[float], float], target: float, *, increasing: bool) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(_BISECT_STEPS):
        mid = (lo + hi) / 2
        value = fn(mid)
        if (value < target) == increasing:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson_interval(k: int, n: int, *, confidence: float = DEFAULT_CONFIDENCE) -> BinomialInterval:
    """Exact (conservative) interval: coverage ≥ confidence for every p."""
    _check_args(k, n, confidence)
    alpha = 1 - confidence
    # lower: P(X >= k | p) = alpha/2, increasing in p; upper: P(X <= k | p) = alpha/2, decreasing.
    lower = 0.0 if k == 0 else _bisect(lambda p: 1 - binom_cdf(k - 1, n, p), alpha / 2, increasing=True)
    upper = 1.0 if k == n else _bisect(lambda p: binom_cdf(k, n, p), alpha / 2, increasing=False)
    return BinomialInterval(k, n, lower, upper, confidence, Method.CLOPPER_PEARSON)


@dataclass(frozen=True)
class ProportionCheck:
    expected: float
    interval: BinomialInterval
    consistent: bool

    def __str__(self) -> str:
        verdict = "consistent with" if self.consistent else "NOT consistent with"
        return f"{self.interval}: {verdict} p={self.expected}"


def check_proportion(
    k: int,
    n: int,
    p: float,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    method: Method = Method.WILSON,
) -> ProportionCheck:
    """Is observing k of n consistent with probability p at this confidence? (p inside the CI)

    p = 0 or 1 are judged exactly: weight 0 must receive nothing (k == 0), weight 1 everything.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    make = wilson_interval if method is Method.WILSON else clopper_pearson_interval
    interval = make(k, n, confidence=confidence)
    if p == 0:
        ok = k == 0
    elif p == 1:
        ok = k == n
    else:
        ok = interval.lower <= p <= interval.upper
    return ProportionCheck(p, interval, ok)


def required_sample_size(margin: float, *, confidence: float = DEFAULT_CONFIDENCE, p: float = 0.5) -> int:
    """n so that a proportion near p is estimated within ±margin (normal approximation).

    p = 0.5 is the worst case; pass the expected p (e.g. a route weight) for a smaller n.
    """
    if not 0 < margin < 1:
        raise ValueError(f"margin must be in (0, 1), got {margin}")
    z = _z(confidence)
    return math.ceil(z * z * p * (1 - p) / (margin * margin))


@dataclass(frozen=True)
class PercentileEstimate:
    """A sample quantile with its distribution-free CI; a bound is None when n is too small."""

    q: float
    n: int
    estimate: float
    lower: float | None
    upper: float | None
    confidence: float

    def __str__(self) -> str:
        lo = "-inf" if self.lower is None else f"{self.lower:.4g}"
        hi = "n too small" if self.upper is None else f"{self.upper:.4g}"
        level = f"{self.confidence * 100:g}%"
        return f"p{self.q * 100:g}={self.estimate:.4g} (n={self.n}, {level} CI [{lo}, {hi}])"


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank quantile: the ceil(q·n)-th smallest sample (an actually observed value)."""
    if not samples:
        raise ValueError("no samples")
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _rank_search(n: int, q: float, target: float) -> int:
    """Smallest r in [0, n] with binom_cdf(r, n, q) >= target (cdf is increasing in r)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if binom_cdf(mid, n, q) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def percentile_ci(
    samples: Sequence[float], q: float, *, confidence: float = DEFAULT_CONFIDENCE
) -> PercentileEstimate:
    """Quantile q with an order-statistic CI; needs no assumption about the distribution.

    With X_(1..n) sorted, the interval [X_(l), X_(u)] covers ξ_q with probability
    B(u-1) - B(l-1) where B is the Binomial(n, q) CDF; each tail gets alpha/2.
    """
    estimate = percentile(samples, q)
    ordered = sorted(samples)
    n = len(ordered)
    alpha = 1 - confidence
    # lower rank l: largest with B(l-1) <= alpha/2  ⇔  l-1 = (smallest r with B(r) > alpha/2) - 1
    r_low = _rank_search(n, q, alpha / 2 + _EPS)  # B(r_low) > alpha/2 first
    lower = ordered[r_low - 1] if r_low >= 1 else None  # l = r_low
    # upper rank u: smallest with B(u-1) >= 1-alpha/2
    r_up = _rank_search(n, q, 1 - alpha / 2)  # u - 1 = r_up
    upper = ordered[r_up] if r_up < n and binom_cdf(r_up, n, q) >= 1 - alpha / 2 else None
    return PercentileEstimate(q, n, estimate, lower, upper, confidence)


def min_samples_for_upper_bound(q: float, *, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """Smallest n for which `percentile_ci` can bound quantile q from above (q^n ≤ alpha/2).

    E.g. p99 at 95 %: 368 samples; below that, "p99 ≤ budget" cannot be claimed at all.
    """
    alpha = 1 - confidence
    return math.ceil(math.log(alpha / 2) / math.log(q))
