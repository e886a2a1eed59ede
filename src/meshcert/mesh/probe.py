"""Several distinct echo requests in one exec, with what the backend and the client each saw.

Why it exists: M3/M4 check a table of requests that differ in path, method, headers and query
(one echo-client run each); an exec per request costs ~1 s of API round trips on a loaded host,
so a table of ten would make every convergence poll slow. Here one ``sh -c`` runs the echo
client once per request with a separator line between runs, and the output is split back.

The `Exchange` keeps the fields routing filters change: the request headers and URL *as the
backend received them* (the echo server writes them into its response body), the method, and
the response headers the client got (a redirect's Location). `meshcert.mesh.echo` keeps the
lean `Exchange` the weight/retry suites count; this is the detailed view, parsed separately.

What it is not: no load; requests run one after another.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urlencode

from kubernetes.client import ApiClient

from meshcert.errors import MeshError, WaitTimeout
from meshcert.invariants.convergence import DEFAULT_CONSECUTIVE, Observation, converge
from meshcert.invariants.violations import Violation, assert_no_violations
from meshcert.kube.exec import exec_in_pod
from meshcert.mesh.adapter import Feature
from meshcert.mesh.echo import (
    APP_CONTAINER,
    EXEC_OVERHEAD,
    SERVICE_HTTP_PORT,
    EchoBatch,
    Exchange,
    Headers,
    client_deadline,
    parse_exchanges,
    send,
)
from meshcert.mesh.suite import CONVERGENCE_TIMEOUT, MeshEnv

_SEPARATOR = "### meshcert request "


@dataclass(frozen=True)
class EchoRequest:
    """One request shape: sent ``count`` times by one echo-client run."""

    path: str = "/"
    method: str = "GET"
    headers: Headers = ()
    query: Headers = ()
    host: str = "server"
    port: int = SERVICE_HTTP_PORT
    count: int = 1

    @property
    def url(self) -> str:
        q = f"?{urlencode(self.query)}" if self.query else ""
        # No ":80" for the default port: the Host header (and a redirect's Location) stays bare.
        port = "" if self.port == SERVICE_HTTP_PORT else f":{self.port}"
        return f"http://{self.host}{port}{self.path}{q}"

    def __str__(self) -> str:
        hdrs = " ".join(f"[{k}: {v}]" for k, v in self.headers)
        q = f"?{urlencode(self.query)}" if self.query else ""
        return f"{self.method} {self.host}{self.path}{q}" + (f" {hdrs}" if hdrs else "")

    def argv(self, *, request_timeout: float) -> list[str]:
        for k, v in self.headers:
            if "," in v or ":" in k:
                # The client's --header is a comma-separated list split at the first ':'.
                raise MeshError(f"echo request header {k}={v!r}: no ',' in values or ':' in names")
        deadline = client_deadline(self.count, request_timeout=request_timeout)
        argv = ["/usr/local/bin/client", self.url, f"--count={self.count}", f"--timeout={deadline}s"]
        if self.method != "GET":
            argv.append(f"--method={self.method}")
        argv += [f"--header={k}:{v}" for k, v in self.headers]
        return argv


def script_for(requests: list[EchoRequest], *, request_timeout: float) -> str:
    """The ``sh -c`` script: one client run per request, each preceded by a separator line and
    followed by its exit status when it failed (the client aborts a run on connection errors)."""
    parts = []
    for i, req in enumerate(requests):
        cmd = " ".join(shlex.quote(a) for a in req.argv(request_timeout=request_timeout))
        parts.append(f"echo '{_SEPARATOR}{i}'; {cmd} 2>&1 || echo \"[{i} failed] exit $?\"")
    return "; ".join(parts)


def split_runs(text: str, n: int) -> list[str]:
    """The output of each of ``n`` runs, by separator (a run that printed nothing gives "")."""
    out = [""] * n
    current = -1
    for line in text.splitlines(keepends=True):
        if line.startswith(_SEPARATOR):
            current = int(line[len(_SEPARATOR) :].strip())
            continue
        if 0 <= current < n:
            out[current] += line
    return out


def send_requests(
    api: ApiClient, namespace: str, pod: str, requests: list[EchoRequest], *, request_timeout: float = 5.0
) -> list[list[Exchange]]:
    """Send every request (``count`` times each) from ``pod``'s echo client in one exec; returns
    the exchanges per request, in order. A run the client aborted yields one Exchange carrying
    the client's error so a checker reports it instead of a silent empty list."""
    script = script_for(requests, request_timeout=request_timeout)
    timeout = sum(client_deadline(r.count, request_timeout=request_timeout) for r in requests) + EXEC_OVERHEAD
    res = exec_in_pod(api, namespace, pod, ["sh", "-c", script], container=APP_CONTAINER, timeout=timeout)
    runs = split_runs(res.stdout, len(requests))
    out: list[list[Exchange]] = []
    for text in runs:
        exchanges = parse_exchanges(text)
        if not exchanges:
            tail = (text.strip().splitlines() or ["no output"])[-1]
            exchanges = [Exchange(0, error=f"client run failed: {tail}")]
        out.append(exchanges)
    return out


