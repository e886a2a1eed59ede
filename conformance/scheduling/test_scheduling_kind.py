"""S1-S10 on a real kind cluster: kube-scheduler, the taint-eviction and disruption controllers.

Tests that label, taint or cordon a real worker are `disruptive` and undo it in ``finally``
(conformance_support's context managers read the node back to verify); the ones that need two
workers are `multi-node`. Manifests: fixtures/conformance/scheduling/ (a worker is picked by the
test and labelled meshcert.io/pool=a, so the fixtures need no node names).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    CoreV1Api,
    PolicyV1Api,
    SchedulingV1Api,
    V1ObjectMeta,
    V1PriorityClass,
)

from meshcert.conformance_support import (
    add_taint,
    attach_json,
    converge_checks,
    cordoned,
    get_pod,
    label,
    list_nodes,
    list_pods,
    node_labels,
    node_taint,
    remove_taint,
    to_json,
    worker_nodes,
)
from meshcert.invariants.convergence import converge_value
from meshcert.invariants.disruption import (
    EvictionAttempt,
    ReplicaSample,
    check_noexecute_eviction,
    check_pdb_evictions,
    check_pdb_status,
    check_preemption,
    check_recovered_within,
)
from meshcert.invariants.placement import (
    check_affinity_colocated,
    check_anti_affinity,
    check_capacity,
    check_host_ports,
    check_nothing_on_cordoned,
    check_pending_unschedulable,
    check_placements,
    check_request_above_largest_node,
    check_static_placement,
    check_topology_spread,
)
from meshcert.invariants.quantities import CPU
from meshcert.invariants.scheduling import node_requested
from meshcert.invariants.views import NodeView, PodView
from meshcert.invariants.violations import ObjectRef, Violation, assert_no_violations
from meshcert.invariants.workload_views import PdbView
from meshcert.kube.apply import apply_manifests
from meshcert.kube.client import KubeApiError
from meshcert.kube.waits import wait_for_deployment_available

pytestmark = [pytest.mark.e2e, pytest.mark.conformance, pytest.mark.scheduling]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "conformance" / "scheduling"
GROUP = "scheduling"
POOL = "meshcert.io/pool"
#: Binding takes the scheduler well under a second; 60 s absorbs a loaded host and the scheduler's
#: back-off for pods it found unschedulable once (1 s doubling, 10 s max).
SCHEDULE_TIMEOUT = 60.0
READY_TIMEOUT = 120.0


def _apply(api: ApiClient, ns: str, run_id: str, name: str) -> None:
    apply_manifests(api, [FIXTURES / name], namespace=ns, run_id=run_id)


def _bound(api: ApiClient, ns: str, names: list[str]) -> list[PodView]:
    def probe() -> list[PodView] | None:
        pods = {p.name: p for p in list_pods(api, ns)}
        return [pods[n] for n in names] if all(n in pods and pods[n].node_name for n in names) else None

    return converge_value(probe, what=f"pods {names} bound", timeout=SCHEDULE_TIMEOUT, interval=0.5).observed


def _unschedulable(api: ApiClient, ns: str, name: str, invariant: str) -> None:
    converge_checks(
        lambda: check_pending_unschedulable(get_pod(api, ns, name), invariant=invariant),
        what=f"{name} Pending/Unschedulable", timeout=SCHEDULE_TIMEOUT, consecutive=2, interval=0.5,
    )  # fmt: skip


def _all_scheduled(api: ApiClient, ns: str, selector: str, count: int) -> list[PodView]:
    """Exactly ``count`` live pods, each bound or marked Unschedulable by the scheduler."""

    def settled() -> list[PodView] | None:
        pods = [p for p in list_pods(api, ns, selector) if not p.terminating]
        decided = all(p.node_name or not check_pending_unschedulable(p) for p in pods)
        return pods if len(pods) == count and decided else None

    return converge_value(
        settled, what=f"{count} pods {selector} decided", timeout=SCHEDULE_TIMEOUT, interval=0.5
    ).observed


def _placement_report(api: ApiClient, ns: str, selector: str, count: int) -> list[Violation]:
    """check_placements over ``count`` pods (creation order as bind order: only order-independent
    filters are in play here) with everything else in the cluster as pre-existing."""
    pods = sorted(_all_scheduled(api, ns, selector, count), key=lambda p: (p.meta.creation_timestamp, p.name))
    mine = {p.key for p in pods}
    others = [p for p in _all_pods(api) if p.key not in mine]
    report = check_placements(
        list_nodes(api), [p for p in pods if p.node_name], pending=[p for p in pods if not p.node_name],
        preexisting=others,
    )  # fmt: skip
    pending = [f.as_violation("S1") for f in report.unexpectedly_pending]
    return [*report.all_violations, *pending]


def _all_pods(api: ApiClient) -> list[PodView]:
    return [PodView.from_api(to_json(p)) for p in CoreV1Api(api).list_pod_for_all_namespaces().items]


@pytest.fixture
def pool_node(kube: ApiClient) -> Iterator[NodeView]:
    """The first worker, labelled meshcert.io/pool=a for the test (label removed after)."""
    node = worker_nodes(kube)[0]
    with node_labels(kube, node.name, {POOL: "a"}) as labelled:
        yield labelled


@pytest.mark.disruptive
def test_s1_node_selector_and_required_affinity(
    kube: ApiClient, namespace: str, run_id: str, pool_node: NodeView
) -> None:
    label(GROUP, "S1")
    _apply(kube, namespace, run_id, "s1.yaml")
    bound = _bound(kube, namespace, ["match", "affine"])
    _unschedulable(kube, namespace, "nomatch", "S1")
    assert {p.node_name for p in bound} == {pool_node.name}
    assert_no_violations(check_static_placement(list_nodes(kube), list_pods(kube, namespace)))


@pytest.mark.disruptive
def test_s2_noschedule_taint(kube: ApiClient, namespace: str, run_id: str, pool_node: NodeView) -> None:
    label(GROUP, "S2")
    taint = {"key": "meshcert.io/s2", "value": "x", "effect": "NoSchedule"}
    with node_taint(kube, pool_node.name, taint):
        _apply(kube, namespace, run_id, "s2.yaml")
        _bound(kube, namespace, ["tolerant"])
        _unschedulable(kube, namespace, "intolerant", "S2")
        assert_no_violations(check_static_placement(list_nodes(kube), list_pods(kube, namespace)))
    began = time.monotonic()
    _bound(kube, namespace, ["intolerant"])
    attach_json("S2 seconds from untaint to binding", {"intolerant": time.monotonic() - began})
    assert_no_violations(check_static_placement(list_nodes(kube), list_pods(kube, namespace)))
    assert {p.node_name for p in list_pods(kube, namespace)} == {pool_node.name}


@pytest.mark.disruptive
def test_s3_noexecute_toleration_seconds(
    kube: ApiClient, namespace: str, run_id: str, pool_node: NodeView
) -> None:
    label(GROUP, "S3")
    taint = {"key": "meshcert.io/s3", "effect": "NoExecute"}
    _apply(kube, namespace, run_id, "s3.yaml")
    _all_running = lambda: [p.phase for p in list_pods(kube, namespace)] == ["Running"] * 2 or None  # noqa: E731
    converge_value(_all_running, what="short and long Running", timeout=READY_TIMEOUT, interval=0.5)
    evicted: dict[str, float] = {}
    removed_at: float | None = None
    try:
        added = add_taint(kube, pool_node.name, taint)
        # 'long' is due at +20 s; watch until +20 s + the checker's late slack + 1 s.
        while time.time() < added + 26:
            if removed_at is None and time.time() >= added + 8:
                removed_at = remove_taint(kube, pool_node.name, taint)
            for p in list_pods(kube, namespace):
                if p.terminating:
                    evicted.setdefault(p.name, time.time())
            time.sleep(0.5)
    finally:
        if removed_at is None:
            remove_taint(kube, pool_node.name, taint)
    attach_json("S3 evictions (s after taint)", {k: v - added for k, v in evicted.items()})
    assert_no_violations([
        *check_noexecute_eviction(pod="short", taint_added_at=added, toleration_seconds=5,
                                  evicted_at=evicted.get("short"), taint_removed_at=removed_at),
        *check_noexecute_eviction(pod="long", taint_added_at=added, toleration_seconds=20,
                                  evicted_at=evicted.get("long"), taint_removed_at=removed_at),
    ])  # fmt: skip


def test_s4_request_above_largest_node_stays_pending(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "S4")
    _apply(kube, namespace, run_id, "s4.yaml")
    _unschedulable(kube, namespace, "huge", "S4")
    nodes = list_nodes(kube)
    assert_no_violations([
        *check_request_above_largest_node(get_pod(kube, namespace, "huge"), nodes),
        *check_capacity(nodes, _all_pods(kube)),
    ])  # fmt: skip


@pytest.mark.multi_node
def test_s5_host_ports_never_colocated(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "S5")
    _apply(kube, namespace, run_id, "s5.yaml")
    found = _placement_report(kube, namespace, "app in (ports,udp)", 4)
    pods = list_pods(kube, namespace)
    tcp_nodes = [p.node_name for p in pods if p.labels.get("app") == "ports" and p.node_name]
    assert len(tcp_nodes) == len(worker_nodes(kube)) == len(set(tcp_nodes)), f"TCP holders on {tcp_nodes}"
    assert get_pod(kube, namespace, "udp").node_name, "the UDP pod clashes with nothing and must be bound"
    assert_no_violations([*found, *check_host_ports(pods)])


@pytest.mark.multi_node
def test_s6_topology_spread_after_every_scale_step(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "S6")
    _apply(kube, namespace, run_id, "s6.yaml")
    raw = to_json(AppsV1Api(kube).read_namespaced_deployment("spread", namespace))["spec"]["template"]
    raw["metadata"] = {**raw["metadata"], "name": "template", "namespace": namespace}
    template = PodView.from_api(raw)
    nodes = list_nodes(kube)
    for replicas in range(1, 6):
        AppsV1Api(kube).patch_namespaced_deployment_scale(
            "spread", namespace, {"spec": {"replicas": replicas}}
        )
        pods = _all_scheduled(kube, namespace, "app=spread", replicas)
        assert all(p.node_name for p in pods), (
            f"step {replicas}: pending {[p.name for p in pods if not p.node_name]}"
        )
        assert_no_violations(check_topology_spread(template, pods, nodes), context=f"{replicas} replicas")


@pytest.mark.multi_node
def test_s7_required_anti_affinity_and_affinity(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "S7")
    _apply(kube, namespace, run_id, "s7.yaml")
    found = _placement_report(kube, namespace, "app in (anti,buddy)", 5)
    pods, nodes = list_pods(kube, namespace), list_nodes(kube)
    anti_bound = [p for p in pods if p.labels.get("app") == "anti" and p.node_name]
    assert len(anti_bound) == len(worker_nodes(kube)), f"anti bound: {[p.name for p in anti_bound]}"
    assert_no_violations([*found, *check_anti_affinity(nodes, pods), *check_affinity_colocated(nodes, pods)])


@contextlib.contextmanager
def _priority_classes(api: ApiClient, run_id: str) -> Iterator[dict[str, str]]:
    """Two PriorityClasses (cluster-scoped: created here, deleted in finally)."""
    sched = SchedulingV1Api(api)
    names = {"low": f"{run_id}-low", "high": f"{run_id}-high"}
    values = {"low": 1000, "high": 1_000_000}  # any two values below system-cluster-critical
    try:
        for k, name in names.items():
            sched.create_priority_class(V1PriorityClass(metadata=V1ObjectMeta(name=name), value=values[k]))
        yield names
    finally:
        for name in names.values():
            with contextlib.suppress(KubeApiError, Exception):
                sched.delete_priority_class(name)


def _pod_body(name: str, *, cpu_milli: int, priority_class: str) -> dict[str, object]:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "priorityClassName": priority_class, "nodeSelector": {POOL: "a"},
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "app", "image": "meshcert/testapp:0.1.0", "imagePullPolicy": "Never",
                            "args": ["serve"], "resources": {"requests": {"cpu": f"{cpu_milli}m"}}}],
        },
    }  # fmt: skip


@pytest.mark.disruptive
def test_s8_preemption_removes_only_lower_priority_victims(
    kube: ApiClient, namespace: str, run_id: str, pool_node: NodeView
) -> None:
    """Pods are built here, not in fixtures: their CPU requests depend on what the node has free."""
    label(GROUP, "S8")

    def free_milli() -> int | None:
        on_node = [p for p in _all_pods(kube) if p.node_name == pool_node.name and not p.terminal]
        if any(p.terminating for p in on_node):
            return None  # resources about to be freed: the arithmetic would be stale
        return pool_node.allocatable[CPU] - node_requested(on_node).get(CPU, 0)

    free = converge_value(free_milli, what=f"no terminating pod on {pool_node.name}", timeout=90).observed
    need = free - 100  # the victim and the preemptor each take all but 0.1 CPU: they cannot coexist
    assert need > 100, f"precondition: {pool_node.name} has only {free}m CPU free"
    with _priority_classes(kube, run_id) as pc:
        apply_manifests(kube, [_pod_body("victim", cpu_milli=need, priority_class=pc["low"])],
                        namespace=namespace, run_id=run_id)  # fmt: skip
        _bound(kube, namespace, ["victim"])
        apply_manifests(kube, [_pod_body("preemptor", cpu_milli=need, priority_class=pc["high"])],
                        namespace=namespace, run_id=run_id)  # fmt: skip
        last: PodView | None = None
        deadline = time.monotonic() + SCHEDULE_TIMEOUT
        while time.monotonic() < deadline:
            pods = {p.name: p for p in list_pods(kube, namespace)}
            if "victim" in pods:
                last = pods["victim"]
            preemptor = pods["preemptor"]
            if "victim" not in pods and preemptor.node_name:
                break
            time.sleep(0.3)
        assert last is not None and last.terminating, "the lower-priority pod was never removed"
        assert_no_violations(check_preemption(preemptor, [last], victims_node=pool_node.name))


def _evict(api: ApiClient, ns: str, pod: str) -> int:
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": ns}}
    try:
        CoreV1Api(api).create_namespaced_pod_eviction(pod, ns, body)
    except Exception as e:  # the client raises ApiException for 429; its status is the answer
        status = getattr(e, "status", None)
        if status is None:
            raise
        return int(status)
    return 201


def _pdb(api: ApiClient, ns: str) -> PdbView:
    return PdbView.from_api(to_json(PolicyV1Api(api).read_namespaced_pod_disruption_budget("guarded", ns)))


def test_s9_pdb_refuses_evictions_while_none_allowed(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "S9")
    _apply(kube, namespace, run_id, "s9.yaml")
    wait_for_deployment_available(kube, namespace, "guarded", timeout=READY_TIMEOUT)
    converge_checks(lambda: check_pdb_status(_pdb(kube, namespace), list_pods(kube, namespace)),
                    what="S9 PDB status", timeout=SCHEDULE_TIMEOUT)  # fmt: skip
    attempts: list[EvictionAttempt] = []
    for pod in sorted(p.name for p in list_pods(kube, namespace)):
        allowed = _pdb(kube, namespace).disruptions_allowed
        attempts.append(EvictionAttempt(time.time(), pod, _evict(kube, namespace, pod), allowed))
    assert all(a.disruptions_allowed == 0 for a in attempts), f"precondition: {attempts}"
    AppsV1Api(kube).patch_namespaced_deployment_scale("guarded", namespace, {"spec": {"replicas": 3}})
    wait_for_deployment_available(kube, namespace, "guarded", timeout=READY_TIMEOUT)
    converge_value(
        lambda: _pdb(kube, namespace).disruptions_allowed == 1 or None, what="PDB allows 1", timeout=60
    )
    pod = sorted(p.name for p in list_pods(kube, namespace))[0]
    attempts.append(EvictionAttempt(time.time(), pod, _evict(kube, namespace, pod), 1))
    attach_json("S9 eviction attempts", [a.__dict__ for a in attempts])
    assert 200 <= attempts[-1].status_code < 300, f"eviction refused although 1 was allowed: {attempts[-1]}"
    assert_no_violations(check_pdb_evictions(attempts, pdb="guarded"))


@pytest.mark.disruptive
@pytest.mark.multi_node
def test_s10_cordon_and_drain(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "S10")
    _apply(kube, namespace, run_id, "s10-before.yaml")
    wait_for_deployment_available(kube, namespace, "drained", timeout=READY_TIMEOUT)
    target = worker_nodes(kube)[0].name
    with cordoned(kube, target) as at:
        _apply(kube, namespace, run_id, "s10-after.yaml")
        _all_scheduled(kube, namespace, "app=after", 4)
        victims = [p.name for p in list_pods(kube, namespace, "app=drained") if p.node_name == target]
        assert victims, f"precondition: no 'drained' replica on {target}"
        since = time.time()
        for v in victims:
            assert 200 <= _evict(kube, namespace, v) < 300
        samples: list[ReplicaSample] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            dep = AppsV1Api(kube).read_namespaced_deployment("drained", namespace)
            samples.append(ReplicaSample(time.time(), (dep.status.ready_replicas or 0)))
            if len(samples) > 4 and all(s.ready == 2 for s in samples[-4:]) and samples[0].at < since + 1:
                break
            time.sleep(0.5)
        pods, nodes = list_pods(kube, namespace), list_nodes(kube)
        attach_json("S10 ready replicas after drain", [(s.at - since, s.ready) for s in samples])
        assert_no_violations([
            *check_nothing_on_cordoned(nodes, pods, created_after={target: at}),
            # 60 s: a replacement needs scheduling + start (~3 s) + readiness; generous on a busy host
            *check_recovered_within(samples, workload=ObjectRef("Deployment", "drained", namespace),
                                    desired=2, since=since, bound=60),
        ])  # fmt: skip
