"""P1-P7: the kubelet's probes, judged on recorded container timelines (invariants/probes.py).

Each test applies bare pods from fixtures/conformance/probes/, samples their container status
(and, where it matters, the Service's ready endpoints) every 0.5 s on the wall clock (the API's
startedAt/event times are wall-clock), then hands the samples to the checker. P8 (readiness flip →
endpoint removal, repeated) is measured with E9 in conformance/endpoints/test_propagation.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from meshcert.conformance_support import attach_json, get_pod, label, record_containers, to_json
from meshcert.invariants.probes import (
    ContainerSample,
    check_deletion_readiness,
    check_never_ready,
    check_no_restarts,
    check_not_ready_before_initial_delay,
    check_probe_grace_override,
    check_probe_timeout_enforced,
    check_restart_count_monotonic,
    check_startup_failure_restarts,
    check_startup_gates,
)
from meshcert.invariants.views import PodView, Probe
from meshcert.invariants.violations import assert_no_violations
from meshcert.invariants.workload_views import EventView
from meshcert.kube.apply import apply_manifests
from meshcert.kube.waits import wait_for_pods_running

pytestmark = [pytest.mark.e2e, pytest.mark.conformance, pytest.mark.probes, pytest.mark.dataplane]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "conformance" / "probes"
GROUP = "probes"
CONTAINER = "app"
START_TIMEOUT = 120.0  # image on the node: pods run within seconds; room for a loaded host
Samples = dict[str, list[ContainerSample]]


def _apply(api: ApiClient, ns: str, run_id: str, name: str) -> None:
    apply_manifests(api, [FIXTURES / name], namespace=ns, run_id=run_id)


def _started_at(pod: PodView) -> float:
    status = next(c for c in pod.container_statuses if c.name == CONTAINER)
    assert status.started_at is not None, f"{pod.key}: container has no startedAt"
    return status.started_at.timestamp()


def _probe(pod: PodView, kind: str) -> Probe:
    probe = getattr(pod.containers[0], f"{kind}_probe")
    assert isinstance(probe, Probe), f"{pod.key} has no {kind} probe"
    return probe


def _restarts_at_least(n: int, pods: list[str]) -> object:
    return lambda rec: all(rec.get(p) and rec[p][-1].restart_count >= n for p in pods)


def test_p1_not_ready_before_initial_delay_and_no_restarts(
    kube: ApiClient, namespace: str, run_id: str
) -> None:
    label(GROUP, "P1")
    _apply(kube, namespace, run_id, "p1.yaml")
    samples = record_containers(
        kube, namespace, container=CONTAINER, selector="app=delayed", timeout=60,
        # stop 3 s of samples after the first Ready one, to see that nothing restarts meanwhile
        until=lambda rec: sum(s.ready for s in rec.get("delayed", [])) >= 6,
    )["delayed"]  # fmt: skip
    pod = get_pod(kube, namespace, "delayed")
    started = _started_at(pod)
    first_ready = min((s.at for s in samples if s.ready), default=None)
    attach_json(
        "P1 timeline", {"started_at": started, "first_ready_at": first_ready, "samples": len(samples)}
    )
    assert_no_violations([
        *check_not_ready_before_initial_delay(
            samples, pod="delayed", started_at=started, probe=_probe(pod, "readiness")
        ),
        *check_no_restarts(samples, pod="delayed"),
    ])  # fmt: skip


def test_p2_failing_readiness_never_ready_never_restarted_never_listed(
    kube: ApiClient, namespace: str, run_id: str
) -> None:
    label(GROUP, "P2")
    _apply(kube, namespace, run_id, "p2.yaml")
    wait_for_pods_running(kube, namespace, label_selector="app=unready", count=1, timeout=START_TIMEOUT)
    # 10 s = ten readiness periods and five liveness periods: plenty of chances to go wrong.
    samples = record_containers(
        kube, namespace, container=CONTAINER, selector="app=unready", slices_of="unready", timeout=10,
        until=lambda _: False,
    )["unready"]  # fmt: skip
    assert_no_violations([
        *check_never_ready(samples, pod="unready"),
        *check_no_restarts(samples, pod="unready", invariant="P2"),
    ])  # fmt: skip


def test_p3_failing_liveness_restarts_for_every_handler(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "P3")
    _apply(kube, namespace, run_id, "p3.yaml")
    pods = ["live-exec", "live-http", "live-tcp", "live-grpc"]
    # Two restarts: the first comes after one failed probe, the second after the kubelet's 10 s
    # crash back-off; 120 s bounds it on a loaded host.
    samples = record_containers(
        kube,
        namespace,
        container=CONTAINER,
        timeout=120,
        until=_restarts_at_least(2, pods),  # type: ignore[arg-type]
    )
    attach_json("P3 restart counts", {p: samples[p][-1].restart_count for p in pods})
    assert_no_violations(
        [v for p in pods for v in check_restart_count_monotonic(samples[p], pod=p, min_restarts=2)]
    )


def test_p4_probe_timeout_enforced(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "P4")
    _apply(kube, namespace, run_id, "p4.yaml")
    wait_for_pods_running(
        kube, namespace, label_selector="app in (slow,fast)", count=2, timeout=START_TIMEOUT
    )
    # 10 s: five probe periods of each pod; the fast one is Ready after its first.
    samples = record_containers(kube, namespace, container=CONTAINER, timeout=10, until=lambda _: False)
    pods = {name: get_pod(kube, namespace, name) for name in ("slow", "fast")}
    handler = {"slow": 3.0, "fast": 0.1}  # the ?delay= of each fixture
    assert_no_violations([
        v
        for name, pod in pods.items()
        for v in check_probe_timeout_enforced(
            samples[name], pod=name, probe=_probe(pod, "readiness"),
            handler_seconds=handler[name], kind="readiness",
        )
    ])  # fmt: skip


def test_p5_startup_probe_gates_readiness_and_its_failure_restarts(
    kube: ApiClient, namespace: str, run_id: str
) -> None:
    label(GROUP, "P5")
    _apply(kube, namespace, run_id, "p5.yaml")
    samples = record_containers(
        kube, namespace, container=CONTAINER, timeout=90,
        until=lambda rec: any(s.ready for s in rec.get("gated", []))
        and bool(rec.get("startfail")) and rec["startfail"][-1].restart_count >= 1,
    )  # fmt: skip
    startfail = get_pod(kube, namespace, "startfail")
    # The container has restarted, so its startedAt is the new one's; the first sample (taken
    # before the container started) is a lower bound of the original start: a lenient "earliest".
    first = min(s.at for s in samples["startfail"])
    assert any(s.started is False for s in samples["gated"]), "precondition: never saw started=false"
    assert_no_violations([
        *check_startup_gates(samples["gated"], pod="gated"),
        *check_startup_failure_restarts(
            samples["startfail"], pod="startfail", started_at=first, probe=_probe(startfail, "startup")
        ),
    ])  # fmt: skip


def test_p6_probe_level_grace_period_overrides_the_pods(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "P6")
    _apply(kube, namespace, run_id, "p6.yaml")
    # The first kill comes ~3 s after start and ends ≤ 3 s + slack later; the pod's 60 s grace
    # would take far longer than this 45 s bound.
    record_containers(
        kube,
        namespace,
        container=CONTAINER,
        timeout=45,
        until=_restarts_at_least(1, ["stubborn"]),  # type: ignore[arg-type]
    )
    pod = get_pod(kube, namespace, "stubborn")
    events = [
        EventView.from_api(to_json(e))
        for e in CoreV1Api(kube)
        .list_namespaced_event(namespace, field_selector="involvedObject.name=stubborn")
        .items
    ]
    kills = sorted(e.first_time.timestamp() for e in events if e.reason == "Killing" and e.first_time)
    restarted = pod.container_statuses[0].restart_count >= 1
    durations = [_started_at(pod) - kills[0]] if kills and restarted else []
    attach_json("P6 kill durations (s)", {"durations": durations, "kills": kills})
    assert_no_violations(
        check_probe_grace_override(
            durations, pod="stubborn", probe_grace=3, pod_grace=pod.termination_grace_period_seconds
        )
    )


def test_p7_deletion_drops_readiness_promptly_without_liveness_kills(
    kube: ApiClient, namespace: str, run_id: str
) -> None:
    label(GROUP, "P7")
    _apply(kube, namespace, run_id, "p7.yaml")
    record_containers(
        kube, namespace, container=CONTAINER, timeout=START_TIMEOUT,
        until=lambda rec: bool(rec.get("graceful")) and rec["graceful"][-1].ready,
    )  # fmt: skip
    deleted_at = time.time()
    CoreV1Api(kube).delete_namespaced_pod("graceful", namespace)
    # 12 s of the 20 s drain: past P7's 5 s bound and many liveness periods, while it still runs.
    samples = record_containers(kube, namespace, container=CONTAINER, timeout=12, until=lambda _: False)
    assert samples["graceful"][-1].terminating, "pod not terminating: the check saw nothing"
    assert_no_violations(check_deletion_readiness(samples["graceful"], pod="graceful", deleted_at=deleted_at))
