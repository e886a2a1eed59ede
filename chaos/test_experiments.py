"""Chaos suites: thin tests that run an experiment (chaos/experiments/) and assert its verdict."""

from __future__ import annotations

import pytest
from kubernetes.client import ApiClient

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
