"""Helpers the conformance suites share: API snapshots as views, reporting, node edits, samplers.

Why it exists: conformance tests must stay thin records (STYLE.md §6) — an invariant id, manifests
from fixtures/conformance, one checker call — and suites must never import each other. What they
have in common lives here instead of in a conftest: reading API objects into the invariant views,
labelling and attaching measurements to the Allure result, reversible node edits (labels, taints,
cordon) that verify their rollback by reading the node back (STYLE.md §9), a readiness flip via the
API server's pod proxy, and a timestamped request sampler.

What it is not: no checker logic (that is meshcert.invariants) and no waiting vocabulary beyond
`converge_checks` (that is meshcert.kube.waits).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api, DiscoveryV1Api

from meshcert.errors import WaitTimeout
from meshcert.invariants.convergence import Observation, converge
from meshcert.invariants.probes import ContainerSample
from meshcert.invariants.service_views import EndpointSliceView, ServiceView
from meshcert.invariants.timeline import RequestOutcome
from meshcert.invariants.views import NodeView, PodView
from meshcert.invariants.violations import Violation, assert_no_violations
from meshcert.kube.client import call, request

#: kubeadm's label on control-plane nodes; workers are the nodes without it.
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
#: The test app's listen port in every conformance fixture (images/testapp/main.go default).
TESTAPP_PORT = 8080


# ---- reporting ---------------------------------------------------------------------------


def label(group: str, invariant: str) -> None:
    """Allure labels: feature = suite group, story + tag + ``invariant`` label = the invariant id."""
    import allure  # allure-pytest's module; imported lazily so nothing loads at import time

    dynamic: Any = allure.dynamic  # allure-pytest ships no type hints
    dynamic.feature(group)
    dynamic.story(invariant)
    dynamic.tag(invariant)
    dynamic.label("invariant", invariant)


def attach_json(name: str, data: object) -> None:
    """Attach a measurement (convergence times, propagation stats) to the Allure result as JSON."""
    import allure

    allure.attach(
        json.dumps(data, indent=2, sort_keys=True, default=str),
        name=name,
        attachment_type=allure.attachment_type.JSON,
    )


# ---- snapshots as views ------------------------------------------------------------------


@functools.cache
def _serializer() -> Any:  # only its (untyped) sanitize_for_serialization is used; made on first use
    return ApiClient()


def to_json(obj: object) -> dict[str, Any]:
    """A client model as the API server's camelCase JSON (what the views parse)."""
    raw = _serializer().sanitize_for_serialization(obj)
    assert isinstance(raw, dict)
    return raw


def list_pods(api: ApiClient, namespace: str, selector: str = "") -> list[PodView]:
    core = CoreV1Api(api)
    items = call(f"list pods {namespace}", core.list_namespaced_pod, namespace, label_selector=selector).items
    return [PodView.from_api(to_json(p)) for p in items]


def get_pod(api: ApiClient, namespace: str, name: str) -> PodView:
    core = CoreV1Api(api)
    return PodView.from_api(
        to_json(call(f"get pod {namespace}/{name}", core.read_namespaced_pod, name, namespace))
    )


def list_nodes(api: ApiClient) -> list[NodeView]:
    core = CoreV1Api(api)
    return [NodeView.from_api(to_json(n)) for n in call("list nodes", core.list_node).items]


def worker_nodes(api: ApiClient) -> list[NodeView]:
    """Ready nodes without the control-plane label, sorted by name (kind: ``<name>-worker*``)."""
    return sorted(
        (n for n in list_nodes(api) if CONTROL_PLANE_LABEL not in n.labels and n.ready), key=lambda n: n.name
    )


def get_service(api: ApiClient, namespace: str, name: str) -> ServiceView:
    core = CoreV1Api(api)
    raw = call(f"get service {namespace}/{name}", core.read_namespaced_service, name, namespace)
    return ServiceView.from_api(to_json(raw))


def list_slices(api: ApiClient, namespace: str, service: str | None = None) -> list[EndpointSliceView]:
    disc = DiscoveryV1Api(api)
    selector = f"kubernetes.io/service-name={service}" if service else ""
    items = call(
        f"list EndpointSlices {namespace}", disc.list_namespaced_endpoint_slice, namespace,
        label_selector=selector,
    ).items  # fmt: skip
    return [EndpointSliceView.from_api(to_json(s)) for s in items]


