"""Wilson score interval for a binomial proportion (error ratios in SLO verdicts).

DESIGN §4: a ratio is reported with its sample size and confidence bound, never judged with a
fixed tolerance. Wilson is used rather than the normal (Wald) interval because it stays inside
[0, 1] and keeps close to nominal coverage at small n and at ratios near 0 — the usual case for
error ratios. Provisional: invariants/stats.py will hold the shared copy.
"""

from __future__ import annotations

import math
from statistics import NormalDist

#: 95 %: the conventional level for reporting; callers asserting in tests may ask for more.
DEFAULT_CONFIDENCE = 0.95


def wilson_interval(successes: int, n: int, *, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Two-sided Wilson score interval for ``successes`` out of ``n``; (0, 1) when n == 0."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
