"""Pure parsers for Envoy admin output read from a sidecar (no I/O; unit-tested).

Why: what a proxy runs is read from Envoy itself. "No proxy rejected config" is read from its
own counters: every xDS subscription has an ``update_rejected`` counter
(``cluster_manager.cds.update_rejected``, ``listener_manager.lds.update_rejected``,
``cluster.<name>.eds.update_rejected``, ``http.<prefix>.rds.<route>.update_rejected``, …); any
non-zero value means istiod sent config this Envoy refused — with upstream Envoy, typically an
Istio-only filter — and that the proxy still runs the previous config. Endpoints and cluster
settings (an upstream idle timeout) are read from ``/clusters`` and ``/config_dump``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from meshcert.errors import MeshError

REJECTED_SUFFIX = ".update_rejected"
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def parse_stats(text: str) -> dict[str, int]:
    """Counters and gauges of Envoy's plain-text ``/stats`` (``name: value`` per line).

    Histogram lines (``P0(...)``) and text readouts are skipped: they are not integers.
    """
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.rpartition(": ")
        if not sep:
            continue
        try:
            out[name.strip()] = int(value.strip())
        except ValueError:
            continue
    return out


def rejected_updates(stats: dict[str, int]) -> dict[str, int]:
    """The non-zero ``*.update_rejected`` counters."""
    return {k: v for k, v in stats.items() if k.endswith(REJECTED_SUFFIX) and v}


@dataclass(frozen=True)
class ClusterEndpoint:
    cluster: str
    address: str
    port: int
    healthy: bool


def parse_clusters_json(text: str) -> list[ClusterEndpoint]:
    """Endpoints from Envoy's ``/clusters?format=json`` (``cluster_statuses[].host_statuses[]``).

    A host is healthy when its ``health_status.eds_health_status`` is HEALTHY (or absent, which
    Envoy omits for static hosts) and no failed-check flag is set.
    """
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise MeshError(f"Envoy /clusters?format=json is not JSON: {text[:120]!r}") from e
    out: list[ClusterEndpoint] = []
    for cluster in doc.get("cluster_statuses") or []:
        name = str(cluster.get("name", ""))
        for host in cluster.get("host_statuses") or []:
            sock = (host.get("address") or {}).get("socket_address") or {}
            if "address" not in sock:
                continue  # pipe or internal addresses: not a pod endpoint
            health = host.get("health_status") or {}
            failed = any(v is True for k, v in health.items() if k.startswith("failed"))
            eds = health.get("eds_health_status", "HEALTHY")
            out.append(ClusterEndpoint(name, str(sock["address"]), int(sock.get("port_value", 0)),
                                       eds == "HEALTHY" and not failed))  # fmt: skip
    return out


def _clusters(doc: object) -> Iterable[dict[str, Any]]:
    """Every ``Cluster`` object in a config dump, whatever the nesting (full dump or
    ``?resource=dynamic_active_clusters``)."""
    if isinstance(doc, dict):
        c = doc.get("cluster")
        if isinstance(c, dict) and "name" in c:
            yield c
        for v in doc.values():
            yield from _clusters(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _clusters(v)


def dump_clusters(config_dump: str) -> list[dict[str, Any]]:
    """The active ``Cluster`` objects of Envoy's ``/config_dump`` JSON."""
    try:
        doc = json.loads(config_dump)
    except ValueError as e:
        raise MeshError(f"Envoy /config_dump is not JSON: {config_dump[:120]!r}") from e
    return list(_clusters(doc))


def cluster_config(config_dump: str, cluster: str) -> dict[str, Any] | None:
    """The active config of ``cluster`` from Envoy's ``/config_dump`` JSON (None if absent)."""
    return next((c for c in dump_clusters(config_dump) if c.get("name") == cluster), None)


def _duration_seconds(text: str) -> float:
    """A protobuf JSON Duration ("3s", "0.5s", "3600s") in seconds."""
    if not text.endswith("s"):
        raise MeshError(f"Envoy config_dump: not a duration: {text!r}")
    return float(text[:-1])


def upstream_idle_timeout(cluster: dict[str, Any]) -> float | None:
    """A cluster's idle timeout for its upstream connections, in seconds (None: unset, 1 h)."""
    options = (cluster.get("typed_extension_protocol_options") or {}).get(_HTTP_OPTIONS) or {}
    idle = (options.get("common_http_protocol_options") or {}).get("idle_timeout")
    return _duration_seconds(str(idle)) if idle is not None else None
