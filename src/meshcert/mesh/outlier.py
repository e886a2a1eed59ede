"""M10: outlier detection and connection-pool overflow — manifests, Envoy readers, checkers (pure).

Why a module of its own: M10 needs a backend that fails *per pod* (the echo app shapes responses
per request, ``?codes=``, which would make every endpoint fail alike), DestinationRules with
``outlierDetection`` / ``connectionPool``, and oracles read from the client's Envoy: the cluster
config it runs (did the rule arrive?), its ``outlier_detection.*`` and overflow counters, and
which hosts it marks ``failed_outlier_check``. Everything here is pure; the suite does the I/O.

The always-failing backend is the echo server itself with its gRPC listener on the HTTP target
port: the pod is Ready (the TCP probe connects), but every HTTP/1.1 request its sidecar forwards
is answered by a connection close (gRPC expects the HTTP/2 preface), which the sidecar turns
into a 5xx (502 on this build) that outlier detection counts, coming from exactly one endpoint.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from meshcert.errors import ConfigError, MeshError
from meshcert.invariants.violations import ObjectRef, Violation, set_violation
from meshcert.mesh.echo import APP_CONTAINER, HTTP_PORT, Exchange, echo_manifests
from meshcert.mesh.routing import NETWORKING, fqdn

#: The echo server's HTTP listener moves here on the failing pod (nothing routes to it).
FAILING_HTTP_PORT = 8081
#: Istio's bootstrap keeps only a few stat families (server, cluster_manager, listener_manager,
#: ...); the ones M10 reads must be asked for per pod, at injection time, by this annotation
#: (comma-separated regexps, matched against full stat names).
STATS_ANNOTATION = "sidecar.istio.io/statsInclusionRegexps"
STATS_REGEXPS = (
    r".*outlier_detection\..*",
    r".*upstream_rq_pending_overflow",
    r".*upstream_cx_overflow",
    r"http\.inbound.*downstream_rq_total",
)


def with_proxy_stats(deployment: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``deployment`` whose pods' sidecars keep the stats M10 reads."""
    dep = copy.deepcopy(deployment)
    meta = dep["spec"]["template"].setdefault("metadata", {})
    meta.setdefault("annotations", {})[STATS_ANNOTATION] = ",".join(STATS_REGEXPS)
    return dep


def stats_client_manifests(app: str) -> list[dict[str, Any]]:
    """An injected echo client (no Service) whose sidecar keeps the M10 stats."""
    return [with_proxy_stats(d) for d in echo_manifests(app, "v1", with_service=False)]


def failing_backend_manifests(service: str, version: str, *, replicas: int = 1) -> list[dict[str, Any]]:
    """A Deployment ``<service>-<version>`` selected by ``service``'s Service whose every HTTP
    request fails with a 5xx (see the module docstring for how); its sidecar keeps the inbound
    request counter, so requests reaching it are counted at the backend."""
    if replicas < 1:
        raise ConfigError("failing_backend_manifests", "replicas", f"must be >= 1, got {replicas}")
    [dep] = copy.deepcopy(echo_manifests(service, version, replicas=replicas, with_service=False))
    for c in dep["spec"]["template"]["spec"]["containers"]:
        if c["name"] == APP_CONTAINER:
            c["args"] = [a for a in c["args"] if not a.startswith(("--port=", "--grpc="))] + [
                f"--port={FAILING_HTTP_PORT}",
                f"--grpc={HTTP_PORT}",
            ]
    return [with_proxy_stats(dep)]


def outlier_rule(
    service: str,
    namespace: str,
    *,
    consecutive_5xx: int,
    interval_s: float,
    base_ejection_s: float,
    max_ejection_percent: int,
) -> dict[str, Any]:
    """A DestinationRule ejecting a host after ``consecutive_5xx`` consecutive 5xx answers."""
    if consecutive_5xx < 1 or not 0 < max_ejection_percent <= 100:
        raise ConfigError(
            "outlier_rule",
            "consecutive_5xx/max_ejection_percent",
            f"need >= 1 and 1..100, got {consecutive_5xx}/{max_ejection_percent}",
        )
    return {
        "apiVersion": NETWORKING,
        "kind": "DestinationRule",
        "metadata": {"name": service},
        "spec": {
            "host": fqdn(service, namespace),
            "trafficPolicy": {
                "outlierDetection": {
                    "consecutive5xxErrors": consecutive_5xx,
                    "interval": f"{interval_s}s",
                    "baseEjectionTime": f"{base_ejection_s}s",
                    "maxEjectionPercent": max_ejection_percent,
                }
            },
        },
    }


