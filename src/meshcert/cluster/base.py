"""The one Cluster protocol every provider (kind, kwok, existing) implements.

Suites and the pytest plugin see only this: a kubeconfig to talk to, what the target can do
(capabilities decide which tests skip, with a reason), and lifecycle calls. Providers differ in
how they create nodes, never in what they promise here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable


class Capability(StrEnum):
    """What a target cluster can do; markers on tests map to these."""

    DATAPLANE = "dataplane"  # pods really run, Services carry traffic (not kwok)
    MULTI_NODE = "multi-node"  # at least two schedulable worker nodes
    DISRUPTIVE = "disruptive"  # we own the cluster: nodes may be stopped, tainted, partitioned
    NODE_CONTAINERS = "node-containers"  # nodes are Docker containers we can exec into / pause


@dataclass(frozen=True)
class ClusterInfo:
    """What a provider reports about a running cluster."""

    name: str
    provider: str
    kubeconfig: Path
    kubernetes_version: str
    nodes: tuple[str, ...]
    capabilities: frozenset[Capability] = field(default_factory=frozenset)
    run_id: str | None = None


@runtime_checkable
class Cluster(Protocol):
    """Lifecycle of one target cluster. ``up`` returns only when the cluster is usable."""

    @property
    def name(self) -> str: ...

    def up(self) -> ClusterInfo:
        """Create (or attach to) the cluster; return when nodes are Ready and DNS answers."""
        ...

    def down(self) -> bool:
        """Delete everything ``up`` created. Idempotent; a no-op for clusters it did not create.
        Returns whether there was anything to delete (gc reports only what it removed)."""
        ...

    def status(self) -> ClusterInfo | None:
        """The cluster as it is now, or None if it does not exist."""
        ...

    def kubeconfig(self) -> Path:
        """Path of a kubeconfig for this cluster (written by ``up``)."""
        ...
