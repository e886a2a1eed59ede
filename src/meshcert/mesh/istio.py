"""The reference mesh: Istio in sidecar mode on upstream Envoy, installed offline.

Why this shape: istioctl carries its Helm charts embedded, so `istioctl install` needs no network;
the images it references are ours (mesh_images.py) under the hub ``meshcert`` and are never pulled
(imagePullPolicy Never). Images reach the nodes with `kind load image-archive` into the running
cluster rather than being baked into the node image: the node image is shared by every suite and
rebuilding it (minutes, several hundred MB) for each mesh change would slow everyone; loading
~300 MB of archives takes seconds and keeps mesh images and node image versioned independently.
The cost: a cluster provider other than kind must get the images another way (pre-loaded).

Upstream Envoy lacks Istio's own filters, so istiod is told not to emit them: the ALPN filter
(PILOT_ENABLE_ALPN_FILTER=false), metadata exchange (PILOT_ENABLE_METADATA_EXCHANGE=false) and
the stats filter (telemetry disabled). Whatever slips through shows up as Envoy
``update_rejected`` counters, which `assert_config_accepted` checks after install and after
every routing change.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, V1Pod

from meshcert.errors import KubeError, MeshError
from meshcert.kube.client import KubeApiError, call
from meshcert.kube.exec import exec_in_pod
from meshcert.kube.waits import pod_terminating
from meshcert.mesh.adapter import Feature, InstallResult, ProxyEndpoint, Support
from meshcert.mesh.envoy_stats import (
    dump_clusters,
    parse_clusters_json,
    parse_stats,
    rejected_updates,
    upstream_idle_timeout,
)
from meshcert.toolchain.gobuild import find_binary
from meshcert.toolchain.mesh_images import HUB, TAG, MeshImages
from meshcert.toolchain.pins import ENVOY_VERSION, ISTIO_VERSION

ISTIO_NAMESPACE = "istio-system"
PROXY_CONTAINER = "istio-proxy"
INJECTION_LABEL = "istio-injection"
#: istiod's cold start here (2 shared cores): image unpack ~5 s, CA key generation and the
#: first full push ~10-30 s. 300 s is istioctl's own default readiness timeout.
READY_TIMEOUT = 300.0
#: One `kind load image-archive` copies and imports ~100-150 MB; 300 s covers a loaded host.
LOAD_TIMEOUT = 300.0

#: Features this install does not provide, with the reason a skipped test reports.
_UNSUPPORTED: dict[Feature, str] = {
    Feature.AMBIENT: "reference mesh is installed in sidecar mode only (no ztunnel image is built)",
    Feature.WASM: "WasmPlugin needs Istio's proxy build; the reference mesh runs upstream Envoy",
}


def operator_spec(*, hub: str = HUB, tag: str = TAG) -> dict[str, Any]:
    """The IstioOperator istioctl installs from its embedded charts (pure; unit-tested).

    ``minimal`` is istiod only (no gateways, no CNI, no ztunnel): sidecar mode. Resource requests
    are lowered from the chart defaults (istiod asks 500m CPU / 2 GiB) because the suites share
    two cores with other clusters; requests only affect scheduling here, not limits.
    """
    return {
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "spec": {
            "profile": "minimal",
            "hub": hub,
            "tag": tag,
            "meshConfig": {
                "enableTracing": False,
                # Apps start after the proxy is ready, so the first request of a test never races
                # the sidecar's first config (a failure that would be the harness's, not the mesh's).
                "defaultConfig": {"holdApplicationUntilProxyStarts": True},
            },
            "values": {
                "global": {
                    "imagePullPolicy": "Never",
                    "proxy": {"resources": {"requests": {"cpu": "10m", "memory": "40Mi"}}},
                },
                "pilot": {
                    "autoscaleEnabled": False,
                    "replicaCount": 1,
                    "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
                    "env": {
                        "PILOT_ENABLE_ALPN_FILTER": "false",
                        "PILOT_ENABLE_METADATA_EXCHANGE": "false",
                    },
                },
                "telemetry": {"enabled": False},
            },
        },
    }


def has_sidecar(pod: V1Pod) -> bool:
    """Whether ``pod`` carries an istio-proxy sidecar (a native sidecar is an init container)."""
    spec = pod.spec
    if spec is None:
        return False
    names = [c.name for c in (spec.containers or [])] + [c.name for c in (spec.init_containers or [])]
    return PROXY_CONTAINER in names


@dataclass
class IstioMesh:
    """MeshAdapter for Istio on a kind cluster (``cluster`` is the kind cluster name)."""

    api: ApiClient
    kubeconfig: Path
    cache_dir: Path
    cluster: str

    @property
    def implementation(self) -> str:
        return f"istio {ISTIO_VERSION} (sidecar, upstream envoy {ENVOY_VERSION})"

    def _tool(self, step: str, argv: list[str], *, timeout: float) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise MeshError(f"{step}: {e}") from e
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            raise MeshError(f"{step} failed (exit {proc.returncode}): {tail}")
        return proc.stdout

    def load_images(self, images: MeshImages) -> float:
        """`kind load image-archive` every mesh archive into every node; returns seconds taken."""
        kind = str(find_binary(self.cache_dir, "kind"))
        start = time.monotonic()
        for name, archive in sorted(images.archives.items()):
            argv = [kind, "load", "image-archive", str(archive), "--name", self.cluster]
            self._tool(f"kind load {name}", argv, timeout=LOAD_TIMEOUT)
        return time.monotonic() - start

    def install(self, images: MeshImages | None = None) -> InstallResult:
        """Load images (when given), `istioctl install`, wait for istiod, check no rejections."""
        loaded = self.load_images(images) if images is not None else 0.0
        istioctl = str(find_binary(self.cache_dir, "istioctl"))
        start = time.monotonic()
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
            json.dump(operator_spec(), fh)  # JSON is YAML; no YAML writer dependency needed
            spec_path = fh.name
        try:
            self._tool(
                "istioctl install",
                [istioctl, "install", "-y", "-f", spec_path, "--kubeconfig", str(self.kubeconfig),
                 "--readiness-timeout", f"{int(READY_TIMEOUT)}s"],
                timeout=READY_TIMEOUT + 60,
            )  # fmt: skip
        finally:
            Path(spec_path).unlink(missing_ok=True)
        self.wait_istiod_ready(timeout=READY_TIMEOUT)
        return InstallResult(self.implementation, ISTIO_VERSION, loaded, time.monotonic() - start)

    def wait_istiod_ready(self, *, timeout: float) -> None:
        apps = AppsV1Api(self.api)
        deadline = time.monotonic() + timeout
        last = "(not found)"
        while time.monotonic() < deadline:
            try:
                dep = call("get istiod", apps.read_namespaced_deployment, "istiod", ISTIO_NAMESPACE)
            except KubeError as e:
                last = str(e)
            else:
                ready = (dep.status.ready_replicas if dep.status else 0) or 0
                if ready >= 1:
                    return
                last = f"readyReplicas={ready}"
            time.sleep(2)
        raise MeshError(f"istiod not Ready after {timeout:.0f}s; last observed: {last}")

    def uninstall(self) -> None:
        istioctl = str(find_binary(self.cache_dir, "istioctl"))
        argv = [istioctl, "uninstall", "--purge", "-y", "--kubeconfig", str(self.kubeconfig)]
        self._tool("istioctl uninstall", argv, timeout=READY_TIMEOUT)
        core = CoreV1Api(self.api)
        try:
            call("delete istio-system", core.delete_namespace, ISTIO_NAMESPACE)
        except KubeError as e:
            if "404" not in str(e) and "NotFound" not in str(e):
                raise MeshError(f"delete namespace {ISTIO_NAMESPACE}: {e}") from e

    def status(self) -> str:
        """istiod readiness and the version istioctl reports, for `meshcert mesh status`."""
        apps = AppsV1Api(self.api)
        try:
            dep = call("get istiod", apps.read_namespaced_deployment, "istiod", ISTIO_NAMESPACE)
        except KubeError as e:
            return f"istiod: not installed ({e})"
        ready = (dep.status.ready_replicas if dep.status else 0) or 0
        pod_spec = dep.spec.template.spec if dep.spec else None
        image = pod_spec.containers[0].image if pod_spec else "?"
        return f"istiod: {ready} ready, image {image}; {self.implementation}"

    def inject_namespace(self, namespace: str) -> None:
        core = CoreV1Api(self.api)
        body = {"metadata": {"labels": {INJECTION_LABEL: "enabled"}}}
        call(f"label namespace {namespace}", core.patch_namespace, namespace, body)

    def support(self, feature: Feature) -> Support:
        reason = _UNSUPPORTED.get(feature)
        return Support(feature, reason is None, reason or "")

    def proxy_request(self, namespace: str, pod: str, path: str) -> str:
        """GET an Envoy admin path through pilot-agent inside the sidecar (no port-forward)."""
        res = exec_in_pod(
            self.api, namespace, pod, ["pilot-agent", "request", "GET", path], container=PROXY_CONTAINER
        )
        if not res.ok:
            raise MeshError(f"pilot-agent request GET {path} in {namespace}/{pod}: exit {res.exit_code}: "
                            f"{res.stderr.strip()[-300:]}")  # fmt: skip
        return res.stdout

    def rejected(self, namespace: str, pod: str) -> dict[str, int]:
        return rejected_updates(
            parse_stats(self.proxy_request(namespace, pod, "stats?filter=update_rejected"))
        )

    def inbound_idle_timeouts(self, namespace: str, pod: str) -> dict[str, float | None]:
        """Idle timeout of each inbound cluster (sidecar → app) of ``pod``'s proxy, in seconds."""
        dump = self.proxy_request(namespace, pod, "config_dump?resource=dynamic_active_clusters")
        return {
            str(c["name"]): upstream_idle_timeout(c)
            for c in dump_clusters(dump)
            if str(c["name"]).startswith("inbound|")
        }

    def assert_config_accepted(self, namespace: str) -> None:
        core = CoreV1Api(self.api)
        pods = call(f"list pods in {namespace}", core.list_namespaced_pod, namespace).items
        bad: dict[str, dict[str, int]] = {}
        for pod in pods:
            running = pod.status is not None and pod.status.phase == "Running"
            name = pod.metadata.name if pod.metadata else None
            # A terminating pod (scaled down a moment ago) is Running until its containers exit;
            # its proxy no longer serves, and an exec into its exited sidecar fails.
            if running and not pod_terminating(pod) and name and has_sidecar(pod):
                try:
                    rejected = self.rejected(namespace, name)
                except (MeshError, KubeApiError):
                    # The list may predate a scale-down: the exec then dies with the sidecar
                    # (exit 137). Only a pod that is still there and not terminating counts.
                    if self._leaving(core, namespace, name):
                        continue
                    raise
                if rejected:
                    bad[name] = rejected
        if bad:
            raise MeshError(f"proxies rejected config in {namespace}: {bad}")

    @staticmethod
    def _leaving(core: CoreV1Api, namespace: str, name: str) -> bool:
        """Is pod ``name`` gone or terminating (read now, after an exec into it failed)?"""
        try:
            pod = call(f"read pod {namespace}/{name}", core.read_namespaced_pod, name, namespace)
        except KubeApiError as e:
            if e.not_found:
                return True
            raise
        return pod_terminating(pod)

    def endpoint_view(self, namespace: str, pod: str, service_host: str, port: int) -> list[ProxyEndpoint]:
        cluster = f"outbound|{port}||{service_host}"
        text = self.proxy_request(namespace, pod, "clusters?format=json")
        return [
            ProxyEndpoint(e.address, e.port, e.healthy)
            for e in parse_clusters_json(text)
            if e.cluster == cluster
        ]
