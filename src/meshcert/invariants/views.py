"""Typed, frozen views of Nodes and Pods, parsed from the API server's camelCase JSON.

Why: checkers must not poke at ``dict[str, Any]``; each view keeps exactly the fields some
invariant needs, with API defaults applied (core/v1 types.go, defaults.go). Build one with
``NodeView.from_api(obj)`` from ``ApiClient().sanitize_for_serialization(obj)`` or ``kubectl get
-o json``. Resource amounts are canonical integers (quantities.py).

Not here: Services/EndpointSlices (service_views.py), workload controllers (workload_views.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from meshcert.invariants import _wire as w
from meshcert.invariants.placement_spec import (
    Affinity,
    Taint,
    Toleration,
    TopologySpreadConstraint,
)
from meshcert.invariants.quantities import parse_resource_list
from meshcert.invariants.violations import ObjectRef


@dataclass(frozen=True)
class ObjectMeta:
    name: str
    namespace: str = ""
    uid: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    owner_kinds: tuple[tuple[str, str], ...] = ()  # (kind, name) of each ownerReference
    generation: int = 0

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> ObjectMeta:
        meta = w.obj(raw, "metadata")
        return cls(
            name=w.string(meta, "name"),
            namespace=w.string(meta, "namespace"),
            uid=w.string(meta, "uid"),
            labels=w.string_map(meta, "labels"),
            annotations=w.string_map(meta, "annotations"),
            creation_timestamp=w.timestamp(meta, "creationTimestamp"),
            deletion_timestamp=w.timestamp(meta, "deletionTimestamp"),
            owner_kinds=tuple(
                (w.string(o, "kind"), w.string(o, "name")) for o in w.objs(meta, "ownerReferences")
            ),
            generation=w.integer(meta, "generation"),
        )


def condition_status(raw: Mapping[str, object], kind: str) -> dict[str, str]:
    """status.conditions as ``{type: status}``."""
    return {
        w.string(c, "type", kind=kind): w.string(c, "status", kind=kind)
        for c in w.objs(w.obj(raw, "status"), "conditions")
    }


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> Condition:
        return cls(
            type=w.string(raw, "type"),
            status=w.string(raw, "status"),
            reason=w.string(raw, "reason"),
            message=w.string(raw, "message"),
            last_transition_time=w.timestamp(raw, "lastTransitionTime"),
        )


@dataclass(frozen=True)
class NodeView:
    meta: ObjectMeta
    allocatable: Mapping[str, int]
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    ready: bool = True
    internal_ip: str = ""

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> NodeView:
        spec, status = w.obj(raw, "spec"), w.obj(raw, "status")
        addresses = {w.string(a, "type"): w.string(a, "address") for a in w.objs(status, "addresses")}
        return cls(
            meta=ObjectMeta.from_api(raw),
            allocatable=parse_resource_list(w.obj(status, "allocatable")),
            taints=tuple(Taint.from_api(t) for t in w.objs(spec, "taints")),
            unschedulable=w.boolean(spec, "unschedulable"),
            ready=condition_status(raw, "Node").get("Ready") == "True",
            internal_ip=addresses.get("InternalIP", ""),
        )

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def labels(self) -> Mapping[str, str]:
        return self.meta.labels

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("Node", self.meta.name)


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    name: str = ""
    protocol: str = "TCP"
    host_port: int = 0
    host_ip: str = ""

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> ContainerPort:
        return cls(
            container_port=w.integer(raw, "containerPort"),
            name=w.string(raw, "name"),
            protocol=w.string(raw, "protocol", "TCP"),
            host_port=w.integer(raw, "hostPort"),
            host_ip=w.string(raw, "hostIP"),
        )


@dataclass(frozen=True)
class Probe:
    """A container probe with API defaults (period 10 s, timeout 1 s, success 1, failure 3)."""

    handler: str  # exec | httpGet | tcpSocket | grpc
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period_seconds: int | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> Probe:
        handler = next((h for h in ("exec", "httpGet", "tcpSocket", "grpc") if h in raw), "")
        return cls(
            handler=handler,
            initial_delay_seconds=w.integer(raw, "initialDelaySeconds"),
            period_seconds=w.integer(raw, "periodSeconds", 10),
            timeout_seconds=w.integer(raw, "timeoutSeconds", 1),
            success_threshold=w.integer(raw, "successThreshold", 1),
            failure_threshold=w.integer(raw, "failureThreshold", 3),
            termination_grace_period_seconds=w.opt_integer(raw, "terminationGracePeriodSeconds"),
        )

    @classmethod
    def opt(cls, raw: Mapping[str, object], key: str) -> Probe | None:
        sub = w.opt_obj(raw, key)
        return None if sub is None else cls.from_api(sub)


@dataclass(frozen=True)
class ContainerView:
    name: str
    requests: Mapping[str, int] = field(default_factory=dict)
    ports: tuple[ContainerPort, ...] = ()
    readiness_probe: Probe | None = None
    liveness_probe: Probe | None = None
    startup_probe: Probe | None = None
    restart_policy: str = ""  # "Always" on an init container = sidecar

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> ContainerView:
        return cls(
            name=w.string(raw, "name"),
            requests=parse_resource_list(w.obj(w.obj(raw, "resources"), "requests")),
            ports=tuple(ContainerPort.from_api(p) for p in w.objs(raw, "ports")),
            readiness_probe=Probe.opt(raw, "readinessProbe"),
            liveness_probe=Probe.opt(raw, "livenessProbe"),
            startup_probe=Probe.opt(raw, "startupProbe"),
            restart_policy=w.string(raw, "restartPolicy"),
        )


@dataclass(frozen=True)
class ContainerStatusView:
    name: str
    ready: bool
    restart_count: int
    started: bool | None = None
    state: str = "waiting"  # waiting | running | terminated
    reason: str = ""
    started_at: datetime | None = None
    last_exit_code: int | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> ContainerStatusView:
        states = w.obj(raw, "state")
        state = next(
            (s for s in ("running", "terminated", "waiting") if w.opt_obj(states, s) is not None), ""
        )
        detail = w.obj(states, state) if state else w.obj(states, "waiting")
        last_term = w.opt_obj(w.obj(raw, "lastState"), "terminated")
        return cls(
            name=w.string(raw, "name"),
            ready=w.boolean(raw, "ready"),
            restart_count=w.integer(raw, "restartCount"),
            started=w.opt_boolean(raw, "started"),
            state=state or "waiting",
            reason=w.string(detail, "reason"),
            started_at=w.timestamp(detail, "startedAt"),
            last_exit_code=None if last_term is None else w.integer(last_term, "exitCode"),
        )


def _sum(into: dict[str, int], add: Mapping[str, int]) -> None:
    for k, v in add.items():
        into[k] = into.get(k, 0) + v


def effective_requests(
    containers: tuple[ContainerView, ...],
    init_containers: tuple[ContainerView, ...],
    overhead: Mapping[str, int],
) -> dict[str, int]:
    """What the scheduler charges a pod (NodeResourcesFit, resource helpers computePodResourceRequest).

    max(Σ app containers + Σ sidecars, max over init container i of (its request + sidecars started
    before it)) + pod overhead, per resource.
    """
    total: dict[str, int] = {}
    for c in containers:
        _sum(total, c.requests)
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for c in init_containers:
        if c.restart_policy == "Always":
            _sum(sidecars, c.requests)
            step = dict(sidecars)
        else:
            step = dict(sidecars)
            _sum(step, c.requests)
        for k, v in step.items():
            init_peak[k] = max(init_peak.get(k, 0), v)
    _sum(total, sidecars)
    for k, v in init_peak.items():
        total[k] = max(total.get(k, 0), v)
    _sum(total, overhead)
    return total


@dataclass(frozen=True)
class PodView:
    meta: ObjectMeta
    node_name: str = ""
    containers: tuple[ContainerView, ...] = ()
    init_containers: tuple[ContainerView, ...] = ()
    overhead: Mapping[str, int] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    affinity: Affinity = field(default_factory=Affinity)
    tolerations: tuple[Toleration, ...] = ()
    topology_spread: tuple[TopologySpreadConstraint, ...] = ()
    priority: int = 0
    scheduler_name: str = "default-scheduler"
    scheduling_gates: tuple[str, ...] = ()
    termination_grace_period_seconds: int = 30  # API default
    hostname: str = ""
    subdomain: str = ""
    phase: str = "Pending"
    conditions: tuple[Condition, ...] = ()
    pod_ips: tuple[str, ...] = ()
    nominated_node_name: str = ""
    container_statuses: tuple[ContainerStatusView, ...] = ()

    @classmethod
    def from_api(cls, raw: Mapping[str, object]) -> PodView:
        spec, status = w.obj(raw, "spec", kind="Pod"), w.obj(raw, "status", kind="Pod")
        ips = tuple(w.string(p, "ip") for p in w.objs(status, "podIPs"))
        if not ips and w.string(status, "podIP"):
            ips = (w.string(status, "podIP"),)
        return cls(
            meta=ObjectMeta.from_api(raw),
            node_name=w.string(spec, "nodeName"),
            containers=tuple(ContainerView.from_api(c) for c in w.objs(spec, "containers")),
            init_containers=tuple(ContainerView.from_api(c) for c in w.objs(spec, "initContainers")),
            overhead=parse_resource_list(w.obj(spec, "overhead")),
            node_selector=w.string_map(spec, "nodeSelector"),
            affinity=Affinity.from_api(w.obj(spec, "affinity")),
            tolerations=tuple(Toleration.from_api(t) for t in w.objs(spec, "tolerations")),
            topology_spread=tuple(
                TopologySpreadConstraint.from_api(t) for t in w.objs(spec, "topologySpreadConstraints")
            ),
            priority=w.integer(spec, "priority"),
            scheduler_name=w.string(spec, "schedulerName", "default-scheduler"),
            scheduling_gates=tuple(w.string(g, "name") for g in w.objs(spec, "schedulingGates")),
            termination_grace_period_seconds=w.integer(spec, "terminationGracePeriodSeconds", 30),
            hostname=w.string(spec, "hostname"),
            subdomain=w.string(spec, "subdomain"),
            phase=w.string(status, "phase", "Pending"),
            conditions=tuple(Condition.from_api(c) for c in w.objs(status, "conditions")),
            pod_ips=ips,
            nominated_node_name=w.string(status, "nominatedNodeName"),
            container_statuses=tuple(
                ContainerStatusView.from_api(c) for c in w.objs(status, "containerStatuses")
            ),
        )

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def namespace(self) -> str:
        return self.meta.namespace

    @property
    def labels(self) -> Mapping[str, str]:
        return self.meta.labels

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("Pod", self.meta.name, self.meta.namespace)

    @property
    def key(self) -> str:
        return f"{self.meta.namespace}/{self.meta.name}"

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    @property
    def ready(self) -> bool:
        cond = self.condition("Ready")
        return cond is not None and cond.status == "True"

    @property
    def terminating(self) -> bool:
        return self.meta.deletion_timestamp is not None

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @property
    def requests(self) -> dict[str, int]:
        return effective_requests(self.containers, self.init_containers, self.overhead)

    @property
    def host_ports(self) -> tuple[ContainerPort, ...]:
        """Host ports of app containers and sidecars (restartable init containers), as NodePorts sees."""
        sidecars = tuple(c for c in self.init_containers if c.restart_policy == "Always")
        return tuple(p for c in (*sidecars, *self.containers) for p in c.ports if p.host_port)
