"""M11's observations: mirrored copies counted where they land, shared by the Istio-native and the
GAMMA mirroring tests.

Why: a mirrored copy is fire-and-forget, so the client never sees it; the only honest count is
the mirror target's own log (per request marker). Copies trail their primaries, so a count is
read until it stops growing; and "the mirror is in effect" is a convergence on copies appearing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from kubernetes.client import CoreV1Api

from meshcert.kube.client import call
from meshcert.mesh.echo import APP_CONTAINER, EchoBatch, pod_names, send
from meshcert.mesh.probe import timed_converge
from meshcert.mesh.resilience import backend_attempts
from meshcert.mesh.suite import MeshEnv

#: Mirrored copies are sent asynchronously; a count is re-read every SETTLE s until it stops
#: growing, for at most SETTLE_ROUNDS reads (10 s: copies trail by milliseconds, even loaded).
SETTLE, SETTLE_ROUNDS = 2.0, 5
#: Probe batch while converging: 20 requests leave copies even at a 25 % mirror (0.75^20 < 0.4 %).
PROBE_BATCH = 20


def marked_url(marker: str, path: str = "/", *, host: str = "server") -> str:
    """A URL carrying ``marker`` so its copies can be found in the mirror's log."""
    return f"http://{host}{path}?m={marker}"


def echo_copies(env: MeshEnv, selector: str, marker: str) -> int:
    """Requests carrying ``marker`` that reached the echo pods of ``selector`` (one per request id)."""
    return len(backend_attempts(env.api, env.namespace, selector, marker))


def sink_copies(env: MeshEnv, marker: str, *, selector: str = "app=sink") -> int:
    """Requests carrying ``marker`` logged by the sink (`meshcert.mesh.traffic.sink_manifests`)."""
    core = CoreV1Api(env.api)
    total = 0
    for pod in pod_names(env.api, env.namespace, selector):
        log = call(f"logs of {env.namespace}/{pod}", core.read_namespaced_pod_log, pod, env.namespace,
                   container=APP_CONTAINER)  # fmt: skip
        total += sum(1 for line in str(log).splitlines() if line.startswith("sink: ") and marker in line)
    return total


def settled_count(count: Callable[[], int], n: int, *, sleep: Callable[[float], None] = time.sleep) -> int:
    """Read ``count`` until it stops growing or reaches ``n`` (at most SETTLE_ROUNDS reads)."""
    last = -1
    for _ in range(SETTLE_ROUNDS):
        sleep(SETTLE)
        now = count()
        if now == last or now >= n:
            return now
        last = now
    return last


def mirrored_batch(
    env: MeshEnv, copies: Callable[[str], int], *, count: int, path: str = "/", request_timeout: float = 5.0
) -> tuple[EchoBatch, int]:
    """Send ``count`` requests carrying a fresh marker from the client; return the client's
    batch and how many copies ``copies`` (marker -> count at the mirror) settled at."""
    marker = uuid.uuid4().hex
    batch = send(env.api, env.namespace, env.client, marked_url(marker, path), count=count,
                 request_timeout=request_timeout)  # fmt: skip
    return batch, settled_count(lambda: copies(marker), count)


def converge_mirror(env: MeshEnv, copies: Callable[[str], int]) -> dict[str, float]:
    """M6 for a mirror: until a batch leaves copies at the mirror (a fresh marker per probe);
    returns the convergence bounds for the report."""

    def sample() -> tuple[int, str]:
        marker = uuid.uuid4().hex
        b = send(env.api, env.namespace, env.client, marked_url(marker), count=PROBE_BATCH)
        time.sleep(0.5)  # copies trail their primaries by milliseconds
        return copies(marker), b.failure

    conv = timed_converge(
        env, sample, lambda s: "" if s[0] and not s[1] else f"{s[0]} copies of {PROBE_BATCH} {s[1]}",
        what="mirrored copies observed",
    )  # fmt: skip
    return conv.bounds.report()
