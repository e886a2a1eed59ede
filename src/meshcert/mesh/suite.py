"""What the mesh suite's fixtures hand to tests: the installed mesh and one echo namespace.

Lives in the library (not in conformance/mesh/conftest.py) so tests import it by name — suites
import the library, never each other or a conftest (STYLE.md §1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient, CustomObjectsApi

from meshcert.invariants.convergence import DEFAULT_CONSECUTIVE, Converged, Observation, converge
from meshcert.kube.apply import apply_manifests
from meshcert.kube.client import KubeApiError, call
from meshcert.kube.waits import wait_for_pods_ready
from meshcert.mesh.echo import APP_IDLE_TIMEOUT_S, EchoBatch, echo_manifests, pod_names, send
from meshcert.mesh.istio import IstioMesh
from meshcert.mesh.routing import inbound_idle_sidecar

#: Sidecar injection adds an init container and a native-sidecar proxy that must fetch config and
#: certificates before the app starts (holdApplicationUntilProxyStarts): ~10-40 s per pod on a
#: loaded 2-core host; 240 s leaves room for the first image unpack on the node.
WORKLOAD_READY_TIMEOUT = 240.0
#: istiod debounces config for 100 ms and pushes in ~1 s on a small mesh; Gateway API's
#: conformance allows MaxTimeToConsistency 30 s. 60 s bounds a loaded shared host.
CONVERGENCE_TIMEOUT = 60.0
#: The sidecars' inbound pools drop idle connections 2 s before the echo app does (its 5 s):
#: the margin covers timer slack on a loaded host. Without it the keep-alive race between proxy
#: and app fails a request now and then with no fault at all (echo.APP_IDLE_TIMEOUT_S).
INBOUND_IDLE_TIMEOUT_S = APP_IDLE_TIMEOUT_S - 2.0


@dataclass(frozen=True)
class MeshEnv:
    """An injected namespace with server v1+v2 (Service ``server``), an injected ``client`` pod
    and an uninjected ``plain`` pod (plaintext, for M15)."""

    mesh: IstioMesh
    api: ApiClient
    namespace: str
    client: str
    plain: str
    run_id: str
    ready_seconds: float


def deploy_echo_env(mesh: IstioMesh, api: ApiClient, namespace: str, *, run_id: str) -> MeshEnv:
    """Inject ``namespace``, deploy the echo set, wait until Ready, check no config was rejected.

    The namespace's Sidecar (applied before the pods, so their first config has it) keeps the
    proxies' inbound pools from outliving the app's idle connections."""
    mesh.inject_namespace(namespace)
    start = time.monotonic()
    manifests = [
        inbound_idle_sidecar("echo-inbound-idle", idle_timeout_s=INBOUND_IDLE_TIMEOUT_S),
        *echo_manifests("server", "v1"),
        *echo_manifests("server", "v2", with_service=False),
        *echo_manifests("client", "v1"),
        *echo_manifests("plain", "v1", inject=False),
    ]
    apply_manifests(api, manifests, namespace=namespace, run_id=run_id)
    for app, count in (("server", 2), ("client", 1), ("plain", 1)):
        wait_for_pods_ready(
            api, namespace, label_selector=f"app={app}", count=count, timeout=WORKLOAD_READY_TIMEOUT
        )
    ready = time.monotonic() - start
    client = pod_names(api, namespace, "app=client")[0]
    plain = pod_names(api, namespace, "app=plain")[0]
    mesh.assert_config_accepted(namespace)
    return MeshEnv(mesh, api, namespace, client, plain, run_id, ready)


def _plural(kind: str) -> str:
    # The Istio kinds these suites apply pluralise regularly (virtualservices, destinationrules,
    # peerauthentications, authorizationpolicies); a kind that does not should get its own entry.
    lower = kind.lower()
    return lower[:-1] + "ies" if lower.endswith("y") else lower + "s"


def delete_objects(api: ApiClient, namespace: str, manifests: list[dict[str, Any]]) -> None:
    """Delete namespaced custom objects given as manifests (missing ones are fine)."""
    custom = CustomObjectsApi(api)
    for m in reversed(manifests):
        group, _, version = m["apiVersion"].partition("/")
        try:
            call(f"delete {m['kind']} {m['metadata']['name']}", custom.delete_namespaced_custom_object,
                 group, version, namespace, _plural(m["kind"]), m["metadata"]["name"])  # fmt: skip
        except KubeApiError as e:
            if not e.not_found:
                raise


@contextmanager
def routing(env: MeshEnv, manifests: list[dict[str, Any]]) -> Iterator[None]:
    """Apply routing resources for the block, delete them after (also when the test fails)."""
    try:
        apply_manifests(env.api, manifests, namespace=env.namespace, run_id=env.run_id)
        yield
    finally:
        delete_objects(env.api, env.namespace, manifests)


def converge_batches(
    env: MeshEnv,
    url: str,
    check: Callable[[EchoBatch], str],
    *,
    what: str,
    count: int = 10,
    timeout: float = CONVERGENCE_TIMEOUT,
    consecutive: int = DEFAULT_CONSECUTIVE,
    request_timeout: float = 5.0,
    pod: str | None = None,
    headers: dict[str, str] | None = None,
) -> Converged[EchoBatch]:
    """M6: poll with batches from the client until ``check`` (returns "" when the batch is right,
    else what is wrong) holds ``consecutive`` times in a row; then verify no proxy rejected config.
    """

    def probe() -> Observation[EchoBatch]:
        batch = send(
            env.api, env.namespace, pod or env.client, url, count=count, request_timeout=request_timeout,
            headers=headers,
        )  # fmt: skip
        wrong = check(batch)
        return Observation(not wrong, batch, wrong)

    result = converge(probe, what=what, timeout=timeout, consecutive=consecutive)
    env.mesh.assert_config_accepted(env.namespace)
    return result
