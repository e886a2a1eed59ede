"""Node faults on kind clusters: stop or pause a node container (docker SDK), with verified revert.

A kind node is a docker container named like the Kubernetes node, so "the node is down" is
``docker stop`` and "the node hangs" is ``docker pause`` (every process frozen by the cgroup
freezer: the kubelet stops posting status, TCP peers see silence rather than resets). Revert is
start/unpause, then the container state is read back and the Node must report Ready again.

Every fault is written into the run record (meshcert.runs) *before* it is applied, so `meshcert
gc` can revert it after a SIGKILL through `meshcert.faults.revert` — the same functions the
context managers use here, so there is one way to undo each fault.

Not here: network partitions (partition.py) and control-plane components (controlplane.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from docker.errors import DockerException
from kubernetes.client import ApiClient, CoordinationV1Api, CoreV1Api

from meshcert.errors import FaultError, MeshcertError
from meshcert.faults import revert
from meshcert.faults.restore import restoring
from meshcert.faults.revert import node_containers
from meshcert.kube.client import call
from meshcert.kube.waits import node_ready
from meshcert.runs import FaultRecord, RunStore

#: A restarted kind node boots systemd, containerd and the kubelet, which then re-registers:
#: ~20-40 s here; 180 s bounds a 2-core host busy with other clusters.
NODE_READY_TIMEOUT = 180.0
#: Poll interval for Node Ready: the kubelet posts status every 10 s (nodeStatusReportFrequency
#: is 5 min, but a condition change is posted at once), so 1 s adds little to recovery times.
_POLL_S = 1.0


@dataclass(frozen=True)
class NodeTarget:
    """Where a node fault lands: the kind cluster and the node (= container) name."""

    cluster: str
    node: str


def _record(store: RunStore, run_id: str, kind: str, target: NodeTarget) -> FaultRecord:
    fault = FaultRecord(
        key=f"{kind}:{target.node}", kind=kind, cluster=target.cluster, detail={"node": target.node}
    )
    if target.node not in node_containers(target.cluster):
        raise FaultError(f"{target.node} is not a node container of kind cluster {target.cluster!r}")
    store.add_fault(run_id, fault)
    return fault


def wait_for_node_ready(api: ApiClient, node: str, *, timeout: float = NODE_READY_TIMEOUT) -> float:
    """Seconds until Node ``node`` reports Ready *and* its kubelet renewed its Lease since the call.

    Ready alone is not proof: right after a short stop or pause the node controller has not yet
    noticed (it waits node-monitor-grace-period), so the stale status still says Ready. A Lease
    renewed after this call started proves the kubelet is alive again (it renews every 10 s).
    """
    core = CoreV1Api(api)
    leases = CoordinationV1Api(api)
    since = datetime.now(UTC)
    start = time.monotonic()
    last = "(not observed)"
    while True:
        try:
            obj = call(f"get node {node}", core.read_node, node)
            lease = call(f"get lease {node}", leases.read_namespaced_lease, node, "kube-node-lease")
            renewed = lease.spec.renew_time if lease.spec else None
            if node_ready(obj) and renewed is not None and renewed > since:
                return time.monotonic() - start
            conds = obj.status.conditions if obj.status else None
            last = ", ".join(f"{c.type}={c.status}" for c in conds or []) + f"; lease renewed {renewed}"
        except MeshcertError as e:  # the API server may itself be on a restarting node
            last = str(e)
        if time.monotonic() - start > timeout:
            raise FaultError(f"node {node} not Ready {timeout:.0f}s after revert; last: {last}")
        time.sleep(_POLL_S)


@contextlib.contextmanager
def node_stop(
    api: ApiClient,
    target: NodeTarget,
    *,
    run_id: str,
    state_dir: Path,
    ready_timeout: float = NODE_READY_TIMEOUT,
) -> Iterator[NodeTarget]:
    """``docker stop`` the node for the block; revert = start, restore pod routes, wait for Node Ready."""
    store = RunStore(state_dir)
    fault = _record(store, run_id, "node-stop", target)
    with restoring(
        f"{fault.kind} of {target.node}", lambda: _finish(api, store, run_id, fault, ready_timeout)
    ):
        revert.container(target.node).stop(timeout=0)  # kill at once: a node dying, not draining
        if revert.container_state(target.node) != "exited":
            raise FaultError(f"{target.node} still {revert.container_state(target.node)} after docker stop")
        yield target


#: ``docker pause`` freezes the node's cgroup, and runc gives up ("unable to freeze") when a task
#: does not reach the frozen state in time: a kind node's processes in uninterruptible I/O on a
#: busy host (seen once with three e2e lanes on two cores). runc thaws the cgroup again when it
#: gives up, so another attempt is safe; five attempts two seconds apart outlast such a burst.
PAUSE_ATTEMPTS = 5
PAUSE_RETRY_S = 2.0
_FREEZE_FAILED = "unable to freeze"


def pause_container(name: str) -> int:
    """``docker pause`` node ``name``; returns the attempts it took. Only runc's freeze timeout is
    tried again; any other error, or the last freeze timeout, is a FaultError."""
    attempt = 1
    while True:
        try:
            revert.container(name).pause()
        except DockerException as e:
            if _FREEZE_FAILED not in str(e):
                raise FaultError(f"docker pause {name}: {e}") from e
            if attempt == PAUSE_ATTEMPTS:
                raise FaultError(
                    f"docker pause {name}: runc could not freeze it in {PAUSE_ATTEMPTS} attempts "
                    f"{PAUSE_RETRY_S:g} s apart: {e}"
                ) from e
        else:
            return attempt
        time.sleep(PAUSE_RETRY_S)
        attempt += 1


@contextlib.contextmanager
def node_pause(
    api: ApiClient,
    target: NodeTarget,
    *,
    run_id: str,
    state_dir: Path,
    ready_timeout: float = NODE_READY_TIMEOUT,
) -> Iterator[NodeTarget]:
    """``docker pause`` the node for the block; revert = unpause, then wait for Node Ready."""
    store = RunStore(state_dir)
    fault = _record(store, run_id, "node-pause", target)
    with restoring(
        f"{fault.kind} of {target.node}", lambda: _finish(api, store, run_id, fault, ready_timeout)
    ):
        pause_container(target.node)
        if revert.container_state(target.node) != "paused":
            raise FaultError(f"{target.node} is {revert.container_state(target.node)} after docker pause")
        yield target


def _finish(api: ApiClient, store: RunStore, run_id: str, fault: FaultRecord, ready_timeout: float) -> None:
    """Revert through the gc mechanism, wait for Node Ready, then cross the record out (only then)."""
    revert.revert_fault(fault, run_id=run_id)
    wait_for_node_ready(api, fault.detail["node"], timeout=ready_timeout)
    store.remove_fault(run_id, fault.key)
