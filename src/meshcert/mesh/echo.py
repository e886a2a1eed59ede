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

import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api

from meshcert.kube.client import call
from meshcert.kube.exec import exec_in_pod
from meshcert.kube.manifests import deployment
from meshcert.kube.manifests import service as kube_service
from meshcert.toolchain.mesh_images import ECHO_IMAGE

#: Container ports of the echo server (its defaults); Services map 80 → 8080 like Istio's tests.
HTTP_PORT, GRPC_PORT, TCP_PORT = 8080, 7070, 9090
SERVICE_HTTP_PORT = 80
APP_CONTAINER = "app"
PROXY_CONTAINER = "istio-proxy"

#: The echo client runs at most this many requests of a set at once, all under one context whose
#: deadline is its --timeout (maxConcurrencyPerForward in Istio's
#: pkg/test/echo/server/forwarder/executor.go; util.go applies the timeout to the whole set).
CLIENT_CONCURRENCY = 20
#: The echo server closes a keep-alive connection idle this long (idleTimeout in Istio's
#: pkg/test/echo/server/endpoint/util.go). Envoy keeps an idle upstream connection an hour by
#: default, so the server sidecar can send a request on a connection the app is closing at that
#: moment: a 503 "reset reason: connection termination" (the keep-alive race of RFC 9112 §9.6).
#: It was measured here without any fault or outage: 1 in 1,380 requests of M14's pattern.
APP_IDLE_TIMEOUT_S = 5.0
#: Seconds of exec set-up (API round trips, container exec start) on top of the client's deadline.
EXEC_OVERHEAD = 30.0

#: "[3] StatusCode=200" (what the client saw) and "[3 body] Hostname=..." (what the server wrote).
_LINE = re.compile(r"^\[(\d+)( body)?\] (\w[\w-]*)=(.*)$")
#: The server echoes the X-Forwarded-Client-Cert its sidecar added: URI= is the client's SPIFFE id.
_XFCC_URI = re.compile(r"(?:^|;)URI=([^;,]+)", re.I)
_ERROR = re.compile(r"^\[(\d+) error\] (.*)$")
#: Any other body line: a proxy's own reply (Envoy's "upstream connect error or disconnect/reset
#: before headers. reset reason: connection termination", "no healthy upstream", "RBAC: access
#: denied") has no echo fields, and that text is what tells one 503 from another.
_BODY = re.compile(r"^\[(\d+) body\] (.+)$")


