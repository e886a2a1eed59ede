"""R1 to R3: rollouts without failed requests, Recreate outages, rollbacks and revision history.

Why: a Deployment's promises are visible in two places — what clients saw during the rollout
(recorded `RequestOutcome`s) and what the controller left behind (ReplicaSets and their revision
annotations). The checkers judge both; R1 also states its statistical bound (DESIGN.md §4).

Oracle: pkg/controller/deployment (rolling.go, recreate.go: Recreate scales old ReplicaSets to 0
and waits for their pods to terminate before creating new ones; rollback.go: a rollback re-uses
the ReplicaSet with the target template and gives it the next revision; sync.go cleanupDeployment
keeps at most revisionHistoryLimit old, scaled-down ReplicaSets). e2e: test/e2e/apps/deployment.go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshcert.invariants.stats import clopper_pearson_interval
from meshcert.invariants.timeline import Outage, RequestOutcome, outages
from meshcert.invariants.violations import ObjectRef, Violation
from meshcert.invariants.workload_views import DeploymentView, ReplicaSetView

R1_MIN_REQUESTS = 10_000  # DESIGN.md R1: "zero failed requests out of ≥10,000"


def check_zero_failed_requests(
    outcomes: Sequence[RequestOutcome], *, workload: ObjectRef, min_requests: int = R1_MIN_REQUESTS
) -> list[Violation]:
    """R1: no request failed, out of at least ``min_requests`` sent at a steady rate.

    The message states the 95 % upper bound on the failure rate the run can support.
    """
    n = len(outcomes)
    failed = [o for o in outcomes if not o.ok]
    out: list[Violation] = []
    if n < min_requests:
        out.append(
            Violation("R1", workload, f"only {n} requests < {min_requests}: too few to claim zero failures")
        )
    if failed:
        bound = clopper_pearson_interval(len(failed), n)
        first = min(o.at for o in failed)
        out.append(Violation("R1", workload, f"{len(failed)} failed (first at {first:.1f}); {bound}"))
    return out


def measure_outage(outcomes: Sequence[RequestOutcome]) -> Outage | None:
    """R2: the longest run of failures (None if every request succeeded)."""
    runs = outages(outcomes)
    return max(runs, key=lambda o: o.length) if runs else None


def check_recreate_outage(
    outcomes: Sequence[RequestOutcome], *, workload: ObjectRef, max_outage: float | None = None
) -> list[Violation]:
    """R2: a Recreate rollout shows an outage (old pods gone before new ones), which recovers.

    No outage at all means either overlapping old and new pods (a Recreate bug) or sampling too
    coarse to see it; both must be looked at. ``max_outage`` optionally bounds its length.
    """
    outage = measure_outage(outcomes)
    if outage is None:
        return [Violation("R2", workload, "no outage observed during a Recreate rollout")]
    if not outage.recovered:
        return [Violation("R2", workload, f"outage since {outage.start:.1f} never recovered")]
    if max_outage is not None and outage.length > max_outage:
        return [Violation("R2", workload, f"outage {outage.length:.1f}s > {max_outage:.0f}s")]
    return []


@dataclass(frozen=True)
class RolloutSample:
    """Running pods of the old and the new template at one instant."""

    at: float
    old_running: int
    new_running: int


def check_recreate_no_overlap(samples: Sequence[RolloutSample], *, workload: ObjectRef) -> list[Violation]:
    """R2: old and new pods never run at the same time under Recreate."""
    both = [s.at for s in samples if s.old_running and s.new_running]
    if both:
        return [Violation("R2", workload, f"old and new pods ran together at {both[0]:.1f}")]
    return []


def _active(replicasets: Sequence[ReplicaSetView]) -> ReplicaSetView | None:
    return max(replicasets, key=lambda r: r.revision, default=None)


def check_rollback(
    deployment: DeploymentView, before: Sequence[ReplicaSetView], after: Sequence[ReplicaSetView]
) -> list[Violation]:
    """R3: after a rollback the previous revision's ReplicaSet is active again, with all replicas.

    ``before``/``after``: the Deployment's ReplicaSets before the rollback and once it completed.
    """
    ref = deployment.ref
    ordered = sorted(before, key=lambda r: r.revision)
    if len(ordered) < 2:
        return [Violation("R3", ref, "precondition: fewer than two revisions before the rollback")]
    previous, current = ordered[-2], ordered[-1]
    active = _active(after)
    if active is None:
        return [Violation("R3", ref, "no ReplicaSet after the rollback")]
    out: list[Violation] = []
    if active.template_hash != previous.template_hash:
        out.append(
            Violation(
                "R3",
                ref,
                f"active ReplicaSet {active.meta.name} (hash {active.template_hash}) is not the previous "
                f"revision's {previous.meta.name} (hash {previous.template_hash})",
            )
        )
    if active.revision <= current.revision:
        out.append(Violation("R3", ref, f"revision {active.revision} not above {current.revision}"))
    if active.replicas != deployment.replicas or active.ready_replicas != deployment.replicas:
        out.append(
            Violation(
                "R3",
                ref,
                f"{active.meta.name}: {active.ready_replicas}/{active.replicas} ready "
                f"of {deployment.replicas}",
            )
        )
    scaled = sorted(r.meta.name for r in after if r is not active and r.replicas)
    if scaled:
        out.append(Violation("R3", ref, f"old ReplicaSets still scaled up: {scaled}"))
    return out


def check_revision_history_limit(
    deployment: DeploymentView, replicasets: Sequence[ReplicaSetView]
) -> list[Violation]:
    """R3: at most revisionHistoryLimit old (scaled-to-zero) ReplicaSets are kept."""
    owned = [r for r in replicasets if r.owner == deployment.meta.name]
    active = _active(owned)
    old = sorted((r for r in owned if r is not active and r.replicas == 0), key=lambda r: r.revision)
    if len(old) > deployment.revision_history_limit:
        names = [f"{r.meta.name}@{r.revision}" for r in old]
        return [
            Violation(
                "R3",
                deployment.ref,
                f"{len(old)} old ReplicaSets > limit {deployment.revision_history_limit}: {names}",
            )
        ]
    return []
