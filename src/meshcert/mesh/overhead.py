"""The mesh overhead benchmark's library half: statistics over repeats, one paced echo-client run
parsed into latencies, and container CPU/memory from the node's CRI stats.

Why a module and not only the script: the statistics (Student-t and bootstrap intervals of the
mean of paired differences) decide what the benchmark claims, so they are plain functions with
unit tests; benchmarks/mesh_overhead.py only orchestrates namespaces, order and output.

Method, in one place. For one request rate, each repeat runs the same paced load twice, once
between pods without sidecars and once between injected pods (order alternating per repeat so
drift on the shared host hits both), and takes p50/p90/p99 of each run. The overhead at a
percentile is the mean over repeats of (mesh - plain) for that repeat, with a t-interval (n-1
degrees of freedom) and a percentile bootstrap of the mean as a cross-check; with 5 repeats the
bootstrap is known to be too narrow, so the t-interval is the one to quote.

What it is not: no load generator of its own (Istio's echo client, exec'd in the client pod, paces
requests with ``--qps`` and runs at most 20 at once), and no I/O on the node (the script reads
the CRI stats and hands the JSON text to `parse_crictl_stats`).
"""

from __future__ import annotations

import json
import math
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from kubernetes.client import ApiClient

from meshcert.errors import MeshError
from meshcert.invariants.stats import DEFAULT_CONFIDENCE, betainc, percentile
from meshcert.kube.exec import exec_in_pod
from meshcert.mesh.echo import APP_CONTAINER, parse_exchanges

#: Bisection steps for the t quantile: 200 halvings of [0, 1e6] reach double precision.
_T_BISECT = 200
_T_MAX = 1e6
#: Bootstrap resamples: 10,000 puts the Monte-Carlo error of a 2.5 % quantile well below the
#: spread of 5 repeats.
BOOTSTRAP_RESAMPLES = 10_000
#: The echo client runs at most this many requests at once (its maxConcurrencyPerForward); a run
#: whose answers report this many active requests was limited by the client, not paced.
CLIENT_CONCURRENCY = 20
_ACTIVE = re.compile(r"^\[\d+\] ActiveRequests=(\d+)$", re.M)
QUANTILES = (0.5, 0.9, 0.99)
#: A run is measured when at least 99 % of its requests got a 200 (the rest are counted in the
#: report); below that the latencies would describe a failing service, not its overhead.
MIN_OK_SHARE = 0.99


# ---- statistics --------------------------------------------------------------------------


def t_cdf(t: float, df: int) -> float:
    """Student-t CDF: 1 - I_{df/(df+t²)}(df/2, 1/2)/2 for t ≥ 0, symmetric below."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    tail = 0.5 * betainc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t >= 0 else tail


def t_quantile(p: float, df: int) -> float:
    """Inverse of `t_cdf` by bisection (e.g. t_quantile(0.975, 4) ≈ 2.776)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    lo, hi = 0.0, _T_MAX
    for _ in range(_T_BISECT):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class MeanInterval:
    """A mean with a two-sided interval; ``method`` is ``t`` or ``bootstrap``."""

    n: int
    mean: float
    lower: float
    upper: float
    confidence: float
    method: str

    def as_dict(self, *, scale: float = 1.0, digits: int = 3) -> dict[str, object]:
        return {
            "n": self.n,
            "mean": round(self.mean * scale, digits),
            "ci": [round(self.lower * scale, digits), round(self.upper * scale, digits)],
            "confidence": self.confidence,
            "method": self.method,
        }


def t_interval(values: Sequence[float], *, confidence: float = DEFAULT_CONFIDENCE) -> MeanInterval:
    """Mean ± t_{1-a/2, n-1}·s/√n (needs n ≥ 2)."""
    n = len(values)
    if n < 2:
        raise ValueError(f"a t-interval needs at least 2 values, got {n}")
    mean = statistics.fmean(values)
    half = t_quantile(1 - (1 - confidence) / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return MeanInterval(n, mean, mean - half, mean + half, confidence, "t")


def bootstrap_interval(
    values: Sequence[float],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> MeanInterval:
    """Percentile bootstrap of the mean (fixed seed: the same data give the same interval)."""
    n = len(values)
    if n < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 values, got {n}")
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(values, k=n)) for _ in range(resamples))
    alpha = 1 - confidence
    lower = means[math.floor(alpha / 2 * (resamples - 1))]
    upper = means[math.ceil((1 - alpha / 2) * (resamples - 1))]
    return MeanInterval(n, statistics.fmean(values), lower, upper, confidence, "bootstrap")


def paired_deltas(mesh: Sequence[float], plain: Sequence[float]) -> list[float]:
    """mesh[i] - plain[i] per repeat (the pairs share a repeat's conditions on the host)."""
    if len(mesh) != len(plain):
        raise ValueError(f"unpaired repeats: {len(mesh)} mesh vs {len(plain)} plain")
    return [m - p for m, p in zip(mesh, plain, strict=True)]


# ---- one paced run -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunSample:
    """One paced run: per-request latencies (s) of 200 answers, status counts, and the most
    requests the client had started (above ``CLIENT_CONCURRENCY``, some waited for a slot:
    the client, not the ticker, set the pace and their wait is not in their latency)."""

    requested: int
    latencies: list[float]
    codes: dict[str, int]
    max_active: int
    wall_seconds: float
    #: Share of answers that came back while requests were queued behind the client's limit.
    limited_share: float = 0.0

    def quantiles(self) -> dict[str, float]:
        return {f"p{round(q * 100)}": percentile(self.latencies, q) for q in QUANTILES}

    @property
    def saturated(self) -> bool:
        """More requests were due than the client may run at once (some waited for a slot)."""
        return self.max_active > CLIENT_CONCURRENCY


