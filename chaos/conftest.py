"""Fixtures of the chaos suites: the kind cluster behind the target and the state dir for records."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from meshcert.cluster.base import ClusterInfo
from meshcert.faults import revert
from meshcert.faults.experiment import Experiment, load_experiment
from meshcert.faults.recovery import recovery_record
from meshcert.faults.runner import Journal, Target, run_experiment
from meshcert.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kind_name(cluster: ClusterInfo, kube: ApiClient) -> str:
    """The kind cluster whose node containers back the target (faults act on those containers)."""
    node = CoreV1Api(kube).list_node().items[0].metadata.name
    labels = revert.container(node).labels
    name = labels.get(revert.KIND_CLUSTER_LABEL)
    if not name:
        pytest.skip(f"{cluster.name}: nodes are not kind containers; node faults need kind")
    return str(name)


def experiment(name: str) -> Experiment:
    return load_experiment(ROOT / "chaos" / "experiments" / f"{name}.yaml", root=ROOT)


def run(
    name: str, *, kube: ApiClient, cluster: ClusterInfo, kind_name: str, namespace: str, run_id: str,
    settings: Settings,
) -> Journal:  # fmt: skip
    """Run experiment ``name`` in ``namespace``; attach its journal and its deviation/recovery
    record (faults/recovery.py) to the Allure result, also when the verdict is a failure."""
    import allure

    target = Target(
        kube, cluster.kubeconfig, kind_name, namespace, run_id, settings.state_dir, settings.cache_dir
    )
    journal = run_experiment(target, experiment(name), reports_dir=ROOT / settings.reports_dir)
    allure.attach(
        journal.to_json(), name=f"chaos journal {name}", attachment_type=allure.attachment_type.JSON
    )
    record = recovery_record(journal)
    allure.attach(
        record.to_json(), name=f"chaos recovery {name}", attachment_type=allure.attachment_type.JSON
    )
    print(f"\nRECOVERY {name}: {record.to_json()}")
    return journal
