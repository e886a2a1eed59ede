"""Distributed Locust as pods: a master pod and N worker pods run a `LoadSpec` inside the cluster.

Why: load from the host measures the host's path into the cluster (port-forward, NodePort) and
is bounded by one machine; STYLE §8 wants traffic from inside, and DESIGN §1 says load outgrows
one process through Locust's own distributed mode. The pods run the very entry point the local
runner starts (``python -m meshcert.load._child --role master|worker --spec FILE``) from the
image toolchain/locust_image.py writes, so local and in-cluster runs share one code path.

Shape of a run (all objects carry the run id label and are deleted afterwards):

- a ConfigMap holding ``spec.json`` (the spec, with ``master_host`` set to the Service name);
- a Service in front of the master's ZeroMQ port;
- a master Pod with two containers: ``master`` writes the result document to an emptyDir, and
  ``holder`` (``sleep``) keeps the pod alive so the parent can ``cat`` that file through exec
  once ``master`` has terminated. The exit code comes from the container status, the result
  from a file — no log scraping (the kubelet splits long log lines), no shared volume;
- N worker Pods.

Bare Pods with ``restartPolicy: Never``, not Deployments or Jobs: a controller would restart a
failed master or worker and silently re-run part of a measurement (STYLE §5: no reruns). A
crash, a pod that cannot start, or a deadline becomes `LoadError` with the tail of the pods'
logs. A missed SLO is not an error: it is a verdict on the returned `LoadResult`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import time
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api, V1DeleteOptions, V1Pod

from meshcert.errors import KubeError, LoadError
from meshcert.kube.apply import apply_manifests
from meshcert.kube.client import KubeApiError, call
from meshcert.kube.exec import exec_in_pod
from meshcert.load.result import LoadResult, parse_child_result
from meshcert.load.runner import default_timeout
from meshcert.load.spec import LoadSpec

#: Locust's own default master port (its --master-port); the Service exposes it.
MASTER_PORT = 5557
LOAD_LABEL = "meshcert.io/load"
ROLE_LABEL = "meshcert.io/load-role"
SPEC_DIR = "/spec"
OUT_DIR = "/out"
#: Pods must be scheduled and started (image already on the node: ~2-5 s on kind; 30-60 s when
#: a busy 2-core host unpacks a ~100 MB image for the first time); 180 s fails a pod that will
#: never start well before the run's own deadline.
POD_START_TIMEOUT = 180.0
#: Waiting reasons that never resolve by themselves: fail at once instead of at the deadline.
_FATAL_WAITING = frozenset(
    {"ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"}
)
#: Lines of each pod's log quoted in a LoadError.
_LOG_TAIL = 30
#: Pod logs kept in out_dir for forensics; 1 MiB is far above a Locust process's output.
_LOG_BYTES = 1 << 20
_POLL_S = 1.0
#: A Locust process at 100-200 req/s uses ~0.1-0.2 core. Under contention the kubelet's CPU
#: shares split a node in proportion to requests, and a starved dispatcher sends late (counted
#: as missed, failing the rate SLO): 250m puts each Locust process ahead of the control-plane
#: static pods (100m-250m) on a one-node kind cluster while three still fit on 2 cores. No
#: limits: a process may use a whole core when the node has one free.
_REQUESTS = {"cpu": "250m", "memory": "128Mi"}


@dataclasses.dataclass(frozen=True)
class PodRun:
    """Names of one run's objects (``name`` is also the value of the load label)."""

    name: str

    @property
    def master(self) -> str:
        return f"{self.name}-master"

    @property
    def config_map(self) -> str:
        return f"{self.name}-spec"

    def worker(self, i: int) -> str:
        return f"{self.name}-worker-{i}"


def pod_spec(spec: LoadSpec, run: PodRun, *, worker_connect_timeout: float = POD_START_TIMEOUT) -> LoadSpec:
    """The spec as the pods see it: master reachable through the Service, bound on all interfaces."""
    return dataclasses.replace(
        spec,
        master_host=run.master,
        master_port=MASTER_PORT,
        master_bind_host="*",
        worker_connect_timeout=max(spec.worker_connect_timeout, worker_connect_timeout),
    )


def _container(name: str, image: str, args: list[str], mounts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",  # built locally (toolchain/locust_image.py), never pulled
        "args": args,
        "volumeMounts": mounts,
        "resources": {"requests": dict(_REQUESTS)},
    }


def _pod(
    name: str, run: PodRun, role: str, containers: list[dict[str, Any]], volumes: list[Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {LOAD_LABEL: run.name, ROLE_LABEL: role}},
        "spec": {
            "restartPolicy": "Never",
            "enableServiceLinks": False,  # no env var per Service: the spec file is the only input
            "automountServiceAccountToken": False,  # Locust never talks to the API server
            "terminationGracePeriodSeconds": 0,  # nothing to flush: results are read before delete
            "containers": containers,
            "volumes": volumes,
        },
    }


