"""Faults used directly (no experiment file): partition heal, API latency, and gc after SIGKILL (C1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from meshcert.cluster.base import ClusterInfo
from meshcert.faults import revert
from meshcert.faults.apilatency import api_latency
from meshcert.faults.partition import partition
from meshcert.kube.apply import apply_manifests
from meshcert.kube.client import new_api_client
from meshcert.kube.waits import wait_for_deployment_available
from meshcert.runid import new_run_id
from meshcert.runs import is_alive
from meshcert.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.dataplane]


def _pod_ip_on(kube: ApiClient, namespace: str, node: str) -> str:
    pods = CoreV1Api(kube).list_namespaced_pod(namespace, label_selector="app=testapp").items
    return next(p.status.pod_ip for p in pods if p.spec.node_name == node and p.status.pod_ip)


@pytest.mark.multi_node
@pytest.mark.disruptive
def test_partition_cuts_cross_node_traffic_and_rollback_heals_it(  # noqa: PLR0917 - pytest passes fixtures positionally
    kube: ApiClient, kind_name: str, namespace: str, run_id: str, meshcert_settings: Settings, tmp_path: Path
) -> None:
    apply_manifests(kube, [ROOT / "fixtures/workloads/testapp.yaml"], namespace=namespace, run_id=run_id)
    wait_for_deployment_available(kube, namespace, "testapp", timeout=120)
    worker, worker2 = f"{kind_name}-worker", f"{kind_name}-worker2"
    url = f"http://{_pod_ip_on(kube, namespace, worker2)}:8080/"
    # The client pod runs on `worker`; the target pod on `worker2`: every request crosses the cut.
    from meshcert.kube.exec import _last_json_line, run_client_pod

    def load(count: int) -> dict[str, int]:
        args = ["load", "--url", url, "--rate", "10", "--count", str(count), "--timeout", "1s"]
        out = run_client_pod(kube, namespace, args, run_id=run_id, node_name=worker, timeout=120)
        return dict(_last_json_line(out.output, "load"))

    before = load(20)
    with partition(kind_name, [worker], [worker2], run_id=run_id, state_dir=tmp_path) as cut:
        during = load(20)
        rules = sum(len(revert.tagged_rules(n, run_id)) for n in (worker, worker2))
    after = load(20)
    print(f"\nMEASURED partition ({cut.rules} rules): before {before['ok']}/{before['sent']}, "
          f"during {during['ok']}/{during['sent']}, after {after['ok']}/{after['sent']}")  # fmt: skip
    assert before["ok"] == before["sent"] == 20
    assert rules == cut.rules and during["ok"] == 0
    assert after["ok"] == after["sent"] == 20
    assert all(not revert.tagged_rules(n, run_id) for n in (worker, worker2))


def _timed_list(api: ApiClient, rounds: int) -> float:
    core = CoreV1Api(api)
    core.list_namespace()  # connection set up outside the timing
    start = time.monotonic()
    for _ in range(rounds):
        core.list_namespace()
    return (time.monotonic() - start) / rounds * 1000


def test_api_latency_toxic_slows_api_calls(
    cluster: ClusterInfo, kind_name: str, meshcert_settings: Settings, tmp_path: Path
) -> None:
    latency = 200
    base_api = new_api_client(cluster.kubeconfig)
    baseline = _timed_list(base_api, 10)
    with api_latency(
        kind_name, cluster.kubeconfig, latency_ms=latency, run_id=new_run_id(), state_dir=tmp_path,
        cache_dir=meshcert_settings.cache_dir,
    ) as fault:  # fmt: skip
        slow_api = new_api_client(fault.kubeconfig)
        slowed = _timed_list(slow_api, 10)
        slow_api.close()
    base_api.close()
    added = slowed - baseline
    print(f"\nMEASURED API latency: baseline {baseline:.1f} ms, with {latency} ms toxic {slowed:.1f} ms "
          f"(+{added:.1f} ms per call, n=10)")  # fmt: skip
    # One request/response per call on a kept-alive connection: the response waits `latency` once.
    assert latency * 0.9 <= added <= latency * 1.5


@contextmanager
def _sigkilled_holding_faults(script: str, args: list[str]) -> Iterator[None]:
    """Run ``script`` (which prints FAULTED once its faults are applied, then sleeps) in its own
    session; the block checks the applied faults; then the child is SIGKILLed, never unwound."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until every fault is applied (~5-30 s)
        assert line.strip() == "FAULTED", line
        yield
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _gc(run_id: str, state: Path) -> None:
    gc = subprocess.run(
        [str(ROOT / ".venv/bin/meshcert"), "gc", run_id], capture_output=True, text=True, timeout=300,
        env={**os.environ, "MESHCERT_STATE_DIR": str(state)}, check=False,
    )  # fmt: skip
    print(f"\ngc: {gc.stdout.strip()} {gc.stderr.strip()}")
    assert gc.returncode == 0, gc.stderr


