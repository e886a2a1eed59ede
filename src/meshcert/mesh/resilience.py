"""What M8 (retries, perTryTimeout, retries under injected resets) and M13 (disruption under
steady load) need beyond routing.py: retry/timeout routes for any host, a connection-pool rule,
a Service fronting a non-mesh pod, per-attempt records read from the backends' logs, and a
steady in-cluster load whose outcome is summarised with binomial and order-statistic intervals.

Why attempts come from the backend's log and not from the client: the client sees one answer per
request, whatever the proxy did; the echo server logs one ``Request`` line per attempt with a
timestamp, the ``X-Request-Id`` Envoy keeps across retries and the ``X-Envoy-Attempt-Count`` it
sets, so the number and spacing of attempts are observed where they land.

What it is not: no fault injection (meshcert.faults; suites compose the two — the layers keep
mesh and faults independent) and no load generator of its own: the load is Istio's echo client
exec'd in the injected client pod with ``--qps`` (STYLE.md §8, requests from inside the mesh).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api

from meshcert.errors import ConfigError, MeshError
from meshcert.invariants.convergence import Converged, Observation, converge
from meshcert.invariants.stats import (
    DEFAULT_CONFIDENCE,
    BinomialInterval,
    PercentileEstimate,
    percentile_ci,
    wilson_interval,
)
from meshcert.kube.client import call
from meshcert.mesh.echo import APP_CONTAINER, EchoBatch, pod_names, send
from meshcert.mesh.routing import NETWORKING

#: "2026-11-25T02:13:58.014021Z\tinfo\tendpoint\tHTTP/1.1 Request\t... url=/?m=... headers=map[...]"
_REQUEST_LINE = re.compile(r"^(\S+Z)\s+\w+\s+endpoint\s+HTTP/\S+ Request\s")
#: Go's map formatting of the logged headers: "X-Request-Id:[0f1e...]".
_REQUEST_ID = re.compile(r"X-Request-Id:\[([^\]]+)\]", re.I)
_ATTEMPT_COUNT = re.compile(r"X-Envoy-Attempt-Count:\[(\d+)\]", re.I)


def _seconds(value: float) -> str:
    # Istio durations are protobuf Durations; "0.5s" is accepted, so is "2s".
    return f"{value:g}s"


def resilient_route(
    host: str,
    *,
    name: str,
    attempts: int,
    retry_on: str,
    per_try_timeout_s: float | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """A VirtualService for ``host`` (an FQDN, possibly another namespace's) with an explicit
    retry policy and optional per-try and route timeouts."""
    if attempts < 0:
        raise ConfigError("resilient_route", "attempts", f"must be >= 0, got {attempts}")
    retries: dict[str, Any] = {"attempts": attempts}
    if attempts:
        retries["retryOn"] = retry_on
    if per_try_timeout_s is not None:
        if per_try_timeout_s <= 0:
            raise ConfigError("resilient_route", "per_try_timeout_s", f"must be > 0, got {per_try_timeout_s}")
        retries["perTryTimeout"] = _seconds(per_try_timeout_s)
    http: dict[str, Any] = {"retries": retries, "route": [{"destination": {"host": host}}]}
    if timeout_s is not None:
        http["timeout"] = _seconds(timeout_s)
    return {
        "apiVersion": NETWORKING,
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {"hosts": [host], "http": [http]},
    }


def connection_pool_rule(
    host: str,
    *,
    name: str,
    max_requests_per_connection: int | None = None,
    connect_timeout_s: float | None = None,
) -> dict[str, Any]:
    """A DestinationRule shaping the client proxy's upstream connections to ``host``.

    ``max_requests_per_connection=1`` gives every attempt its own connection, which makes a
    per-connection fault (Toxiproxy's toxicity) a per-attempt one; a short connect timeout keeps a
    connection to a vanished pod IP from costing Istio's 10 s default.
    """
    pool: dict[str, Any] = {}
    if max_requests_per_connection is not None:
        pool["http"] = {"maxRequestsPerConnection": max_requests_per_connection}
    if connect_timeout_s is not None:
        pool["tcp"] = {"connectTimeout": _seconds(connect_timeout_s)}
    return {
        "apiVersion": NETWORKING,
        "kind": "DestinationRule",
        "metadata": {"name": name},
        "spec": {"host": host, "trafficPolicy": {"connectionPool": pool}},
    }


def http_front_service(
    name: str, *, selector: Mapping[str, str], port: int, target_port: int
) -> dict[str, Any]:
    """A Service exposing one HTTP port of the pods ``selector`` matches, protocol declared so
    the client's sidecar applies HTTP routing (retries) to it instead of sniffing."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": dict(selector),
            "ports": [{"name": "http", "port": port, "targetPort": target_port, "appProtocol": "http"}],
        },
    }


