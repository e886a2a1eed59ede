from __future__ import annotations

from dataclasses import replace

from meshcert.invariants.disruption import (
    EvictionAttempt,
    ReplicaSample,
    check_noexecute_eviction,
    check_pdb_evictions,
    check_pdb_status,
    check_preemption,
    check_recovered_within,
    recovery_time,
)
from meshcert.invariants.views import Condition, PodView
from meshcert.invariants.violations import ObjectRef
from meshcert.invariants.workload_views import PdbView

from .builders import pod
from .recorded import items, load

DISRUPTED = (Condition("DisruptionTarget", "True", "PreemptionByScheduler"),)


def test_s3_eviction_timing() -> None:
    ok = check_noexecute_eviction(pod="p", taint_added_at=100, toleration_seconds=30, evicted_at=131)
    assert ok == []
    (v,) = check_noexecute_eviction(pod="p", taint_added_at=100, toleration_seconds=30, evicted_at=120)
    assert v.invariant == "S3" and "early" in v.message
    (v,) = check_noexecute_eviction(pod="p", taint_added_at=100, toleration_seconds=30, evicted_at=140)
    assert "late" in v.message
    assert (
        "not evicted"
        in check_noexecute_eviction(pod="p", taint_added_at=100, toleration_seconds=30, evicted_at=None)[
            0
        ].message
    )


def test_s3_taint_removed_first_cancels_eviction() -> None:
    kept = check_noexecute_eviction(
        pod="p", taint_added_at=100, toleration_seconds=30, evicted_at=None, taint_removed_at=110
    )
    assert kept == []
    (v,) = check_noexecute_eviction(
        pod="p", taint_added_at=100, toleration_seconds=30, evicted_at=131, taint_removed_at=110
    )
    assert "after the taint was removed" in v.message


def test_s8_preemption() -> None:
    preemptor = pod("hi", priority=1000, on="a")
    assert check_preemption(preemptor, [pod("lo", priority=0, conditions=DISRUPTED)], victims_node="a") == []
    violations = check_preemption(
        preemptor, [pod("peer", priority=1000), pod("lo", priority=0)], victims_node="b"
    )
    assert {v.invariant for v in violations} == {"S8"}
    messages = " | ".join(v.message for v in violations)
    assert (
        "priority 1000" in messages and "DisruptionTarget is absent" in messages and "not bound" in messages
    )


def test_s9_evictions() -> None:
    attempts = [EvictionAttempt(1, "web-0", 201, 1), EvictionAttempt(2, "web-1", 429, 0)]
    assert check_pdb_evictions(attempts, pdb="web") == []
    (v,) = check_pdb_evictions([EvictionAttempt(3, "web-1", 201, 0)], pdb="web")
    assert v.invariant == "S9" and "allowed 0" in v.message
    (v,) = check_pdb_evictions([EvictionAttempt(3, "web-1", 500, 0)], pdb="web")
    assert "expected 429" in v.message


def test_s9_pdb_status_against_recorded_pods() -> None:
    pdb = PdbView.from_api(load("pdb-web.json"))
    pods = [PodView.from_api(p) for p in items("pods-web.json")]
    assert check_pdb_status(pdb, pods) == []  # 2 ready non-terminating pods, minAvailable 2
    (v,) = check_pdb_status(replace(pdb, disruptions_allowed=1), pods)
    assert v.invariant == "S9" and "disruptionsAllowed 1 != currentHealthy - desiredHealthy = 0" in v.message
    (v,) = check_pdb_status(replace(pdb, disruptions_allowed=1, current_healthy=3), pods)
    assert "currentHealthy 3, Ready pods 2" in v.message


def test_s10_recovery() -> None:
    samples = [
        ReplicaSample(0, 3),
        ReplicaSample(10, 1),
        ReplicaSample(40, 3),
        ReplicaSample(50, 2),
        ReplicaSample(70, 3),
    ]
    assert recovery_time(samples, desired=3, since=10) == 60
    ref = ObjectRef("Deployment", "web", "ns")
    assert check_recovered_within(samples, workload=ref, desired=3, since=10, bound=90) == []
    (v,) = check_recovered_within(samples, workload=ref, desired=3, since=10, bound=30)
    assert v.invariant == "S10" and "60.0s > bound 30s" in v.message
    (v,) = check_recovered_within(samples[:2], workload=ref, desired=3, since=10, bound=30)
    assert "not recovered" in v.message
