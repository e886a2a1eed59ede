"""R4: Jobs complete N times or stop at backoffLimit; CronJobs fire on schedule and honour
concurrencyPolicy.

Why: batch controllers promise counts (completions, failures) and times (schedule, overlap).
Oracle: pkg/controller/job (a Job is Complete when succeeded reaches completions; it Fails with
reason BackoffLimitExceeded once failed pods exceed backoffLimit — up to ``parallelism`` pods may
fail in the same sync) and pkg/controller/cronjob (cronjob_controllerv2.go: one Job per scheduled
time; Forbid skips a run while one is active, Replace deletes the active run first). e2e:
test/e2e/apps/job.go, cronjob.go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from meshcert.invariants.cron import CronSchedule
from meshcert.invariants.violations import Violation, set_violation
from meshcert.invariants.workload_views import CronJobView, JobView

# Job creation after its scheduled minute: controller requeue + API round trip + one-second
# creationTimestamp truncation; generous because the CronJob controller is a single queue.
CRON_TOLERANCE = 10.0
BACKOFF_REASON = "BackoffLimitExceeded"


def check_job_completed(job: JobView) -> list[Violation]:
    """R4: Complete, succeeded == completions, failed ≤ backoffLimit."""
    out: list[Violation] = []
    if job.condition("Complete") is None:
        out.append(Violation("R4", job.ref, "no Complete=True condition"))
    if job.completions is not None and job.succeeded != job.completions:
        out.append(Violation("R4", job.ref, f"succeeded {job.succeeded}, completions {job.completions}"))
    if job.failed > job.backoff_limit:
        out.append(Violation("R4", job.ref, f"failed {job.failed} > backoffLimit {job.backoff_limit}"))
    return out


def check_job_backoff_limit(job: JobView) -> list[Violation]:
    """R4: an always-failing Job fails with BackoffLimitExceeded after backoffLimit+1 failures
    (at most ``parallelism`` more, for pods failing in the same sync)."""
    out: list[Violation] = []
    cond = job.condition("Failed")
    if cond is None or cond.reason != BACKOFF_REASON:
        got = "absent" if cond is None else cond.reason
        out.append(Violation("R4", job.ref, f"Failed condition is {got}, expected {BACKOFF_REASON}"))
    lo, hi = job.backoff_limit + 1, job.backoff_limit + max(1, job.parallelism)
    if not lo <= job.failed <= hi:
        out.append(
            Violation(
                "R4", job.ref, f"failed {job.failed}, expected {lo}..{hi} (backoffLimit {job.backoff_limit})"
            )
        )
    if job.active:
        out.append(Violation("R4", job.ref, f"{job.active} pods still active after failure"))
    return out


@dataclass(frozen=True)
class JobRun:
    """One Job a CronJob created: its scheduled/creation time and when it finished (epoch s)."""

    name: str
    created_at: float
    finished_at: float | None = None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _active_at(runs: Sequence[JobRun], t: float) -> bool:
    return any(r.created_at < t and (r.finished_at is None or r.finished_at > t) for r in runs)


def check_cronjob_schedule(
    cronjob: CronJobView,
    runs: Sequence[JobRun],
    *,
    window_start: float,
    window_end: float,
    tolerance: float = CRON_TOLERANCE,
) -> list[Violation]:
    """R4: one run per scheduled minute in the window (Forbid may skip while one is active), none
    at other times. Diff entries are the scheduled minutes (ISO, UTC) / run creation times."""
    schedule = CronSchedule.parse(cronjob.schedule)
    fires = [
        t.timestamp()
        for t in schedule.fire_times(
            datetime.fromtimestamp(window_start, UTC), datetime.fromtimestamp(window_end, UTC)
        )
    ]
    due = [] if cronjob.suspend else [t for t in fires if t + tolerance <= window_end]
    if cronjob.concurrency_policy == "Forbid":
        due = [t for t in due if not _active_at(runs, t)]
    in_window = [r for r in runs if window_start <= r.created_at <= window_end]
    matched = {t for t in due if any(t <= r.created_at <= t + tolerance for r in in_window)}
    stray = [r for r in in_window if not any(t <= r.created_at <= t + tolerance for t in fires)]
    expected = {_iso(t) for t in due}
    observed = {_iso(t) for t in matched} | {f"{r.name}@{_iso(r.created_at)}" for r in stray}
    return set_violation(
        "R4", cronjob.ref, f"runs of {cronjob.schedule!r}", expected=expected, observed=observed
    )


def check_concurrency_policy(
    cronjob: CronJobView, runs: Sequence[JobRun], *, tolerance: float = CRON_TOLERANCE
) -> list[Violation]:
    """R4: Forbid → runs never overlap; Replace → a new run ends every earlier one promptly."""
    ordered = sorted(runs, key=lambda r: r.created_at)
    out: list[Violation] = []
    for i, new in enumerate(ordered):
        for old in ordered[:i]:
            if old.finished_at is not None and old.finished_at <= new.created_at:
                continue
            if cronjob.concurrency_policy == "Forbid":
                out.append(
                    Violation("R4", cronjob.ref, f"{new.name} started while {old.name} was active (Forbid)")
                )
            elif cronjob.concurrency_policy == "Replace" and (
                old.finished_at is None or old.finished_at > new.created_at + tolerance
            ):
                out.append(Violation("R4", cronjob.ref, f"{old.name} not replaced when {new.name} started"))
    return out
