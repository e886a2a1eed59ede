"""P1 to P8: judging recorded pod/container timelines against the kubelet's probe semantics.

Why: probe invariants are about sequences (never Ready before X, restartCount only rises, removed
within a bound), so each checker takes `ContainerSample`s recorded by polling or watching one
pod's container status, plus the probe spec (views.Probe, with API defaults).

Oracle: pkg/kubelet/prober (worker.go: no probe before initialDelaySeconds; results flip after
failureThreshold/successThreshold consecutive results; startup probe gates liveness/readiness),
test/e2e/common/node/container_probe.go (the same scenarios, e.g. "should not be ready before
initial delay and never restart", "should be restarted with a failing exec liveness probe").
Timestamps from the API (startedAt) have one-second resolution and are truncated, so lower bounds
use them as is (a truncated start makes a "too early" verdict only more certain).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from meshcert.invariants.timeline import RequestOutcome, failures_between, fmt_times
from meshcert.invariants.views import PodView, Probe
from meshcert.invariants.violations import ObjectRef, Violation

# DESIGN.md P8: failureThreshold*period + timeout + this margin for the kubelet status update,
# the EndpointSlice controller and watch delivery.
P8_PROPAGATION_MARGIN = 2.0
# P7 "promptly": the kubelet reports Ready=false on its first status sync after deletion; 5 s
# covers the status manager, the watch and one-second timestamps.
P7_DEFAULT_WITHIN = 5.0
# P6: kill + restart bookkeeping on top of the grace period (SIGKILL, runtime stop, status sync):
# 3 s, plus 1 s because both ends are whole-second API timestamps (Event firstTimestamp and
# containerStatus startedAt), so a measured duration reads up to 1 s longer than the real one
# (session 1 measured exactly 6.0 s against the old 3 s slack). A 60 s pod grace stays far away.
P6_DEFAULT_SLACK = 4.0


@dataclass(frozen=True)
class ContainerSample:
    """One observation of a container: at (s), Ready, restartCount, started, pod terminating."""

    at: float
    ready: bool
    restart_count: int
    started: bool | None = None
    terminating: bool = False
    in_endpoints: bool | None = None

    @classmethod
    def from_pod(
        cls, at: float, pod: PodView, *, container: str, in_endpoints: bool | None = None
    ) -> ContainerSample:
        status = next((c for c in pod.container_statuses if c.name == container), None)
        if status is None:
            return cls(at, False, 0, None, pod.terminating, in_endpoints)
        return cls(at, status.ready, status.restart_count, status.started, pod.terminating, in_endpoints)


def _ref(pod: str) -> ObjectRef:
    return ObjectRef("Pod", pod)


def check_not_ready_before_initial_delay(
    samples: Sequence[ContainerSample],
    *,
    pod: str,
    started_at: float,
    probe: Probe,
    require_ready: bool = True,
) -> list[Violation]:
    """P1: no Ready sample before startedAt + initialDelaySeconds; Ready eventually (if required)."""
    earliest = started_at + probe.initial_delay_seconds
    early = [s.at for s in samples if s.ready and s.at < earliest]
    out: list[Violation] = []
    if early:
        out.append(
            Violation(
                "P1", _ref(pod), f"Ready at {fmt_times(early)} before initialDelay ends at {earliest:.1f}"
            )
        )
    if require_ready and not any(s.ready for s in samples):
        out.append(Violation("P1", _ref(pod), "never became Ready"))
    return out


def check_no_restarts(
    samples: Sequence[ContainerSample], *, pod: str, invariant: str = "P1"
) -> list[Violation]:
    """P1/P2: a healthy (or only un-ready) container keeps restartCount 0."""
    restarted = [(s.at, s.restart_count) for s in samples if s.restart_count > 0]
    if not restarted:
        return []
    at, count = restarted[0]
    return [Violation(invariant, _ref(pod), f"restartCount {count} at {at:.1f}, expected 0")]


def check_never_ready(samples: Sequence[ContainerSample], *, pod: str) -> list[Violation]:
    """P2: a failing readiness probe keeps the container un-Ready and the pod out of endpoints."""
    out: list[Violation] = []
    ready = [s.at for s in samples if s.ready]
    if ready:
        out.append(Violation("P2", _ref(pod), f"Ready at {fmt_times(ready)} despite failing readiness"))
    listed = [s.at for s in samples if s.in_endpoints]
    if listed:
        out.append(Violation("P2", _ref(pod), f"listed as a ready endpoint at {fmt_times(listed)}"))
    return out


def check_restart_count_monotonic(
    samples: Sequence[ContainerSample], *, pod: str, min_restarts: int = 1, invariant: str = "P3"
) -> list[Violation]:
    """P3: restartCount never decreases and reaches ``min_restarts`` (failing liveness)."""
    out: list[Violation] = []
    ordered = sorted(samples, key=lambda s: s.at)
    for prev, cur in pairwise(ordered):
        if cur.restart_count < prev.restart_count:
            out.append(
                Violation(
                    invariant,
                    _ref(pod),
                    f"restartCount fell {prev.restart_count}→{cur.restart_count} at {cur.at:.1f}",
                )
            )
    final = ordered[-1].restart_count if ordered else 0
    if final < min_restarts:
        out.append(
            Violation(invariant, _ref(pod), f"restartCount reached {final}, expected ≥ {min_restarts}")
        )
    return out


def check_probe_timeout_enforced(
    samples: Sequence[ContainerSample], *, pod: str, probe: Probe, handler_seconds: float, kind: str
) -> list[Violation]:
    """P4: a handler slower than timeoutSeconds counts as a failure, a faster one as a success.

    ``kind`` is "readiness" (judged by Ready) or "liveness" (judged by restarts).
    """
    exceeds = handler_seconds > probe.timeout_seconds
    if kind == "readiness":
        ever_ready = any(s.ready for s in samples)
        if exceeds and ever_ready:
            return [
                Violation("P4", _ref(pod), f"Ready although the handler takes {handler_seconds}s > timeout")
            ]
        if not exceeds and not ever_ready:
            return [
                Violation(
                    "P4", _ref(pod), f"never Ready although the handler takes {handler_seconds}s < timeout"
                )
            ]
        return []
    restarts = max((s.restart_count for s in samples), default=0)
    if exceeds and restarts == 0:
        return [Violation("P4", _ref(pod), f"no restart although liveness handler takes {handler_seconds}s")]
    if not exceeds and restarts > 0:
        return [Violation("P4", _ref(pod), f"restarted {restarts}x although the handler beats the timeout")]
    return []


def check_startup_gates(samples: Sequence[ContainerSample], *, pod: str) -> list[Violation]:
    """P5: no Ready (and no liveness restart) while the startup probe has not succeeded."""
    early = [s.at for s in samples if s.started is False and s.ready]
    if early:
        return [Violation("P5", _ref(pod), f"Ready at {fmt_times(early)} before the startup probe passed")]
    return []


def check_startup_failure_restarts(
    samples: Sequence[ContainerSample], *, pod: str, started_at: float, probe: Probe
) -> list[Violation]:
    """P5: a failing startup probe restarts the container, not before its failure budget is spent.

    Earliest legitimate restart: start + initialDelay + (failureThreshold-1)*period (the first probe
    runs at initialDelay, the failureThreshold-th failure period seconds apart after it).
    """
    earliest = started_at + probe.initial_delay_seconds + (probe.failure_threshold - 1) * probe.period_seconds
    restarts = [s for s in sorted(samples, key=lambda s: s.at) if s.restart_count > 0]
    if not restarts:
        return [Violation("P5", _ref(pod), "failing startup probe never restarted the container")]
    if restarts[0].at < earliest:
        return [Violation("P5", _ref(pod), f"restarted at {restarts[0].at:.1f}, before {earliest:.1f}")]
    return []


def check_probe_grace_override(
    kill_durations: Sequence[float],
    *,
    pod: str,
    probe_grace: int,
    pod_grace: int,
    slack: float = P6_DEFAULT_SLACK,
) -> list[Violation]:
    """P6: a liveness kill of a SIGTERM-ignoring container takes ≈ the probe-level grace period.

    ``kill_durations``: for each kill, seconds from the "Killing" event to the restarted container's
    startedAt. Each must be ≤ probe_grace + slack and, when the pod grace is longer, below it.
    """
    out: list[Violation] = []
    if not kill_durations:
        return [Violation("P6", _ref(pod), "no liveness kill observed")]
    for d in kill_durations:
        if d > probe_grace + slack:
            out.append(
                Violation("P6", _ref(pod), f"kill took {d:.1f}s > probe grace {probe_grace}s + {slack}s")
            )
        elif pod_grace > probe_grace + slack and d >= pod_grace:
            out.append(Violation("P6", _ref(pod), f"kill took {d:.1f}s: pod grace {pod_grace}s was used"))
    return out


def check_deletion_readiness(
    samples: Sequence[ContainerSample], *, pod: str, deleted_at: float, within: float = P7_DEFAULT_WITHIN
) -> list[Violation]:
    """P7: after deletion Ready goes false within ``within`` s; no restarts while terminating."""
    out: list[Violation] = []
    late = [s.at for s in samples if s.at > deleted_at + within and s.ready]
    if late:
        out.append(
            Violation("P7", _ref(pod), f"still Ready at {fmt_times(late)}, deleted at {deleted_at:.1f}")
        )
    before = [s.restart_count for s in samples if s.at <= deleted_at]
    baseline = max(before, default=0)
    after = [s.at for s in samples if s.at > deleted_at and s.restart_count > baseline]
    if after:
        out.append(Violation("P7", _ref(pod), f"restarted while terminating at {fmt_times(after)}"))
    return out


def readiness_removal_bound(probe: Probe) -> float:
    """P8: failureThreshold * period + timeout + 2 s."""
    return probe.failure_threshold * probe.period_seconds + probe.timeout_seconds + P8_PROPAGATION_MARGIN


def check_readiness_removal(
    *, pod: str, flipped_at: float, removed_at: float | None, probe: Probe
) -> list[Violation]:
    """P8: once the readiness endpoint starts failing, the address leaves the ready set in time."""
    bound = readiness_removal_bound(probe)
    if removed_at is None:
        return [Violation("P8", _ref(pod), f"never removed from endpoints (bound {bound:.0f}s)")]
    took = removed_at - flipped_at
    if took > bound:
        return [Violation("P8", _ref(pod), f"removed after {took:.1f}s > {bound:.0f}s")]
    return []


def check_no_client_errors(
    outcomes: Sequence[RequestOutcome], *, start: float, end: float, invariant: str = "P8"
) -> list[Violation]:
    """P8/R1: no failed request in [start, end] (a window in which other endpoints were ready)."""
    failed = failures_between(outcomes, start, end)
    if not failed:
        return []
    times = [o.at for o in failed]
    return [Violation(invariant, None, f"{len(failed)} failed request(s) at {fmt_times(times)}")]