Results = list[list[Exchange]]
T = TypeVar("T")


@dataclass(frozen=True)
class ConvergenceBounds:
    """When a change took effect, bracketed by one probe: the final streak's first probe started
    ``lower`` s after the change and its answers were in ``upper`` s after it (a probe is one
    exec, ~0.5-1.5 s here: the resolution of the measurement). ``lower`` 0 means the very first
    probe already saw the change."""

    lower: float
    upper: float
    attempts: int

    def report(self) -> dict[str, float]:
        return {"lower_s": round(self.lower, 2), "upper_s": round(self.upper, 2), "probes": self.attempts}


@dataclass(frozen=True)
class TimedConvergence(Generic[T]):
    observed: T
    bounds: ConvergenceBounds


def timed_converge(
    env: MeshEnv,
    sample: Callable[[], T],
    judge: Callable[[T], str],
    *,
    what: str,
    since: float | None = None,
    timeout: float = CONVERGENCE_TIMEOUT,
    consecutive: int = DEFAULT_CONSECUTIVE,
) -> TimedConvergence[T]:
    """M6: poll ``sample`` until ``judge`` (returns "" when right, else what is wrong) holds
    ``consecutive`` times in a row, bracket the instant relative to ``since`` (a monotonic time
    taken when the API server stored the change; default: now), then verify no proxy rejected
    config."""
    start = time.monotonic() if since is None else since
    spans: list[tuple[float, float]] = []

    def probe() -> Observation[T]:
        t0 = time.monotonic()
        value = sample()
        spans.append((t0, time.monotonic()))
        wrong = judge(value)
        return Observation(not wrong, value, wrong)

    result = converge(probe, what=what, timeout=timeout, consecutive=consecutive)
    env.mesh.assert_config_accepted(env.namespace)
    first_start, first_end = spans[result.attempts - consecutive]
    bounds = ConvergenceBounds(max(0.0, first_start - start), first_end - start, result.attempts)
    return TimedConvergence(result.observed, bounds)


def converge_requests(
    env: MeshEnv,
    requests: Sequence[EchoRequest],
    check: Callable[[Results], list[Violation]],
    *,
    what: str,
    since: float | None = None,
    timeout: float = CONVERGENCE_TIMEOUT,
    consecutive: int = DEFAULT_CONSECUTIVE,
    pod: str | None = None,
    request_timeout: float = 5.0,
) -> TimedConvergence[Results]:
    """`timed_converge` for a table of requests judged by a checker. On timeout the last findings
    fail the test (InvariantViolation with each probe's expected/observed diff), not a bare
    timeout."""
    last: list[Violation] = []

    def sample() -> Results:
        return send_requests(env.api, env.namespace, pod or env.client, list(requests),
                             request_timeout=request_timeout)  # fmt: skip

    def judge(results: Results) -> str:
        nonlocal last
        last = check(results)
        return "; ".join(str(v) for v in last[:3])

    try:
        return timed_converge(
            env, sample, judge, what=what, since=since, timeout=timeout, consecutive=consecutive
        )
    except WaitTimeout:
        assert_no_violations(last, context=f"{what} (not within {timeout:.0f}s)")
        raise


def converge_batches_timed(
    env: MeshEnv,
    url: str,
    check: Callable[[EchoBatch], str],
    *,
    what: str,
    since: float | None = None,
    count: int = 10,
    headers: dict[str, str] | None = None,
    pod: str | None = None,
    timeout: float = CONVERGENCE_TIMEOUT,
    consecutive: int = DEFAULT_CONSECUTIVE,
) -> TimedConvergence[EchoBatch]:
    """`suite.converge_batches` with the convergence instant bracketed (see `timed_converge`)."""

    def sample() -> EchoBatch:
        return send(env.api, env.namespace, pod or env.client, url, count=count, headers=headers)

    return timed_converge(
        env, sample, check, what=what, since=since, timeout=timeout, consecutive=consecutive
    )


def unsupported(env: MeshEnv, *features: Feature) -> str:
    """The adapter's reason why one of ``features`` is unsupported ("" when all are): tests skip
    with it, so a mesh lacking a feature is reported unsupported, not failed."""
    reasons = [f"{s.feature}: {s.reason}" for s in map(env.mesh.support, features) if not s.supported]
    return "; ".join(reasons)