def manifests(spec: LoadSpec, run: PodRun, *, image: str) -> list[dict[str, Any]]:
    """ConfigMap, Service, master Pod and ``spec.workers`` worker Pods (pure; unit-tested).

    ``spec`` is the pod spec (`pod_spec`). With ``workers == 0`` the "master" pod runs the
    ``local`` role: one process, the same read-back.
    """
    spec_arg = ["--spec", f"{SPEC_DIR}/spec.json"]
    spec_volume = {"name": "spec", "configMap": {"name": run.config_map}}
    spec_mount = {"name": "spec", "mountPath": SPEC_DIR, "readOnly": True}
    out_mount = {"name": "out", "mountPath": OUT_DIR}
    role = "master" if spec.workers else "local"
    main = _container(
        "master",
        image,
        ["--role", role, *spec_arg, "--out", f"{OUT_DIR}/result.json"],
        [spec_mount, out_mount],
    )
    main["ports"] = [{"name": "zmq", "containerPort": MASTER_PORT, "protocol": "TCP"}]
    holder = _container("holder", image, [], [{**out_mount, "readOnly": True}])
    holder["command"] = ["sleep", "infinity"]
    holder["resources"] = {"requests": {"cpu": "1m", "memory": "4Mi"}}  # sleeps; keeps the pod
    objs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": run.config_map, "labels": {LOAD_LABEL: run.name}},
            "data": {"spec.json": json.dumps(spec.to_json(), indent=2) + "\n"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": run.master, "labels": {LOAD_LABEL: run.name}},
            "spec": {
                "selector": {LOAD_LABEL: run.name, ROLE_LABEL: "master"},
                "ports": [{"name": "zmq", "port": MASTER_PORT, "targetPort": "zmq", "protocol": "TCP"}],
                # The master has no readiness probe; workers may connect as soon as it runs.
                "publishNotReadyAddresses": True,
            },
        },
        _pod(run.master, run, "master", [main, holder], [spec_volume, {"name": "out", "emptyDir": {}}]),
    ]
    for i in range(spec.workers):
        worker = _container("worker", image, ["--role", "worker", *spec_arg], [spec_mount])
        objs.append(_pod(run.worker(i), run, "worker", [worker], [spec_volume]))
    return objs


def _container_status(pod: V1Pod, container: str) -> Any:
    for cs in (pod.status.container_statuses if pod.status else None) or []:
        if cs.name == container:
            return cs
    return None


def _pod_name(pod: V1Pod) -> str:
    return str(pod.metadata.name) if pod.metadata else "?"


def _describe(pod: V1Pod, container: str) -> str:
    phase = (pod.status.phase if pod.status else None) or "Pending"
    cs = _container_status(pod, container)
    name = _pod_name(pod)
    if cs is None or cs.state is None:
        return f"{name}: {phase}"
    if cs.state.waiting:
        return f"{name}: {phase}, waiting ({cs.state.waiting.reason}: {cs.state.waiting.message})"
    if cs.state.terminated:
        return f"{name}: {phase}, exited {cs.state.terminated.exit_code}"
    return f"{name}: {phase}, running"


def _tail(core: CoreV1Api, namespace: str, pod: str, container: str) -> str:
    try:
        text = core.read_namespaced_pod_log(pod, namespace, container=container, tail_lines=_LOG_TAIL)
    except Exception as e:  # forensics must never hide the error being reported
        return f"(no logs: {type(e).__name__})"
    return str(text).strip() or "(empty log)"


@dataclasses.dataclass
class _Watch:
    core: CoreV1Api
    namespace: str
    run: PodRun
    workers: int

    def pods(self) -> dict[str, V1Pod]:
        items = call(
            "list load pods", self.core.list_namespaced_pod, self.namespace,
            label_selector=f"{LOAD_LABEL}={self.run.name}",
        ).items  # fmt: skip
        return {_pod_name(p): p for p in items}

    def error(self, headline: str, pods: dict[str, V1Pod]) -> LoadError:
        parts = [headline]
        for name in [self.run.master, *(self.run.worker(i) for i in range(self.workers))]:
            container = "master" if name == self.run.master else "worker"
            pod = pods.get(name)
            state = _describe(pod, container) if pod is not None else f"{name}: (gone)"
            parts.append(f"--- {state}\n{_tail(self.core, self.namespace, name, container)}")
        return LoadError("\n".join(parts))


