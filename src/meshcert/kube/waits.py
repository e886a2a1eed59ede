"""The ``wait_for_<noun>_<condition>(..., timeout=)`` family (STYLE.md §4).

Why it exists: every suite waits for the cluster to reach a state before it checks an
invariant, and a failed wait must say *what it saw*: each function returns the object(s) it
waited for or raises `meshcert.errors.WaitTimeout` whose message carries the last observed state
and, where sets are compared, a "missing: …, extra: …" diff (the e2e framework's habit).

Convergence, not retries: each wait is `meshcert.invariants.convergence.converge` — the
condition must hold ``consecutive`` times in a row within ``timeout`` — so a state that flickers
(an endpoint that appears and vanishes) does not pass on a lucky read. Defaults are one
confirmation for monotone conditions (a Deployment becoming Available) and three for sets that
are expected to be stable (endpoints), as in Gateway API's conformance.

Polling, every `POLL_INTERVAL` seconds, rather than watches: a watch delivers nothing while a
state is steady, which is exactly when N consecutive confirmations must be counted, and it adds
resourceVersion-expiry handling for no gain at these time scales. (Namespace deletion, a single
terminal event, does use a watch: see namespaces.py.)

The state judgements (``*_state`` functions) are pure, so they are unit-tested without a cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from kubernetes.client import (
    ApiClient,
    AppsV1Api,
    CoreV1Api,
    DiscoveryV1Api,
    V1Deployment,
    V1EndpointSlice,
    V1Node,
    V1Pod,
)

from meshcert.invariants.convergence import Observation, converge
from meshcert.invariants.violations import SetDiff
from meshcert.kube.client import KubeApiError, call

T = TypeVar("T")

#: Seconds between polls: pod and node status move on the kubelet's (or kwok's) status updates,
#: a second or more apart, so polling faster only loads the API server on a 2-core machine,
#: while 1 s keeps the recorded convergence time accurate to about a second.
POLL_INTERVAL = 1.0
#: Confirmations for sets expected to be steady (Gateway API's RequiredConsecutiveSuccesses).
STABLE_CONFIRMATIONS = 3


@dataclass(frozen=True)
class Seen(Generic[T]):
    """What one poll saw: the objects, and a one-line summary used in timeout messages."""

    summary: str
    objects: T

    def __repr__(self) -> str:
        return self.summary


def _poll(
    what: str,
    probe: Callable[[], Observation[Seen[T]]],
    *,
    timeout: float,
    consecutive: int,
    interval: float,
) -> T:
    """Converge on ``probe``; an API error counts as "not yet" (and is shown if it is the last)."""

    def guarded() -> Observation[Seen[T] | None]:
        try:
            obs = probe()
        except KubeApiError as e:
            return Observation(False, None, f"last API error: {e}")
        return Observation(obs.ok, obs.observed, obs.diff)

    result = converge(guarded, what=what, timeout=timeout, consecutive=consecutive, interval=interval)
    assert result.observed is not None  # an ok observation always carries what was seen
    return result.observed.objects


# ---- nodes -------------------------------------------------------------------------------


def _name(obj: V1Node | V1Pod) -> str:
    return (obj.metadata.name if obj.metadata else None) or "?"


def node_ready(node: V1Node) -> bool:
    conditions = node.status.conditions if node.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def nodes_ready_state(
    nodes: Sequence[V1Node], *, count: int | None, names: Iterable[str] | None
) -> Observation[Seen[list[V1Node]]]:
    """Ready when ``names`` (if given) are exactly the Ready nodes and there are ``count`` of them."""
    ready = sorted(_name(n) for n in nodes if node_ready(n))
    not_ready = sorted(_name(n) for n in nodes if not node_ready(n))
    summary = f"{len(ready)}/{len(nodes)} nodes Ready" + (f" (not Ready: {not_ready})" if not_ready else "")
    diff = SetDiff.of(expected=names, observed=ready) if names is not None else None
    ok = (count is None or len(ready) >= count) and not diff and bool(ready)
    return Observation(ok, Seen(summary, list(nodes)), str(diff) if diff else "")


def wait_for_nodes_ready(
    api: ApiClient,
    *,
    count: int | None = None,
    names: Iterable[str] | None = None,
    label_selector: str = "",
    timeout: float,
    consecutive: int = 1,
    interval: float = POLL_INTERVAL,
) -> list[V1Node]:
    """Wait until at least ``count`` nodes (or exactly the ``names``) are Ready; returns all nodes."""
    core = CoreV1Api(api)
    wanted = sorted(names) if names is not None else None

    def probe() -> Observation[Seen[list[V1Node]]]:
        nodes = call("list nodes", core.list_node, label_selector=label_selector).items
        return nodes_ready_state(nodes, count=count, names=wanted)

    what = (
        f"{count if count is not None else 'all'} node(s) Ready"
        if wanted is None
        else f"nodes {wanted} Ready"
    )
    return _poll(what, probe, timeout=timeout, consecutive=consecutive, interval=interval)


# ---- pods --------------------------------------------------------------------------------


def pod_ready(pod: V1Pod) -> bool:
    conditions = pod.status.conditions if pod.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def pod_terminating(pod: V1Pod) -> bool:
    """Deleted but not gone: still Running until its containers exit (grace period, drain)."""
    return bool(pod.metadata and pod.metadata.deletion_timestamp)


def pod_running(pod: V1Pod) -> bool:
    return bool(pod.status and pod.status.phase == "Running")


def _pod_summary(pod: V1Pod) -> str:
    name = pod.metadata.name if pod.metadata else "?"
    phase = (pod.status.phase if pod.status else None) or "?"
    ready = "ready" if pod_ready(pod) else "not-ready"
    node = (pod.spec.node_name if pod.spec else None) or "unscheduled"
    deleting = " deleting" if pod.metadata and pod.metadata.deletion_timestamp else ""
    return f"{name}={phase}/{ready}@{node}{deleting}"


def pods_state(
    pods: Sequence[V1Pod], *, count: int, condition: Callable[[V1Pod], bool], label: str
) -> Observation[Seen[list[V1Pod]]]:
    """OK when exactly ``count`` live (not deleting) pods satisfy ``condition`` and none fail it."""
    live = [p for p in pods if not pod_terminating(p)]
    good = [p for p in live if condition(p)]
    summary = f"{len(good)}/{count} {label}: " + (", ".join(_pod_summary(p) for p in pods) or "no pods")
    return Observation(len(good) == count == len(live), Seen(summary, good))


def _wait_pods(
    api: ApiClient,
    namespace: str,
    *,
    label_selector: str,
    count: int,
    condition: Callable[[V1Pod], bool],
    label: str,
    timeout: float,
    consecutive: int,
    interval: float,
) -> list[V1Pod]:
    core = CoreV1Api(api)

    def probe() -> Observation[Seen[list[V1Pod]]]:
        pods = call(
            f"list pods in {namespace}", core.list_namespaced_pod, namespace, label_selector=label_selector
        ).items
        return pods_state(pods, count=count, condition=condition, label=label)

    what = f"{count} pod(s) {label} in {namespace} matching {label_selector!r}"
    return _poll(what, probe, timeout=timeout, consecutive=consecutive, interval=interval)


def wait_for_pods_running(
    api: ApiClient,
    namespace: str,
    *,
    label_selector: str,
    count: int,
    timeout: float,
    consecutive: int = 1,
    interval: float = POLL_INTERVAL,
) -> list[V1Pod]:
    """Wait until exactly ``count`` pods matching ``label_selector`` are in phase Running."""
    return _wait_pods(
        api, namespace, label_selector=label_selector, count=count, condition=pod_running,
        label="Running", timeout=timeout, consecutive=consecutive, interval=interval,
    )  # fmt: skip


def wait_for_pods_ready(
    api: ApiClient,
    namespace: str,
    *,
    label_selector: str,
    count: int,
    timeout: float,
    consecutive: int = 1,
    interval: float = POLL_INTERVAL,
) -> list[V1Pod]:
    """Wait until exactly ``count`` pods matching ``label_selector`` have condition Ready=True."""
    return _wait_pods(
        api, namespace, label_selector=label_selector, count=count, condition=pod_ready,
        label="Ready", timeout=timeout, consecutive=consecutive, interval=interval,
    )  # fmt: skip


def pod_bound(pod: V1Pod) -> bool:
    return bool(pod.spec and pod.spec.node_name)


def wait_for_pods_bound(
    api: ApiClient,
    namespace: str,
    *,
    label_selector: str,
    count: int,
    timeout: float,
    interval: float = POLL_INTERVAL,
) -> list[V1Pod]:
    """Wait until exactly ``count`` pods matching ``label_selector`` are bound to a node (one
    confirmation: a binding is never undone)."""
    return _wait_pods(
        api, namespace, label_selector=label_selector, count=count, condition=pod_bound,
        label="bound", timeout=timeout, consecutive=1, interval=interval,
    )  # fmt: skip


# ---- deployments -------------------------------------------------------------------------


def _condition(dep: V1Deployment, kind: str) -> tuple[str, str]:
    for c in (dep.status.conditions if dep.status else None) or []:
        if c.type == kind:
            return c.status or "Unknown", c.reason or ""
    return "Unknown", ""


def _dep_summary(dep: V1Deployment) -> str:
    s = dep.status
    want = dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1
    avail, avail_reason = _condition(dep, "Available")
    prog, prog_reason = _condition(dep, "Progressing")
    return (
        f"replicas={want} updated={(s and s.updated_replicas) or 0} ready={(s and s.ready_replicas) or 0} "
        f"available={(s and s.available_replicas) or 0} total={(s and s.replicas) or 0} "
        f"generation={dep.metadata.generation if dep.metadata else '?'} "
        f"observed={(s and s.observed_generation) or 0} Available={avail}({avail_reason}) "
        f"Progressing={prog}({prog_reason})"
    )


def deployment_available_state(dep: V1Deployment) -> Observation[Seen[V1Deployment]]:
    """Available: condition Available=True and every desired replica available."""
    want = dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1
    available = (dep.status.available_replicas if dep.status else None) or 0
    ok = _condition(dep, "Available")[0] == "True" and available >= want
    return Observation(ok, Seen(_dep_summary(dep), dep))


def deployment_rolled_out_state(dep: V1Deployment) -> Observation[Seen[V1Deployment]]:
    """`kubectl rollout status` semantics: the controller saw the latest spec, every replica is
    updated and available, and no old replica remains."""
    s = dep.status
    want = dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1
    generation = (dep.metadata.generation if dep.metadata else None) or 0
    observed = (s.observed_generation if s else None) or 0
    updated = (s.updated_replicas if s else None) or 0
    total = (s.replicas if s else None) or 0
    available = (s.available_replicas if s else None) or 0
    stalled = _condition(dep, "Progressing")[1] == "ProgressDeadlineExceeded"
    ok = observed >= generation and updated == want and total == want and available == want and not stalled
    diff = "rollout stalled: ProgressDeadlineExceeded" if stalled else ""
    return Observation(ok, Seen(_dep_summary(dep), dep), diff)


def _wait_deployment(
    api: ApiClient,
    namespace: str,
    name: str,
    state: Callable[[V1Deployment], Observation[Seen[V1Deployment]]],
    label: str,
    *,
    timeout: float,
    consecutive: int,
    interval: float,
) -> V1Deployment:
    apps = AppsV1Api(api)

    def probe() -> Observation[Seen[V1Deployment]]:
        dep = call(f"get deployment {namespace}/{name}", apps.read_namespaced_deployment, name, namespace)
        return state(dep)

    what = f"Deployment {namespace}/{name} {label}"
    return _poll(what, probe, timeout=timeout, consecutive=consecutive, interval=interval)


def wait_for_deployment_available(
    api: ApiClient,
    namespace: str,
    name: str,
    *,
    timeout: float,
    consecutive: int = 1,
    interval: float = POLL_INTERVAL,
) -> V1Deployment:
    """Wait until the Deployment is Available with all desired replicas available."""
    return _wait_deployment(
        api, namespace, name, deployment_available_state, "to be Available",
        timeout=timeout, consecutive=consecutive, interval=interval,
    )  # fmt: skip


def wait_for_deployment_rolled_out(
    api: ApiClient,
    namespace: str,
    name: str,
    *,
    timeout: float,
    consecutive: int = 1,
    interval: float = POLL_INTERVAL,
) -> V1Deployment:
    """Wait until the latest revision is fully rolled out (as `kubectl rollout status` does)."""
    return _wait_deployment(
        api, namespace, name, deployment_rolled_out_state, "to be rolled out",
        timeout=timeout, consecutive=consecutive, interval=interval,
    )  # fmt: skip


# ---- endpoints ---------------------------------------------------------------------------


def ready_addresses(slices: Iterable[V1EndpointSlice]) -> set[str]:
    """Addresses of ready endpoints (ready unset counts as ready, per the EndpointSlice API)."""
    out: set[str] = set()
    for sl in slices:
        for ep in sl.endpoints or []:
            ready = ep.conditions.ready if ep.conditions else None
            if ready is not False:
                out.update(ep.addresses or [])
    return out


def endpoints_state(
    slices: Sequence[V1EndpointSlice], expected: Iterable[str]
) -> Observation[Seen[list[V1EndpointSlice]]]:
    """OK when the ready addresses equal ``expected`` exactly; the diff says which differ."""
    observed = ready_addresses(slices)
    diff = SetDiff.of(expected=expected, observed=observed)
    names = sorted(s.metadata.name for s in slices if s.metadata and s.metadata.name)
    summary = f"{len(slices)} slice(s) {names}, ready addresses {sorted(observed)}"
    return Observation(not diff, Seen(summary, list(slices)), str(diff) if diff else "")


def wait_for_endpoints(
    api: ApiClient,
    namespace: str,
    service: str,
    *,
    expected: Iterable[str],
    timeout: float,
    consecutive: int = STABLE_CONFIRMATIONS,
    interval: float = POLL_INTERVAL,
) -> list[V1EndpointSlice]:
    """Wait until the Service's ready EndpointSlice addresses equal ``expected`` (E1's set
    equality), ``consecutive`` polls in a row; returns the slices."""
    disc = DiscoveryV1Api(api)
    want = frozenset(expected)

    def probe() -> Observation[Seen[list[V1EndpointSlice]]]:
        slices = call(
            f"list EndpointSlices of {namespace}/{service}",
            disc.list_namespaced_endpoint_slice,
            namespace,
            label_selector=f"kubernetes.io/service-name={service}",
        ).items
        return endpoints_state(slices, want)

    what = f"endpoints of Service {namespace}/{service} to equal {sorted(want)}"
    return _poll(what, probe, timeout=timeout, consecutive=consecutive, interval=interval)


def wait_for_no_pods(api: ApiClient, namespace: str, selector: str, *, timeout: float) -> float:
    """Seconds until no pod (not even a terminating one) matches ``selector``."""
    core = CoreV1Api(api)

    def probe() -> Observation[list[str]]:
        pods = call(f"list pods {selector} in {namespace}", core.list_namespaced_pod, namespace,
                    label_selector=selector).items  # fmt: skip
        names = sorted(p.metadata.name for p in pods if p.metadata and p.metadata.name)
        return Observation(not names, names, f"still present: {names}" if names else "")

    start = time.monotonic()
    converge(probe, what=f"no pods {selector} in {namespace}", timeout=timeout, consecutive=1)
    return time.monotonic() - start
