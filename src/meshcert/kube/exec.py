"""Run commands inside the cluster: exec into a pod, or a one-shot client pod with the test app.

Why it exists: requests that test Services and the mesh must come from a pod, not the host
(STYLE.md §8). `exec_in_pod` wraps `kubernetes.stream` (a websocket) with a hard deadline and
returns stdout, stderr and the exit code instead of the library's raw client. `run_client_pod`
runs ``/testapp <mode> ...`` (images/testapp/main.go) as a pod that exits, waits for it and
returns its output; `testapp_load` / `testapp_resolve` parse the test app's JSON output.

What it is not: no interactive streams, no port-forward; the test app image is never pulled
(imagePullPolicy Never — it is loaded into the nodes by `meshcert images`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.client import (
    ApiClient,
    CoreV1Api,
    V1Container,
    V1ObjectMeta,
    V1Pod,
    V1PodSpec,
)
from kubernetes.stream import stream

from meshcert.errors import KubeError, WaitTimeout
from meshcert.kube.client import CLIENT_ERRORS, KubeApiError, call, translate
from meshcert.runid import run_labels
from meshcert.toolchain.images import TESTAPP_IMAGE

#: Default bound on one exec: the commands suites run (curl-like requests, a DNS lookup) take
#: well under a second; 60 s also covers a short load burst while still failing a hung exec.
EXEC_TIMEOUT = 60.0
#: A one-shot client pod must be scheduled, started and finish: image already on the node, so
#: start is ~1-3 s on kind; 120 s leaves room for a `load` run of tens of seconds.
CLIENT_POD_TIMEOUT = 120.0
#: Poll interval while waiting for a client pod to finish (its phase moves on kubelet updates).
_POD_POLL = 1.0
#: Client pod logs are its JSON answer; 1 MiB is far above any summary and bounds memory.
_MAX_LOG_BYTES = 1 << 20
#: Label marking client pods, so forensics and cleanup can tell them from the workload.
CLIENT_LABEL = "meshcert.io/client"


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    stderr: str
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def exec_in_pod(
    api: ApiClient,
    namespace: str,
    pod: str,
    command: Sequence[str],
    *,
    container: str | None = None,
    timeout: float = EXEC_TIMEOUT,
) -> ExecResult:
    """Run ``command`` in ``pod`` (``container``, default its first) and wait for it to exit.

    A non-zero exit code is returned, not raised (it may be the expected outcome); an exec that
    is still running after ``timeout`` seconds raises WaitTimeout with what it printed so far.
    """
    core = CoreV1Api(api)
    what = f"exec {list(command)} in {namespace}/{pod}"
    kwargs: dict[str, Any] = {"container": container} if container else {}
    try:
        client = stream(
            core.connect_get_namespaced_pod_exec, pod, namespace, command=list(command),
            stdin=False, stdout=True, stderr=True, tty=False, _preload_content=False,
            _request_timeout=timeout, **kwargs,
        )  # fmt: skip
    except CLIENT_ERRORS as e:
        raise translate(e, what) from e
    except Exception as e:  # websocket errors (handshake refused: no such container, no exec)
        raise KubeApiError(what, status=0, reason=type(e).__name__, message=str(e)) from e
    try:
        client.run_forever(timeout=timeout)
        stdout, stderr = client.read_stdout(), client.read_stderr()
        if client.is_open():
            raise WaitTimeout(what, timeout, f"still running; stdout so far: {stdout[-200:]!r}")
        try:
            code = client.returncode
        except (ValueError, KeyError, IndexError, TypeError) as e:
            # The status channel carries a message, not an exit code, when the exec itself failed
            # (the container exited while the pod is terminating); the client cannot parse it.
            raise KubeApiError(what, status=0, reason="ExecFailed", message=str(e)) from e
    finally:
        client.close()
        # websocket-client's close() returns early once the server has closed the stream, leaving
        # the TLS socket open (a ResourceWarning, an error under filterwarnings=error).
        ws = getattr(client, "sock", None)
        if ws is not None:
            ws.shutdown()
    return ExecResult(stdout or "", stderr or "", int(code) if code is not None else -1)


@dataclass(frozen=True)
class ClientPodResult:
    """How a one-shot pod ended: its phase, its container's exit code and its output (logs)."""

    name: str
    phase: str
    exit_code: int | None
    output: str

    @property
    def ok(self) -> bool:
        return self.phase == "Succeeded"


