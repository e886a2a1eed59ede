"""Gateway API GAMMA (HTTPRoute attached to a Service) for the portable routing invariants: the
CRDs from the pinned gateway-api module, per-version Services, and HTTPRoute builders.

Why: GAMMA is the mesh-neutral way to say "route this Service's traffic", so M2 (weights) and M3
(matching precedence) written as HTTPRoutes certify any GAMMA mesh with the same oracle as the
Istio-native VirtualServices. The CRDs come from ``sigs.k8s.io/gateway-api`` at the version the
istio wrapper module (toolchain/istio) pins — the version istiod was built against — located with
``go mod download -json`` (a cache lookup once the istio build has fetched it; no network).
istiod watches for the CRDs and starts its Gateway API controllers when they appear
(PILOT_ENABLE_GATEWAY_API defaults to true; no restart needed).

What it is not: no Gateway (north-south) resources; backends are Services, not subsets, so each
version gets its own Service (``server-v1``, ``server-v2``).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import ApiClient

from meshcert.errors import ConfigError, KubeError, ToolchainError
from meshcert.kube.apply import apply_manifests
from meshcert.kube.client import request
from meshcert.mesh.echo import GRPC_PORT, HTTP_PORT, SERVICE_HTTP_PORT, TCP_PORT
from meshcert.mesh.matching import RULE_HEADER, MatchRule, PathType, RouteMatch
from meshcert.mesh.traffic import FilterSpec
from meshcert.toolchain.paths import project_root

GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"
GATEWAY_API = "gateway.networking.k8s.io/v1"
#: `go mod download` of one cached module takes well under a second; 300 s covers a cold fetch.
DOWNLOAD_TIMEOUT = 300.0
#: A CRD is Established within a second or two of creation; 60 s bounds a loaded API server.
ESTABLISHED_TIMEOUT = 60.0


def gateway_api_module_dir(*, root: Path | None = None) -> tuple[Path, str]:
    """The module directory and version of gateway-api as toolchain/istio's go.mod pins it."""
    wrapper = (root or project_root()) / "toolchain" / "istio"
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    try:
        proc = subprocess.run(
            ["go", "mod", "download", "-json", GATEWAY_API_MODULE],
            cwd=wrapper, env=env, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainError("gateway-api CRDs", f"go mod download in {wrapper}: {e}") from e
    try:
        info = json.loads(proc.stdout)
    except ValueError as e:
        raise ToolchainError("gateway-api CRDs", f"go mod download: {proc.stderr.strip()[-300:]}") from e
    if proc.returncode != 0 or "Dir" not in info:
        raise ToolchainError(
            "gateway-api CRDs", f"go mod download: {info.get('Error') or proc.stderr[-300:]}"
        )
    return Path(info["Dir"]), str(info["Version"])


def standard_crds(module_dir: Path) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of the standard channel (other documents — e.g. the
    ValidatingAdmissionPolicy guarding upgrades — are not CRDs and are left out)."""
    crd_dir = module_dir / "config" / "crd" / "standard"
    out: list[dict[str, Any]] = []
    for path in sorted(crd_dir.glob("*.yaml")):
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(str(path), "(document)", f"unreadable CRD file: {e}") from e
        out += [d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"]
    if not out:
        raise ConfigError(str(crd_dir), "(directory)", "no CustomResourceDefinition found")
    return out


def install_gateway_api_crds(api: ApiClient, *, run_id: str, root: Path | None = None) -> str:
    """Apply the standard-channel CRDs (server-side, idempotent) and wait until each is
    Established; returns the bundle version. Cluster-scoped and shared: never deleted by a test."""
    module_dir, version = gateway_api_module_dir(root=root)
    crds = standard_crds(module_dir)
    apply_manifests(api, crds, namespace="default", run_id=run_id, allow_cluster_scoped=True)
    deadline = time.monotonic() + ESTABLISHED_TIMEOUT
    pending = {c["metadata"]["name"] for c in crds}
    while pending:
        for name in sorted(pending):
            crd = request(api, "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
                          what=f"get CRD {name}")[1]  # fmt: skip
            conds = (crd.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conds):
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            raise KubeError(
                f"Gateway API CRDs not Established after {ESTABLISHED_TIMEOUT:.0f}s: {sorted(pending)}"
            )
        if pending:
            time.sleep(1)
    return version


def version_services(service: str, versions: Sequence[str]) -> list[dict[str, Any]]:
    """One Service per version (``<service>-<version>``): GAMMA backendRefs name Services."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{service}-{v}", "labels": {"app": service}},
            "spec": {
                "selector": {"app": service, "version": v},
                "ports": [
                    {
                        "name": "http",
                        "port": SERVICE_HTTP_PORT,
                        "targetPort": HTTP_PORT,
                        "appProtocol": "http",
                    },
                    {"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT, "appProtocol": "grpc"},
                    {"name": "tcp", "port": TCP_PORT, "targetPort": TCP_PORT, "appProtocol": "tcp"},
                ],
            },
        }
        for v in versions
    ]


