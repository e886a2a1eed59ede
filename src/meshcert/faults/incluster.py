"""Toxiproxy inside the cluster: a Deployment + NodePort Service fronting a target Service.

Faults between two pods must sit on the pod network, not on the host: clients in the cluster
call the proxy Service (``toxiproxy.<ns>:<listen_port>``) instead of the target, and the proxy
forwards to ``upstream`` (``svc:port``, resolved by CoreDNS inside the pod). The harness reaches
the proxy's REST API (8474) through the Service's NodePort on a node's InternalIP: kind node IPs
sit on our own docker network and are reachable from the host, with no port-forward tunnel to
keep alive (a tunnel through the API server would die exactly when a fault hits the control plane).

Image: meshcert/toxiproxy from the node image (imagePullPolicy Never; nothing is pulled).
Rollback on exit: every toxic is removed and the proxy list read back to prove it (C1), then
the Deployment and Service are deleted. After a SIGKILL they stay in the run's namespace, which
carries the run label, so `meshcert gc` deletes them with it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api

from meshcert.errors import FaultError, MeshcertError
from meshcert.faults.toxiproxy import ProxyConfig, ToxiproxyAPIError, ToxiproxyClient
from meshcert.kube.apply import apply_manifests
from meshcert.kube.client import call
from meshcert.kube.manifests import deployment, service
from meshcert.kube.waits import wait_for_deployment_available
from meshcert.toolchain.images import TOXIPROXY_IMAGE

#: Toxiproxy's REST API port (cmd/server default).
API_PORT = 8474
#: Port the proxy listens on inside the pod for the fronted Service; any free port above 1024.
LISTEN_PORT = 18080
#: Image already in the node's containerd: the pod is Ready in a few seconds; 120 s for a busy host.
READY_TIMEOUT = 120.0
#: The NodePort is programmed by kube-proxy shortly after the Service exists; poll up to 60 s.
API_REACH_TIMEOUT = 60.0


@dataclass(frozen=True)
class ProxyService:
    """How clients in the cluster reach the target through the proxy."""

    name: str
    namespace: str
    port: int
    upstream: str

    @property
    def host(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def manifests(name: str, *, listen_port: int) -> list[dict[str, Any]]:
    """The Deployment and NodePort Service (API and proxy ports) of one in-cluster Toxiproxy."""
    labels = {"app": name}
    container = {
        "name": "toxiproxy",
        "image": TOXIPROXY_IMAGE,
        "imagePullPolicy": "Never",
        "args": ["-host=0.0.0.0", f"-port={API_PORT}"],
        "ports": [
            {"name": "api", "containerPort": API_PORT},
            {"name": "proxy", "containerPort": listen_port},
        ],
        "readinessProbe": {"httpGet": {"path": "/version", "port": "api"}, "periodSeconds": 1},
    }
    ports = [
        {"name": "api", "port": API_PORT, "targetPort": "api"},
        {"name": "proxy", "port": listen_port, "targetPort": "proxy"},
    ]
    return [deployment(name, labels, [container]), service(name, labels, ports, type_="NodePort")]


def _api_url(api: ApiClient, namespace: str, name: str) -> str:
    core = CoreV1Api(api)
    svc = call(f"get service {namespace}/{name}", core.read_namespaced_service, name, namespace)
    ports = (svc.spec.ports if svc.spec else None) or []
    node_port = next((p.node_port for p in ports if p.name == "api"), None)
    nodes = call("list nodes", core.list_node).items
    ips = [
        a.address
        for n in nodes
        for a in (n.status.addresses if n.status else None) or []
        if a.type == "InternalIP"
    ]
    if node_port is None or not ips:
        raise FaultError(f"service {namespace}/{name}: no NodePort for 'api' or no node InternalIP")
    ip = ips[0]
    return f"http://{ip}:{node_port}"


def _wait_api(client: ToxiproxyClient, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.version()
            return
        except ToxiproxyAPIError as e:
            if time.monotonic() > deadline:
                raise FaultError(f"in-cluster toxiproxy API {client.base_url} unreachable: {e}") from e
        time.sleep(0.5)


def _clear(client: ToxiproxyClient) -> None:
    """Reset (enable all proxies, drop all toxics) and read back to prove nothing is left."""
    client.reset()
    left = {
        name: [t.key for t in p.toxics] for name, p in client.proxies().items() if p.toxics or not p.enabled
    }
    if left:
        raise FaultError(f"toxics or disabled proxies remain after reset: {left}")


@contextlib.contextmanager
def in_cluster_toxiproxy(
    api: ApiClient,
    namespace: str,
    *,
    upstream: str,
    run_id: str,
    name: str = "toxiproxy",
    listen_port: int = LISTEN_PORT,
    ready_timeout: float = READY_TIMEOUT,
) -> Iterator[tuple[ToxiproxyClient, ProxyService]]:
    """Deploy Toxiproxy fronting ``upstream`` (``svc:port``); yield its API client and Service."""
    if ":" not in upstream:
        raise FaultError(f"upstream must be 'service:port', got {upstream!r}")
    try:
        apply_manifests(api, manifests(name, listen_port=listen_port), namespace=namespace, run_id=run_id)
        wait_for_deployment_available(api, namespace, name, timeout=ready_timeout)
    except MeshcertError as e:
        raise FaultError(f"deploying in-cluster toxiproxy in {namespace}: {e}") from e
    client = ToxiproxyClient(_api_url(api, namespace, name))
    body_error: BaseException | None = None
    try:
        _wait_api(client, timeout=API_REACH_TIMEOUT)
        client.create_proxy(ProxyConfig(name="upstream", listen=f"0.0.0.0:{listen_port}", upstream=upstream))
        yield client, ProxyService(name, namespace, listen_port, upstream)
    except BaseException as e:
        body_error = e
        raise
    finally:
        try:
            _clear(client)
        except FaultError as e:
            if body_error is None:
                raise
            body_error.add_note(f"meshcert: clearing in-cluster toxics ALSO failed: {e!r}")
        finally:
            client.close()
            _delete(api, namespace, name)


def _delete(api: ApiClient, namespace: str, name: str) -> None:
    from kubernetes.client import AppsV1Api

    with contextlib.suppress(MeshcertError):
        call(f"delete deployment {name}", AppsV1Api(api).delete_namespaced_deployment, name, namespace)
    with contextlib.suppress(MeshcertError):
        call(f"delete service {name}", CoreV1Api(api).delete_namespaced_service, name, namespace)
