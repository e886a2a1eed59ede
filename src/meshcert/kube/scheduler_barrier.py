"""Proof that kube-scheduler has seen every node and pod change made so far.

Why: a test that reshapes nodes or deletes pods and then creates pods at once races the
scheduler's informers. The API server already answers with the new state, but the scheduler's
cache may still hold a deleted pod (whose labels then satisfy a pod-affinity term that nothing
live satisfies) or a node's old labels, and it decides the new pods on that stale view. A judge
replaying the decisions against the API's state then blames the scheduler for the test's race.

The barrier: label ``node`` with a fresh random value, delete the previous barrier pod, and
create one that only that label lets bind. The scheduler's node informer and pod informer each deliver
events in resourceVersion order, and each handler updates the cache before the next event. So
once the barrier pod is bound, the cache holds every node update made before the label (the
label is the last one) and every pod deletion made before the barrier pod's creation.

The barrier pod lives in its own namespace with no labels but the run's, on a node outside the
pods under test: pod affinity, anti-affinity and spread only count pods of their own namespace
(without a namespaceSelector), so it is invisible to them.
"""

from __future__ import annotations

import secrets

from kubernetes.client import ApiClient, CoreV1Api, V1Container, V1ObjectMeta, V1Pod, V1PodSpec, V1Toleration

from meshcert.kube.client import call
from meshcert.kube.waits import wait_for_pods_bound
from meshcert.runid import run_labels

BARRIER_LABEL = "meshcert.io/scheduler-barrier"
#: The scheduler binds a pod within milliseconds once its cache allows; poll that quickly
#: because the barrier runs before every example of a property test.
BARRIER_POLL = 0.05


def scheduler_barrier(
    api: ApiClient, *, namespace: str, node: str, run_id: str, image: str, timeout: float
) -> V1Pod:
    """Return the bound barrier pod (see the module docstring); raises `meshcert.errors.WaitTimeout`
    with the barrier pod's last state if it is not bound in time."""
    core = CoreV1Api(api)
    value = secrets.token_hex(4)  # new each call, so no earlier barrier's label can admit this pod
    call(f"label node {node}", core.patch_node, node, {"metadata": {"labels": {BARRIER_LABEL: value}}})
    call(
        f"delete old barrier pods in {namespace}",
        core.delete_collection_namespaced_pod,
        namespace,
        label_selector=BARRIER_LABEL,
        grace_period_seconds=0,
    )
    name = f"barrier-{value}"
    body = V1Pod(
        metadata=V1ObjectMeta(name=name, labels={**run_labels(run_id), BARRIER_LABEL: value}),
        spec=V1PodSpec(
            containers=[V1Container(name="main", image=image, image_pull_policy="Never")],
            node_selector={BARRIER_LABEL: value},
            tolerations=[V1Toleration(operator="Exists")],  # whatever taints the chosen node carries
            termination_grace_period_seconds=0,
        ),
    )
    call(f"create pod {namespace}/{name}", core.create_namespaced_pod, namespace, body)
    (pod,) = wait_for_pods_bound(
        api, namespace, label_selector=f"{BARRIER_LABEL}={value}", count=1, timeout=timeout,
        interval=BARRIER_POLL,
    )  # fmt: skip
    return pod