def ready_endpoint_ips(slices: Sequence[EndpointSliceView]) -> set[str]:
    return {a for s in slices for e in s.endpoints if e.ready for a in e.addresses}


# ---- convergence of checkers -------------------------------------------------------------


def converge_checks(
    check: Callable[[], list[Violation]],
    *,
    what: str,
    timeout: float,
    consecutive: int = 3,
    interval: float = 1.0,
) -> float:
    """Poll ``check`` until it returns no violation ``consecutive`` times in a row; return the time
    until the final streak began (the convergence time to report). On timeout the last findings
    fail the test through `assert_no_violations`, so the message keeps their ids and diffs."""
    last: list[Violation] = []

    def probe() -> Observation[int]:
        nonlocal last
        last = check()
        return Observation(not last, len(last), "; ".join(str(v) for v in last[:3]))

    try:
        return converge(
            probe, what=what, timeout=timeout, consecutive=consecutive, interval=interval
        ).time_to_converge
    except WaitTimeout:
        assert_no_violations(last, context=f"{what} (not within {timeout:.0f}s)")
        raise


# ---- the test app's admin endpoints, through the API server's pod proxy --------------------


def set_pod_readiness(
    api: ApiClient, namespace: str, pod: str, *, ok: bool, port: int = TESTAPP_PORT
) -> None:
    """POST /admin/ready?ok= on one pod, via the API server's proxy (no client pod needed)."""
    request(
        api, "POST", f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/admin/ready",
        what=f"flip readiness of {namespace}/{pod} to {ok}", query={"ok": str(ok).lower()}, timeout=10.0,
    )  # fmt: skip


# ---- reversible node edits (STYLE.md §9: rollback in finally, verified by reading back) ----


def _patch_node(api: ApiClient, name: str, body: Mapping[str, Any]) -> NodeView:
    core = CoreV1Api(api)
    return NodeView.from_api(to_json(call(f"patch node {name}", core.patch_node, name, dict(body))))


def _node(api: ApiClient, name: str) -> NodeView:
    core = CoreV1Api(api)
    return NodeView.from_api(to_json(call(f"get node {name}", core.read_node, name)))


@contextlib.contextmanager
def node_labels(api: ApiClient, node: str, labels: Mapping[str, str]) -> Iterator[NodeView]:
    """Add ``labels`` to ``node`` for the block; remove them after and check they are gone."""
    try:
        yield _patch_node(api, node, {"metadata": {"labels": dict(labels)}})
    finally:
        restored = _patch_node(api, node, {"metadata": {"labels": dict.fromkeys(labels)}})
        left = set(labels) & set(restored.labels)
        assert not left, f"labels {sorted(left)} still on node {node} after rollback"


def _taints_json(api: ApiClient, node: str) -> list[dict[str, Any]]:
    core = CoreV1Api(api)
    raw = to_json(call(f"get node {node}", core.read_node, node))
    taints = raw.get("spec", {}).get("taints") or []
    assert isinstance(taints, list)
    return [dict(t) for t in taints]