def pool_rule(
    service: str, namespace: str, *, max_connections: int, max_pending: int, max_requests_per_connection: int
) -> dict[str, Any]:
    """A DestinationRule bounding ``service``'s connection pool (requests beyond it get 503 UO)."""
    if min(max_connections, max_pending, max_requests_per_connection) < 1:
        raise ConfigError("pool_rule", "limits", "every pool limit must be >= 1")
    return {
        "apiVersion": NETWORKING,
        "kind": "DestinationRule",
        "metadata": {"name": service},
        "spec": {
            "host": fqdn(service, namespace),
            "trafficPolicy": {
                "connectionPool": {
                    "tcp": {"maxConnections": max_connections},
                    "http": {
                        "http1MaxPendingRequests": max_pending,
                        "maxRequestsPerConnection": max_requests_per_connection,
                    },
                }
            },
        },
    }


# ---- what the client's Envoy runs -----------------------------------------------------------


def outbound_cluster(service: str, namespace: str, port: int) -> str:
    """Istio's name of the client-side Envoy cluster for ``service:port``."""
    return f"outbound|{port}||{fqdn(service, namespace)}"


@dataclass(frozen=True)
class OutlierCounters:
    """``cluster.<name>.outlier_detection.*`` and overflow counters of one client-side cluster."""

    ejections_active: int = 0
    ejections_enforced_total: int = 0
    ejections_overflow: int = 0
    pending_overflow: int = 0
    cx_overflow: int = 0


def outlier_counters(stats: dict[str, int], cluster: str) -> OutlierCounters:
    """The counters of ``cluster`` from parsed ``/stats`` (absent counters read as 0).

    Istio ends stat prefixes with ";" so its tag extraction finds where a name ends
    (``cluster.outbound|80||svc;.upstream_rq_pending_overflow``); both spellings are read.
    Envoy creates a cluster's counters on its first use, hence "absent reads as 0".
    """

    def get(suffix: str) -> int:
        return stats.get(f"cluster.{cluster};.{suffix}", stats.get(f"cluster.{cluster}.{suffix}", 0))

    return OutlierCounters(
        ejections_active=get("outlier_detection.ejections_active"),
        ejections_enforced_total=get("outlier_detection.ejections_enforced_total"),
        ejections_overflow=get("outlier_detection.ejections_overflow"),
        pending_overflow=get("upstream_rq_pending_overflow"),
        cx_overflow=get("upstream_cx_overflow"),
    )


def ejected_hosts(clusters_json: str, cluster: str) -> set[str]:
    """``address:port`` of the hosts of ``cluster`` that Envoy has ejected (failed_outlier_check)."""
    try:
        doc = json.loads(clusters_json)
    except ValueError as e:
        raise MeshError(f"Envoy /clusters?format=json is not JSON: {clusters_json[:120]!r}") from e
    out: set[str] = set()
    for c in doc.get("cluster_statuses") or []:
        if c.get("name") != cluster:
            continue
        for h in c.get("host_statuses") or []:
            sock = (h.get("address") or {}).get("socket_address") or {}
            if (h.get("health_status") or {}).get("failed_outlier_check") is True:
                out.add(f"{sock.get('address')}:{sock.get('port_value')}")
    return out


def inbound_requests(stats: dict[str, int]) -> int:
    """Requests a server's sidecar received on its inbound HTTP listeners (``http.inbound_*``):
    what reached the backend pod, counted at the backend."""
    return sum(
        v for k, v in stats.items() if k.startswith("http.inbound") and k.endswith(".downstream_rq_total")
    )


# ---- checkers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EjectionRun:
    """One ordered run of requests: how many failed, where the last failure was, what followed."""

    requests: int
    errors: int
    last_error_index: int
    clean_after: int
    hosts_after: frozenset[str]

    @classmethod
    def of(cls, responses: Sequence[Exchange]) -> EjectionRun:
        bad = [i for i, r in enumerate(responses) if not r.ok]
        last = bad[-1] if bad else -1
        after = responses[last + 1 :]
        return cls(len(responses), len(bad), last, len(after), frozenset(r.hostname for r in after))


