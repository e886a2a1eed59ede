"""M13: under a pod kill, a rollout restart and a proxy (sidecar) restart of a server pod, while a
steady load runs from the injected client, success stays ≥ 99 % and p99 within budget.

Setup per scenario: the ``server`` Service has two pods (v1, v2), each with a sidecar. A route
with retries (3, on reset/connect-failure/refused-stream/5xx, perTryTimeout 1 s, route timeout
5 s) and a 0.5 s connect timeout is applied and verified active (M6) before the load starts. The
load is Istio's echo client in the client pod at a fixed rate (``--qps``), one exec for the whole
run; the disruption hits the v1 pod 10 s in, and the harness waits for recovery (the owner has
replaced or restarted what was hit, pods Ready again) while the load continues; afterwards the
steady state is checked again (C2) and no proxy may have rejected config.

Disruptions (only this module's namespace is touched):
  pod kill      — delete with grace 0 (faults.pods.pod_kill); the Deployment replaces it;
  rollout       — `kubectl rollout restart` (template annotation), waits for the rollout;
  proxy restart — SIGKILL of the v1 pod's istio-proxy (a native sidecar) via crictl on its node
                  (faults.pods.container_kill); the kubelet restarts it in place.

Oracles and how they can fail: success counts 200 answers over *requested* requests (an answer
that never came counts as failed), with a Wilson interval; p99 is the nearest-rank client-side
latency with an order-statistic interval (n = 1500 ≥ 757, so p99 is bounded at 99.9 %). Convention
(as in M8): a check fails when its interval at the suite's CONFIDENCE (99.9 %, mesh/checks.py)
lies entirely on the wrong side of the threshold —
success upper bound < 99 %, or p99 lower bound > budget; the point estimates are reported.
The client's latency excludes time a request waits for one of its 20 in-flight slots, which only
matters if answers slow beyond ~0.8 s at this rate; the report gives the wall time of the run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from kubernetes.client import AppsV1Api, CoreV1Api

from meshcert.conformance_support import attach_json
from meshcert.faults.pods import container_kill, pod_kill
from meshcert.kube.client import call
from meshcert.kube.waits import pod_ready, wait_for_deployment_rolled_out
from meshcert.mesh.checks import CONFIDENCE
from meshcert.mesh.echo import PROXY_CONTAINER, send
from meshcert.mesh.resilience import (
    LoadOutcome,
    SteadyLoad,
    connection_pool_rule,
    resilient_route,
    wait_for_retries_active,
)
from meshcert.mesh.routing import fqdn
from meshcert.mesh.suite import CONVERGENCE_TIMEOUT, MeshEnv, routing

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.mesh,
    pytest.mark.dataplane,
    pytest.mark.conformance,
    pytest.mark.disruptive,
    pytest.mark.slow,
]

#: 25 req/s for 60 s = 1500 requests: enough to bound p99 (757 needed at 99.9 %) and to resolve
#: 1 % (Wilson half-width ~0.5 points at 99 %); light enough for a shared 2-core host.
QPS = 25
SECONDS = 60
#: Disrupt after 10 s of steady state; recovery (new pod Ready, ~10-25 s here) ends well inside
#: the remaining 50 s, so the load sees before, during and after.
DISRUPT_AT = 10.0
THRESHOLD = 0.99
#: One attempt lost to a dead endpoint costs at most the per-try timeout (1 s) or the connect
#: timeout (0.5 s) before the retry goes to the other pod (previous-hosts predicate); 0.5 s more
#: covers normal latency on a loaded host.
P99_BUDGET = 1.5
ATTEMPTS = 3
RETRY_ON = "reset,connect-failure,refused-stream,5xx"
#: The whole workload is replaced or restarted in ~10-40 s; 180 s bounds a loaded host.
RECOVERY_TIMEOUT = 180.0
V1 = "app=server,version=v1"


def _live_v1_pod(env: MeshEnv) -> str:
    """A Ready, non-terminating v1 pod (a rollout's old pod may still be Running)."""
    pods = call(
        "list v1 pods", CoreV1Api(env.api).list_namespaced_pod, env.namespace, label_selector=V1
    ).items
    live = sorted(p.metadata.name for p in pods if p.metadata and p.metadata.deletion_timestamp is None
                  and pod_ready(p))  # fmt: skip
    assert live, f"no Ready v1 pod in {env.namespace}"
    return str(live[0])


def _policy(env: MeshEnv) -> list[dict[str, object]]:
    host = fqdn("server", env.namespace)
    return [
        resilient_route(host, name="server", attempts=ATTEMPTS, retry_on=RETRY_ON,
                        per_try_timeout_s=1.0, timeout_s=5.0),
        connection_pool_rule(host, name="server", connect_timeout_s=0.5),
    ]  # fmt: skip


def _steady(env: MeshEnv, what: str) -> None:
    batch = send(env.api, env.namespace, env.client, "http://server/", count=20)
    assert not batch.failure and set(batch.codes) == {"200"}, f"steady state {what}: {batch}"
    assert set(batch.versions) == {"v1", "v2"}, f"steady state {what}: versions {dict(batch.versions)}"


def _under_load(env: MeshEnv, name: str, disrupt: Callable[[], float]) -> LoadOutcome:
    with routing(env, _policy(env)):
        active = wait_for_retries_active(env.api, env.namespace, env.client, "http://server/?codes=503:1",
                                         backend_selector="app=server", attempts=ATTEMPTS,
                                         timeout=CONVERGENCE_TIMEOUT)  # fmt: skip
        _steady(env, "before")
        load = SteadyLoad(env.api, env.namespace, env.client, f"http://server/?m={uuid.uuid4().hex}",
                          qps=QPS, seconds=SECONDS).start()  # fmt: skip
        time.sleep(DISRUPT_AT)
        recovery = disrupt()
        outcome = load.result(confidence=CONFIDENCE)
        _steady(env, "after")
        env.mesh.assert_config_accepted(env.namespace)
    figures = {
        "disruption": name,
        "recovery_seconds": round(recovery, 1),
        "qps": QPS,
        "policy_convergence_seconds": round(active.time_to_converge, 2),
        **outcome.as_dict(),
    }
    attach_json(f"M13_{name}", figures)
    print(f"M13 {name}: {figures}")
    assert outcome.success is not None and outcome.p99 is not None, f"no answers: {outcome.failure}"
    assert outcome.success.upper >= THRESHOLD, f"{name}: success {outcome.success} < {THRESHOLD}"
    lower = outcome.p99.lower
    assert lower is None or lower <= P99_BUDGET, f"{name}: {outcome.p99} above budget {P99_BUDGET}s"
    return outcome


def test_m13_pod_kill_under_load(mesh_env: MeshEnv) -> None:
    env = mesh_env

    def kill() -> float:
        start = time.monotonic()
        with pod_kill(env.api, env.namespace, _live_v1_pod(env),
                      selector="app=server", expected=2, timeout=RECOVERY_TIMEOUT):  # fmt: skip
            pass
        return time.monotonic() - start

    _under_load(env, "pod_kill", kill)


def test_m13_rollout_restart_under_load(mesh_env: MeshEnv) -> None:
    env = mesh_env
    apps = AppsV1Api(env.api)

    def restart() -> float:
        start = time.monotonic()
        stamp = datetime.now(UTC).isoformat()
        body = {
            "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}
        }
        call("rollout restart server-v1", apps.patch_namespaced_deployment, "server-v1", env.namespace, body)
        wait_for_deployment_rolled_out(env.api, env.namespace, "server-v1", timeout=RECOVERY_TIMEOUT)
        return time.monotonic() - start

    _under_load(env, "rollout_restart", restart)


def test_m13_proxy_restart_under_load(mesh_env: MeshEnv) -> None:
    env = mesh_env

    def kill_proxy() -> float:
        start = time.monotonic()
        pod = _live_v1_pod(env)
        with container_kill(env.api, env.namespace, pod, PROXY_CONTAINER, timeout=RECOVERY_TIMEOUT):
            pass
        return time.monotonic() - start

    _under_load(env, "proxy_restart", kill_proxy)
