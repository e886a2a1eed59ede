from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from meshcert.errors import ConfigError
from meshcert.invariants.cron import CronSchedule
from meshcert.invariants.jobs import (
    JobRun,
    check_concurrency_policy,
    check_cronjob_schedule,
    check_job_backoff_limit,
    check_job_completed,
)
from meshcert.invariants.rollouts import (
    RolloutSample,
    check_recreate_no_overlap,
    check_recreate_outage,
    check_revision_history_limit,
    check_rollback,
    check_zero_failed_requests,
    measure_outage,
)
from meshcert.invariants.timeline import RequestOutcome
from meshcert.invariants.violations import ObjectRef
from meshcert.invariants.workload_views import CronJobView, DeploymentView, JobView, ReplicaSetView

from .recorded import items, load

REF = ObjectRef("Deployment", "web", "ns")
DEP = DeploymentView.from_api(load("deployment-web.json"))
OLD, NEW = (ReplicaSetView.from_api(r) for r in items("replicasets-web.json"))
T0 = datetime(2025, 11, 24, 10, 40, tzinfo=UTC).timestamp()


def test_r1_zero_failures() -> None:
    ok = [RequestOutcome(i * 0.01, True) for i in range(10_000)]
    assert check_zero_failed_requests(ok, workload=REF) == []
    (v,) = check_zero_failed_requests(ok[:500], workload=REF)
    assert v.invariant == "R1" and "too few" in v.message
    broken = [*ok[:9_998], RequestOutcome(99.99, False), RequestOutcome(100.0, False)]
    (v,) = check_zero_failed_requests(broken, workload=REF)
    assert "2 failed" in v.message and "clopper-pearson" in v.message


def test_r2_outage() -> None:
    outcomes = [RequestOutcome(t, not 5 <= t < 12) for t in range(20)]
    outage = measure_outage(outcomes)
    assert outage is not None and (outage.start, outage.end, outage.failed, outage.length) == (5, 12, 7, 7)
    assert check_recreate_outage(outcomes, workload=REF) == []
    (v,) = check_recreate_outage(outcomes, workload=REF, max_outage=5)
    assert v.invariant == "R2" and "7.0s > 5s" in v.message
    (v,) = check_recreate_outage([RequestOutcome(t, True) for t in range(5)], workload=REF)
    assert "no outage" in v.message
    (v,) = check_recreate_outage([RequestOutcome(0, True), RequestOutcome(1, False)], workload=REF)
    assert "never recovered" in v.message


def test_r2_no_overlap() -> None:
    assert (
        check_recreate_no_overlap(
            [RolloutSample(0, 3, 0), RolloutSample(1, 0, 0), RolloutSample(2, 0, 3)], workload=REF
        )
        == []
    )
    (v,) = check_recreate_no_overlap([RolloutSample(1, 1, 1)], workload=REF)
    assert v.invariant == "R2"


def test_r3_rollback() -> None:
    restored = replace(
        OLD,
        replicas=3,
        ready_replicas=3,
        meta=replace(OLD.meta, annotations={"deployment.kubernetes.io/revision": "3"}),
    )
    scaled_down = replace(NEW, replicas=0, ready_replicas=0)
    assert check_rollback(DEP, [OLD, NEW], [restored, scaled_down]) == []
    (v,) = check_rollback(
        DEP,
        [OLD, NEW],
        [replace(NEW, meta=replace(NEW.meta, annotations={"deployment.kubernetes.io/revision": "3"})), OLD],
    )
    assert v.invariant == "R3" and "not the previous revision" in v.message


def test_r3_revision_history_limit() -> None:
    assert check_revision_history_limit(DEP, [OLD, NEW]) == []
    extra = [replace(OLD, meta=replace(OLD.meta, name=f"web-old{i}")) for i in range(3)]
    (v,) = check_revision_history_limit(DEP, [*extra, NEW])
    assert v.invariant == "R3" and "3 old ReplicaSets > limit 2" in v.message


def test_r4_jobs() -> None:
    done = JobView.from_api(load("job-complete.json"))
    assert check_job_completed(done) == []
    short = replace(done, succeeded=2)
    (v,) = check_job_completed(short)
    assert v.invariant == "R4" and "succeeded 2, completions 3" in v.message
    failing = JobView.from_api(load("job-backoff.json"))
    assert check_job_backoff_limit(failing) == []
    (v,) = check_job_backoff_limit(replace(failing, failed=7))
    assert "expected 3..3" in v.message
    assert check_job_backoff_limit(done)[0].invariant == "R4"


@pytest.mark.parametrize(
    ("schedule", "when", "fires"),
    [
        ("*/15 * * * *", (10, 30), True),
        ("*/15 * * * *", (10, 31), False),
        ("0 9-17 * * MON-FRI", (9, 0), True),  # 2025-11-24 is a Monday
        ("0 9 * * SAT,SUN", (9, 0), False),
        ("0 9 24 * SUN", (9, 0), True),  # both day fields restricted: either matches
        ("@hourly", (11, 0), True),
        ("5 10 * NOV 1", (10, 5), True),
        ("0 0 * * 7", (0, 0), False),  # 7 = Sunday
    ],
)
def test_cron_schedule(schedule: str, when: tuple[int, int], fires: bool) -> None:
    t = datetime(2025, 11, 24, *when, tzinfo=UTC)
    assert CronSchedule.parse(schedule).matches(t) is fires


@pytest.mark.parametrize("bad", ["* * * *", "61 * * * *", "*/0 * * * *", "a * * * *", "@every 5m"])
def test_cron_rejects(bad: str) -> None:
    with pytest.raises(ConfigError):
        CronSchedule.parse(bad)


def test_r4_cronjob_schedule_and_forbid() -> None:
    cron = CronJobView.from_api(load("cronjob-hello.json"))
    runs = [JobRun(f"hello-{i}", T0 + 60 * i + 2, T0 + 60 * i + 9) for i in range(5)]
    assert check_cronjob_schedule(cron, runs, window_start=T0, window_end=T0 + 270) == []
    assert check_concurrency_policy(cron, runs) == []
    missing = runs[:2] + runs[3:]
    (v,) = check_cronjob_schedule(cron, missing, window_start=T0, window_end=T0 + 270)
    assert v.invariant == "R4" and str(v.diff) == "missing: {2025-11-24T10:42:00Z}, extra: {}"
    stray = [*runs, JobRun("hello-x", T0 + 90)]
    (v,) = check_cronjob_schedule(cron, stray, window_start=T0, window_end=T0 + 270)
    assert v.diff is not None and v.diff.extra == {"hello-x@2025-11-24T10:41:30Z"}


def test_r4_forbid_skips_while_active_and_never_overlaps() -> None:
    cron = CronJobView.from_api(load("cronjob-hello.json"))
    long_run = [JobRun("hello-0", T0 + 1, T0 + 150), JobRun("hello-3", T0 + 181, T0 + 190)]
    assert check_cronjob_schedule(cron, long_run, window_start=T0, window_end=T0 + 200) == []
    overlapping = [JobRun("hello-0", T0 + 1, T0 + 150), JobRun("hello-1", T0 + 61, T0 + 70)]
    (v,) = check_concurrency_policy(cron, overlapping)
    assert "Forbid" in v.message
    replace_policy = replace(cron, concurrency_policy="Replace")
    assert (
        check_concurrency_policy(replace_policy, [JobRun("a", T0, T0 + 62), JobRun("b", T0 + 60, None)]) == []
    )
    (v,) = check_concurrency_policy(replace_policy, [JobRun("a", T0, None), JobRun("b", T0 + 60, None)])
    assert "not replaced" in v.message