def _check(watch: _Watch, pods: dict[str, V1Pod], *, started: float, start_timeout: float) -> int | None:
    """The master's exit code once it has terminated; raise on a dead worker or a stuck pod.

    The master is looked at first: once it is done, workers have sent their parts and how they
    exit afterwards (on the master's quit message) no longer matters.
    """
    master = pods.get(watch.run.master)
    if master is None:
        raise watch.error(f"load master pod {watch.run.master} disappeared", pods)
    cs = _container_status(master, "master")
    if cs is not None and cs.state is not None and cs.state.terminated is not None:
        return int(cs.state.terminated.exit_code)
    for name, pod in pods.items():
        container = "master" if name == watch.run.master else "worker"
        cs = _container_status(pod, container)
        state = cs.state if cs is not None else None
        waiting = state.waiting if state is not None else None
        if waiting is not None and waiting.reason in _FATAL_WAITING:
            raise watch.error(f"load pod {name} cannot start: {waiting.reason}", pods)
        started_yet = state is not None and (state.running is not None or state.terminated is not None)
        if not started_yet and time.monotonic() - started > start_timeout:
            raise watch.error(f"load pod {name} not running after {start_timeout:g} s", pods)
        exited = state.terminated if state is not None else None
        if container == "worker" and exited is not None and exited.exit_code != 0:
            raise watch.error(f"load worker {name} exited with {exited.exit_code}", pods)
    return None


def _save_logs(watch: _Watch, out_dir: Path) -> None:
    """Keep every Locust process's log next to the result (best effort)."""
    names = [(watch.run.master, "master"), *((watch.run.worker(i), "worker") for i in range(watch.workers))]
    for name, container in names:
        with contextlib.suppress(Exception):
            text = watch.core.read_namespaced_pod_log(name, watch.namespace, container=container,
                                                      limit_bytes=_LOG_BYTES)  # fmt: skip
            (out_dir / f"{name}.log").write_text(str(text))


def _delete(core: CoreV1Api, namespace: str, run: PodRun, workers: int) -> None:
    gone = V1DeleteOptions(grace_period_seconds=0)
    for name in [run.master, *(run.worker(i) for i in range(workers))]:
        with contextlib.suppress(KubeApiError):
            call(f"delete pod {name}", core.delete_namespaced_pod, name, namespace, body=gone)
    with contextlib.suppress(KubeApiError):
        call(f"delete service {run.master}", core.delete_namespaced_service, run.master, namespace)
    with contextlib.suppress(KubeApiError):
        call(
            f"delete configmap {run.config_map}", core.delete_namespaced_config_map, run.config_map, namespace
        )


def run_load_in_cluster(
    api: ApiClient,
    spec: LoadSpec,
    *,
    namespace: str,
    run_id: str,
    image: str,
    out_dir: Path,
    timeout: float | None = None,
    start_timeout: float = POD_START_TIMEOUT,
    name: str | None = None,
) -> LoadResult:
    """Run ``spec`` as a master pod + ``spec.workers`` worker pods in ``namespace``.

    Writes spec.json, result.json, summary.json, history.csv and every pod's log into
    ``out_dir``; deletes the pods, Service and ConfigMap whatever happens. ``timeout`` bounds
    the whole run (default: the local runner's bound plus ``start_timeout``).
    """
    run = PodRun(name or f"locust-{secrets.token_hex(3)}")
    in_pods = pod_spec(spec, run, worker_connect_timeout=start_timeout)
    out_dir.mkdir(parents=True, exist_ok=True)
    in_pods.write(out_dir / "spec.json")
    raw_path = out_dir / "result.json"
    raw_path.unlink(missing_ok=True)
    limit = timeout if timeout is not None else default_timeout(in_pods) + start_timeout
    core = CoreV1Api(api)
    watch = _Watch(core, namespace, run, spec.workers)
    try:
        apply_manifests(api, manifests(in_pods, run, image=image), namespace=namespace, run_id=run_id)
        started = time.monotonic()
        while True:
            pods = watch.pods()
            code = _check(watch, pods, started=started, start_timeout=start_timeout)
            if code is not None:
                break
            if time.monotonic() - started > limit:
                raise watch.error(f"load run exceeded its {limit:g} s timeout", pods)
            time.sleep(_POLL_S)
        if code != 0:
            raise watch.error(f"load master exited with {code}", pods)
        try:
            got = exec_in_pod(
                api, namespace, run.master, ["cat", f"{OUT_DIR}/result.json"], container="holder"
            )
        except KubeError as e:
            raise watch.error(f"cannot read the result from {run.master}: {e}", pods) from e
        if not got.ok:
            raise watch.error(f"no result in {run.master}: {got.stderr.strip()}", pods)
        raw_path.write_text(got.stdout)
    finally:
        _save_logs(watch, out_dir)  # also (especially) when the run failed
        _delete(core, namespace, run, spec.workers)
    try:
        raw = json.loads(raw_path.read_text())
    except (OSError, ValueError) as e:
        raise LoadError(f"{raw_path}: unreadable load result: {e}") from e
    result = parse_child_result(raw, spec=in_pods, out_dir=out_dir)
    result.write()
    return result