def echo_manifests(
    service: str, version: str, *, replicas: int = 1, with_service: bool = True, inject: bool = True
) -> list[dict[str, Any]]:
    """A Deployment ``<service>-<version>`` and (optionally) the Service selecting all versions.

    Every Service port declares its protocol (name prefix *and* appProtocol) so the mesh never
    falls back to protocol sniffing, which would make HTTP routing rules silently not apply.
    The readiness probe is TCP so probes never appear as requests in the backend's logs (M8
    counts attempts there). ``inject=False`` opts the pod out of the mesh (M15's plaintext client).
    """
    labels = {"app": service, "version": version}
    ports = [("http", HTTP_PORT), ("grpc", GRPC_PORT), ("tcp", TCP_PORT)]
    container = {
        "name": APP_CONTAINER,
        "image": ECHO_IMAGE,
        "imagePullPolicy": "Never",
        "args": [f"--port={HTTP_PORT}", f"--grpc={GRPC_PORT}", f"--tcp={TCP_PORT}", f"--version={version}",
                 "--cluster=kind"],
        "ports": [{"name": n, "containerPort": p} for n, p in ports],
        # The server listens within ~100 ms of start; probe every 1 s.
        "readinessProbe": {"tcpSocket": {"port": HTTP_PORT}, "periodSeconds": 1},
    }  # fmt: skip
    no_sidecar = None if inject else {"sidecar.istio.io/inject": "false"}
    dep = deployment(
        f"{service}-{version}", labels, [container], replicas=replicas, pod_annotations=no_sidecar
    )
    if not with_service:
        return [dep]
    svc = kube_service(service, {"app": service}, [
        {"name": "http", "port": SERVICE_HTTP_PORT, "targetPort": HTTP_PORT, "appProtocol": "http"},
        {"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT, "appProtocol": "grpc"},
        {"name": "tcp", "port": TCP_PORT, "targetPort": TCP_PORT, "appProtocol": "tcp"},
    ])  # fmt: skip
    return [dep, svc]


@dataclass(frozen=True)
class EchoBatch:
    """A batch of requests from one exec; ``failure`` is set when the client aborted the batch."""

    responses: list[Exchange]
    failure: str = ""
    seconds: float = 0.0

    @property
    def codes(self) -> Counter[str]:
        """Status code → how many responses carried it ("" for TCP answers and errors)."""
        return Counter(r.code for r in self.responses)

    @property
    def versions(self) -> Counter[str]:
        return Counter(r.version for r in self.responses)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Seconds in a Go ``time.Duration`` string ("1.5s", "850ms", "1m2.5s", "0s")."""
    parts = _DURATION_PART.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


#: (name, value) pairs in the order they were sent or seen.
Headers = tuple[tuple[str, str], ...]


def _values(pairs: Headers, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive); comma-joined values are split."""
    out: list[str] = []
    for k, v in pairs:
        if k.lower() == name.lower():
            out += [p.strip() for p in v.split(",")]
    return out


@dataclass(frozen=True)
class Exchange:
    """One request as the client and (through the echo body) the backend saw it."""

    index: int
    code: str = ""
    version: str = ""
    hostname: str = ""
    #: Path and query as the backend received them ("" when no backend answered).
    url: str = ""
    method: str = ""
    request_headers: Headers = ()
    response_headers: Headers = ()
    latency: float = -1.0
    error: str = ""
    #: The first body line that is not an echo field (a proxy's reply text); "" if none.
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Answered 200 (HTTP/gRPC) or, for TCP (no status code), without an error line."""
        return not self.error and self.code in ("", "200")

    @property
    def peer(self) -> str:
        """The client identity the server's sidecar verified: the first SPIFFE URI of the
        X-Forwarded-Client-Cert header it added; "" for plaintext."""
        uris = [
            m.group(1) for v in self.request_header("X-Forwarded-Client-Cert") if (m := _XFCC_URI.search(v))
        ]
        return uris[0] if uris else ""

    def request_header(self, name: str) -> list[str]:
        return _values(self.request_headers, name)

    def response_header(self, name: str) -> list[str]:
        return _values(self.response_headers, name)


def parse_exchanges(text: str) -> list[Exchange]:
    """Per-request `Exchange`s from one echo-client run's output (other lines are ignored)."""
    fields: dict[int, dict[str, str]] = {}
    req_h: dict[int, list[tuple[str, str]]] = {}
    resp_h: dict[int, list[tuple[str, str]]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if m := _ERROR.match(line):
            fields.setdefault(int(m.group(1)), {})["error"] = m.group(2)
            continue
        if not (m := _LINE.match(line)):
            if b := _BODY.match(line):
                fields.setdefault(int(b.group(1)), {}).setdefault("detail", b.group(2))
            continue
        i, body, name, value = int(m.group(1)), bool(m.group(2)), m.group(3), m.group(4)
        entry = fields.setdefault(i, {})
        if name == "RequestHeader" and body:
            k, _, v = value.partition(":")
            req_h.setdefault(i, []).append((k, v))
        elif name == "ResponseHeader" and not body:
            k, _, v = value.partition(":")
            resp_h.setdefault(i, []).append((k, v))
        else:
            # First wins, and body fields are kept apart from the client's ("URL" vs "Url").
            entry.setdefault(("body:" if body else "") + name, value)
    return [
        Exchange(
            index=i,
            code=f.get("StatusCode", ""),
            # The server's fields are body lines; a gRPC/TCP answer prints them as the client's.
            version=f.get("body:ServiceVersion", f.get("ServiceVersion", "")),
            hostname=f.get("body:Hostname", "") or f.get("Hostname", ""),
            url=f.get("body:URL", ""),
            method=f.get("body:Method", ""),
            request_headers=tuple(req_h.get(i, [])),
            response_headers=tuple(resp_h.get(i, [])),
            latency=parse_go_duration(f["Latency"]) if "Latency" in f else -1.0,
            error=f.get("error", ""),
            detail=f.get("detail", ""),
        )
        for i, f in sorted(fields.items())
    ]


def client_deadline(count: int, *, request_timeout: float, qps: int = 0) -> float:
    """The echo client's --timeout for ``count`` requests, each allowed ``request_timeout``.

    The client's --timeout bounds the whole set, not each request: a batch of 400 under a 5 s
    --timeout fails once the host is slow enough that 400 requests take 5 s (it did, in CI).
    So the set gets what its slowest schedule needs: issuing at ``qps`` (if paced), then every
    wave of ``CLIENT_CONCURRENCY`` taking the full per-request time. A single request is then
    bounded only by the set's deadline; a check of a per-request bound sends batches of one.
    """
    waves = math.ceil(count / CLIENT_CONCURRENCY)
    pacing = count / qps if qps > 0 else 0.0
    return round(pacing + waves * request_timeout, 3)


def send(
    api: ApiClient,
    namespace: str,
    pod: str,
    url: str,
    *,
    count: int = 1,
    headers: dict[str, str] | None = None,
    request_timeout: float = 5.0,
    deadline: float | None = None,
    qps: int = 0,
    method: str = "",
) -> EchoBatch:
    """Send ``count`` requests to ``url`` with the echo client in ``pod`` (its app container).

    The echo client aborts the whole batch on a connection-level error (reset, refused) and
    prints nothing per request; that is returned as ``failure`` with the client's message, and
    callers needing per-request outcomes under such errors send batches of one.
    ``deadline`` bounds the whole batch (the client's --timeout); by default it is what
    ``count`` requests of ``request_timeout`` each need (`client_deadline`). A caller with a
    wall-clock budget of its own (steady load for N seconds) passes it instead.
    ``method`` (HTTP only) overrides the client's GET, e.g. for method-scoped authorization.
    """
    if deadline is None:
        deadline = client_deadline(count, request_timeout=request_timeout, qps=qps)
    argv = ["/usr/local/bin/client", url, f"--count={count}", f"--timeout={deadline}s", f"--qps={qps}"]
    if method:
        argv.append(f"--method={method}")
    for k, v in (headers or {}).items():
        argv.append(f"--header={k}:{v}")
    start = time.monotonic()
    res = exec_in_pod(api, namespace, pod, argv, container=APP_CONTAINER, timeout=deadline + EXEC_OVERHEAD)
    seconds = time.monotonic() - start
    responses = parse_exchanges(res.stdout)
    failure = "" if res.ok else (res.stderr.strip().splitlines() or [f"exit {res.exit_code}"])[-1]
    return EchoBatch(responses, failure, seconds)


def pod_names(api: ApiClient, namespace: str, selector: str) -> list[str]:
    """Names of the Running pods matching ``selector`` (sorted, for stable choice of a client)."""
    pods = call(f"list pods {selector} in {namespace}", CoreV1Api(api).list_namespaced_pod, namespace,
                label_selector=selector).items  # fmt: skip
    return sorted(
        p.metadata.name
        for p in pods
        if p.metadata and p.metadata.name and p.status and p.status.phase == "Running"
    )
