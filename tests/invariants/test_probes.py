from __future__ import annotations

from meshcert.invariants.probes import (
    ContainerSample,
    check_deletion_readiness,
    check_never_ready,
    check_no_client_errors,
    check_no_restarts,
    check_not_ready_before_initial_delay,
    check_probe_grace_override,
    check_probe_timeout_enforced,
    check_readiness_removal,
    check_restart_count_monotonic,
    check_startup_failure_restarts,
    check_startup_gates,
    readiness_removal_bound,
)
from meshcert.invariants.timeline import RequestOutcome
from meshcert.invariants.views import PodView, Probe

from .recorded import items

POD = PodView.from_api(items("pods-web.json")[0])
READINESS = POD.containers[0].readiness_probe
assert READINESS is not None


def samples(*states: tuple[float, bool, int]) -> list[ContainerSample]:
    return [ContainerSample(at, ready, restarts) for at, ready, restarts in states]


def test_sample_from_recorded_pod() -> None:
    s = ContainerSample.from_pod(1.0, POD, container="echo")
    assert (s.ready, s.restart_count, s.started) == (True, 0, True)
    assert ContainerSample.from_pod(1.0, POD, container="nope").ready is False


def test_p1_initial_delay() -> None:
    good = samples((0, False, 0), (4, False, 0), (6, True, 0))
    assert check_not_ready_before_initial_delay(good, pod="p", started_at=0, probe=READINESS) == []
    (v,) = check_not_ready_before_initial_delay(samples((3, True, 0)), pod="p", started_at=0, probe=READINESS)
    assert v.invariant == "P1" and "before initialDelay ends at 5.0" in v.message
    (v,) = check_not_ready_before_initial_delay(
        samples((9, False, 0)), pod="p", started_at=0, probe=READINESS
    )
    assert "never became Ready" in v.message
    assert check_no_restarts(good, pod="p") == []
    (v,) = check_no_restarts(samples((1, True, 1)), pod="p")
    assert v.invariant == "P1"


def test_p2_never_ready() -> None:
    assert check_never_ready(samples((1, False, 0), (30, False, 0)), pod="p") == []
    listed = [ContainerSample(5, False, 0, in_endpoints=True)]
    (v,) = check_never_ready(listed, pod="p")
    assert v.invariant == "P2" and "endpoint" in v.message
    assert check_never_ready(samples((5, True, 0)), pod="p")[0].invariant == "P2"


def test_p3_restart_count_monotonic() -> None:
    assert (
        check_restart_count_monotonic(samples((1, False, 0), (20, False, 1), (50, False, 2)), pod="p") == []
    )
    violations = check_restart_count_monotonic(
        samples((1, False, 2), (20, False, 1)), pod="p", min_restarts=3
    )
    assert [v.invariant for v in violations] == ["P3", "P3"]
    assert "fell 2→1" in violations[0].message


def test_p4_timeout() -> None:
    probe = Probe("exec", timeout_seconds=1)
    never = samples((1, False, 0), (20, False, 0))
    assert (
        check_probe_timeout_enforced(never, pod="p", probe=probe, handler_seconds=3, kind="readiness") == []
    )
    (v,) = check_probe_timeout_enforced(
        samples((5, True, 0)), pod="p", probe=probe, handler_seconds=3, kind="readiness"
    )
    assert v.invariant == "P4"
    restarted = samples((40, False, 1))
    assert (
        check_probe_timeout_enforced(restarted, pod="p", probe=probe, handler_seconds=3, kind="liveness")
        == []
    )
    (v,) = check_probe_timeout_enforced(never, pod="p", probe=probe, handler_seconds=3, kind="liveness")
    assert "no restart" in v.message


def test_p5_startup() -> None:
    gated = [ContainerSample(1, False, 0, started=False), ContainerSample(9, True, 0, started=True)]
    assert check_startup_gates(gated, pod="p") == []
    (v,) = check_startup_gates([ContainerSample(1, True, 0, started=False)], pod="p")
    assert v.invariant == "P5"
    probe = Probe("httpGet", failure_threshold=3, period_seconds=5)
    assert (
        check_startup_failure_restarts(
            samples((4, False, 0), (12, False, 1)), pod="p", started_at=0, probe=probe
        )
        == []
    )
    (v,) = check_startup_failure_restarts(samples((4, False, 1)), pod="p", started_at=0, probe=probe)
    assert "before 10.0" in v.message


def test_p6_probe_grace() -> None:
    assert check_probe_grace_override([5.5, 6.0], pod="p", probe_grace=5, pod_grace=60) == []
    (v,) = check_probe_grace_override([58.0], pod="p", probe_grace=5, pod_grace=60)
    assert v.invariant == "P6" and "> probe grace 5s" in v.message
    assert check_probe_grace_override([], pod="p", probe_grace=5, pod_grace=60)[0].invariant == "P6"


def test_p7_deletion() -> None:
    good = samples((0, True, 0), (2, True, 0), (6, False, 0))
    assert check_deletion_readiness(good, pod="p", deleted_at=1) == []
    violations = check_deletion_readiness(samples((0, True, 0), (10, True, 1)), pod="p", deleted_at=1)
    assert [v.invariant for v in violations] == ["P7", "P7"]


def test_p8_removal_bound_and_client_errors() -> None:
    assert readiness_removal_bound(READINESS) == 3 * 2 + 1 + 2
    assert check_readiness_removal(pod="p", flipped_at=10, removed_at=18.5, probe=READINESS) == []
    (v,) = check_readiness_removal(pod="p", flipped_at=10, removed_at=19.5, probe=READINESS)
    assert v.invariant == "P8" and "9.5s > 9s" in v.message
    assert (
        "never removed"
        in check_readiness_removal(pod="p", flipped_at=10, removed_at=None, probe=READINESS)[0].message
    )
    outcomes = [RequestOutcome(t, t != 30) for t in range(0, 40)]
    assert check_no_client_errors(outcomes, start=0, end=20) == []
    (v,) = check_no_client_errors(outcomes, start=0, end=35)
    assert v.invariant == "P8" and "1 failed request(s) at [30.0]" in v.message
