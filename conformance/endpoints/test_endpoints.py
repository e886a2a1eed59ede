"""E1-E7: EndpointSlices agree with pods, and Services carry traffic to exactly the right pods.

Oracle: the EndpointSlice controller's rules (invariants/endpoints.py) and kube-proxy's
(invariants/reachability.py); requests come from a client pod in the cluster (STYLE.md §8).
Manifests: fixtures/conformance/endpoints/.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api

from meshcert.conformance_support import (
    attach_json,
    converge_checks,
    get_service,
    label,
    list_nodes,
    list_pods,
    list_slices,
    summary_outcomes,
)
from meshcert.invariants.endpoints import (
    check_endpoint_ports,
    check_no_endpoints_without_pods,
    check_ready_endpoints,
    check_slice_structure,
    check_terminating_endpoints,
    check_unready_endpoints,
)
from meshcert.invariants.reachability import (
    check_all_ports_reachable,
    check_client_ip_affinity,
    check_clusterip_reachable,
    check_nodeport_on_every_node,
    check_traffic_only_to,
)
from meshcert.invariants.violations import Violation, assert_no_violations
from meshcert.kube.apply import apply_manifests, load_manifests
from meshcert.kube.exec import testapp_load as load_from_pod
from meshcert.kube.waits import wait_for_deployment_available, wait_for_pods_running

pytestmark = [pytest.mark.e2e, pytest.mark.conformance, pytest.mark.endpoints, pytest.mark.dataplane]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "conformance" / "endpoints"
GROUP = "endpoints"
#: Pods start in seconds (image on the node); 120 s absorbs a loaded 2-core host.
READY_TIMEOUT = 120.0
#: E1 "within a deadline": the controller batches updates for ~1 s, the kubelet reports readiness
#: on a 1 s probe period; 30 s is generous and the measured time is what gets reported.
CONVERGE_TIMEOUT = 30.0
#: Requests per traffic check: with one connection per request and k backends, a backend that
#: should receive traffic is missed with probability (1-1/k)^n, below 1e-7 for n=60, k≤3.
REQUESTS = 60
RATE = 30
#: E4's victim must still be draining when its load ends. The fixture's 15 s was not enough once
#: with three lanes on two cores (the load's client pod starts first); 60 s leaves room.
E4_DRAIN_S = 60


def _setup(api: ApiClient, ns: str, run_id: str, *files: str) -> None:
    apply_manifests(api, [FIXTURES / f for f in files], namespace=ns, run_id=run_id)


def _endpoint_checks(api: ApiClient, ns: str, service: str) -> list[Violation]:
    svc, slices, pods = get_service(api, ns, service), list_slices(api, ns, service), list_pods(api, ns)
    return [*check_ready_endpoints(svc, slices, pods), *check_endpoint_ports(svc, slices, pods)]


def _scale(api: ApiClient, ns: str, name: str, replicas: int) -> None:
    AppsV1Api(api).patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": replicas}})


def _load(api: ApiClient, ns: str, url: str, run_id: str, *, keepalive: bool = False) -> dict[str, object]:
    return load_from_pod(api, ns, url=url, rate=RATE, count=REQUESTS, run_id=run_id, keepalive=keepalive)


def test_e1_ready_endpoints_equal_ready_pods(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "E1")
    _setup(kube, namespace, run_id, "web.yaml")
    wait_for_deployment_available(kube, namespace, "web", timeout=READY_TIMEOUT)
    times = {"up to 3 replicas": converge_checks(
        lambda: _endpoint_checks(kube, namespace, "web"), what="E1 web after create", timeout=CONVERGE_TIMEOUT
    )}  # fmt: skip
    _scale(kube, namespace, "web", 1)
    times["down to 1 replica"] = converge_checks(
        lambda: _endpoint_checks(kube, namespace, "web"),
        what="E1 web after scale-down",
        timeout=CONVERGE_TIMEOUT,
    )
    ready = [p for p in list_pods(kube, namespace, "tier=serving") if p.ready and not p.terminating]
    assert len(ready) == 1, f"scale-down left {[p.name for p in ready]} ready"
    attach_json("E1 convergence seconds", times)


def test_e2_no_matching_pods_no_endpoints(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "E2")
    _setup(kube, namespace, run_id, "web.yaml")
    wait_for_deployment_available(kube, namespace, "web", timeout=READY_TIMEOUT)
    nobody = get_service(kube, namespace, "nobody")
    converge_checks(
        lambda: check_no_endpoints_without_pods(
            nobody, list_slices(kube, namespace, "nobody"), list_pods(kube, namespace)
        ),
        what="E2 nobody",
        timeout=CONVERGE_TIMEOUT,
    )
    # The stronger half: a Service that had endpoints loses all of them when its pods go away.
    wait_for_deployment_available(kube, namespace, "web", timeout=READY_TIMEOUT)
    assert len(list_slices(kube, namespace, "web-nodeport")[0].endpoints) == 3
    _scale(kube, namespace, "web", 0)
    took = converge_checks(
        lambda: _no_endpoints_when_gone(kube, namespace, "web-nodeport"),
        what="E2 web-nodeport after scale to 0",
        timeout=CONVERGE_TIMEOUT + 30,  # the pods drain for 15 s before they are gone
    )
    attach_json("E2 convergence seconds", {"scale to 0 → no endpoints": took})


def _no_endpoints_when_gone(api: ApiClient, ns: str, service: str) -> list[Violation]:
    svc, pods = get_service(api, ns, service), list_pods(api, ns)
    if any(p.labels.get("tier") == "serving" for p in pods):
        return [Violation("E2", svc.ref, "pods still terminating")]
    return check_no_endpoints_without_pods(svc, list_slices(api, ns, service), pods)


def test_e3_unready_pods_listed_not_ready_and_get_no_traffic(
    kube: ApiClient, namespace: str, run_id: str
) -> None:
    label(GROUP, "E3")
    _setup(kube, namespace, run_id, "web.yaml", "unready.yaml")
    wait_for_deployment_available(kube, namespace, "web", timeout=READY_TIMEOUT)
    wait_for_pods_running(kube, namespace, label_selector="tier=unready", count=1, timeout=READY_TIMEOUT)
    for service in ("web", "web-all"):  # ready=false; web-all publishes not-ready addresses
        converge_checks(
            lambda s=service: check_unready_endpoints(  # type: ignore[misc]
                get_service(kube, namespace, s), list_slices(kube, namespace, s), list_pods(kube, namespace)
            ),
            what=f"E3 {service}", timeout=CONVERGE_TIMEOUT,
        )  # fmt: skip
    summary = _load(kube, namespace, f"http://web.{namespace}/", run_id)
    ready = {p.name for p in list_pods(kube, namespace) if p.ready}
    assert_no_violations(check_traffic_only_to(summary_outcomes(summary), allowed=ready, invariant="E3"))
    assert summary["failed"] == 0, summary


def _web_draining(seconds: int) -> list[dict[str, Any]]:
    """web.yaml with the app draining ``seconds`` after SIGTERM (grace period 15 s longer)."""
    docs = [m.obj for m in load_manifests(FIXTURES / "web.yaml")]  # validated copies
    for doc in docs:
        if doc["kind"] == "Deployment":
            spec = doc["spec"]["template"]["spec"]
            spec["terminationGracePeriodSeconds"] = seconds + 15
            args = spec["containers"][0]["args"]
            args[args.index("--drain") + 1] = f"{seconds}s"
    return docs


def test_e4_terminating_endpoint_and_no_new_traffic(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "E4")
    apply_manifests(kube, _web_draining(E4_DRAIN_S), namespace=namespace, run_id=run_id)
    wait_for_deployment_available(kube, namespace, "web", timeout=READY_TIMEOUT)
    victim = sorted(p.name for p in list_pods(kube, namespace, "tier=serving"))[0]
    deleted = time.monotonic()
    CoreV1Api(kube).delete_namespaced_pod(victim, namespace)
    svc = get_service(kube, namespace, "web")

    def terminating_listed() -> list[Violation]:
        pods = list_pods(kube, namespace)
        found = check_terminating_endpoints(svc, list_slices(kube, namespace, "web"), pods)
        if not any(p.name == victim and p.terminating for p in pods):
            found.append(Violation("E4", svc.ref, f"{victim} not terminating (already gone?)"))
        return found

    took = converge_checks(
        terminating_listed, what="E4 terminating endpoint", timeout=10, interval=0.5, consecutive=2
    )
    # The victim drains for E4_DRAIN_S: a load now must not reach it while the others are ready.
    summary = _load(kube, namespace, f"http://web.{namespace}/", run_id)
    loaded = time.monotonic() - deleted
    still = {p.name for p in list_pods(kube, namespace)}
    assert victim in still, (
        f"victim gone {loaded:.1f} s after its deletion, before the traffic check ended "
        f"(drain {E4_DRAIN_S} s); the check proved nothing"
    )
    allowed = {p.name for p in list_pods(kube, namespace) if not p.terminating}
    assert_no_violations(check_traffic_only_to(summary_outcomes(summary), allowed=allowed, invariant="E4"))
    assert summary["failed"] == 0, summary
    attach_json("E4 seconds", {"delete → terminating=true": took, "delete → load done": round(loaded, 2)})


def test_e5_slice_structure(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "E5")
    _setup(kube, namespace, run_id, "web.yaml")
    wait_for_deployment_available(kube, namespace, "web", timeout=READY_TIMEOUT)
    converge_checks(
        lambda: _endpoint_checks(kube, namespace, "web"), what="E1 precondition", timeout=CONVERGE_TIMEOUT
    )
    for service in ("web", "web-nodeport", "web-affinity"):
        slices = list_slices(kube, namespace, service)
        assert slices, f"no EndpointSlice for {service}"
        assert_no_violations(check_slice_structure(get_service(kube, namespace, service), slices))


def test_e6_every_port_of_a_multi_port_service(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "E6")
    _setup(kube, namespace, run_id, "multiport.yaml")
    wait_for_deployment_available(kube, namespace, "multi", timeout=READY_TIMEOUT)
    svc = get_service(kube, namespace, "multi")
    converge_checks(
        lambda: _endpoint_checks(kube, namespace, "multi"), what="E1 precondition", timeout=CONVERGE_TIMEOUT
    )
    reachable = {
        p.port: _load(kube, namespace, f"http://multi.{namespace}:{p.port}/", run_id, keepalive=True)["ok"]
        == REQUESTS
        for p in svc.ports
    }
    assert_no_violations(check_all_ports_reachable(svc, reachable))


def test_e7_clusterip_by_ip_and_by_name(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "E7")
    _setup(kube, namespace, run_id, "web.yaml")
    wait_for_deployment_available(kube, namespace, "web", timeout=READY_TIMEOUT)
    svc = get_service(kube, namespace, "web")
    converge_checks(
        lambda: _endpoint_checks(kube, namespace, "web"), what="E1 precondition", timeout=CONVERGE_TIMEOUT
    )
    by_ip = _load(kube, namespace, f"http://{svc.cluster_ips[0]}/", run_id)
    by_name = _load(kube, namespace, f"http://web.{namespace}.svc.cluster.local/", run_id)
    assert_no_violations(
        check_clusterip_reachable(svc, by_ip=by_ip["ok"] == REQUESTS, by_name=by_name["ok"] == REQUESTS)
    )
    pods = {p.name for p in list_pods(kube, namespace, "tier=serving")}
    assert set(by_name["by_pod"]) == pods, f"by_pod {by_name['by_pod']}, pods {sorted(pods)}"  # type: ignore[call-overload]


@pytest.mark.multi_node
def test_e7_nodeport_on_every_node(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "E7")
    _setup(kube, namespace, run_id, "web.yaml")
    wait_for_deployment_available(kube, namespace, "web", timeout=READY_TIMEOUT)
    svc = get_service(kube, namespace, "web-nodeport")
    port = svc.ports[0].node_port
    nodes = list_nodes(kube)
    reachable = {
        n.name: _load(kube, namespace, f"http://{n.internal_ip}:{port}/", run_id)["ok"] == REQUESTS
        for n in nodes
    }
    attach_json("E7 NodePort per node", reachable)
    assert_no_violations(check_nodeport_on_every_node(svc, nodes, reachable))


def test_e7_client_ip_affinity_pins_one_backend(kube: ApiClient, namespace: str, run_id: str) -> None:
    label(GROUP, "E7")
    _setup(kube, namespace, run_id, "web.yaml")
    wait_for_deployment_available(kube, namespace, "web", timeout=READY_TIMEOUT)
    converge_checks(
        lambda: _endpoint_checks(kube, namespace, "web-affinity"),
        what="E1 precondition",
        timeout=CONVERGE_TIMEOUT,
    )
    summary = _load(kube, namespace, f"http://web-affinity.{namespace}/", run_id)
    assert summary["failed"] == 0, summary
    assert_no_violations(
        check_client_ip_affinity(get_service(kube, namespace, "web-affinity"), summary_outcomes(summary))
    )
