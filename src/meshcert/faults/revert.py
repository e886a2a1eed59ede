"""The one way to undo each recorded fault: used by the fault context managers and by `meshcert gc`.

A fault applied by a run that was then SIGKILLed stays applied (a stopped node, a DROP rule, a
static-pod manifest moved aside). Its `FaultRecord` in the run record says what and where;
`revert_fault` undoes it and *reads the state back*, raising `FaultError` if it is still there.
Reverts are idempotent (reverting twice, or reverting a fault that was never fully applied, is
fine), because gc cannot know how far the dead run got.

Node containers are reached through the docker SDK (exec, start, unpause); nothing here needs
the Kubernetes API, so gc can revert even while the API server is unreachable — which is what a
control-plane fault or a stopped node may leave behind.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import docker
from docker.errors import DockerException, NotFound

from meshcert.cluster.cni import CONFLIST_PATH, NodeNet, route_commands
from meshcert.errors import FaultError
from meshcert.runs import FaultRecord

#: Label kind puts on every node container (value: the cluster name).
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"
#: Prefix of the iptables comment on every partition rule; the run id follows.
COMMENT_PREFIX = "meshcert:"
#: Where the kubelet watches for static pods (kubeadm's default --pod-manifest-path).
MANIFESTS_DIR = "/etc/kubernetes/manifests"
#: Fault kinds `revert_fault` understands; records of any other kind are reported, not guessed at.
KINDS = ("node-stop", "node-pause", "partition", "static-pod", "deployment-scale")
#: kubeadm's admin kubeconfig on a kind control-plane node (gc scales Deployments back through it).
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"


def _docker() -> Any:
    try:
        return docker.from_env()
    except DockerException as e:
        raise FaultError(f"cannot reach the docker engine: {e}; run `meshcert engine up`") from e


def container(name: str) -> Any:
    """The docker SDK container object of a node (FaultError if it does not exist)."""
    try:
        return _docker().containers.get(name)
    except NotFound as e:
        raise FaultError(f"node container {name!r} does not exist") from e
    except DockerException as e:
        raise FaultError(f"docker inspect {name}: {e}") from e


def container_state(name: str) -> str:
    """docker's State.Status: running, paused, exited, ... ('missing' if there is no such container)."""
    try:
        c = _docker().containers.get(name)
    except NotFound:
        return "missing"
    except DockerException as e:
        raise FaultError(f"docker inspect {name}: {e}") from e
    return str(c.attrs["State"]["Status"])


def node_containers(cluster: str) -> list[str]:
    """Names of the node containers of kind cluster ``cluster`` (any state)."""
    try:
        found = _docker().containers.list(all=True, filters={"label": f"{KIND_CLUSTER_LABEL}={cluster}"})
    except DockerException as e:
        raise FaultError(f"listing node containers of {cluster}: {e}") from e
    return sorted(str(c.name) for c in found)


