"""Hypothesis strategies: small clusters of nodes and pods, and placements the oracle allows.

Why: the placement checkers must accept every placement kube-scheduler may make and reject any
that it may not; generating both from the oracle (scheduling.feasible_nodes) makes that a
property test. The model is deliberately small — a handful of nodes over three zones, pods drawn
from a few label values — so that conflicts (ports, anti-affinity, skew, capacity) are frequent.

`placements()` models the scheduler: pods are taken in order, each bound to a node chosen among
its feasible ones (Hypothesis picks which), pods with none stay Pending, and Pending pods are
retried after every binding (the scheduler requeues them on cluster events) until nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from meshcert.invariants.placement_spec import (
    Affinity,
    PodAffinityTerm,
    Taint,
    TaintEffect,
    Toleration,
    TopologySpreadConstraint,
)
from meshcert.invariants.quantities import CPU
from meshcert.invariants.scheduling import PODS, bind, feasible_nodes
from meshcert.invariants.selectors import LabelSelector, NodeSelector, NodeSelectorTerm, Operator, Requirement
from meshcert.invariants.views import ContainerPort, ContainerView, NodeView, ObjectMeta, PodView

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
ZONES = ("zone-a", "zone-b", "zone-c")
APPS = ("web", "db", "cache")
MEMORY = "memory"
_MI = 2**20
_TAINTS = (
    Taint("dedicated", TaintEffect.NO_SCHEDULE, "gpu"),
    Taint("maintenance", TaintEffect.NO_EXECUTE),
    Taint("soft", TaintEffect.PREFER_NO_SCHEDULE),
)
_TOLERATIONS = (
    Toleration("dedicated", "Equal", "gpu", "NoSchedule"),
    Toleration("maintenance", "Exists"),
    Toleration(operator="Exists"),  # tolerates everything
    Toleration("node.kubernetes.io/unschedulable", "Exists", effect="NoSchedule"),
)
_TOPOLOGY_KEYS = (HOSTNAME, ZONE)


@st.composite
def nodes(draw: st.DrawFn, *, min_size: int = 1, max_size: int = 5) -> list[NodeView]:
    count = draw(st.integers(min_size, max_size))
    out: list[NodeView] = []
    for i in range(count):
        name = f"node-{i}"
        labels = {
            HOSTNAME: name,
            ZONE: draw(st.sampled_from(ZONES)),
            "disk": draw(st.sampled_from(("ssd", "hdd"))),
        }
        if draw(st.booleans()):
            labels["gen"] = str(draw(st.integers(1, 5)))
        allocatable = {
            CPU: draw(st.sampled_from((1000, 2000, 4000))),
            MEMORY: draw(st.sampled_from((1024, 2048, 4096))) * _MI,
            PODS: draw(st.integers(2, 8)),
        }
        out.append(
            NodeView(
                meta=ObjectMeta(name=name, labels=labels),
                allocatable=allocatable,
                taints=tuple(draw(st.lists(st.sampled_from(_TAINTS), max_size=2, unique=True))),
                unschedulable=draw(st.integers(0, 9)) == 0,  # cordoned one time in ten
            )
        )
    return out


def _app_selector(app: str) -> LabelSelector:
    return LabelSelector({"app": app})


@st.composite
def node_affinities(draw: st.DrawFn) -> NodeSelector:
    reqs = st.one_of(
        st.builds(
            Requirement, st.just("disk"), st.sampled_from((Operator.IN, Operator.NOT_IN)), st.just(("ssd",))
        ),
        st.builds(Requirement, st.just("gen"), st.sampled_from((Operator.GT, Operator.LT)), st.just(("2",))),
        st.builds(
            Requirement,
            st.just("gen"),
            st.sampled_from((Operator.EXISTS, Operator.DOES_NOT_EXIST)),
            st.just(()),
        ),
        st.builds(
            Requirement,
            st.just(ZONE),
            st.just(Operator.IN),
            st.lists(st.sampled_from(ZONES), min_size=1).map(tuple),
        ),
    )
    fields = st.builds(
        Requirement,
        st.just("metadata.name"),
        st.sampled_from((Operator.IN, Operator.NOT_IN)),
        # The API server accepts exactly one value for In/NotIn on a node field selector
        # (validation: "must be only one value when operator is In or NotIn").
        st.sampled_from([f"node-{i}" for i in range(5)]).map(lambda name: (name,)),
    )
    terms = st.builds(
        NodeSelectorTerm, st.lists(reqs, max_size=2).map(tuple), st.lists(fields, max_size=1).map(tuple)
    )
    return NodeSelector(tuple(draw(st.lists(terms, min_size=1, max_size=2))))


@st.composite
def pod_terms(draw: st.DrawFn) -> PodAffinityTerm:
    return PodAffinityTerm(draw(st.sampled_from(_TOPOLOGY_KEYS)), _app_selector(draw(st.sampled_from(APPS))))


@st.composite
def pods(draw: st.DrawFn, *, min_size: int = 1, max_size: int = 8) -> list[PodView]:
    count = draw(st.integers(min_size, max_size))
    out: list[PodView] = []
    for i in range(count):
        app = draw(st.sampled_from(APPS))
        ports = tuple(
            draw(
                st.lists(
                    st.builds(
                        ContainerPort,
                        st.just(8080),
                        host_port=st.sampled_from((80, 443)),
                        protocol=st.sampled_from(("TCP", "UDP")),
                        host_ip=st.sampled_from(("", "10.0.0.1", "10.0.0.2")),
                    ),
                    max_size=1,
                )
            )
        )
        requests = {
            CPU: draw(st.sampled_from((0, 100, 500, 1000, 1500))),
            MEMORY: draw(st.sampled_from((0, 256, 1024))) * _MI,
        }
        spread = tuple(
            draw(
                st.lists(
                    st.builds(
                        TopologySpreadConstraint,
                        max_skew=st.integers(1, 2),
                        topology_key=st.sampled_from(_TOPOLOGY_KEYS),
                        when_unsatisfiable=st.just("DoNotSchedule"),
                        label_selector=st.just(_app_selector(app)),
                        min_domains=st.one_of(st.none(), st.integers(1, 3)),
                    ),
                    max_size=1,
                )
            )
        )
        affinity = Affinity(
            node_required=draw(st.one_of(st.none(), node_affinities())),
            pod_affinity=tuple(draw(st.lists(pod_terms(), max_size=1))),
            pod_anti_affinity=tuple(draw(st.lists(pod_terms(), max_size=1))),
        )
        out.append(
            PodView(
                meta=ObjectMeta(name=f"pod-{i}", namespace="default", labels={"app": app}),
                containers=(ContainerView("main", requests=requests, ports=ports),),
                node_selector=draw(st.sampled_from(({}, {}, {"disk": "ssd"}))),
                affinity=affinity,
                tolerations=tuple(draw(st.lists(st.sampled_from(_TOLERATIONS), max_size=2, unique=True))),
                topology_spread=spread,
            )
        )
    return out


@dataclass(frozen=True)
class Scenario:
    """A cluster and a placement the oracle allows: bound pods in bind order, the rest Pending."""

    nodes: list[NodeView]
    bound_in_order: list[PodView]
    pending: list[PodView] = field(default_factory=list)


@st.composite
def placements(draw: st.DrawFn, *, max_nodes: int = 5, max_pods: int = 8) -> Scenario:
    cluster = draw(nodes(max_size=max_nodes))
    queue = draw(pods(max_size=max_pods))
    bound: list[PodView] = []
    pending: list[PodView] = []
    progress = True
    while queue and progress:
        progress = False
        for pod in queue:
            feasible = sorted(feasible_nodes(pod, cluster, bound))
            if feasible:
                bound.append(bind(pod, draw(st.sampled_from(feasible))))
                progress = True
            else:
                pending.append(pod)
        queue, pending = pending, []
    return Scenario(cluster, bound, queue)
