"""Pod network config: one host-local range per node, a route to every *other* node's range."""

from __future__ import annotations

import json

from meshcert.cluster.cni import NodeNet, conflist, route_commands

NODES = [NodeNet("cp", "172.18.0.2", "10.244.0.0/24"), NodeNet("w1", "172.18.0.3", "10.244.1.0/24"),
         NodeNet("w2", "172.18.0.4", "10.244.2.0/24")]  # fmt: skip


def test_conflist_uses_the_nodes_pod_cidr() -> None:
    doc = json.loads(conflist(NODES[1]))
    ptp, portmap = doc["plugins"]
    assert ptp["type"] == "ptp" and ptp["ipMasq"] is False
    assert ptp["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]
    assert portmap["capabilities"] == {"portMappings": True}


def test_routes_cover_exactly_the_other_nodes() -> None:
    cmds = route_commands(NODES[0], NODES)
    assert cmds == [
        ["ip", "route", "replace", "10.244.1.0/24", "via", "172.18.0.3"],
        ["ip", "route", "replace", "10.244.2.0/24", "via", "172.18.0.4"],
    ]
    assert route_commands(NodeNet("solo", "172.18.0.9", "10.244.9.0/24"), [NodeNet("solo", "x", "y")]) == []