def _route(
    name: str,
    service: str,
    rules: list[dict[str, Any]],
    *,
    kind: str = "HTTPRoute",
    port: int = SERVICE_HTTP_PORT,
) -> dict[str, Any]:
    return {
        "apiVersion": GATEWAY_API,
        "kind": kind,
        "metadata": {"name": name},
        "spec": {
            # GAMMA: the parent is the Service itself (core group, kind Service), on one of its ports.
            "parentRefs": [{"group": "", "kind": "Service", "name": service, "port": port}],
            "rules": rules,
        },
    }


def _backend(
    service: str, version: str, weight: int | None = None, *, port: int = SERVICE_HTTP_PORT
) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": f"{service}-{version}", "port": port}
    if weight is not None:
        ref["weight"] = weight
    return ref


def _check_weights(where: str, weights: Mapping[str, int]) -> None:
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ConfigError(where, "weights", f"must be >= 0 with a positive sum, got {dict(weights)}")


def weighted_http_route(service: str, weights: Mapping[str, int], *, name: str = "") -> dict[str, Any]:
    """M2 as GAMMA: one rule splitting across the version Services (weight 0 kept on purpose)."""
    _check_weights("weighted_http_route", weights)
    rule = {"backendRefs": [_backend(service, v, w) for v, w in weights.items()]}
    return _route(name or f"{service}-weights", service, [rule])


def weighted_grpc_route(service: str, weights: Mapping[str, int], *, name: str = "") -> dict[str, Any]:
    """M2 for gRPC as GAMMA: a GRPCRoute on the Service's gRPC port splitting across versions."""
    _check_weights("weighted_grpc_route", weights)
    rule = {"backendRefs": [_backend(service, v, w, port=GRPC_PORT) for v, w in weights.items()]}
    return _route(name or f"{service}-grpc-weights", service, [rule], kind="GRPCRoute", port=GRPC_PORT)


def _gamma_match(m: RouteMatch) -> dict[str, Any]:
    out: dict[str, Any] = {"path": {"type": m.path_type.value, "value": m.path}}
    if m.method:
        out["method"] = m.method
    if m.headers:
        out["headers"] = [{"type": "Exact", "name": k, "value": v} for k, v in m.headers]
    if m.query:
        out["queryParams"] = [{"type": "Exact", "name": k, "value": v} for k, v in m.query]
    return out


def matching_http_route(
    service: str, rules: Sequence[MatchRule], *, default: str | None = None, name: str = ""
) -> dict[str, Any]:
    """M3 as GAMMA: the rules in *reverse* order (lowest precedence first), so only the mesh's
    own precedence sorting can route correctly; each rule tags requests with its name."""
    out = []
    for rule in reversed(rules):
        if any(m.path_type not in (PathType.EXACT, PathType.PREFIX) for m in rule.matches):
            raise ConfigError("matching_http_route", "matches", f"rule {rule.name}: unsupported path type")
        out.append(_tagged(service, rule.backend, rule.name, [_gamma_match(m) for m in rule.matches]))
    if default is not None:
        out.insert(0, _tagged(service, default, "default", [{"path": {"type": "PathPrefix", "value": "/"}}]))
    return _route(name or f"{service}-matching", service, out)


