"""A Deployment scaled to zero for the block: a control-plane outage that is not a node fault.

Why it exists: M14 takes the mesh's control plane (istiod, a Deployment) away and checks that the
data plane keeps serving its last config. Killing the pod is not an outage (the ReplicaSet
replaces it in seconds); scaling to zero keeps it down until the block ends. The revert scales
back to the recorded replica count and verifies by reading state back (spec.replicas restored and
that many replicas Ready); `restoring()` guarantees it runs also when the block fails.

The fault is recorded in the run store *before* it is applied, so `meshcert gc` scales the
Deployment back after a SIGKILLed run (faults/revert.py, through kubectl on the kind
control-plane node, since gc must not need the API server reachable from the host).
What it is not: it does not know about any particular mesh; the caller names the Deployment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kubernetes.client import ApiClient, AppsV1Api

from meshcert.errors import FaultError
from meshcert.faults.restore import restoring
from meshcert.kube.client import call
from meshcert.kube.waits import wait_for_deployment_available, wait_for_no_pods
from meshcert.runs import FaultRecord, RunStore

#: Pods of a scaled-down Deployment terminate within their grace period (istiod: 30 s by
#: default); 120 s bounds that plus a loaded 2-core host. Scaling back up needs image-local start
#: and readiness (istiod: ~10-30 s here), bounded by the same figure doubled.
DOWN_TIMEOUT = 120.0
UP_TIMEOUT = 240.0
KIND = "deployment-scale"


@dataclass(frozen=True)
class ScaledDown:
    """What was scaled down, from how many replicas, and how long until no pod was left."""

    namespace: str
    name: str
    replicas: int
    down_after_s: float


def _selector(api: ApiClient, namespace: str, name: str) -> tuple[int, str]:
    apps = AppsV1Api(api)
    dep = call(f"get deployment {namespace}/{name}", apps.read_namespaced_deployment, name, namespace)
    labels = (dep.spec.selector.match_labels if dep.spec and dep.spec.selector else None) or {}
    if not labels:
        raise FaultError(f"Deployment {namespace}/{name} has no matchLabels selector to watch its pods by")
    replicas = dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1
    return replicas, ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def scale(api: ApiClient, namespace: str, name: str, replicas: int) -> None:
    body = {"spec": {"replicas": replicas}}
    apps = AppsV1Api(api)
    call(f"scale deployment {namespace}/{name} to {replicas}", apps.patch_namespaced_deployment_scale,
         name, namespace, body)  # fmt: skip


@contextlib.contextmanager
def scaled_to_zero(
    api: ApiClient,
    namespace: str,
    name: str,
    *,
    run_id: str,
    state_dir: Path,
    cluster: str = "",
    down_timeout: float = DOWN_TIMEOUT,
    up_timeout: float = UP_TIMEOUT,
) -> Iterator[ScaledDown]:
    """Scale Deployment ``namespace/name`` to 0 for the block; scale back and verify after.

    ``cluster`` is the kind cluster name gc needs to reach the control-plane node ("" outside
    kind: then only this context manager can revert).
    """
    replicas, selector = _selector(api, namespace, name)
    if replicas < 1:
        raise FaultError(f"Deployment {namespace}/{name} already has 0 replicas; nothing to take down")
    store = RunStore(state_dir)
    fault = FaultRecord(
        key=f"{KIND}:{namespace}/{name}",
        kind=KIND,
        cluster=cluster,
        detail={"namespace": namespace, "name": name, "replicas": str(replicas)},
    )
    store.add_fault(run_id, fault)

    def restore() -> None:
        # Errors here are MeshcertErrors; restoring() turns them into FaultError or a note.
        scale(api, namespace, name, replicas)
        dep = wait_for_deployment_available(api, namespace, name, timeout=up_timeout)
        back = dep.spec.replicas if dep.spec else None
        if back != replicas:
            raise FaultError(f"{namespace}/{name} reads back replicas={back}, expected {replicas}")
        store.remove_fault(run_id, fault.key)

    with restoring(f"scale-down of {namespace}/{name}", restore):
        scale(api, namespace, name, 0)
        took = wait_for_no_pods(api, namespace, selector, timeout=down_timeout)
        yield ScaledDown(namespace, name, replicas, took)
