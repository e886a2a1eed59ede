"""Pod networking for kind clusters built offline: ptp + host-local + portmap, plus routes.

kind's default CNI (kindnetd) is not a tagged Go module, so it cannot be built from a pin. What
kindnetd does for a single docker network is small, and Debian's containernetworking-plugins
cover it: each node gets a conflist whose host-local range is the node's podCIDR (allocated by
kube-controller-manager), and a route to every other node's podCIDR via that node's IP on the
shared docker network. No encapsulation, no masquerade between pods: pods see each other's
real IPs, which the endpoint and mesh checks depend on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

CONFLIST_PATH = "/etc/cni/net.d/10-meshcert.conflist"
#: The docker bridge MTU; ptp adds no encapsulation, so pods use it unchanged.
MTU = 1500


@dataclass(frozen=True)
class NodeNet:
    name: str  # node (and container) name
    ip: str  # InternalIP on the docker network
    pod_cidr: str


def conflist(node: NodeNet) -> str:
    doc = {
        "cniVersion": "1.0.0",
        "name": "meshcert",
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": False,
                "mtu": MTU,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": node.pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def route_commands(node: NodeNet, peers: list[NodeNet]) -> list[list[str]]:
    """`ip route replace` for every other node's podCIDR (idempotent, safe to rerun)."""
    return [
        ["ip", "route", "replace", peer.pod_cidr, "via", peer.ip] for peer in peers if peer.name != node.name
    ]
