"""E9 and P8: how long readiness takes to reach EndpointSlices and kube-proxy, both ways.

One measurement feeds both tests (module-scoped, ≥ 10 repeats): the measured pod's readiness is
flipped through the API server's pod proxy; every 0.1 s the test reads the pod's Ready condition
and the Service's ready endpoints, while a `HostSampler` sends 50 req/s through the NodePort of a
worker (kube-proxy, as in-cluster traffic) and records which pod answered — all on this process's
monotonic clock. Up: pod Ready → in a ready endpoint → first answer from it (E9). Down: readiness
turned off → endpoint removed (P8's bound failureThreshold*period + timeout + 2 s) while the
always-ready 'stable' pod keeps every request succeeding.
Manifests: fixtures/conformance/endpoints/propagation.yaml.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from meshcert.conformance_support import (
    HostSampler,
    attach_json,
    get_pod,
    get_service,
    label,
    list_slices,
    ready_endpoint_ips,
    set_pod_readiness,
    worker_nodes,
)
from meshcert.invariants.convergence import converge_value
from meshcert.invariants.probes import (
    check_no_client_errors,
    check_readiness_removal,
    readiness_removal_bound,
)
from meshcert.invariants.propagation import (
    PropagationReport,
    PropagationSample,
    StageStats,
    check_all_propagated,
    propagation_report,
)
from meshcert.invariants.stats import percentile_ci
from meshcert.invariants.timeline import RequestOutcome
from meshcert.invariants.views import Probe
from meshcert.invariants.violations import Violation, assert_no_violations
from meshcert.kube.apply import apply_manifests
from meshcert.kube.namespaces import create_namespace, delete_namespace
from meshcert.kube.waits import wait_for_deployment_available, wait_for_pods_ready
from meshcert.runid import new_run_id

pytestmark = [
    pytest.mark.e2e, pytest.mark.conformance, pytest.mark.endpoints, pytest.mark.dataplane, pytest.mark.slow,
]  # fmt: skip

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "conformance" / "endpoints" / "propagation.yaml"
GROUP = "endpoints"
REPEATS = 12  # ≥ 10 (the issue); each takes ~6 s
POLL = 0.1  # s; resolves stage delays to ~0.1 s at ~20 API requests/s
RATE = 50.0  # req/s through the NodePort; ~25/s reach the measured pod, so ~40 ms resolution
#: kube-proxy needs ~1 s after the slice change to stop routing to the removed pod; 2 s more
#: makes sure the next "first answer" really is a new route, not an old one.
SETTLE = 2.0
STAGE_TIMEOUT = 20.0  # far above every bound here; a stage that takes longer is a finding


@dataclass(frozen=True)
class Measurement:
    up: list[PropagationSample]
    down: list[tuple[float, float | None]]  # (flipped_at, removed_at)
    outcomes: list[RequestOutcome]
    window: tuple[float, float]
    probe: Probe


def _until(what: str, fn: object) -> float:
    """Poll ``fn`` every POLL s until it is true; return the monotonic time it first was."""

    def probe() -> float | None:
        return time.monotonic() if fn() else None  # type: ignore[operator]

    return converge_value(probe, what=what, timeout=STAGE_TIMEOUT, interval=POLL).observed


def _measure(api: ApiClient, ns: str, sampler: HostSampler) -> Measurement:
    pod = get_pod(api, ns, "flip")
    ip = pod.pod_ips[0]
    probe = pod.containers[0].readiness_probe
    assert probe is not None
    in_slice = lambda: ip in ready_endpoint_ips(list_slices(api, ns, "prop"))  # noqa: E731
    _until("flip reachable", lambda: any(o.backend == "flip" for o in sampler.outcomes[-200:]))
    start = time.monotonic()
    up: list[PropagationSample] = []
    down: list[tuple[float, float | None]] = []
    for i in range(REPEATS):
        flipped = time.monotonic()
        set_pod_readiness(api, ns, "flip", ok=False)
        removed = _until("flip removed", lambda: not in_slice())
        down.append((flipped, removed))
        _until("flip not Ready", lambda: not get_pod(api, ns, "flip").ready)
        time.sleep(SETTLE)
        t_up = time.monotonic()
        set_pod_readiness(api, ns, "flip", ok=True)
        seen: dict[str, float] = {}
        deadline = t_up + STAGE_TIMEOUT
        while len(seen) < 3 and time.monotonic() < deadline:  # one loop, so no stage waits on another
            before = time.monotonic()  # each read is dated by when it was sent
            if "ready" not in seen and get_pod(api, ns, "flip").ready:
                seen["ready"] = before
            before = time.monotonic()
            if "listed" not in seen and in_slice():
                seen["listed"] = before
            answers = [o.at for o in sampler.outcomes[-200:] if o.backend == "flip" and o.at >= t_up]
            if answers:
                seen.setdefault("reached", min(answers))  # the answered request's own send time
            time.sleep(POLL)
        reached = seen.get("reached")
        # Causality bounds what polling sees late: kube-proxy routes only to listed endpoints and
        # the controller lists only Ready pods, so an earlier later-stage event dates the earlier one.
        listed = (
            min(x for x in (seen.get("listed"), reached) if x is not None) if seen.get("listed") else None
        )
        ready = min(x for x in (seen.get("ready", t_up + STAGE_TIMEOUT), listed) if x is not None)
        up.append(PropagationSample(f"flip#{i}", ready, listed, reached))
        if len(seen) < 3:
            break  # a stage never happened: the checks report it; do not wait through more repeats
    return Measurement(up, down, list(sampler.outcomes), (start, time.monotonic()), probe)


@pytest.fixture(scope="module")
def measurement(kube: ApiClient, run_id: str) -> Iterator[Measurement]:
    ns = create_namespace(kube, f"e9-p8-{new_run_id()}", run_id=run_id)
    try:
        apply_manifests(kube, [FIXTURE], namespace=ns, run_id=run_id)
        wait_for_deployment_available(kube, ns, "stable", timeout=120)
        wait_for_pods_ready(kube, ns, label_selector="app=prop", count=2, timeout=120)
        port = get_service(kube, ns, "prop").ports[0].node_port
        with HostSampler(worker_nodes(kube)[0].internal_ip, port, rate=RATE) as sampler:
            yield _measure(kube, ns, sampler)
    finally:
        delete_namespace(kube, ns, wait=False)


def _stats(s: StageStats) -> dict[str, object]:
    def est(e: object) -> object:
        return None if e is None else {"estimate": e.estimate, "ci": [e.lower, e.upper], "n": e.n}  # type: ignore[attr-defined]

    return {"n": s.n, "missing": s.missing, "p50": est(s.p50), "p99": est(s.p99), "max": s.max}


def _report_json(report: PropagationReport) -> dict[str, object]:
    return {
        "ready_to_slice": _stats(report.to_slice),
        "slice_to_proxy": _stats(report.to_proxy),
        "ready_to_reachable": _stats(report.end_to_end),
        "out_of_order": list(report.negative),
    }


def test_e9_ready_to_endpointslice_to_kube_proxy(measurement: Measurement) -> None:
    label(GROUP, "E9")
    report = propagation_report(measurement.up)
    bound = readiness_removal_bound(measurement.probe)
    attach_json(
        "E9 propagation (s)", {**_report_json(report), "repeats": len(measurement.up), "bound_s": bound}
    )
    found: list[Violation] = check_all_propagated(measurement.up)
    if report.negative:
        found.append(Violation("E9", None, f"stages out of order for {list(report.negative)}"))
    worst = report.end_to_end.max
    if worst is not None and worst > bound:
        found.append(Violation("E9", None, f"ready→reachable took {worst:.2f}s > bound {bound:.0f}s"))
    assert len(measurement.up) >= 10
    assert_no_violations(found)


@pytest.mark.probes
def test_p8_readiness_flip_removes_endpoint_in_bound_without_client_errors(measurement: Measurement) -> None:
    label("probes", "P8")
    delays = [r - f for f, r in measurement.down if r is not None]
    attach_json(
        "P8 readiness-flip → endpoint removal (s)",
        {
            "n": len(delays), "bound_s": readiness_removal_bound(measurement.probe),
            "p50": percentile_ci(delays, 0.5).estimate if delays else None,
            "p99": percentile_ci(delays, 0.99).estimate if delays else None, "max": max(delays, default=None),
            "requests": len(measurement.outcomes), "failed": sum(not o.ok for o in measurement.outcomes),
        },
    )  # fmt: skip
    found = [
        v
        for i, (flipped, removed) in enumerate(measurement.down)
        for v in check_readiness_removal(
            pod=f"flip#{i}", flipped_at=flipped, removed_at=removed, probe=measurement.probe
        )
    ]
    start, end = measurement.window
    assert len(measurement.down) >= 10
    assert_no_violations([*found, *check_no_client_errors(measurement.outcomes, start=start, end=end)])
