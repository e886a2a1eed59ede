"""Terse constructors for views used by the unit tests (variants of the recorded objects)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from meshcert.invariants.placement_spec import (
    Affinity,
    PodAffinityTerm,
    Taint,
    Toleration,
    TopologySpreadConstraint,
)
from meshcert.invariants.selectors import LabelSelector
from meshcert.invariants.views import Condition, ContainerPort, ContainerView, NodeView, ObjectMeta, PodView

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def node(
    name: str,
    *,
    zone: str = "zone-a",
    cpu: int = 2000,
    pods: int = 110,
    labels: Mapping[str, str] | None = None,
    taints: tuple[Taint, ...] = (),
    unschedulable: bool = False,
) -> NodeView:
    return NodeView(
        meta=ObjectMeta(name=name, labels={HOST: name, ZONE: zone, **(labels or {})}),
        allocatable={"cpu": cpu, "memory": 4 * 2**30, "pods": pods},
        taints=taints,
        unschedulable=unschedulable,
    )


def pod(
    name: str,
    *,
    on: str = "",
    app: str = "web",
    cpu: int = 0,
    ns: str = "default",
    host_port: int = 0,
    host_ip: str = "",
    protocol: str = "TCP",
    node_selector: Mapping[str, str] | None = None,
    affinity: Affinity | None = None,
    tolerations: tuple[Toleration, ...] = (),
    spread: tuple[TopologySpreadConstraint, ...] = (),
    priority: int = 0,
    ready: bool = True,
    **kw: object,
) -> PodView:
    ports = (
        (ContainerPort(8080, host_port=host_port, host_ip=host_ip, protocol=protocol),) if host_port else ()
    )
    p = PodView(
        meta=ObjectMeta(name=name, namespace=ns, labels={"app": app}),
        node_name=on,
        containers=(ContainerView("main", requests={"cpu": cpu} if cpu else {}, ports=ports),),
        node_selector=node_selector or {},
        affinity=affinity or Affinity(),
        tolerations=tolerations,
        topology_spread=spread,
        priority=priority,
        phase="Running" if on else "Pending",
        conditions=(Condition("Ready", "True" if ready and on else "False"),),
    )
    return replace(p, **kw)  # type: ignore[arg-type]


def anti(app: str, key: str = HOST) -> Affinity:
    return Affinity(pod_anti_affinity=(PodAffinityTerm(key, LabelSelector({"app": app})),))


def co(app: str, key: str = HOST) -> Affinity:
    return Affinity(pod_affinity=(PodAffinityTerm(key, LabelSelector({"app": app})),))


def spread(
    app: str, key: str = ZONE, *, max_skew: int = 1, min_domains: int | None = None
) -> TopologySpreadConstraint:
    return TopologySpreadConstraint(max_skew, key, "DoNotSchedule", LabelSelector({"app": app}), min_domains)


def ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