SCRIPT = """
import sys, time
from pathlib import Path
from meshcert.faults.apilatency import api_latency
from meshcert.faults.nodes import NodeTarget, node_pause
from meshcert.faults.partition import partition
from meshcert.kube.client import new_api_client

kind, kubeconfig, run_id, state, cache = sys.argv[1:6]
api = new_api_client(Path(kubeconfig))
with partition(kind, [kind + "-worker"], [kind + "-worker2"], run_id=run_id, state_dir=Path(state)):
    with api_latency(kind, Path(kubeconfig), latency_ms=50, run_id=run_id, state_dir=Path(state),
                     cache_dir=Path(cache)):
        with node_pause(api, NodeTarget(kind, kind + "-worker2"), run_id=run_id, state_dir=Path(state)):
            print("FAULTED", flush=True)
            time.sleep(600)
"""


@pytest.mark.multi_node
@pytest.mark.disruptive
def test_gc_reverts_every_fault_of_a_sigkilled_run(
    cluster: ClusterInfo, kind_name: str, meshcert_settings: Settings, tmp_path: Path
) -> None:
    """The issue's done-bar: no toxic, no stopped/paused node and no partition rule after gc."""
    from meshcert.runs import RunStore

    run_id, state = new_run_id(), tmp_path / "state"
    args = [kind_name, str(cluster.kubeconfig), run_id, str(state), str(meshcert_settings.cache_dir)]
    with _sigkilled_holding_faults(SCRIPT, args):
        record = RunStore(state).read(run_id)
        assert record is not None
        toxiproxies = [p for p in record.processes if p.what == "toxiproxy-server"]
        assert len(toxiproxies) == 1 and is_alive(toxiproxies[0].pid, toxiproxies[0].start_ticks)
        assert revert.container_state(f"{kind_name}-worker2") == "paused"
        assert revert.tagged_rules(f"{kind_name}-worker", run_id)
    _gc(run_id, state)
    nodes = revert.node_containers(kind_name)
    assert {n: revert.container_state(n) for n in nodes} == dict.fromkeys(nodes, "running")
    assert all(not revert.container(n).attrs["State"]["Paused"] for n in nodes)
    assert all(revert.tagged_rules(n, run_id) == [] for n in nodes)
    assert not is_alive(toxiproxies[0].pid, toxiproxies[0].start_ticks)
    assert RunStore(state).read(run_id) is None


SCRIPT_ONE_NODE = """
import sys, time
from pathlib import Path
from meshcert.faults.apilatency import api_latency
from meshcert.faults.controlplane import component_down
from meshcert.faults.nodes import NodeTarget, node_pause
from meshcert.kube.client import new_api_client

kind, kubeconfig, run_id, state, cache = sys.argv[1:6]
api = new_api_client(Path(kubeconfig))
with api_latency(kind, Path(kubeconfig), latency_ms=50, run_id=run_id, state_dir=Path(state),
                 cache_dir=Path(cache)):
    with component_down(kind, "kube-scheduler", run_id=run_id, state_dir=Path(state)):
        with node_pause(api, NodeTarget(kind, kind + "-control-plane"), run_id=run_id, state_dir=Path(state)):
            print("FAULTED", flush=True)
            time.sleep(600)
"""


@pytest.mark.disruptive
def test_gc_reverts_toxic_static_pod_and_paused_node_of_a_sigkilled_run_on_one_node(
    cluster: ClusterInfo, kube: ApiClient, kind_name: str, meshcert_settings: Settings, tmp_path: Path
) -> None:
    """C1 on a single-node cluster (the partition needs two nodes: see the multi-node test above):
    a run SIGKILLed while holding a Toxiproxy toxic, a control-plane static pod moved aside and
    its only node paused leaves, after `meshcert gc`, no toxiproxy, the manifest back, no pause."""
    from meshcert.faults.controlplane import wait_component
    from meshcert.faults.nodes import wait_for_node_ready
    from meshcert.runs import RunStore

    node = f"{kind_name}-control-plane"
    run_id, state = new_run_id(), tmp_path / "state"
    args = [kind_name, str(cluster.kubeconfig), run_id, str(state), str(meshcert_settings.cache_dir)]
    with _sigkilled_holding_faults(SCRIPT_ONE_NODE, args):
        record = RunStore(state).read(run_id)
        assert record is not None
        assert sorted(f.kind for f in record.faults) == ["node-pause", "static-pod"]
        toxiproxies = [p for p in record.processes if p.what == "toxiproxy-server"]
        assert len(toxiproxies) == 1 and is_alive(toxiproxies[0].pid, toxiproxies[0].start_ticks)
        assert revert.container_state(node) == "paused"
    _gc(run_id, state)
    assert revert.container_state(node) == "running"
    assert not revert.container(node).attrs["State"]["Paused"]
    code, out = revert.node_exec(node, ["ls", revert.MANIFESTS_DIR])
    assert code == 0 and "kube-scheduler.yaml" in out.split(), out
    assert not is_alive(toxiproxies[0].pid, toxiproxies[0].start_ticks)
    assert RunStore(state).read(run_id) is None
    # Leave the cluster usable for the next test: the node and the scheduler come back by themselves.
    took = wait_for_node_ready(kube, node) + wait_component(node, "kube-scheduler", running=True, timeout=120)
    print(f"MEASURED after gc: node Ready and kube-scheduler running again after {took:.1f} s")
