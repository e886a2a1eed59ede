"""Pure parsers for Envoy admin output read from a sidecar (no I/O; unit-tested).

Why: "no proxy rejected config" is read from Envoy's own counters. Every xDS subscription has an
``update_rejected`` counter (``cluster_manager.cds.update_rejected``,
``listener_manager.lds.update_rejected``, ``cluster.<name>.eds.update_rejected``,
``http.<prefix>.rds.<route>.update_rejected``, …); any non-zero value means istiod sent config
this Envoy refused — with upstream Envoy, typically an Istio-only filter — and that the proxy
still runs the previous config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from meshcert.errors import MeshError

REJECTED_SUFFIX = ".update_rejected"


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