def node_exec(node: str, argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` in node container ``node``; (exit code, combined output)."""
    try:
        result = container(node).exec_run(argv)
    except DockerException as e:
        raise FaultError(f"docker exec {node} {' '.join(argv)}: {e}") from e
    return int(result.exit_code), result.output.decode(errors="replace")


def node_ip(node: str) -> str:
    """The node container's address on its (single) kind docker network."""
    networks = container(node).attrs["NetworkSettings"]["Networks"]
    for net in networks.values():
        if net.get("IPAddress"):
            return str(net["IPAddress"])
    raise FaultError(f"node container {node} has no IPv4 address on any docker network")


# ---- per-kind reverts -----------------------------------------------------------------------


def _ensure_running(node: str) -> None:
    c = container(node)
    try:
        state = c.attrs["State"]["Status"]
        if state == "paused":
            c.unpause()
        elif state != "running":
            c.start()
    except DockerException as e:
        raise FaultError(f"starting/unpausing {node}: {e}") from e
    if (after := container_state(node)) != "running":
        raise FaultError(f"node container {node} is {after} after start/unpause")


def node_nets(cluster: str) -> list[NodeNet]:
    """Name, docker IP and pod CIDR of every running node, without the API server.

    Pod CIDRs come from each node's CNI conflist (written by `meshcert cluster up`), node IPs
    from docker.
    """
    nets: list[NodeNet] = []
    for node in node_containers(cluster):
        if container_state(node) != "running":
            continue
        code, out = node_exec(node, ["cat", CONFLIST_PATH])
        if code != 0:
            continue
        subnet = json.loads(out)["plugins"][0]["ipam"]["ranges"][0][0]["subnet"]
        nets.append(NodeNet(node, node_ip(node), str(subnet)))
    return nets


def restore_routes(cluster: str) -> None:
    """Re-add pod-network routes on every running node (a restarted container lost its own)."""
    nets = node_nets(cluster)
    for net in nets:
        for argv in [["sysctl", "-qw", "net.ipv4.ip_forward=1"], *route_commands(net, nets)]:
            code, out = node_exec(net.name, argv)
            if code != 0:
                raise FaultError(f"restoring pod routes on {net.name}: {' '.join(argv)}: {out.strip()}")


def tagged_rules(node: str, run_id: str) -> list[str]:
    """``iptables -S`` lines (filter table) carrying this run's partition comment."""
    code, out = node_exec(node, ["iptables", "-S"])
    if code != 0:
        raise FaultError(f"iptables -S on {node}: {out.strip()}")
    tag = f"{COMMENT_PREFIX}{run_id}"
    return [line for line in out.splitlines() if line.startswith("-A ") and tag in line]


def delete_partition_rules(cluster: str, run_id: str) -> int:
    """Delete every rule tagged ``meshcert:<run_id>`` on every running node; verify none is left."""
    deleted = 0
    for node in node_containers(cluster):
        if container_state(node) != "running":
            continue  # a stopped node's network namespace, and its rules, died with it
        for line in tagged_rules(node, run_id):
            argv = ["iptables", "-D", *shlex.split(line)[1:]]
            code, out = node_exec(node, argv)
            if code != 0:
                raise FaultError(f"deleting partition rule on {node} ({line}): {out.strip()}")
            deleted += 1
        if left := tagged_rules(node, run_id):
            raise FaultError(f"partition rules of {run_id} still on {node}: {left}")
    return deleted


def restore_static_pod(node: str, manifest: str, stash: str) -> None:
    """Move ``manifest`` back from ``stash`` into the kubelet's manifest directory; verify it is there."""
    script = (
        f'if [ -f "{stash}/{manifest}" ]; then mv "{stash}/{manifest}" "{MANIFESTS_DIR}/{manifest}"; fi; '
        f'rmdir "{stash}" 2>/dev/null; test -f "{MANIFESTS_DIR}/{manifest}"'
    )
    code, out = node_exec(node, ["sh", "-c", script])
    if code != 0:
        raise FaultError(f"static pod manifest {manifest} is not back in {MANIFESTS_DIR} on {node}: {out}")


def restore_scale(cluster: str, namespace: str, name: str, replicas: str) -> None:
    """Scale Deployment ``namespace/name`` back to ``replicas`` with kubectl on the kind
    control-plane node (faults/scale.py records it); verify spec.replicas reads back."""
    node = f"{cluster}-control-plane"
    base = ["kubectl", f"--kubeconfig={ADMIN_KUBECONFIG}", "-n", namespace]
    code, out = node_exec(node, [*base, "scale", f"deployment/{name}", f"--replicas={replicas}"])
    if code != 0:
        raise FaultError(f"kubectl scale deployment/{name} on {node}: {out.strip()}")
    code, out = node_exec(node, [*base, "get", f"deployment/{name}", "-o", "jsonpath={.spec.replicas}"])
    if code != 0 or out.strip() != replicas:
        raise FaultError(
            f"deployment {namespace}/{name} reads back replicas={out.strip()!r}, expected {replicas}"
        )


def revert_fault(fault: FaultRecord, *, run_id: str) -> None:
    """Undo ``fault`` and verify by reading state back. Idempotent; FaultError if it cannot."""
    if fault.kind not in KINDS:
        raise FaultError(f"unknown fault kind {fault.kind!r} in the run record of {run_id}")
    if fault.kind in ("node-stop", "node-pause"):
        _ensure_running(fault.detail["node"])
        if fault.kind == "node-stop":
            restore_routes(fault.cluster)
    elif fault.kind == "partition":
        delete_partition_rules(fault.cluster, run_id)
    elif fault.kind == "static-pod":
        restore_static_pod(fault.detail["node"], fault.detail["manifest"], fault.detail["stash"])
    elif fault.kind == "deployment-scale":
        d = fault.detail
        restore_scale(fault.cluster, d["namespace"], d["name"], d["replicas"])


def cluster_exists(cluster: str) -> bool:
    """Whether any node container of kind cluster ``cluster`` still exists."""
    return bool(cluster) and bool(node_containers(cluster))
