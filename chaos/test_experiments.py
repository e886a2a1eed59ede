"""Chaos suites: thin tests that run an experiment (chaos/experiments/) and assert its verdict."""

from __future__ import annotations

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from chaos.conftest import run
from meshcert.cluster.base import ClusterInfo
from meshcert.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.dataplane]


def _run(  # noqa: PLR0917 - mirrors the fixtures each test receives
    name: str, kube: ApiClient, cluster: ClusterInfo, kind_name: str, namespace: str, run_id: str,
    settings: Settings,
) -> None:  # fmt: skip
    journal = run(name, kube=kube, cluster=cluster, kind_name=kind_name, namespace=namespace, run_id=run_id,
                  settings=settings)  # fmt: skip
    during = [(r.successes, r.n, r.ci95) for s in journal.steps for r in s.during]
    recovered = [s.recovered_after_s for s in journal.steps]
    print(
        f"\nMEASURED {name}: during {during}; recovered under fault {recovered}; "
        f"after revert {journal.recovery_s}"
    )
    assert journal.verdict == "passed", journal.reasons


@pytest.mark.multi_node
def test_pod_kill_keeps_success_ratio(  # noqa: PLR0917 - pytest passes fixtures positionally
    kube: ApiClient,
    cluster: ClusterInfo,
    kind_name: str,
    namespace: str,
    run_id: str,
    meshcert_settings: Settings,
) -> None:
    _run("pod-kill", kube, cluster, kind_name, namespace, run_id, meshcert_settings)


@pytest.mark.multi_node
@pytest.mark.disruptive
def test_stopped_worker_is_rescheduled_and_service_recovers(  # noqa: PLR0917 - pytest passes fixtures positionally
    kube: ApiClient,
    cluster: ClusterInfo,
    kind_name: str,
    namespace: str,
    run_id: str,
    meshcert_settings: Settings,
) -> None:
    _run("node-stop", kube, cluster, kind_name, namespace, run_id, meshcert_settings)


@pytest.mark.disruptive
def test_scheduler_down_data_plane_serves(  # noqa: PLR0917 - pytest passes fixtures positionally
    kube: ApiClient,
    cluster: ClusterInfo,
    kind_name: str,
    namespace: str,
    run_id: str,
    meshcert_settings: Settings,
) -> None:
    _run("scheduler-down", kube, cluster, kind_name, namespace, run_id, meshcert_settings)


def test_latency_toxic_in_cluster(  # noqa: PLR0917 - pytest passes fixtures positionally
    kube: ApiClient,
    cluster: ClusterInfo,
    kind_name: str,
    namespace: str,
    run_id: str,
    meshcert_settings: Settings,
) -> None:
    _run("latency-toxic", kube, cluster, kind_name, namespace, run_id, meshcert_settings)


def test_container_kill_restarts_in_place_and_keeps_success_ratio(  # noqa: PLR0917 - pytest passes fixtures positionally
    kube: ApiClient,
    cluster: ClusterInfo,
    kind_name: str,
    namespace: str,
    run_id: str,
    meshcert_settings: Settings,
) -> None:
    """A container kill (crictl stop in the node, not a pod delete): the kubelet restarts the
    container in the same pod (restartCount + 1, pod not replaced) while the Service keeps serving."""
    journal = run("container-kill", kube=kube, cluster=cluster, kind_name=kind_name, namespace=namespace,
                  run_id=run_id, settings=meshcert_settings)  # fmt: skip
    pods = CoreV1Api(kube).list_namespaced_pod(namespace, label_selector="app=testapp").items
    restarts = {
        p.metadata.name: sum(cs.restart_count for cs in p.status.container_statuses or [] if cs.name == "app")
        for p in pods
    }
    applied = journal.steps[0].applied if journal.steps else None
    during = [(r.successes, r.n, r.ci95) for r in journal.steps[0].during] if journal.steps else []
    print(f"\nMEASURED container-kill: restarts {restarts}; during {during}; recovery {journal.recovery_s}")
    assert journal.verdict == "passed", journal.reasons
    assert len(pods) == 2 and sorted(restarts.values()) == [0, 1], restarts
    killed = next(p for p in pods if restarts[p.metadata.name] == 1)
    assert applied is not None and killed.metadata.creation_timestamp.timestamp() < applied  # same pod
