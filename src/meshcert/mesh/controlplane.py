"""M14: the data plane while its control plane is down — samples, and the checker over them.

Why: with istiod gone, every sidecar keeps the last config it accepted and serves with it;
config changed meanwhile cannot reach any proxy, so it must *not* be in effect until the control
plane returns, and then it must converge. The oracle is a time series of request batches sent
from the client pod during the outage: no failed request, and only the backends the *old*
route sends to, for at least a minimum time, before and after a pending change is made.

The outage itself is `meshcert.faults.scale.scaled_to_zero` (a fault context manager that
always restores); this module only judges what was observed. Pure except `sample_while`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from meshcert.invariants.violations import ObjectRef, Violation
from meshcert.mesh.echo import EchoBatch, Exchange

#: Enough of an error line to tell a reset from a refusal from a deadline, short enough for a
#: one-line violation.
_ERROR_CHARS = 80


@dataclass(frozen=True)
class Sample:
    """One batch sent during the outage: when (seconds after it began), which phase, what came back."""

    at: float
    phase: str
    requests: int
    failed: int
    versions: tuple[tuple[str, int], ...]
    failure: str = ""
    #: What the failed requests got: their status code with the proxy's reply text, or the
    #: client's error text (cut to ``_ERROR_CHARS``), with counts; "no answer" for requests the
    #: output never mentions.
    errors: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, batch: EchoBatch, *, at: float, phase: str, sent: int) -> Sample:
        """``sent`` is how many were asked for: an aborted batch counts every unanswered one as failed."""
        answered_ok = sum(1 for r in batch.responses if r.ok)
        versions = tuple(sorted(Counter(r.version for r in batch.responses if r.ok).items()))
        kinds = Counter(_failure_kind(r) for r in batch.responses if not r.ok)
        if missing := sent - len(batch.responses):
            kinds["no answer"] += missing
        return cls(round(at, 2), phase, sent, sent - answered_ok, versions, batch.failure,
                   tuple(sorted(kinds.items())))  # fmt: skip


def _failure_kind(r: Exchange) -> str:
    if r.error:
        return r.error[:_ERROR_CHARS]
    return f"{r.code}: {r.detail}"[:_ERROR_CHARS] if r.detail else r.code


@dataclass(frozen=True)
class OutageSummary:
    """Totals per phase for the report: requests, failures, versions reached, seconds covered."""

    phase: str
    requests: int
    failed: int
    versions: dict[str, int]
    seconds: float


def summarise(samples: Sequence[Sample]) -> list[OutageSummary]:
    out: list[OutageSummary] = []
    for phase in dict.fromkeys(s.phase for s in samples):
        mine = [s for s in samples if s.phase == phase]
        versions: Counter[str] = Counter()
        for s in mine:
            versions.update(dict(s.versions))
        span = mine[-1].at - mine[0].at
        out.append(OutageSummary(phase, sum(s.requests for s in mine), sum(s.failed for s in mine),
                                 dict(versions), round(span, 2)))  # fmt: skip
    return out


def check_served_last_config(
    samples: Sequence[Sample], *, old_versions: set[str], phases: dict[str, float], ref: ObjectRef
) -> list[Violation]:
    """M14: in every phase (name → minimum seconds it must cover) no request failed and only
    ``old_versions`` answered (the route in place when the control plane went down)."""
    out: list[Violation] = []
    for s in samples:
        if s.failed:
            got = ", ".join(f"{kind} x{n}" for kind, n in s.errors)
            why = "".join(f" ({x})" for x in (got, s.failure) if x)
            out.append(Violation("M14", ref, f"{s.phase} t={s.at}s: {s.failed}/{s.requests} failed{why}"))
        extra = {v for v, _ in s.versions} - old_versions
        if extra:
            msg = f"answered by {sorted(extra)} while the last config routes only to {sorted(old_versions)}"
            out.append(Violation("M14", ref, f"{s.phase} t={s.at}s: {msg}"))
    covered = {x.phase: x.seconds for x in summarise(samples)}
    for phase, need in phases.items():
        if covered.get(phase, -1.0) < need:
            out.append(Violation("M14", ref, f"{phase}: observed {covered.get(phase, 0.0)}s of outage, "
                                             f"need >= {need}s"))  # fmt: skip
    return out


def sample_while(
    send_batch: Callable[[], EchoBatch],
    *,
    phase: str,
    seconds: float,
    start: float,
    sent: int,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Sample]:
    """Send batches for ``seconds`` (one per ``interval``), stamped relative to ``start``.

    The last batch starts no earlier than ``seconds`` after the first, so the phase covers at
    least that span.
    """
    out: list[Sample] = []
    first = clock()
    while True:
        t = clock()
        out.append(Sample.of(send_batch(), at=t - start, phase=phase, sent=sent))
        if t - first >= seconds:
            return out
        sleep(max(0.0, interval - (clock() - t)))
