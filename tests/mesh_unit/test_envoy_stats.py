"""Envoy admin parsers: rejected-config counters and the proxy's endpoint view."""

from __future__ import annotations

import json

import pytest

from meshcert.errors import MeshError
from meshcert.mesh.envoy_stats import (
    ClusterEndpoint,
    dump_clusters,
    parse_clusters_json,
    parse_stats,
    rejected_updates,
    upstream_idle_timeout,
)

_STATS = """\
cluster_manager.cds.update_rejected: 0
listener_manager.lds.update_rejected: 2
cluster.outbound|80||server.ns.svc.cluster.local.eds.update_rejected: 1
http.outbound_0.0.0.0_80.rds.80.update_rejected: 0
server.version_text: "1.40.0"
cluster.x.upstream_rq_time: P0(nan,1) P25(nan,2)
"""


def test_only_nonzero_rejections_are_reported() -> None:
    assert rejected_updates(parse_stats(_STATS)) == {
        "listener_manager.lds.update_rejected": 2,
        "cluster.outbound|80||server.ns.svc.cluster.local.eds.update_rejected": 1,
    }


def test_non_integer_lines_are_skipped() -> None:
    stats = parse_stats(_STATS)
    assert "server.version_text" not in stats
    assert "cluster.x.upstream_rq_time" not in stats


def test_no_rejections_on_clean_stats() -> None:
    assert rejected_updates(parse_stats("cluster_manager.cds.update_rejected: 0\n")) == {}


def _host(addr: str, port: int, health: dict[str, object]) -> dict[str, object]:
    return {"address": {"socket_address": {"address": addr, "port_value": port}}, "health_status": health}


def test_clusters_json_health() -> None:
    doc = {
        "cluster_statuses": [
            {
                "name": "outbound|80||server.ns.svc.cluster.local",
                "host_statuses": [
                    _host("10.244.0.5", 8080, {"eds_health_status": "HEALTHY"}),
                    _host("10.244.0.6", 8080, {"eds_health_status": "UNHEALTHY"}),
                    _host("10.244.0.7", 8080, {"failed_outlier_check": True}),
                    {"address": {"pipe": {"path": "/sock"}}},
                ],
            }
        ]
    }
    c = "outbound|80||server.ns.svc.cluster.local"
    assert parse_clusters_json(json.dumps(doc)) == [
        ClusterEndpoint(c, "10.244.0.5", 8080, True),
        ClusterEndpoint(c, "10.244.0.6", 8080, False),
        ClusterEndpoint(c, "10.244.0.7", 8080, False),
    ]


def test_clusters_json_garbage_is_a_mesh_error() -> None:
    with pytest.raises(MeshError, match="not JSON"):
        parse_clusters_json("<html>")


def test_upstream_idle_timeout_of_a_cluster() -> None:
    opts = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "common_http_protocol_options": {"idle_timeout": "3s"},
            "explicit_http_config": {"http_protocol_options": {}},
        }
    }
    dump = {
        "configs": [
            {"cluster": {"name": "inbound|8080||", "typed_extension_protocol_options": opts}},
            {"cluster": {"name": "inbound|9090||"}},
        ]
    }
    clusters = {c["name"]: upstream_idle_timeout(c) for c in dump_clusters(json.dumps(dump))}
    assert clusters == {"inbound|8080||": 3.0, "inbound|9090||": None}  # None: Envoy's 1 h default


def test_a_duration_that_is_not_seconds_is_a_mesh_error() -> None:
    bad = {"typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "common_http_protocol_options": {"idle_timeout": "3m"}}}}  # fmt: skip
    with pytest.raises(MeshError, match="not a duration"):
        upstream_idle_timeout(bad)
