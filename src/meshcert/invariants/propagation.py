"""E9 / P8 measurement: how long pod readiness takes to reach EndpointSlices and kube-proxy.

Why: E9 is a measurement, reported with p50/p99, sample size and confidence bounds (DESIGN.md §4
"Statistics"); P8 bounds one leg of it. The recorder supplies, per pod, the time it became Ready
(or un-Ready), the time its address appeared in (or left) the ready EndpointSlice set, and the
time a client first reached it through the Service (or stopped reaching it).

Oracle: the stages are those of test/e2e/network (endpointslice controller → kube-proxy sync);
statistics from stats.py (order-statistic percentile intervals).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshcert.invariants.stats import DEFAULT_CONFIDENCE, PercentileEstimate, percentile_ci
from meshcert.invariants.violations import ObjectRef, Violation

P50, P99 = 0.5, 0.99


@dataclass(frozen=True)
class PropagationSample:
    """Timestamps (seconds, one clock) for one pod; None = never observed within the recording."""

    pod: str
    ready_at: float
    in_slice_at: float | None
    reachable_at: float | None = None


@dataclass(frozen=True)
class StageStats:
    """Delays of one stage: sample size, never-propagated count, p50/p99 with CIs, worst case."""

    stage: str
    n: int
    missing: int
    p50: PercentileEstimate | None
    p99: PercentileEstimate | None
    max: float | None

    def __str__(self) -> str:
        if not self.n:
            return f"{self.stage}: no samples ({self.missing} never propagated)"
        return (
            f"{self.stage}: n={self.n}, missing={self.missing}, {self.p50}, {self.p99}, max={self.max:.3f}s"
        )


@dataclass(frozen=True)
class PropagationReport:
    to_slice: StageStats  # pod Ready → address ready in an EndpointSlice
    to_proxy: StageStats  # in EndpointSlice → reachable through the Service
    end_to_end: StageStats  # pod Ready → reachable
    negative: tuple[str, ...]  # pods seen in a stage before the previous one (clock skew?)


def stage_stats(stage: str, delays: Sequence[float | None], *, confidence: float) -> StageStats:
    seen = [d for d in delays if d is not None]
    missing = len(delays) - len(seen)
    if not seen:
        return StageStats(stage, 0, missing, None, None, None)
    return StageStats(
        stage,
        len(seen),
        missing,
        percentile_ci(seen, P50, confidence=confidence),
        percentile_ci(seen, P99, confidence=confidence),
        max(seen),
    )


def _delay(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def propagation_report(
    samples: Sequence[PropagationSample], *, confidence: float = DEFAULT_CONFIDENCE
) -> PropagationReport:
    """E9: per-stage delay statistics; flags samples whose stages are out of order."""
    to_slice = [_delay(s.ready_at, s.in_slice_at) for s in samples]
    to_proxy = [_delay(s.in_slice_at, s.reachable_at) for s in samples]
    total = [_delay(s.ready_at, s.reachable_at) for s in samples]
    negative = tuple(
        s.pod for s, a, b in zip(samples, to_slice, to_proxy, strict=True) if (a or 0) < 0 or (b or 0) < 0
    )
    return PropagationReport(
        stage_stats("ready→slice", to_slice, confidence=confidence),
        stage_stats("slice→proxy", to_proxy, confidence=confidence),
        stage_stats("ready→reachable", total, confidence=confidence),
        negative,
    )


def check_all_propagated(
    samples: Sequence[PropagationSample], *, require_reachable: bool = True, invariant: str = "E9"
) -> list[Violation]:
    """Every Ready pod reached the slices (and, if required, clients) within the recording."""
    out: list[Violation] = []
    for s in samples:
        ref = ObjectRef("Pod", s.pod)
        if s.in_slice_at is None:
            out.append(Violation(invariant, ref, "Ready but never listed as a ready endpoint"))
        elif require_reachable and s.reachable_at is None:
            out.append(Violation(invariant, ref, "listed in the EndpointSlice but never reachable"))
    return out
