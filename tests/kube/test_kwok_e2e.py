"""The kube layer against a real kube-apiserver: a kwok cluster (binary runtime, 5 simulated nodes).

kwok needs no Docker: etcd, the control plane and kwok-controller run as local processes from
the toolchain cache, so the whole module takes seconds. kwok simulates pod lifecycles (Running,
Ready, pod IPs), so Deployment, pod and endpoint waits are exercised for real; exec and logs are
not (no data plane).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api

from meshcert.cluster.base import Capability, ClusterInfo
from meshcert.cluster.kwok import KwokCluster
from meshcert.errors import ConfigError, WaitTimeout
from meshcert.gc import collect
from meshcert.kube.apply import apply_manifests
from meshcert.kube.client import KubeApiError, new_api_client
from meshcert.kube.forensics import collect_forensics
from meshcert.kube.namespaces import NamespaceFactory
from meshcert.kube.waits import (
    wait_for_deployment_available,
    wait_for_deployment_rolled_out,
    wait_for_endpoints,
    wait_for_nodes_ready,
    wait_for_pods_ready,
)
from meshcert.runid import RUN_LABEL, new_run_id
from meshcert.runs import RunStore
from meshcert.settings import Settings, load_settings

pytestmark = pytest.mark.e2e
NODES = 5


def _settings(tmp: Path) -> Settings:
    return load_settings(pyproject=None, environ={}, cli={"state_dir": tmp, "kwok_nodes": NODES})


@pytest.fixture(scope="module")
def kwok(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KwokCluster, ClusterInfo]]:
    settings = _settings(tmp_path_factory.mktemp("state"))
    run_id = new_run_id()
    c = KwokCluster(settings=settings, run_id=run_id, progress=print)
    start = time.monotonic()
    info = c.up()  # a kwok cluster that cannot start fails the module, it is never skipped
    print(f"kwok up in {time.monotonic() - start:.1f}s")
    yield c, info
    c.down()
    RunStore(settings.state_dir).remove(run_id)


@pytest.fixture(scope="module")
def api(kwok: tuple[KwokCluster, ClusterInfo]) -> Iterator[ApiClient]:
    client = new_api_client(kwok[1].kubeconfig)
    yield client
    client.close()


@pytest.fixture
def ns(
    api: ApiClient, kwok: tuple[KwokCluster, ClusterInfo], request: pytest.FixtureRequest
) -> Iterator[str]:
    factory = NamespaceFactory(api, kwok[0].run_id)
    name = factory.create(request.node.name)
    yield name
    factory.delete(name, wait=False)


def web(replicas: int, image: str = "meshcert/testapp:0.1.0") -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image, "imagePullPolicy": "Never"}]},
            },
        },
    }


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
}


def test_cluster_info(kwok: tuple[KwokCluster, ClusterInfo], api: ApiClient) -> None:
    _, info = kwok
    assert info.provider == "kwok"
    assert info.kubernetes_version == "v1.34.4"
    assert len(info.nodes) == NODES
    assert Capability.DATAPLANE not in info.capabilities
    assert {Capability.MULTI_NODE, Capability.DISRUPTIVE} <= info.capabilities
    nodes = wait_for_nodes_ready(api, count=NODES, timeout=30)
    assert sorted(n.metadata.name for n in nodes) == list(info.nodes)


def test_deployment_endpoints_and_reapply(
    api: ApiClient, ns: str, kwok: tuple[KwokCluster, ClusterInfo]
) -> None:
    run_id = kwok[0].run_id
    applied = apply_manifests(api, [web(3), SERVICE], namespace=ns, run_id=run_id)
    assert [o["kind"] for o in applied] == ["Deployment", "Service"]
    dep = wait_for_deployment_available(api, ns, "web", timeout=60)
    assert dep.status.available_replicas == 3
    pods = wait_for_pods_ready(api, ns, label_selector="app=web", count=3, timeout=60)
    assert all(p.metadata.labels[RUN_LABEL] == run_id for p in pods)  # template labels reached pods
    ips = {p.status.pod_ip for p in pods}
    assert len(ips) == 3
    wait_for_endpoints(api, ns, "web", expected=ips, timeout=60)
    with pytest.raises(WaitTimeout, match=r"missing: \{10\.255\.255\.1\}"):
        wait_for_endpoints(api, ns, "web", expected=ips | {"10.255.255.1"}, timeout=3)
    # Create-or-replace: the same object applied again with a change converges, never conflicts.
    apply_manifests(api, [web(1)], namespace=ns, run_id=run_id)
    dep = wait_for_deployment_rolled_out(api, ns, "web", timeout=60)
    assert dep.spec.replicas == 1
    assert dep.metadata.labels[RUN_LABEL] == run_id


def test_bad_manifest_creates_nothing(api: ApiClient, ns: str, kwok: tuple[KwokCluster, ClusterInfo]) -> None:
    bad = web(1)
    bad["spec"]["replicaz"] = 2  # type: ignore[index]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "first"}, "data": {"a": "b"}}
    with pytest.raises(ConfigError) as err:
        apply_manifests(api, [cm, bad], namespace=ns, run_id=kwok[0].run_id)
    assert err.value.field == "spec.replicaz"
    assert err.value.source == "<manifest 2: web>"
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        apply_manifests(api, [cm, {**cm, "kind": "Gizmo"}], namespace=ns, run_id=kwok[0].run_id)
    assert err.value.field == "kind"
    assert not CoreV1Api(api).list_namespaced_config_map(ns, field_selector="metadata.name=first").items
    assert not AppsV1Api(api).list_namespaced_deployment(ns).items


def test_deployment_wait_times_out_with_state(
    api: ApiClient, ns: str, kwok: tuple[KwokCluster, ClusterInfo]
) -> None:
    unschedulable = web(2)
    unschedulable["spec"]["template"]["spec"]["nodeSelector"] = {"no": "such-node"}  # type: ignore[index]
    apply_manifests(api, [unschedulable], namespace=ns, run_id=kwok[0].run_id)
    with pytest.raises(WaitTimeout) as err:
        wait_for_deployment_available(api, ns, "web", timeout=3)
    assert "available=0" in str(err.value)
    bundle = collect_forensics(api, ns)
    assert len(bundle.pods) == 2
    assert all(p.phase == "Pending" for p in bundle.pods)
    assert any(e.reason == "FailedScheduling" for e in bundle.events) or bundle.events
    text = bundle.to_text()
    assert "## Events" in text
    assert "web-" in text
    assert "Pending" in bundle.summary()


def test_namespace_delete_waits_until_gone(api: ApiClient, kwok: tuple[KwokCluster, ClusterInfo]) -> None:
    factory = NamespaceFactory(api, kwok[0].run_id)
    name = factory.create("delete-me")
    apply_manifests(api, [web(2)], namespace=name, run_id=kwok[0].run_id)
    wait_for_deployment_available(api, name, "web", timeout=60)
    ns = CoreV1Api(api).read_namespace(name)
    assert ns.metadata.labels[RUN_LABEL] == kwok[0].run_id
    factory.delete(name, timeout=90)
    with pytest.raises(KubeApiError) as err:
        from meshcert.kube.client import call

        call("get namespace", CoreV1Api(api).read_namespace, name)
    assert err.value.not_found
    factory.delete(name)  # idempotent


def _alive(pids: dict[str, int]) -> list[int]:
    """Pids still running (a zombie waiting for its reaper is not running)."""
    out = []
    for pid in pids.values():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            out.append(pid)
    return out


def test_down_and_gc_leave_nothing(tmp_path: Path) -> None:
    """A second cluster: `down` stops every process; gc of its run does too (kill -9 case)."""
    settings = _settings(tmp_path)
    store = RunStore(settings.state_dir)
    for use_gc in (False, True):
        run_id = new_run_id()
        c = KwokCluster(settings=settings, run_id=run_id, nodes=2)
        start = time.monotonic()
        c.up()  # a kwok cluster that cannot start is a failure here, never a skip
        up = time.monotonic() - start
        pids = c.pids()
        assert len(_alive(pids)) == 5, pids  # etcd, apiserver, controller-manager, scheduler, kwok
        assert store.read(run_id) is not None
        start = time.monotonic()
        if use_gc:
            report = collect(settings, run_ids=[run_id])
            assert run_id in report.runs
            assert f"kwok:{run_id}" in report.containers
        else:
            assert c.down(), "down found no kwok cluster to delete"
            store.remove(run_id)
        print(f"kwok up {up:.1f}s, {'gc' if use_gc else 'down'} {time.monotonic() - start:.1f}s")
        assert _alive(pids) == []
        assert not c.cluster_dir.exists()
        assert c.status() is None
        assert store.read(run_id) is None
