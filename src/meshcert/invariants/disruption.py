"""S3, S8, S9, S10: evictions, preemption, disruption budgets, recovery after node loss.

Why: these invariants judge what the control plane *removed* and when, so the inputs are recorded
events (taint added/removed, pod deleted, eviction API answers, ready-replica counts over time).

Oracles: pkg/controller/tainteviction (a NoExecute taint evicts a pod tolerating it for t seconds
at taint-time + t; removing the taint cancels the scheduled eviction; e2e test/e2e/node/taints.go);
pkg/scheduler/framework/plugins/defaultpreemption (victims have lower priority and get the
DisruptionTarget condition with reason PreemptionByScheduler; e2e scheduling/preemption.go);
pkg/registry/core/pod/storage/eviction.go (429 TooManyRequests while disruptionsAllowed is 0) and
the disruption controller (disruptionsAllowed = max(0, currentHealthy - desiredHealthy)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshcert.invariants.views import PodView
from meshcert.invariants.violations import ObjectRef, Violation
from meshcert.invariants.workload_views import PdbView

# S3 "≈t": the eviction is due at taint + t; observed deletionTimestamps are truncated to the
# second (hence 1 s early is allowed) and the taint-eviction worker plus watch delivery add a few
# seconds (upstream e2e allows additionalWaitPerDeleteSeconds = 5).
S3_EARLY_SLACK = 1.0
S3_LATE_SLACK = 5.0
DISRUPTION_TARGET = "DisruptionTarget"
PREEMPTION_REASON = "PreemptionByScheduler"
HTTP_TOO_MANY_REQUESTS = 429


def check_noexecute_eviction(
    *,
    pod: str,
    taint_added_at: float,
    toleration_seconds: int | None,
    evicted_at: float | None,
    taint_removed_at: float | None = None,
    late_slack: float = S3_LATE_SLACK,
) -> list[Violation]:
    """S3: evicted at ≈ taint + tolerationSeconds; never if the taint went away first.

    ``toleration_seconds`` None means the pod does not tolerate the taint: evicted at once.
    ``evicted_at``: when deletion was observed (deletionTimestamp), None if it never happened.
    """
    ref = ObjectRef("Pod", pod)
    due = taint_added_at + (toleration_seconds or 0)
    if taint_removed_at is not None and taint_removed_at < due:
        if evicted_at is not None and evicted_at >= taint_removed_at:
            return [Violation("S3", ref, f"evicted at {evicted_at:.1f} after the taint was removed")]
        if evicted_at is not None:
            return [Violation("S3", ref, f"evicted at {evicted_at:.1f}, before it was due at {due:.1f}")]
        return []
    if evicted_at is None:
        return [Violation("S3", ref, f"not evicted; due at {due:.1f}")]
    if evicted_at < due - S3_EARLY_SLACK:
        return [Violation("S3", ref, f"evicted at {evicted_at:.1f}, {due - evicted_at:.1f}s early")]
    if evicted_at > due + late_slack:
        return [Violation("S3", ref, f"evicted at {evicted_at:.1f}, {evicted_at - due:.1f}s late")]
    return []


def check_preemption(
    preemptor: PodView, removed: Sequence[PodView], *, victims_node: str | None = None
) -> list[Violation]:
    """S8: every pod removed for the preemptor had lower priority and carries DisruptionTarget.

    ``removed``: the last observed state of each pod deleted during the preemption window.
    If ``victims_node`` is given, the preemptor must end up bound or nominated there.
    """
    out: list[Violation] = []
    for v in removed:
        if v.priority >= preemptor.priority:
            out.append(
                Violation(
                    "S8", v.ref, f"priority {v.priority} ≥ preemptor {preemptor.key}'s {preemptor.priority}"
                )
            )
        cond = v.condition(DISRUPTION_TARGET)
        if cond is None or cond.status != "True" or cond.reason != PREEMPTION_REASON:
            got = "absent" if cond is None else f"{cond.status}/{cond.reason}"
            out.append(
                Violation("S8", v.ref, f"DisruptionTarget is {got}, expected True/{PREEMPTION_REASON}")
            )
    if victims_node and victims_node not in (preemptor.node_name, preemptor.nominated_node_name):
        out.append(Violation("S8", preemptor.ref, f"not bound or nominated to {victims_node}"))
    return out


@dataclass(frozen=True)
class EvictionAttempt:
    """One POST to pods/eviction: when, which pod, the HTTP status, the PDB's allowance then."""

    at: float
    pod: str
    status_code: int
    disruptions_allowed: int


def check_pdb_evictions(attempts: Sequence[EvictionAttempt], *, pdb: str) -> list[Violation]:
    """S9: no eviction accepted while disruptionsAllowed was 0 (those must get 429)."""
    out: list[Violation] = []
    for a in attempts:
        accepted = 200 <= a.status_code < 300
        if a.disruptions_allowed == 0 and accepted:
            out.append(
                Violation("S9", ObjectRef("Pod", a.pod), f"evicted at {a.at:.1f} while {pdb} allowed 0")
            )
        elif a.disruptions_allowed == 0 and a.status_code != HTTP_TOO_MANY_REQUESTS:
            out.append(
                Violation("S9", ObjectRef("Pod", a.pod), f"refused with {a.status_code}, expected 429")
            )
    return out


def check_pdb_status(pdb: PdbView, pods: Sequence[PodView]) -> list[Violation]:
    """S9: the PDB status agrees with the pods: currentHealthy and disruptionsAllowed."""
    selected = [
        p
        for p in pods
        if pdb.selector is not None
        and p.namespace == pdb.meta.namespace
        and pdb.selector.matches(p.labels)
        and not p.terminating
    ]
    healthy = sum(p.ready for p in selected)
    out: list[Violation] = []
    if pdb.current_healthy != healthy:
        out.append(Violation("S9", pdb.ref, f"currentHealthy {pdb.current_healthy}, Ready pods {healthy}"))
    allowed = max(0, pdb.current_healthy - pdb.desired_healthy)
    if pdb.disruptions_allowed != allowed:
        out.append(
            Violation(
                "S9",
                pdb.ref,
                f"disruptionsAllowed {pdb.disruptions_allowed} != "
                f"currentHealthy - desiredHealthy = {allowed}",
            )
        )
    return out


@dataclass(frozen=True)
class ReplicaSample:
    at: float
    ready: int


def recovery_time(samples: Sequence[ReplicaSample], *, desired: int, since: float) -> float | None:
    """Seconds from ``since`` until ready == desired and stayed so to the end; None if never."""
    ordered = sorted((s for s in samples if s.at >= since), key=lambda s: s.at)
    recovered_at: float | None = None
    for s in ordered:
        if s.ready < desired:
            recovered_at = None
        elif recovered_at is None:
            recovered_at = s.at
    return None if recovered_at is None else recovered_at - since


def check_recovered_within(
    samples: Sequence[ReplicaSample], *, workload: ObjectRef, desired: int, since: float, bound: float
) -> list[Violation]:
    """S10: after cordon/drain/node loss at ``since``, ready replicas recover within ``bound`` s."""
    took = recovery_time(samples, desired=desired, since=since)
    if took is None:
        last = max(samples, key=lambda s: s.at).ready if samples else 0
        return [Violation("S10", workload, f"ready replicas {last}/{desired}: not recovered")]
    if took > bound:
        return [Violation("S10", workload, f"recovered after {took:.1f}s > bound {bound:.0f}s")]
    return []