# ---- attempts at the backend -------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One attempt as a backend logged it."""

    request_id: str
    #: Arrival time at the echo server (epoch seconds, from its log timestamp).
    at: float
    #: The X-Envoy-Attempt-Count the client's proxy set (0 when absent).
    number: int
    pod: str = ""


def parse_attempts(log_text: str, marker: str, *, pod: str = "") -> list[Attempt]:
    """The ``Request`` lines of an echo server log whose URL carries ``marker``."""
    out: list[Attempt] = []
    for line in log_text.splitlines():
        m = _REQUEST_LINE.match(line)
        if not m or marker not in line:
            continue
        rid = _REQUEST_ID.search(line)
        count = _ATTEMPT_COUNT.search(line)
        at = datetime.fromisoformat(m.group(1)).timestamp()
        out.append(Attempt(rid.group(1) if rid else "?", at, int(count.group(1)) if count else 0, pod))
    return out


def attempts_by_request(attempts: list[Attempt]) -> dict[str, list[Attempt]]:
    """Attempts grouped per X-Request-Id, each group in arrival order."""
    groups: dict[str, list[Attempt]] = {}
    for a in sorted(attempts, key=lambda a: a.at):
        groups.setdefault(a.request_id, []).append(a)
    return groups


def backend_attempt_log(
    api: ApiClient, namespace: str, selector: str, marker: str
) -> dict[str, list[Attempt]]:
    """Attempts carrying ``marker`` across every Running pod of ``selector``, per request id."""
    core = CoreV1Api(api)
    found: list[Attempt] = []
    for pod in pod_names(api, namespace, selector):
        logs = call(f"logs of {namespace}/{pod}", core.read_namespaced_pod_log, pod, namespace,
                    container=APP_CONTAINER)  # fmt: skip
        found += parse_attempts(str(logs), marker, pod=pod)
    return attempts_by_request(found)


def backend_attempts(api: ApiClient, namespace: str, selector: str, marker: str) -> Counter[str]:
    """Attempts per X-Request-Id of the requests carrying ``marker``, across the backends' logs.

    Envoy keeps a request's X-Request-Id across retries, so the count per id is the number of
    attempts that reached a backend (M8: counted at the backend, not inferred at the client).
    """
    groups = backend_attempt_log(api, namespace, selector, marker)
    return Counter({rid: len(group) for rid, group in groups.items()})


def wait_for_retries_active(
    api: ApiClient,
    namespace: str,
    client: str,
    url: str,
    *,
    backend_selector: str,
    attempts: int,
    timeout: float,
) -> Converged[int]:
    """M6 for a retry policy: poll with one always-failing request (``url`` must make the backend
    answer 503, e.g. ``?codes=503:1``) until the backends log ``1 + attempts`` attempts for it."""
    return wait_for_attempts(
        api, namespace, client, url, backend_selector=backend_selector, timeout=timeout,
        accept=lambda seen: seen == 1 + attempts, what=f"retry policy ({attempts} retries) in effect",
    )  # fmt: skip