def _tagged(service: str, version: str, rule: str, matches: list[dict[str, Any]]) -> dict[str, Any]:
    header = {
        "type": "RequestHeaderModifier",
        "requestHeaderModifier": {"set": [{"name": RULE_HEADER, "value": rule}]},
    }
    return {"matches": matches, "filters": [header], "backendRefs": [_backend(service, version)]}


def _self(service: str) -> dict[str, Any]:
    """The parent Service itself as the backend (GAMMA allows a route to send to its parent)."""
    return {"name": service, "port": SERVICE_HTTP_PORT}


def filter_http_route(service: str, spec: FilterSpec, *, name: str = "") -> dict[str, Any]:
    """M4 as GAMMA, the same `FilterSpec` as `meshcert.mesh.traffic.filter_route`: redirects
    answered by the proxy (RequestRedirect, ReplaceFullPath); the ``rewrite_from`` prefix replaced
    (URLRewrite, ReplacePrefixMatch); every other path gets the RequestHeaderModifier. Gateway API
    orders the rules itself: exact paths, then the longest prefix."""
    rules: list[dict[str, Any]] = []
    for r in spec.redirects:
        if r.status not in (301, 302):  # the standard channel's enum for statusCode
            raise ConfigError(
                "filter_http_route", "redirects", f"status {r.status}: HTTPRoute allows 301, 302"
            )
        full_path = {"type": "ReplaceFullPath", "replaceFullPath": r.to}
        redirect: dict[str, Any] = {"statusCode": r.status, "path": full_path}
        if r.host:
            redirect["hostname"] = r.host
        rules.append({"matches": [{"path": {"type": "Exact", "value": r.path}}],
                      "filters": [{"type": "RequestRedirect", "requestRedirect": redirect}]})  # fmt: skip
    rewrite = {"type": "ReplacePrefixMatch", "replacePrefixMatch": spec.rewrite_to}
    rules.append({"matches": [{"path": {"type": "PathPrefix", "value": spec.rewrite_from}}],
                  "filters": [{"type": "URLRewrite", "urlRewrite": {"path": rewrite}}],
                  "backendRefs": [_self(service)]})  # fmt: skip
    modifier = {
        "add": [{"name": k, "value": v} for k, v in spec.add.items()],
        "set": [{"name": k, "value": v} for k, v in spec.set_.items()],
        "remove": list(spec.remove),
    }
    rules.append({"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                  "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": modifier}],
                  "backendRefs": [_self(service)]})  # fmt: skip
    return _route(name or f"{service}-filters", service, rules)


def mirror_http_route(
    service: str, *, version: str, mirror_service: str, percent: int, name: str = ""
) -> dict[str, Any]:
    """M11 as GAMMA: everything to ``service-version``; ``percent`` % copied (RequestMirror,
    whose ``percent`` is in the standard channel since Gateway API v1.3) to ``mirror_service``."""
    if not 0 <= percent <= 100:
        raise ConfigError("mirror_http_route", "percent", f"must be within [0, 100], got {percent}")
    mirror = {"backendRef": {"name": mirror_service, "port": SERVICE_HTTP_PORT}, "percent": percent}
    rule = {
        "filters": [{"type": "RequestMirror", "requestMirror": mirror}],
        "backendRefs": [_backend(service, version)],
    }
    return _route(name or f"{service}-mirror", service, [rule])


def route_conditions(
    api: ApiClient, namespace: str, name: str, *, plural: str = "httproutes"
) -> list[tuple[str, str, str]]:
    """(type, status, reason) of every parent condition the mesh wrote on route ``name``."""
    obj = request(api, "GET", f"/apis/{GATEWAY_API}/namespaces/{namespace}/{plural}/{name}",
                  what=f"get {plural} {namespace}/{name}")[1]  # fmt: skip
    parents = (obj.get("status") or {}).get("parents") or []
    return [(str(c.get("type")), str(c.get("status")), str(c.get("reason"))) for p in parents
            for c in p.get("conditions") or []]  # fmt: skip
