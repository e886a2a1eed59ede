"""Control-plane component kill on kind: move a static-pod manifest out of the kubelet's sight.

kubeadm runs kube-apiserver, kube-controller-manager, kube-scheduler and etcd as static pods
from /etc/kubernetes/manifests on the control-plane node. Moving a manifest into a stash
directory makes the kubelet stop that pod (the component is down, not restarted); moving it
back makes the kubelet start it again. The stash is ``/etc/kubernetes/meshcert-<run_id>``, on
the same filesystem (a rename is atomic), and is recorded before the move so `meshcert gc` puts
the manifest back after a SIGKILL (faults/revert.py). Verification reads the node's container
list through crictl: gone during the fault, running again after revert.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from meshcert.errors import FaultError
from meshcert.faults import revert
from meshcert.faults.restore import restoring
from meshcert.runs import FaultRecord, RunStore

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
#: The kubelet notices manifest changes on its file-check period (20 s by default) or at once by
#: inotify; stopping or starting a control-plane container takes a few seconds more. 120 s
#: bounds a busy 2-core host.
COMPONENT_TIMEOUT = 120.0
_POLL_S = 1.0


@dataclass(frozen=True)
class ComponentDown:
    node: str
    component: str
    down_after_s: float


def _running(node: str, component: str) -> bool:
    code, out = revert.node_exec(
        node, ["crictl", "ps", "--name", f"^{component}$", "--state", "running", "-q"]
    )
    if code != 0:
        raise FaultError(f"crictl ps on {node}: {out.strip()}")
    return bool(out.strip())


def wait_component(node: str, component: str, *, running: bool, timeout: float = COMPONENT_TIMEOUT) -> float:
    """Seconds until ``component``'s container on ``node`` is (not) running."""
    start = time.monotonic()
    while _running(node, component) != running:
        if time.monotonic() - start > timeout:
            state = "running" if not running else "not running"
            raise FaultError(f"{component} on {node} still {state} after {timeout:.0f}s")
        time.sleep(_POLL_S)
    return time.monotonic() - start


@contextlib.contextmanager
def component_down(
    cluster: str,
    component: str,
    *,
    run_id: str,
    state_dir: Path,
    node: str | None = None,
    timeout: float = COMPONENT_TIMEOUT,
) -> Iterator[ComponentDown]:
    """Stop ``component`` (a kubeadm static pod) for the block; move it back and verify it runs."""
    if component not in COMPONENTS:
        raise FaultError(f"unknown control-plane component {component!r}; one of {COMPONENTS}")
    node = node or f"{cluster}-control-plane"
    stash = f"/etc/kubernetes/meshcert-{run_id}"
    manifest = f"{component}.yaml"
    store = RunStore(state_dir)
    fault = FaultRecord(
        key=f"static-pod:{node}:{component}",
        kind="static-pod",
        cluster=cluster,
        detail={"node": node, "manifest": manifest, "stash": stash},
    )
    store.add_fault(run_id, fault)
    code, out = revert.node_exec(
        node, ["sh", "-c", f'mkdir -p "{stash}" && mv "{revert.MANIFESTS_DIR}/{manifest}" "{stash}/"']
    )

    def restore() -> None:
        revert.revert_fault(fault, run_id=run_id)
        wait_component(node, component, running=True, timeout=timeout)
        store.remove_fault(run_id, fault.key)

    with restoring(f"{component} on {node}", restore):
        if code != 0:
            raise FaultError(f"moving {manifest} aside on {node}: {out.strip()}")
        took = wait_component(node, component, running=False, timeout=timeout)
        yield ComponentDown(node, component, took)