def client_pod_manifest(
    name: str,
    args: Sequence[str],
    *,
    run_id: str,
    node_name: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> V1Pod:
    """The pod `run_client_pod` creates: the test app with ``args``, never pulled, never restarted."""
    return V1Pod(
        metadata=V1ObjectMeta(
            name=name, labels={**(labels or {}), **run_labels(run_id), CLIENT_LABEL: "true"}
        ),
        spec=V1PodSpec(
            restart_policy="Never",
            node_name=node_name,
            # No grace needed: the client exits on its own; deletion should be immediate.
            termination_grace_period_seconds=0,
            containers=[
                V1Container(
                    name="client",
                    image=TESTAPP_IMAGE,
                    image_pull_policy="Never",
                    command=["/testapp", *args],
                )
            ],
        ),
    )


def run_client_pod(
    api: ApiClient,
    namespace: str,
    args: Sequence[str],
    *,
    run_id: str,
    name: str | None = None,
    node_name: str | None = None,
    labels: Mapping[str, str] | None = None,
    timeout: float = CLIENT_POD_TIMEOUT,
    delete: bool = True,
) -> ClientPodResult:
    """Run ``/testapp *args`` as a pod until it exits; return phase, exit code and its logs.

    A failed run (non-zero exit) is returned, not raised; only a pod that has not finished after
    ``timeout`` seconds raises WaitTimeout (with its phase and container state).
    """
    core = CoreV1Api(api)
    pod_name = name or f"client-{int(time.time() * 1000) % 10**9}"
    manifest = client_pod_manifest(pod_name, args, run_id=run_id, node_name=node_name, labels=labels)
    call(f"create client pod {namespace}/{pod_name}", core.create_namespaced_pod, namespace, manifest)
    try:
        pod = _wait_finished(core, namespace, pod_name, timeout=timeout)
        phase = (pod.status.phase if pod.status else None) or "Unknown"
        logs = call(
            f"logs of {namespace}/{pod_name}", core.read_namespaced_pod_log, pod_name, namespace,
            limit_bytes=_MAX_LOG_BYTES,
        )  # fmt: skip
        return ClientPodResult(pod_name, phase, _exit_code(pod), str(logs))
    finally:
        if delete:
            # The namespace's deletion removes it anyway; do not hide the real outcome.
            with contextlib.suppress(KubeApiError):
                call(f"delete client pod {pod_name}", core.delete_namespaced_pod, pod_name, namespace)


def _exit_code(pod: V1Pod) -> int | None:
    for cs in (pod.status.container_statuses if pod.status else None) or []:
        if cs.state and cs.state.terminated:
            return int(cs.state.terminated.exit_code)
    return None


def _wait_finished(core: CoreV1Api, namespace: str, name: str, *, timeout: float) -> V1Pod:
    deadline = time.monotonic() + timeout
    state = "(not observed)"
    while True:
        pod = call(f"get pod {namespace}/{name}", core.read_namespaced_pod, name, namespace)
        phase = (pod.status.phase if pod.status else None) or "Pending"
        if phase in ("Succeeded", "Failed"):
            return pod
        waiting = [
            f"{cs.name}: {cs.state.waiting.reason}"
            for cs in (pod.status.container_statuses if pod.status else None) or []
            if cs.state and cs.state.waiting
        ]
        state = f"phase {phase}" + (f" ({', '.join(waiting)})" if waiting else "")
        if time.monotonic() > deadline:
            raise WaitTimeout(f"client pod {namespace}/{name} to finish", timeout, state)
        time.sleep(_POD_POLL)


def _last_json_line(output: str, what: str) -> Any:
    for raw in reversed(output.strip().splitlines()):
        line = raw.strip()
        if line.startswith(("{", "[")):
            try:
                return json.loads(line)
            except ValueError:
                break
    raise KubeError(f"{what}: no JSON line in the output: {output.strip()[-300:]!r}")


def testapp_load(
    api: ApiClient,
    namespace: str,
    *,
    url: str,
    rate: float,
    count: int,
    run_id: str,
    timeout: float = CLIENT_POD_TIMEOUT,
    node_name: str | None = None,
    keepalive: bool = True,
) -> dict[str, Any]:
    """``testapp load`` from a pod; returns its JSON summary {sent, ok, failed, by_pod, p50_ms, ...}.

    ``keepalive=False`` opens a connection per request: a Service balances per connection, so
    that is what spreads requests over its endpoints.
    """
    args = [
        "load",
        "--url",
        url,
        "--rate",
        str(rate),
        "--count",
        str(count),
        f"--keepalive={str(keepalive).lower()}",
    ]
    result = run_client_pod(api, namespace, args, run_id=run_id, timeout=timeout, node_name=node_name)
    summary = _last_json_line(result.output, f"testapp load {url}")
    if not isinstance(summary, dict):
        raise KubeError(f"testapp load {url}: expected a JSON object, got {summary!r}")
    return summary


def testapp_resolve(
    api: ApiClient,
    namespace: str,
    name: str,
    *,
    run_id: str,
    record_type: str = "A",
    timeout: float = CLIENT_POD_TIMEOUT,
) -> list[Any]:
    """``testapp resolve NAME --type A|SRV`` from a pod; returns its JSON list of answers.

    A lookup that fails (NXDOMAIN) makes the pod fail; that raises KubeError with its output.
    """
    if record_type not in ("A", "SRV"):
        raise ValueError(f"record_type must be A or SRV, got {record_type!r}")
    # Go's flag package stops at the first positional argument: the flag must come before NAME.
    args = ["resolve", "--type", record_type, name]
    result = run_client_pod(api, namespace, args, run_id=run_id, timeout=timeout)
    if not result.ok:
        raise KubeError(f"testapp resolve {name} ({record_type}) failed: {result.output.strip()[-300:]}")
    answers = _last_json_line(result.output, f"testapp resolve {name}")
    if not isinstance(answers, list):
        raise KubeError(f"testapp resolve {name}: expected a JSON list, got {answers!r}")
    return answers