def _same_taint(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.get("key") == b.get("key") and a.get("effect") == b.get("effect")


def add_taint(api: ApiClient, node: str, taint: Mapping[str, str]) -> float:
    """Add one taint (merge-patching the whole list, as kubectl does); returns the wall-clock time."""
    current = [t for t in _taints_json(api, node) if not _same_taint(t, taint)]
    _patch_node(api, node, {"spec": {"taints": [*current, dict(taint)]}})
    return time.time()


def remove_taint(api: ApiClient, node: str, taint: Mapping[str, str]) -> float:
    """Remove the taint with ``taint``'s key and effect; verify it is gone; return the time."""
    kept = [t for t in _taints_json(api, node) if not _same_taint(t, taint)]
    _patch_node(api, node, {"spec": {"taints": kept}})
    at = time.time()
    left = [t for t in _taints_json(api, node) if _same_taint(t, taint)]
    assert not left, f"taint {taint} still on node {node} after removal"
    return at


@contextlib.contextmanager
def node_taint(api: ApiClient, node: str, taint: Mapping[str, str]) -> Iterator[float]:
    """The taint on ``node`` for the block (yields when it was added); removed again in finally."""
    try:
        yield add_taint(api, node, taint)
    finally:
        remove_taint(api, node, taint)


@contextlib.contextmanager
def cordoned(api: ApiClient, node: str) -> Iterator[float]:
    """``node`` unschedulable for the block (yields the cordon time); uncordoned and verified after."""
    try:
        _patch_node(api, node, {"spec": {"unschedulable": True}})
        yield time.time()
    finally:
        restored = _patch_node(api, node, {"spec": {"unschedulable": None}})
        assert not restored.unschedulable, f"node {node} still cordoned after rollback"


# ---- recording -------------------------------------------------------------------------


def record_containers(
    api: ApiClient,
    namespace: str,
    *,
    container: str,
    until: Callable[[dict[str, list[ContainerSample]]], bool],
    timeout: float,
    interval: float = 0.5,
    selector: str = "",
    slices_of: str | None = None,
) -> dict[str, list[ContainerSample]]:
    """Sample every pod's ``container`` (wall-clock seconds, as API timestamps are) until ``until``
    holds for what was recorded or ``timeout`` passes; with ``slices_of`` each sample also says
    whether the pod's IP is a ready endpoint of that Service. 0.5 s resolves the probe periods
    (≥ 1 s) the fixtures use."""
    out: dict[str, list[ContainerSample]] = {}
    deadline = time.monotonic() + timeout
    while True:
        at = time.time()
        ready_ips = ready_endpoint_ips(list_slices(api, namespace, slices_of)) if slices_of else set()
        for pod in list_pods(api, namespace, selector):
            listed = bool(set(pod.pod_ips) & ready_ips) if slices_of else None
            out.setdefault(pod.name, []).append(
                ContainerSample.from_pod(at, pod, container=container, in_endpoints=listed)
            )
        if until(out) or time.monotonic() > deadline:
            return out
        time.sleep(interval)


def summary_outcomes(summary: Mapping[str, Any]) -> list[RequestOutcome]:
    """The test app's load summary as outcomes. It reports counts, not per-request times, so every
    outcome carries ``at=0``: good for count checks (R1's zero failures), not for timelines."""
    ok = [
        RequestOutcome(0.0, True, backend=str(pod))
        for pod, n in summary.get("by_pod", {}).items()
        for _ in range(int(n))
    ]
    errors = ", ".join(f"{k}={v}" for k, v in sorted(summary.get("errors", {}).items()))
    failed = [RequestOutcome(0.0, False, detail=errors) for _ in range(int(summary.get("failed", 0)))]
    return [*ok, *failed]


@dataclass
class HostSampler:
    """Sends GET ``http://host:port/`` at a fixed rate from this process, one connection per
    request, recording `RequestOutcome`s on the monotonic clock with the answering pod.

    Why from the host: the in-cluster load client reports counts only, but an outage length (R2)
    or a reachability instant (E9) needs per-request timestamps on the same clock as the API
    polls. A NodePort on a kind node is reachable from here and goes through that node's
    kube-proxy exactly as in-cluster ClusterIP traffic does. Requests are sent sequentially; at
    the rates used (≤ 50/s, answers in ~1 ms) the schedule holds.
    """

    host: str
    port: int
    rate: float
    timeout: float = 1.0
    outcomes: list[RequestOutcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _one(self) -> RequestOutcome:
        at = time.monotonic()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", "/", headers={"Connection": "close"})
            resp = conn.getresponse()
            body = resp.read()
            pod = str(json.loads(body).get("pod", "")) if resp.status == 200 else ""
            return RequestOutcome(at, resp.status == 200, backend=pod, detail=str(resp.status))
        except (OSError, http.client.HTTPException, ValueError) as e:
            return RequestOutcome(at, False, detail=type(e).__name__)
        finally:
            conn.close()

    def _run(self) -> None:
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.outcomes.append(self._one())
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> HostSampler:
        self._thread = threading.Thread(target=self._run, name="host-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1)
