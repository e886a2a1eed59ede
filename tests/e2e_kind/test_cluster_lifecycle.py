"""The foundation end to end: a real three-node kind cluster built offline carries traffic.

This test owns its cluster (rather than using the session fixture) because tearing it down and
proving nothing is left behind is part of what it checks.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client import CoreV1Api

from meshcert.cluster.base import Capability, ClusterInfo
from meshcert.cluster.kind import KIND_CLUSTER_LABEL, KindCluster, network_name
from meshcert.kube.apply import apply_manifests
from meshcert.kube.client import new_api_client
from meshcert.kube.exec import testapp_load, testapp_resolve
from meshcert.kube.namespaces import create_namespace
from meshcert.kube.waits import wait_for_deployment_available, wait_for_endpoints
from meshcert.runid import new_run_id
from meshcert.runs import RunStore
from meshcert.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
#: Requests per address: enough that both replicas are hit with near certainty (2^-49 otherwise).
REQUESTS = 50


def _docker_lines(*args: str) -> list[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
    return out.split()


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[tuple[KindCluster, ClusterInfo]]:
    settings = load_settings(pyproject=ROOT / "pyproject.toml")
    run_id = new_run_id()
    cluster = KindCluster(settings=settings, run_id=run_id, config=ROOT / "kind-config/three-node.yaml")
    info = cluster.up()
    try:
        yield cluster, info
    finally:
        cluster.down()
        RunStore(settings.state_dir).remove(run_id)  # the run is this fixture's: leave no record


@pytest.mark.e2e
@pytest.mark.slow
def test_three_node_cluster_serves_and_tears_down_clean(own_cluster: tuple[KindCluster, ClusterInfo]) -> None:
    cluster, info = own_cluster
    assert info.kubernetes_version == "v1.34.4"
    assert len(info.nodes) == 3 and Capability.MULTI_NODE in info.capabilities
    api = new_api_client(info.kubeconfig)
    ns = create_namespace(api, f"found-{info.run_id}", run_id=str(info.run_id))
    apply_manifests(api, [ROOT / "fixtures/workloads/testapp.yaml"], namespace=ns, run_id=str(info.run_id))
    wait_for_deployment_available(api, ns, "testapp", timeout=120)

    core = CoreV1Api(api)
    pods = core.list_namespaced_pod(ns, label_selector="app=testapp").items
    nodes = {p.spec.node_name for p in pods}
    workers = {n for n in info.nodes if "worker" in n}
    assert nodes == workers, f"replicas on {nodes}, expected one on each worker {workers}"
    pod_ips = {p.status.pod_ip for p in pods}
    wait_for_endpoints(api, ns, "testapp", expected=pod_ips, timeout=60)

    svc = core.read_namespaced_service("testapp", ns)
    by_ip = testapp_load(
        api,
        ns,
        url=f"http://{svc.spec.cluster_ip}/",
        rate=50,
        count=REQUESTS,
        run_id=str(info.run_id),
        keepalive=False,
    )
    by_name = testapp_load(
        api,
        ns,
        url=f"http://testapp.{ns}.svc.cluster.local/",
        rate=50,
        count=REQUESTS,
        run_id=str(info.run_id),
        keepalive=False,
    )
    names = {p.metadata.name for p in pods}
    for summary in (by_ip, by_name):
        assert summary["ok"] == REQUESTS and summary["failed"] == 0, summary
        assert set(summary["by_pod"]) == names, summary["by_pod"]
    assert testapp_resolve(api, ns, f"testapp.{ns}.svc.cluster.local", run_id=str(info.run_id)) == [
        svc.spec.cluster_ip
    ]

    node_ids = _docker_lines("ps", "-aq", "--filter", f"label={KIND_CLUSTER_LABEL}={cluster.name}")
    volumes = {
        v
        for cid in node_ids
        for v in _docker_lines("inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", cid)
    }
    assert volumes, "kind nodes keep /var on a volume"
    assert cluster.down(), "down found no node container to delete"
    assert _docker_lines("ps", "-aq", "--filter", f"label={KIND_CLUSTER_LABEL}={cluster.name}") == []
    assert network_name(cluster.name) not in _docker_lines("network", "ls", "--format", "{{.Name}}")
    assert not volumes & set(_docker_lines("volume", "ls", "-q"))
    assert cluster.status() is None