def check_ejection(
    run: EjectionRun, *, consecutive_5xx: int, min_clean: int, healthy_hosts: Iterable[str], ref: ObjectRef
) -> list[Violation]:
    """M10: the failing endpoint answers exactly ``consecutive_5xx`` times, then never again
    (at least ``min_clean`` answers follow), and what follows comes from the healthy hosts only."""
    out: list[Violation] = []
    if run.errors != consecutive_5xx:
        when = "never ejected" if run.errors > consecutive_5xx else "ejected early or never reached"
        out.append(Violation("M10", ref, f"{run.errors} failed answer(s) before ejection, expected "
                                         f"consecutive5xxErrors={consecutive_5xx} ({when})"))  # fmt: skip
    if run.clean_after < min_clean:
        out.append(Violation("M10", ref, f"failing endpoint still answered at request {run.last_error_index} "
                                         f"of {run.requests}: only {run.clean_after} clean answers after it, "
                                         f"need {min_clean}"))  # fmt: skip
    out += set_violation("M10", ref, "hosts answering after ejection", expected=healthy_hosts,
                         observed=run.hosts_after)  # fmt: skip
    return out


def max_ejected(hosts: int, max_ejection_percent: int) -> int:
    """Envoy's cap: a host is ejected if the ejected share *after* ejecting it stays within the
    percentage, and one host may always be ejected (the documented "at least one host regardless
    of the value"). Older Envoy compared the share *before* the ejection, which allows one more
    host when hosts * percent is not a multiple of 100; the suite's cases (1 failing of 3 at 50 %,
    2 failing of 4 at 25 %) give the same cap under both rules."""
    return max(1, hosts * max_ejection_percent // 100)


def check_ejection_cap(
    ejected: int, *, hosts: int, max_ejection_percent: int, expected: int, ref: ObjectRef
) -> list[Violation]:
    """M10: ejections never exceed maxEjectionPercent; ``expected`` is how many must be ejected."""
    cap = max_ejected(hosts, max_ejection_percent)
    out: list[Violation] = []
    if ejected > cap:
        out.append(Violation("M10", ref, f"{ejected} of {hosts} hosts ejected, above maxEjectionPercent="
                                         f"{max_ejection_percent} (at most {cap})"))  # fmt: skip
    if ejected != expected and ejected <= cap:
        out.append(Violation("M10", ref, f"{ejected} of {hosts} hosts ejected, expected {expected}"))
    return out


@dataclass(frozen=True)
class OverflowRun:
    """Concurrent requests against a bounded pool: who was admitted, who was turned away and how fast."""

    admitted: int
    rejected: int
    other: dict[str, int]
    rejected_latencies: tuple[float, ...]

    @classmethod
    def of(cls, responses: Sequence[Exchange]) -> OverflowRun:
        rejected = [r for r in responses if r.code == "503"]
        other: dict[str, int] = {}
        for r in responses:
            if r.code not in ("200", "503"):
                key = r.code or f"error:{r.error}"
                other[key] = other.get(key, 0) + 1
        admitted = sum(1 for r in responses if r.code == "200")
        return cls(admitted, len(rejected), other, tuple(r.latency for r in rejected))


def check_overflow(
    run: OverflowRun, *, fast_s: float, pool_capacity: int, overflow_counted: int, ref: ObjectRef
) -> list[Violation]:
    """M10: requests beyond the pool (connections + pending) fail fast with 503 instead of queuing.

    ``pool_capacity`` (connections + pending) only words the message: Envoy opens a first
    connection per host and worker even past maxConnections (a pool must never stall), so the
    number admitted is not bounded by it exactly. ``overflow_counted`` is the client
    proxy's ``upstream_rq_pending_overflow`` delta, which must account for every 503 (a 503 with
    another cause would be a different failure)."""
    out: list[Violation] = []
    if run.rejected == 0:
        msg = f"no request was turned away: {run.admitted} admitted past a pool of {pool_capacity}"
        out.append(Violation("M10", ref, msg + " (requests queued instead of overflowing)"))
    if run.admitted < 1:
        out.append(Violation("M10", ref, "no request was admitted at all"))
    if run.other:
        out.append(Violation("M10", ref, f"answers other than 200/503: {run.other}"))
    slow = [t for t in run.rejected_latencies if t < 0 or t > fast_s]
    if slow:
        out.append(Violation("M10", ref, f"{len(slow)} rejection(s) slower than {fast_s}s (queued, then "
                                         f"failed): {sorted(slow)}"))  # fmt: skip
    if overflow_counted != run.rejected:
        out.append(Violation("M10", ref, f"{run.rejected} 503s but upstream_rq_pending_overflow rose by "
                                         f"{overflow_counted}"))  # fmt: skip
    return out
