"""The constant-arrival-rate (open model) schedule and its lag accounting, as pure functions.

A closed model (N users, each waiting for its response before the next request) slows down when
the system under test slows down, hiding exactly the degradation a load test should show
("coordinated omission"). The open model plans request ``k`` at ``t0 + k / R`` whatever happens.
A request that cannot be sent on time — the scheduler woke up more than ``lag_bound`` late, or
every user is still busy with earlier requests — is *not sent* and is counted by cause, so the
achieved rate (sent / duration) is honest and the "achieved rate within ±5 % of target" SLO
item can fail.

Distributed runs split the plan: worker ``i`` of ``n`` takes every ``n``-th slot starting at
``i``, so the union of all workers' plans is exactly the single-process plan.

No I/O, no gevent: the Locust child drives these from its dispatcher greenlet, tests call them
directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from meshcert.load.histogram import LogHistogram

#: Default bound on scheduler lag. The gevent hub's wake-up jitter on a busy 2-core box is a few
#: ms; 25 ms is well above that and well below the latency budgets the SLOs check (≥ 100 ms), so a
#: request sent within it still measures the system, not the scheduler.
DEFAULT_LAG_BOUND_S = 0.025


class Outcome(StrEnum):
    SENT = "sent"
    LATE = "late"  # the scheduler woke up more than lag_bound after the planned time
    NO_USER = "no_user"  # on time, but every user was busy


def planned_offsets(rate: float, duration: float, *, share: int = 0, shares: int = 1) -> list[float]:
    """Planned send times (seconds after t0) of slot ``share`` of ``shares`` for ``rate`` req/s.

    The full plan has ``floor(rate * duration)`` requests at ``k / rate``; this returns the
    slots ``k ≡ share (mod shares)``.
    """
    if rate <= 0 or duration <= 0:
        raise ValueError(f"rate and duration must be > 0, got rate={rate}, duration={duration}")
    if not 0 <= share < shares:
        raise ValueError(f"share must be within [0, {shares}), got {share}")
    total = math.floor(rate * duration + 1e-9)  # tolerate float noise in e.g. 0.1 * 30
    return [k / rate for k in range(share, total, shares)]


def classify(planned: float, now: float, *, lag_bound: float, free_user: bool) -> Outcome:
    """What happens to a request planned at ``planned`` when the dispatcher looks at ``now``."""
    if now - planned > lag_bound:
        return Outcome.LATE
    return Outcome.SENT if free_user else Outcome.NO_USER


@dataclass
class ArrivalLedger:
    """Counts of every planned request by outcome, plus the lag of those sent."""

    planned: int = 0
    sent: int = 0
    late: int = 0
    no_user: int = 0
    max_lag_s: float = 0.0
    #: Scheduler lag of the requests sent, in ms (bounded memory whatever the run length).
    sent_lag_ms: LogHistogram = field(default_factory=LogHistogram)

    def record(self, outcome: Outcome, lag_s: float) -> None:
        self.planned += 1
        self.max_lag_s = max(self.max_lag_s, lag_s)
        if outcome is Outcome.SENT:
            self.sent += 1
            self.sent_lag_ms.record(lag_s * 1000.0)
        elif outcome is Outcome.LATE:
            self.late += 1
        else:
            self.no_user += 1

    @property
    def missed(self) -> int:
        return self.late + self.no_user

    def merge(self, other: ArrivalLedger) -> None:
        self.planned += other.planned
        self.sent += other.sent
        self.late += other.late
        self.no_user += other.no_user
        self.max_lag_s = max(self.max_lag_s, other.max_lag_s)
        self.sent_lag_ms.merge(other.sent_lag_ms)


def account(
    planned: list[float], observed: list[float], free: list[bool], *, lag_bound: float
) -> ArrivalLedger:
    """Replay a dispatcher trace: planned offsets, when each was looked at, whether a user was free."""
    if not len(planned) == len(observed) == len(free):
        raise ValueError("planned, observed and free must have the same length")
    ledger = ArrivalLedger()
    for p, o, f in zip(planned, observed, free, strict=True):
        ledger.record(classify(p, o, lag_bound=lag_bound, free_user=f), max(0.0, o - p))
    return ledger


def ledger_to_json(ledger: ArrivalLedger) -> dict[str, object]:
    return {
        "planned": ledger.planned,
        "sent": ledger.sent,
        "late": ledger.late,
        "no_user": ledger.no_user,
        "max_lag_s": ledger.max_lag_s,
        "sent_lag_ms": ledger.sent_lag_ms.to_json(),
    }


def ledger_from_json(raw: dict[str, object]) -> ArrivalLedger:
    lag = raw.get("sent_lag_ms", {})
    return ArrivalLedger(
        planned=int(str(raw["planned"])),
        sent=int(str(raw["sent"])),
        late=int(str(raw["late"])),
        no_user=int(str(raw["no_user"])),
        max_lag_s=float(str(raw["max_lag_s"])),
        sent_lag_ms=LogHistogram.from_json(lag if isinstance(lag, dict) else {}),
    )
