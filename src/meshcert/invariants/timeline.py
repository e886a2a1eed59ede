"""Timestamped observations shared by the timing/sequence checkers (P, R, S3, S10, E9).

Why: invariants about *when* (evicted at ≈t, removed within a bound, outage length) are judged on a
recorded sequence, not on one snapshot. Times are float seconds on one clock chosen by the
recorder (epoch seconds when API timestamps are mixed in, since those are wall-clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestOutcome:
    """One client request: when it was sent, whether it succeeded, which backend answered."""

    at: float
    ok: bool
    backend: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Outage:
    """A maximal run of failed requests: first failure .. first success after it (or last sample)."""

    start: float
    end: float
    failed: int
    recovered: bool

    @property
    def length(self) -> float:
        return self.end - self.start


def outages(outcomes: Sequence[RequestOutcome]) -> list[Outage]:
    """Every run of consecutive failures, in time order; resolution is the sampling interval."""
    runs: list[Outage] = []
    start: float | None = None
    failed = 0
    for o in sorted(outcomes, key=lambda x: x.at):
        if not o.ok:
            if start is None:
                start, failed = o.at, 0
            failed += 1
        elif start is not None:
            runs.append(Outage(start, o.at, failed, recovered=True))
            start = None
    if start is not None:
        last = max(o.at for o in outcomes)
        runs.append(Outage(start, last, failed, recovered=False))
    return runs


def failures_between(outcomes: Sequence[RequestOutcome], start: float, end: float) -> list[RequestOutcome]:
    return [o for o in outcomes if start <= o.at <= end and not o.ok]


def fmt_times(times: Sequence[float], *, limit: int = 5) -> str:
    """A short list of times for messages (first ``limit``, then a count)."""
    shown = ", ".join(f"{t:.1f}" for t in times[:limit])
    more = f" (+{len(times) - limit} more)" if len(times) > limit else ""
    return f"[{shown}]{more}"