def parse_run(text: str, *, requested: int, wall_seconds: float) -> RunSample:
    """A RunSample from the echo client's output (failed answers are counted, not timed)."""
    responses = parse_exchanges(text)
    codes = Counter(r.code or "none" for r in responses)
    latencies = [r.latency for r in responses if r.code == "200" and r.latency >= 0]
    active = [int(m) for m in _ACTIVE.findall(text)]
    limited = sum(1 for a in active if a > CLIENT_CONCURRENCY) / len(active) if active else 0.0
    return RunSample(requested, latencies, dict(codes), max(active, default=0), wall_seconds, limited)


#: How long a paced run may take beyond its nominal length before the client gives up: a shared
#: host that cannot keep the pace stretches the run (the result then says client_limited).
RUN_SLACK_FACTOR, RUN_SLACK_SECONDS = 3.0, 30.0


def client_argv(url: str, *, qps: int, seconds: float, headers: dict[str, str]) -> list[str]:
    """The echo client's argv for one paced run of ``qps`` x ``seconds`` requests."""
    count = int(qps * seconds)
    # --timeout bounds the whole paced run as well as each request.
    budget = seconds * RUN_SLACK_FACTOR + RUN_SLACK_SECONDS
    argv = ["/usr/local/bin/client", url, f"--count={count}", f"--qps={qps}", f"--timeout={budget:g}s"]
    return argv + [f"--header={k}:{v}" for k, v in headers.items()]


def check_run(sample: RunSample, *, what: str) -> RunSample:
    """The sample, or MeshError when fewer than 99 % of its requests got a 200."""
    if len(sample.latencies) < MIN_OK_SHARE * sample.requested:
        raise MeshError(
            f"{what}: {len(sample.latencies)}/{sample.requested} answered 200, codes {sample.codes}"
        )
    return sample


def paced_run(
    api: ApiClient,
    namespace: str,
    pod: str,
    url: str,
    *,
    qps: int,
    seconds: float,
    headers: dict[str, str],
) -> RunSample:
    """One paced run exec'd through the API server; raises below 99 % 200s.

    The client prints its answers only after the last one, so moving the output (several MB at
    1000 req/s) does not overlap the measured requests.
    """
    argv = client_argv(url, qps=qps, seconds=seconds, headers=headers)
    start = time.monotonic()
    budget = seconds * RUN_SLACK_FACTOR + RUN_SLACK_SECONDS
    res = exec_in_pod(api, namespace, pod, argv, container=APP_CONTAINER, timeout=budget + 90)
    wall = time.monotonic() - start
    what = f"echo client in {namespace}/{pod} at {qps} req/s"
    if not res.ok:
        tail = ((res.stderr + res.stdout).strip().splitlines() or [f"exit {res.exit_code}"])[-1]
        raise MeshError(f"{what}: {tail}")
    return check_run(parse_run(res.stdout, requested=int(qps * seconds), wall_seconds=wall), what=what)


# ---- container resources -----------------------------------------------------------------


@dataclass(frozen=True)
class ContainerStat:
    """One container's cumulative CPU time and memory working set, as the CRI reports them."""

    namespace: str
    pod: str
    container: str
    cpu_ns: int
    working_set_bytes: int


def parse_crictl_stats(text: str) -> list[ContainerStat]:
    """``crictl stats -o json`` → stats (cpu.usageCoreNanoSeconds, memory.workingSetBytes)."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise MeshError(f"crictl stats output is not JSON: {text[:120]!r}") from e
    out: list[ContainerStat] = []
    for s in doc.get("stats") or []:
        labels = (s.get("attributes") or {}).get("labels") or {}
        cpu = ((s.get("cpu") or {}).get("usageCoreNanoSeconds") or {}).get("value")
        mem = ((s.get("memory") or {}).get("workingSetBytes") or {}).get("value")
        out.append(ContainerStat(
            labels.get("io.kubernetes.pod.namespace", ""), labels.get("io.kubernetes.pod.name", ""),
            labels.get("io.kubernetes.container.name", ""), int(cpu or 0), int(mem or 0),
        ))  # fmt: skip
    return out


@dataclass(frozen=True)
class ContainerUse:
    """What one container used during one run."""

    cpu_seconds: float
    working_set_mib: float

    def per_1k_requests_ms(self, requests: int) -> float:
        return self.cpu_seconds * 1000 / (requests / 1000) if requests else 0.0


def container_use(
    before: Sequence[ContainerStat],
    after: Sequence[ContainerStat],
    *,
    namespace: str,
    container: str,
    pod_prefix: str,
) -> ContainerUse:
    """CPU used between two readings and the working set after, for one container."""

    def pick(stats: Sequence[ContainerStat]) -> ContainerStat:
        found = [s for s in stats if s.namespace == namespace and s.container == container
                 and s.pod.startswith(pod_prefix)]  # fmt: skip
        if len(found) != 1:
            raise MeshError(
                f"want one {container} container in {namespace}/{pod_prefix}*, CRI lists {len(found)}"
            )
        return found[0]

    a, b = pick(before), pick(after)
    return ContainerUse((b.cpu_ns - a.cpu_ns) / 1e9, b.working_set_bytes / 2**20)
