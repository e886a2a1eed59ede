"""Per-experiment deviation and recovery figures, distilled from a journal (C2), as one JSON record.

Why: the journal holds every probe result, which is evidence but not a figure a report or a trend
can plot. This reduces it to what C2 asks to be recorded per experiment: how far the steady
state deviated under each fault (success-ratio drop, p50/p99 increase against the baseline
measured before the method, each with its sample size) and how long recovery took (under the
fault for ``until_steady`` steps, and after the last revert). The chaos suites attach it to the
Allure result; `meshcert run chaos` writes it into the run's journal.

Pure: a function of a `Journal`; no I/O.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from meshcert.faults.probes import ProbeResult
from meshcert.faults.runner import Journal


@dataclass(frozen=True)
class Baseline:
    """Steady state before the method: the figures deviations are measured against."""

    success_ratio: float | None
    n: int | None
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class StepDeviation:
    kind: str
    #: Seconds the fault was on (applied → reverted); None if it never applied or never reverted.
    held_s: float | None
    #: until_steady steps: seconds from the fault until the steady state held again under it.
    recovered_under_fault_s: float | None
    #: Worst success ratio seen by a during-probe, its sample size, and baseline - worst (>= 0 is a drop).
    worst_success_ratio: float | None
    worst_n: int | None
    success_ratio_drop: float | None
    #: Highest p50/p99 seen during the fault and the increase over the baseline, in ms.
    p50_ms: float | None
    p99_ms: float | None
    p50_increase_ms: float | None
    p99_increase_ms: float | None
    error: str | None


@dataclass(frozen=True)
class RecoveryRecord:
    experiment: str
    run_id: str
    verdict: str
    reasons: list[str]
    baseline: Baseline
    steps: list[StepDeviation] = field(default_factory=list)
    #: Seconds from the last revert until the steady state held again (None: it did not).
    recovery_s: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _ratios(results: list[ProbeResult]) -> list[ProbeResult]:
    return [r for r in results if r.ratio is not None and r.n]


def _max(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def baseline(results: list[ProbeResult]) -> Baseline:
    ratios = _ratios(results)
    n = sum(r.n or 0 for r in ratios)
    ok = sum(r.successes or 0 for r in ratios)
    lat = [r for r in results if r.successes]  # latency figures only from probes that got replies
    return Baseline(
        ok / n if n else None,
        n or None,
        _max([r.p50_ms for r in lat]),
        _max([r.p99_ms for r in lat]),
    )


def recovery_record(journal: Journal) -> RecoveryRecord:
    base = baseline(journal.steady_before)
    steps: list[StepDeviation] = []
    for s in journal.steps:
        ratios = _ratios(s.during)
        worst = min(ratios, key=lambda r: r.ratio or 0.0) if ratios else None
        lat = [r for r in s.during if r.successes]
        p50, p99 = _max([r.p50_ms for r in lat]), _max([r.p99_ms for r in lat])
        held = s.reverted - s.applied if s.applied is not None and s.reverted is not None else None
        steps.append(
            StepDeviation(
                kind=s.kind,
                held_s=held,
                recovered_under_fault_s=s.recovered_after_s,
                worst_success_ratio=worst.ratio if worst else None,
                worst_n=worst.n if worst else None,
                success_ratio_drop=_minus(base.success_ratio, worst.ratio if worst else None),
                p50_ms=p50,
                p99_ms=p99,
                p50_increase_ms=_minus(p50, base.p50_ms),
                p99_increase_ms=_minus(p99, base.p99_ms),
                error=s.error,
            )
        )
    return RecoveryRecord(
        journal.experiment,
        journal.run_id,
        journal.verdict,
        list(journal.reasons),
        base,
        steps,
        journal.recovery_s,
    )
