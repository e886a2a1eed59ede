"""Istio's echo app as the M-suite workload: manifests, and requests sent from inside a mesh pod.

Why the echo app: it is what Gateway API's mesh conformance and Istio's integration tests drive,
so our results compare with theirs; it answers HTTP, gRPC and TCP on fixed ports, reports the
serving pod (``Hostname=``) and version (``ServiceVersion=``), and shapes its own responses from
query parameters (``?delay=1s``, ``?codes=503:1,200:1``) — the backend behaviour M7/M8 need
without a second app. Requests are sent by the echo *client* binary exec'd in an injected pod,
never from the host (STYLE.md §8).

What it is not: no load generation (meshcert.load does that); one exec sends a batch.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiClient

from meshcert.kube.exec import exec_in_pod
from meshcert.toolchain.mesh_images import ECHO_IMAGE

#: Container ports of the echo server (its defaults); Services map 80 → 8080 like Istio's tests.
HTTP_PORT, GRPC_PORT, TCP_PORT = 8080, 7070, 9090
SERVICE_HTTP_PORT = 80
APP_CONTAINER = "app"
PROXY_CONTAINER = "istio-proxy"

_LINE = re.compile(r"^\[(\d+)\] (\w[\w-]*)=(.*)$")
_ERROR = re.compile(r"^\[(\d+) error\] (.*)$")


def echo_manifests(
    service: str, version: str, *, replicas: int = 1, with_service: bool = True
) -> list[dict[str, Any]]:
    """A Deployment ``<service>-<version>`` and (optionally) the Service selecting all versions.

    Every Service port declares its protocol (name prefix *and* appProtocol) so the mesh never
    falls back to protocol sniffing, which would make HTTP routing rules silently not apply.
    The readiness probe is TCP so probes never appear as requests in the backend's logs (M8
    counts attempts there).
    """
    labels = {"app": service, "version": version}
    ports = [("http", HTTP_PORT), ("grpc", GRPC_PORT), ("tcp", TCP_PORT)]
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{service}-{version}", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    # The echo server exits at once on SIGTERM; no drain needed in these tests.
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": APP_CONTAINER,
                            "image": ECHO_IMAGE,
                            "imagePullPolicy": "Never",
                            "args": [
                                f"--port={HTTP_PORT}",
                                f"--grpc={GRPC_PORT}",
                                f"--tcp={TCP_PORT}",
                                f"--version={version}",
                                "--cluster=kind",
                            ],
                            "ports": [{"name": n, "containerPort": p} for n, p in ports],
                            "readinessProbe": {
                                "tcpSocket": {"port": HTTP_PORT},
                                # The server listens within ~100 ms of start; probe every 1 s.
                                "periodSeconds": 1,
                            },
                        }
                    ],
                },
            },
        },
    }
    if not with_service:
        return [deployment]
    svc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service, "labels": {"app": service}},
        "spec": {
            "selector": {"app": service},
            "ports": [
                {"name": "http", "port": SERVICE_HTTP_PORT, "targetPort": HTTP_PORT, "appProtocol": "http"},
                {"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT, "appProtocol": "grpc"},
                {"name": "tcp", "port": TCP_PORT, "targetPort": TCP_PORT, "appProtocol": "tcp"},
            ],
        },
    }
    return [deployment, svc]


@dataclass(frozen=True)
class EchoResponse:
    """One request's outcome as the echo client reports it."""

    index: int
    code: str = ""
    hostname: str = ""
    version: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.code in ("", "200")


@dataclass(frozen=True)
class EchoBatch:
    """A batch of requests from one exec; ``failure`` is set when the client aborted the batch."""

    responses: list[EchoResponse]
    failure: str = ""
    seconds: float = 0.0
    codes: Counter[str] = field(default_factory=Counter)

    @property
    def versions(self) -> Counter[str]:
        return Counter(r.version for r in self.responses)


def parse_echo_output(text: str) -> list[EchoResponse]:
    """Per-request records from the client's ``[i] Field=value`` lines (others are ignored).

    TCP responses carry no StatusCode; they are ``ok`` unless an error line names them.
    """
    fields: dict[int, dict[str, str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if m := _ERROR.match(line):
            fields.setdefault(int(m.group(1)), {})["error"] = m.group(2)
        elif m := _LINE.match(line):
            entry = fields.setdefault(int(m.group(1)), {})
            entry.setdefault(m.group(2), m.group(3))  # first wins: headers echo later fields
    return [
        EchoResponse(
            index=i,
            code=f.get("StatusCode", ""),
            hostname=f.get("Hostname", ""),
            version=f.get("ServiceVersion", ""),
            error=f.get("error", ""),
        )
        for i, f in sorted(fields.items())
    ]


def send(
    api: ApiClient,
    namespace: str,
    pod: str,
    url: str,
    *,
    count: int = 1,
    headers: dict[str, str] | None = None,
    request_timeout: float = 5.0,
    qps: int = 0,
) -> EchoBatch:
    """Send ``count`` requests to ``url`` with the echo client in ``pod`` (its app container).

    The echo client aborts the whole batch on a connection-level error (reset, refused) and
    prints nothing per request; that is returned as ``failure`` with the client's message, and
    callers needing per-request outcomes under such errors send batches of one.
    ``request_timeout`` is per request; the exec deadline covers every request of the batch.
    """
    argv = ["/usr/local/bin/client", url, f"--count={count}", f"--timeout={request_timeout}s", f"--qps={qps}"]
    for k, v in (headers or {}).items():
        argv.append(f"--header={k}:{v}")
    start = time.monotonic()
    # Deadline: every request may take the full per-request timeout, plus 30 s for exec set-up.
    res = exec_in_pod(
        api, namespace, pod, argv, container=APP_CONTAINER, timeout=count * request_timeout + 30
    )
    seconds = time.monotonic() - start
    responses = parse_echo_output(res.stdout)
    failure = "" if res.ok else (res.stderr.strip().splitlines() or [f"exit {res.exit_code}"])[-1]
    return EchoBatch(responses, failure, seconds, Counter(r.code for r in responses))
