"""Pod and container kills, with the "revert" verified: the owner has replaced what was killed.

A kill cannot be undone, so rollback here means: wait until the workload is whole again
(``expected`` Ready pods matching ``selector``; for a container kill, the same pod Ready with a
higher restart count) and fail with the last observed state if it is not within ``timeout``.

Pod kill is a delete with grace period 0 (the API object goes at once; the kubelet SIGKILLs).
Container kill runs ``crictl stop --timeout 0`` in the pod's node container: the kubelet sees
the container die and restarts it in place — a crash, not an eviction. The test app image has
no shell or kill binary, which is why exec'ing ``kill 1`` in the pod is not the mechanism.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from kubernetes.client import ApiClient, CoreV1Api, V1ContainerStatus, V1DeleteOptions, V1Pod

from meshcert.errors import FaultError
from meshcert.faults import revert
from meshcert.faults.restore import restoring
from meshcert.kube.client import call
from meshcert.kube.waits import pod_ready

#: Replacement pod: schedule + start from a local image + readiness (period 2 s) ~5-10 s on kind.
RECOVERY_TIMEOUT = 120.0
_POLL_S = 0.5


@dataclass(frozen=True)
class Killed:
    """What was killed and when (monotonic), for recovery-time accounting."""

    namespace: str
    pod: str
    node: str
    container: str | None
    at: float


def _ready_pods(core: CoreV1Api, namespace: str, selector: str) -> list[V1Pod]:
    pods = call("list pods", core.list_namespaced_pod, namespace, label_selector=selector).items
    return [p for p in pods if p.metadata and p.metadata.deletion_timestamp is None and pod_ready(p)]


def wait_for_ready_count(
    api: ApiClient, namespace: str, selector: str, expected: int, *, timeout: float = RECOVERY_TIMEOUT
) -> float:
    """Seconds until ``expected`` non-terminating pods matching ``selector`` are Ready."""
    core = CoreV1Api(api)
    start = time.monotonic()
    while True:
        ready = _ready_pods(core, namespace, selector)
        if len(ready) >= expected:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            names = [p.metadata.name for p in ready if p.metadata]
            raise FaultError(
                f"{namespace}/{selector}: {len(ready)}/{expected} Ready after {timeout:.0f}s: {names}"
            )
        time.sleep(_POLL_S)


@contextlib.contextmanager
def pod_kill(
    api: ApiClient,
    namespace: str,
    pod: str,
    *,
    selector: str,
    expected: int,
    timeout: float = RECOVERY_TIMEOUT,
) -> Iterator[Killed]:
    """Delete ``pod`` with grace 0; on exit wait until ``expected`` pods of ``selector`` are Ready."""
    core = CoreV1Api(api)
    obj = call(f"get pod {namespace}/{pod}", core.read_namespaced_pod, pod, namespace)
    killed = Killed(namespace, pod, (obj.spec.node_name if obj.spec else None) or "", None, time.monotonic())
    call(
        f"delete pod {namespace}/{pod}", core.delete_namespaced_pod, pod, namespace,
        body=V1DeleteOptions(grace_period_seconds=0),
    )  # fmt: skip

    def recover() -> None:
        wait_for_ready_count(api, namespace, selector, expected, timeout=timeout)

    with restoring(f"pod kill of {pod} (workload recovery)", recover):
        yield killed


def _statuses(pod: V1Pod) -> list[V1ContainerStatus]:
    """App containers and init containers: a native sidecar (an init container with
    restartPolicy Always, e.g. Istio's istio-proxy) reports its status among the init ones."""
    if pod.status is None:
        return []
    return [*(pod.status.container_statuses or []), *(pod.status.init_container_statuses or [])]


def _container_id(pod: V1Pod, container: str) -> str:
    for cs in _statuses(pod):
        if cs.name == container and cs.container_id:
            return str(cs.container_id).split("://", 1)[-1]
    raise FaultError(
        f"pod {pod.metadata.name if pod.metadata else '?'} has no running container {container!r}"
    )


def _restarts(pod: V1Pod, container: str) -> int:
    for cs in _statuses(pod):
        if cs.name == container:
            return int(cs.restart_count)
    return 0


@contextlib.contextmanager
def container_kill(
    api: ApiClient,
    namespace: str,
    pod: str,
    container: str,
    *,
    timeout: float = RECOVERY_TIMEOUT,
) -> Iterator[Killed]:
    """SIGKILL ``container`` of ``pod`` via crictl on its node; on exit wait until it restarted, Ready."""
    core = CoreV1Api(api)
    obj = call(f"get pod {namespace}/{pod}", core.read_namespaced_pod, pod, namespace)
    node = (obj.spec.node_name if obj.spec else None) or ""
    before = _restarts(obj, container)
    cid = _container_id(obj, container)
    code, out = revert.node_exec(node, ["crictl", "stop", "--timeout", "0", cid])
    if code != 0:
        raise FaultError(f"crictl stop {cid} on {node}: {out.strip()}")
    killed = Killed(namespace, pod, node, container, time.monotonic())

    def comes_back() -> None:
        deadline = time.monotonic() + timeout
        while True:
            cur = call(f"get pod {namespace}/{pod}", core.read_namespaced_pod, pod, namespace)
            if _restarts(cur, container) > before and pod_ready(cur):
                return
            state = f"restarts {_restarts(cur, container)} (was {before}), ready {pod_ready(cur)}"
            if time.monotonic() > deadline:
                raise FaultError(f"container {container} of {namespace}/{pod} did not come back: {state}")
            time.sleep(_POLL_S)

    with restoring(f"container kill of {namespace}/{pod}/{container}", comes_back):
        yield killed
