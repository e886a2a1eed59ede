"""SLOs of a load run and the verdict: every item with its measured value, sample size and bound.

A verdict that says only "p99 too high" cannot be trusted or compared across nights. Each item
here carries what was measured, over how many samples, and a confidence interval (Wilson for
the error ratio, order statistics for percentiles), as DESIGN §4 requires. An item passes on its
point estimate; ``conclusive`` says whether the whole interval lies on the same side of the
bound, i.e. whether more samples could change the answer.

Pure: the verdict is a function of a `LoadResult`'s numbers; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

from meshcert.errors import LoadError
from meshcert.invariants.stats import DEFAULT_CONFIDENCE, wilson_interval
from meshcert.load.histogram import LogHistogram


def _wilson(k: int, n: int, confidence: float) -> tuple[float, float] | None:
    """(lower, upper) of the shared Wilson interval (invariants.stats); None without samples."""
    if n == 0:
        return None
    ci = wilson_interval(k, n, confidence=confidence)
    return (ci.lower, ci.upper)


@dataclass(frozen=True)
class SloSpec:
    """Upper bounds on latency percentiles (ms) and error ratio; lower bound on achieved rate.

    None disables an item. The achieved-rate default (0.95) is the "within ±5 % of target" item:
    the open-model scheduler never sends more than planned, so only the lower side can fail.
    """

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_error_ratio: float | None = None
    min_rate_ratio: float | None = 0.95
    confidence: float = DEFAULT_CONFIDENCE

    def __post_init__(self) -> None:
        for name in ("p50_ms", "p95_ms", "p99_ms"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise LoadError(f"SLO {name} must be > 0 ms, got {value}")
        for name in ("max_error_ratio", "min_rate_ratio"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise LoadError(f"SLO {name} must be within [0, 1], got {value}")
        if not 0.0 < self.confidence < 1.0:
            raise LoadError(f"SLO confidence must be within (0, 1), got {self.confidence}")


@dataclass(frozen=True)
class SloItem:
    name: str
    #: "<=" or ">=" and the bound it is compared with.
    op: str
    bound: float
    measured: float | None
    sample_size: int
    ok: bool
    interval: tuple[float, float] | None
    conclusive: bool

    def describe(self) -> str:
        shown = "n/a" if self.measured is None else f"{self.measured:.4g}"
        ci = "" if self.interval is None else f", CI [{self.interval[0]:.4g}, {self.interval[1]:.4g}]"
        mark = "ok" if self.ok else "FAIL"
        return f"{self.name} = {shown} {self.op} {self.bound:g} (n={self.sample_size}{ci}): {mark}"


@dataclass(frozen=True)
class SloVerdict:
    items: tuple[SloItem, ...]
    confidence: float

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.items)

    @property
    def failed(self) -> tuple[SloItem, ...]:
        return tuple(i for i in self.items if not i.ok)

    def describe(self) -> str:
        return "\n".join(i.describe() for i in self.items)


def _upper(
    name: str, bound: float, measured: float | None, n: int, ci: tuple[float, float] | None
) -> SloItem:
    # No samples: nothing shows the bound holds, so the item fails (a run that sent nothing
    # must not pass a latency SLO).
    ok = measured is not None and measured <= bound
    conclusive = ci is not None and (ci[1] <= bound if ok else ci[0] > bound)
    return SloItem(name, "<=", bound, measured, n, ok, ci, conclusive)


def evaluate(
    slo: SloSpec,
    *,
    latency_ms: LogHistogram,
    requests: int,
    failures: int,
    planned: int,
    sent: int,
) -> SloVerdict:
    """Judge a run: ``requests`` completed of which ``failures`` failed; ``sent`` of ``planned``."""
    if not 0 <= failures <= requests or not 0 <= sent <= planned:
        raise LoadError(
            f"inconsistent counts: requests={requests} failures={failures} planned={planned} sent={sent}"
        )
    z = NormalDist().inv_cdf(0.5 + slo.confidence / 2.0)
    items: list[SloItem] = []
    for q, bound in ((50, slo.p50_ms), (95, slo.p95_ms), (99, slo.p99_ms)):
        if bound is not None:
            ci = latency_ms.percentile_interval(q, z=z)
            items.append(_upper(f"p{q}_ms", bound, latency_ms.percentile(q), latency_ms.n, ci))
    if slo.max_error_ratio is not None:
        ratio = failures / requests if requests else None
        ci = _wilson(failures, requests, slo.confidence)
        items.append(_upper("error_ratio", slo.max_error_ratio, ratio, requests, ci))
    if slo.min_rate_ratio is not None:
        ratio = sent / planned if planned else None
        ci = _wilson(sent, planned, slo.confidence)
        ok = ratio is not None and ratio >= slo.min_rate_ratio
        conclusive = ci is not None and (ci[0] >= slo.min_rate_ratio if ok else ci[1] < slo.min_rate_ratio)
        items.append(
            SloItem("achieved_rate_ratio", ">=", slo.min_rate_ratio, ratio, planned, ok, ci, conclusive)
        )
    return SloVerdict(tuple(items), slo.confidence)