def wait_for_attempts(
    api: ApiClient,
    namespace: str,
    client: str,
    url: str,
    *,
    backend_selector: str,
    accept: Callable[[int], bool],
    what: str,
    timeout: float,
) -> Converged[int]:
    """Poll with one always-failing request until ``accept`` takes the number of attempts the
    backends logged for it (e.g. "anything but 1 + N" once a retry policy was removed)."""
    sep = "&" if "?" in url else "?"

    def probe() -> Observation[int]:
        marker = uuid.uuid4().hex
        send(api, namespace, client, f"{url}{sep}m={marker}", count=1)
        seen = max((len(v) for v in backend_attempt_log(api, namespace, backend_selector, marker).values()),
                   default=0)  # fmt: skip
        return Observation(accept(seen), seen, f"{seen} attempts")

    return converge(probe, what=what, timeout=timeout, consecutive=1)


# ---- steady load -------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadOutcome:
    """What a steady load saw: counts per status, success with its Wilson interval, latency
    percentiles with order-statistic intervals (all requests, failed ones included)."""

    requested: int
    answered: int
    codes: dict[str, int]
    success: BinomialInterval | None
    p50: PercentileEstimate | None
    p99: PercentileEstimate | None
    failure: str
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {
            "requested": self.requested,
            "answered": self.answered,
            "codes": self.codes,
            "success": str(self.success) if self.success else None,
            "p50_s": str(self.p50) if self.p50 else None,
            "p99_s": str(self.p99) if self.p99 else None,
            "client_failure": self.failure,
            "wall_seconds": round(self.seconds, 1),
        }


def summarize(batch: EchoBatch, *, requested: int, confidence: float = DEFAULT_CONFIDENCE) -> LoadOutcome:
    """Success = a 200 answer; a request the client never got an answer for counts as failed."""
    codes = Counter(r.code or "no-answer" for r in batch.responses)
    ok = sum(1 for r in batch.responses if r.ok and r.code == "200")
    latencies = [r.latency for r in batch.responses if r.latency >= 0]
    return LoadOutcome(
        requested=requested,
        answered=len(batch.responses),
        codes=dict(sorted(codes.items())),
        success=wilson_interval(ok, requested, confidence=confidence) if requested else None,
        p50=percentile_ci(latencies, 0.5, confidence=confidence) if latencies else None,
        p99=percentile_ci(latencies, 0.99, confidence=confidence) if latencies else None,
        failure=batch.failure,
        seconds=batch.seconds,
    )


class SteadyLoad:
    """``qps`` requests per second for ``seconds`` from the echo client in ``pod``, in a thread.

    One exec carries the whole run: the client paces with a ticker (at most 20 requests in flight)
    and prints every answer when the run ends. Its ``--timeout`` bounds the whole run as well as
    each request, so per-request bounds must come from the mesh (a route timeout).
    """

    def __init__(
        self, api: ApiClient, namespace: str, pod: str, url: str, *, qps: int, seconds: float
    ) -> None:
        if qps <= 0 or seconds <= 0:
            raise ConfigError("SteadyLoad", "qps/seconds", f"must be > 0, got qps={qps} seconds={seconds}")
        self.requested = int(qps * seconds)
        self._args = (api, namespace, pod, url)
        self._qps = qps
        # The run's own length plus 30 s for a slow start or a stalled tail before the client gives up.
        self._budget = seconds + 30
        self._batch: EchoBatch | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self.started = 0.0

    def _run(self) -> None:
        try:
            self._batch = send(*self._args, count=self.requested, qps=self._qps, deadline=self._budget)
        except BaseException as e:  # handed to the caller in result()
            self._error = e

    def start(self) -> SteadyLoad:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def result(self, *, confidence: float = DEFAULT_CONFIDENCE) -> LoadOutcome:
        """Wait for the run (its budget plus the exec's own 30 s set-up allowance)."""
        self._thread.join(timeout=self._budget + 60)
        if self._thread.is_alive():
            raise MeshError(f"steady load from {self._args[2]} still running after {self._budget + 60:.0f}s")
        if self._error is not None:
            raise MeshError(f"steady load from {self._args[2]} failed: {self._error}") from self._error
        if self._batch is None:
            raise MeshError(f"steady load from {self._args[2]} ended without a result")
        return summarize(self._batch, requested=self.requested, confidence=confidence)
