"""R1-R4: what clients see during rollouts, and what the Deployment/Job/CronJob controllers leave.

Manifests: fixtures/conformance/rollouts/. Checkers: invariants/rollouts.py, jobs.py.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, AppsV1Api, BatchV1Api

from meshcert.conformance_support import (
    HostSampler,
    attach_json,
    get_service,
    label,
    list_pods,
    summary_outcomes,
    to_json,
    worker_nodes,
)
from meshcert.errors import WaitTimeout
from meshcert.invariants.convergence import Observation, converge, converge_value
from meshcert.invariants.jobs import (
    JobRun,
    check_concurrency_policy,
    check_cronjob_schedule,
    check_job_backoff_limit,
    check_job_completed,
)
from meshcert.invariants.rollouts import (
    check_recreate_outage,
    check_revision_history_limit,
    check_rollback,
    check_zero_failed_requests,
    measure_outage,
)
from meshcert.invariants.violations import assert_no_violations
from meshcert.invariants.workload_views import CronJobView, DeploymentView, JobView, ReplicaSetView
from meshcert.kube.apply import apply_manifests
from meshcert.kube.exec import CLIENT_LABEL
from meshcert.kube.exec import testapp_load as load_from_pod
from meshcert.kube.waits import (
    wait_for_deployment_available,
    wait_for_deployment_rolled_out,
    wait_for_endpoints,
)

pytestmark = [pytest.mark.e2e, pytest.mark.conformance, pytest.mark.rollout, pytest.mark.dataplane]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "conformance" / "rollouts"
GROUP = "rollouts"
READY_TIMEOUT = 120.0  # pods start in seconds; room for a loaded 2-core host
ROLLOUT_TIMEOUT = 180.0  # R1: three surges of one pod, each Ready in ~2 s, old ones drain 10 s
#: R1's load: 200 req/s for 60 s = 12,000 requests (≥ 10,000 required), one connection each.
R1_RATE, R1_COUNT = 200, 12_000
#: Seconds of steady state before the change (STYLE.md §9: observe before you disturb).
STEADY = 5.0
#: R1: the client itself may fall behind its schedule on a shared 2-core host; ≤ 1 % late sends
#: still make a steady rate (late ones are still sent and counted).
MAX_LATE_FRACTION = 0.01
#: R2 sampling: 20 req/s resolves the outage to 50 ms; 1 s per-request timeout.
R2_RATE = 20.0


def _apply(api: ApiClient, ns: str, run_id: str, name: str) -> None:
    apply_manifests(api, [FIXTURES / name], namespace=ns, run_id=run_id)


def _restart(api: ApiClient, ns: str, name: str, value: str) -> None:
    """Change the pod template (as `kubectl rollout restart` does): a new revision."""
    body = {"spec": {"template": {"metadata": {"annotations": {"meshcert.io/revision": value}}}}}
    AppsV1Api(api).patch_namespaced_deployment(name, ns, body)


def _deployment(api: ApiClient, ns: str, name: str) -> DeploymentView:
    return DeploymentView.from_api(to_json(AppsV1Api(api).read_namespaced_deployment(name, ns)))


def _replicasets(api: ApiClient, ns: str) -> list[ReplicaSetView]:
    return [ReplicaSetView.from_api(to_json(r)) for r in AppsV1Api(api).list_namespaced_replica_set(ns).items]


@pytest.mark.slow
@pytest.mark.exclusive  # the client must hold 200 req/s on schedule: 4 % late beside the mesh lane
def test_r1_rolling_update_fails_no_request(kube: ApiClient, namespace: str, run_id: str) -> None:
    """R1 without mesh retries (no mesh exists yet): the drain itself must be right, since no
    retry can hide a request sent to a pod that is going away."""
    label(GROUP, "R1")
    _apply(kube, namespace, run_id, "rolling.yaml")
    wait_for_deployment_available(kube, namespace, "web", timeout=READY_TIMEOUT)
    ips = {ip for p in list_pods(kube, namespace, "app=web") for ip in p.pod_ips}
    wait_for_endpoints(kube, namespace, "web", expected=ips, timeout=READY_TIMEOUT)
    with ThreadPoolExecutor(1) as pool:
        load: Future[dict[str, Any]] = pool.submit(
            load_from_pod, kube, namespace, url=f"http://web.{namespace}/", rate=R1_RATE, count=R1_COUNT,
            run_id=run_id, keepalive=False, timeout=R1_COUNT / R1_RATE + READY_TIMEOUT,
        )  # fmt: skip
        running = f"{CLIENT_LABEL}=true"
        converge_value(
            lambda: [p for p in list_pods(kube, namespace, running) if p.phase == "Running"] or None,
            what="load client running", timeout=READY_TIMEOUT, interval=0.5,
        )  # fmt: skip
        time.sleep(STEADY)
        began = time.monotonic()
        _restart(kube, namespace, "web", run_id)
        wait_for_deployment_rolled_out(kube, namespace, "web", timeout=ROLLOUT_TIMEOUT)
        rollout = time.monotonic() - began
        assert not load.done(), (
            "the load ended before the rollout finished: the check covered only part of it"
        )
        summary = load.result()
    dep = _deployment(kube, namespace, "web")
    attach_json("R1 rollout under load", {"rollout_seconds": rollout, "load": summary})
    assert dep.revision == 2 and dep.updated_replicas == 3, f"rollout incomplete: {dep}"
    assert summary["late"] <= MAX_LATE_FRACTION * summary["sent"], f"client fell behind its rate: {summary}"
    assert_no_violations(check_zero_failed_requests(summary_outcomes(summary), workload=dep.ref))


def test_r2_recreate_outage_observed_and_measured(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "R2")
    _apply(kube, namespace, run_id, "recreate.yaml")
    wait_for_deployment_available(kube, namespace, "web", timeout=READY_TIMEOUT)
    node = worker_nodes(kube)[0]
    port = get_service(kube, namespace, "web").ports[0].node_port
    with HostSampler(node.internal_ip, port, rate=R2_RATE) as sampler:
        converge_value(
            lambda: sum(o.ok for o in sampler.outcomes[-20:]) == 20 or None,
            what="20 consecutive answers before the rollout", timeout=60, interval=0.5,
        )  # fmt: skip
        changed = time.monotonic()
        _restart(kube, namespace, "web", run_id)
        wait_for_deployment_rolled_out(kube, namespace, "web", timeout=ROLLOUT_TIMEOUT)
        converge_value(
            lambda: sum(o.ok for o in sampler.outcomes[-20:]) == 20 or None,
            what="20 consecutive answers after the rollout", timeout=60, interval=0.5,
        )  # fmt: skip
    outcomes = list(sampler.outcomes)
    outage = measure_outage(outcomes)
    attach_json(
        "R2 outage",
        {
            "requests": len(outcomes), "failed": sum(not o.ok for o in outcomes), "rate": R2_RATE,
            "outage_seconds": outage.length if outage else None,
            "outage_started_after_change_s": outage.start - changed if outage else None,
        },
    )  # fmt: skip
    ref = _deployment(kube, namespace, "web").ref
    assert_no_violations(check_recreate_outage(outcomes, workload=ref))
    assert outage is not None and outage.start >= changed, f"outage {outage} began before the change"


#: The deployment controller re-syncs a Deployment within seconds of its last ReplicaSet change;
#: 30 s covers a loaded 2-core host and is far below "never trimmed".
HISTORY_TRIM_TIMEOUT = 30.0


def test_r3_rollback_restores_previous_replicaset_and_history_limit(
    kube: ApiClient, namespace: str, run_id: str
) -> None:
    label(GROUP, "R3")
    _apply(kube, namespace, run_id, "history.yaml")
    wait_for_deployment_rolled_out(kube, namespace, "web", timeout=READY_TIMEOUT)
    _restart(kube, namespace, "web", "two")
    wait_for_deployment_rolled_out(kube, namespace, "web", timeout=READY_TIMEOUT)
    before = _replicasets(kube, namespace)
    previous = sorted(before, key=lambda r: r.revision)[-2]
    # `kubectl rollout undo`: put the previous ReplicaSet's template back (minus its hash label).
    raw = to_json(AppsV1Api(kube).read_namespaced_replica_set(previous.meta.name, namespace))
    template = raw["spec"]["template"]
    template["metadata"]["labels"].pop("pod-template-hash", None)
    # A strategic merge keeps keys the patch omits: drop the newer revision's annotation explicitly.
    template["metadata"]["annotations"] = {
        "meshcert.io/revision": None,
        **template["metadata"].get("annotations", {}),
    }
    AppsV1Api(kube).patch_namespaced_deployment("web", namespace, {"spec": {"template": template}})
    wait_for_deployment_rolled_out(kube, namespace, "web", timeout=READY_TIMEOUT)
    dep = _deployment(kube, namespace, "web")
    assert_no_violations(check_rollback(dep, before, _replicasets(kube, namespace)))
    for value in ("four", "five", "six"):  # three more revisions: four old ReplicaSets > limit 2
        _restart(kube, namespace, "web", value)
        wait_for_deployment_rolled_out(kube, namespace, "web", timeout=READY_TIMEOUT)

    # The controller trims old ReplicaSets on a sync after the rollout completes, not with it
    # (a loaded run saw 3 > 2 right after "rolled out"): converge on the trim, then judge it.
    def trimmed() -> Observation[list[ReplicaSetView]]:
        rs = _replicasets(kube, namespace)
        found = check_revision_history_limit(_deployment(kube, namespace, "web"), rs)
        return Observation(not found, rs, "; ".join(v.message for v in found))

    # On a timeout the state is judged below as it is, so the failure is the invariant's diff.
    with contextlib.suppress(WaitTimeout):
        converge(trimmed, what="old ReplicaSets trimmed to the history limit", timeout=HISTORY_TRIM_TIMEOUT)
    rs = _replicasets(kube, namespace)
    attach_json(
        "R3 replicasets", [{"name": r.meta.name, "revision": r.revision, "replicas": r.replicas} for r in rs]
    )
    assert_no_violations(check_revision_history_limit(_deployment(kube, namespace, "web"), rs))


def _job(api: ApiClient, ns: str, name: str) -> JobView:
    return JobView.from_api(to_json(BatchV1Api(api).read_namespaced_job(name, ns)))


def test_r4_job_completions_and_backoff_limit(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "R4")
    _apply(kube, namespace, run_id, "jobs.yaml")
    # The failing Job: two failures 10 s apart (the controller's first back-off), then Failed.
    done = converge_value(
        lambda: (c, f) if (c := _job(kube, namespace, "complete")).condition("Complete")
        and (f := _job(kube, namespace, "failing")).condition("Failed") else None,
        what="Job complete Complete and Job failing Failed", timeout=120,
    ).observed  # fmt: skip
    assert_no_violations([*check_job_completed(done[0]), *check_job_backoff_limit(done[1])])


@pytest.mark.slow
def test_r4_cronjob_fires_on_schedule_without_overlap(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "R4")
    # Created within 5 s of a minute boundary, the CronJob might legitimately miss that minute.
    if 60 - time.time() % 60 < 5:
        threading.Event().wait(60 - time.time() % 60 + 1)
    window_start = time.time()
    _apply(kube, namespace, run_id, "cronjob.yaml")
    cron = CronJobView.from_api(to_json(BatchV1Api(kube).read_namespaced_cron_job("tick", namespace)))
    # Wait for one scheduled minute to pass (≤ 60 s) plus the checker's creation tolerance.
    next_minute = (int(window_start) // 60 + 1) * 60
    threading.Event().wait(max(0.0, next_minute + 15 - time.time()))
    window_end = time.time()
    runs = [
        JobRun(
            j.meta.name,
            j.meta.creation_timestamp.timestamp() if j.meta.creation_timestamp else 0.0,
            j.completion_time.timestamp() if j.completion_time else None,
        )
        for j in (JobView.from_api(to_json(x)) for x in BatchV1Api(kube).list_namespaced_job(namespace).items)
    ]
    attach_json("R4 cron runs", [r.__dict__ for r in runs])
    assert runs, "the CronJob never fired"
    assert_no_violations([
        *check_cronjob_schedule(cron, runs, window_start=window_start, window_end=window_end),
        *check_concurrency_policy(cron, runs),
    ])  # fmt: skip
