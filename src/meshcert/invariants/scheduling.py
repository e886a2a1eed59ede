"""The placement oracle: on which nodes may kube-scheduler bind this pod, given what is placed?

Why: S1, S2, S4, S5, S6, S7 and S10 are all statements about feasibility. `feasible_nodes`
re-implements the *filter* phase of the default scheduler profile (scoring never changes
feasibility) so a test can judge the real scheduler's decisions (placement.py) and so Hypothesis
can generate placements the scheduler is allowed to make (strategies.py).

Oracle (semantics read from kube-scheduler's in-tree plugins, pkg/scheduler/framework/plugins, and
the e2e tests in test/e2e/scheduling/predicates.go):
- NodeUnschedulable (S10): ``spec.unschedulable`` needs a toleration of
  node.kubernetes.io/unschedulable:NoSchedule.
- NodeAffinity (S1): every nodeSelector pair, and one matching required nodeSelectorTerm.
- TaintToleration (S2): every NoSchedule/NoExecute taint tolerated; PreferNoSchedule ignored.
- NodeResourcesFit (S4): effective requests + requests already on the node ≤ allocatable, for
  every resource the pod requests (zero requests never fail); pod count ≤ allocatable ``pods``.
- NodePorts (S5): (hostIP, protocol, hostPort) clash; 0.0.0.0 / "" clashes with every IP.
- InterPodAffinity (S7): required affinity, required anti-affinity, and the *existing* pods'
  anti-affinity (symmetry); the "first pod of a self-affine group" exception.
- PodTopologySpread (S6): DoNotSchedule constraints only; eligible domains honour
  nodeAffinityPolicy/nodeTaintsPolicy; minDomains makes the global minimum 0 when there are fewer
  eligible domains.

Not modelled (documented gaps): volume binding/zone restrictions, DRA, image locality, the
NodeName filter (a pod with spec.nodeName bypasses the scheduler), numeric toleration operators.
Terminal pods (Succeeded/Failed) hold no resources, as in the scheduler's cache.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from meshcert.invariants.placement_spec import (
    UNSCHEDULABLE_TAINT,
    PodAffinityTerm,
    TaintEffect,
    TopologySpreadConstraint,
    tolerated,
)
from meshcert.invariants.quantities import format_amount
from meshcert.invariants.selectors import LabelSelector, Operator, Requirement, labels_match
from meshcert.invariants.views import ContainerPort, NodeView, PodView

PODS = "pods"
_WILDCARD_IP = "0.0.0.0"
_NO_NAMESPACE_LABELS: Mapping[str, Mapping[str, str]] = {}


@dataclass(frozen=True)
class Rejection:
    """Why one node is infeasible for one pod: the invariant it maps to and the plugin's reason."""

    invariant: str
    plugin: str
    reason: str

    def __str__(self) -> str:
        return f"{self.plugin}: {self.reason}"


def node_matches_pod_affinity_spec(pod: PodView, node: NodeView) -> bool:
    """nodeSelector AND required node affinity (the NodeAffinity plugin's filter)."""
    if not labels_match(pod.node_selector, node.labels):
        return False
    required = pod.affinity.node_required
    return required is None or required.matches(node.name, node.labels)


def _blocking_taints(pod: PodView, node: NodeView) -> list[str]:
    return [
        str(t)
        for t in node.taints
        if t.effect in (TaintEffect.NO_SCHEDULE, TaintEffect.NO_EXECUTE) and not tolerated(t, pod.tolerations)
    ]


def static_rejections(pod: PodView, node: NodeView) -> list[Rejection]:
    """Filters that do not depend on other pods: NodeUnschedulable, NodeAffinity, TaintToleration."""
    out: list[Rejection] = []
    if node.unschedulable and not tolerated(UNSCHEDULABLE_TAINT, pod.tolerations):
        out.append(Rejection("S10", "NodeUnschedulable", f"node {node.name} is cordoned"))
    if not labels_match(pod.node_selector, node.labels):
        missing = {k: v for k, v in pod.node_selector.items() if node.labels.get(k) != v}
        out.append(Rejection("S1", "NodeAffinity", f"nodeSelector {missing} not on node {node.name}"))
    required = pod.affinity.node_required
    if required is not None and not required.matches(node.name, node.labels):
        out.append(Rejection("S1", "NodeAffinity", f"required node affinity {required} excludes {node.name}"))
    taints = _blocking_taints(pod, node)
    if taints:
        out.append(Rejection("S2", "TaintToleration", f"untolerated taint(s) {taints} on {node.name}"))
    return out


def _occupying(pods: Iterable[PodView]) -> list[PodView]:
    return [p for p in pods if p.node_name and not p.terminal]


def node_requested(pods_on_node: Iterable[PodView]) -> dict[str, int]:
    total: dict[str, int] = {}
    for p in pods_on_node:
        for k, v in p.requests.items():
            total[k] = total.get(k, 0) + v
    return total


def resource_rejections(pod: PodView, node: NodeView, on_node: Sequence[PodView]) -> list[Rejection]:
    out: list[Rejection] = []
    used = node_requested(on_node)
    for resource, amount in sorted(pod.requests.items()):
        if amount <= 0:
            continue
        free = node.allocatable.get(resource, 0) - used.get(resource, 0)
        if amount > free:
            out.append(
                Rejection(
                    "S4",
                    "NodeResourcesFit",
                    f"Insufficient {resource} on {node.name}: requests {format_amount(resource, amount)}, "
                    f"free {format_amount(resource, free)}",
                )
            )
    # A node without a "pods" allocatable (never the case on a real kubelet) is not limited here.
    if PODS in node.allocatable and len(on_node) + 1 > node.allocatable[PODS]:
        out.append(Rejection("S4", "NodeResourcesFit", f"Too many pods on {node.name}"))
    return out


def _host_ip(ip: str) -> str:
    return ip or _WILDCARD_IP


def ports_conflict(a: ContainerPort, b: ContainerPort) -> bool:
    """Same hostPort and protocol, and the same hostIP or either of them the wildcard."""
    if a.host_port != b.host_port or (a.protocol or "TCP") != (b.protocol or "TCP"):
        return False
    a_ip, b_ip = _host_ip(a.host_ip), _host_ip(b.host_ip)
    return a_ip == b_ip or _WILDCARD_IP in (a_ip, b_ip)


def host_port_rejections(pod: PodView, node: NodeView, on_node: Sequence[PodView]) -> list[Rejection]:
    out: list[Rejection] = []
    for mine in pod.host_ports:
        for other in on_node:
            for theirs in other.host_ports:
                if ports_conflict(mine, theirs):
                    out.append(
                        Rejection(
                            "S5",
                            "NodePorts",
                            f"hostPort {_host_ip(mine.host_ip)}:{mine.host_port}/{mine.protocol} "
                            f"taken by {other.key} on {node.name}",
                        )
                    )
    return out


def same_domain(a: NodeView, b: NodeView, key: str) -> bool:
    return key in a.labels and key in b.labels and a.labels[key] == b.labels[key]


def _selects(
    term: PodAffinityTerm, owner: PodView, target: PodView, ns: Mapping[str, Mapping[str, str]]
) -> bool:
    return term.selects(
        owner_namespace=owner.namespace, namespace=target.namespace, labels=target.labels, namespace_labels=ns
    )


def interpod_rejections(
    pod: PodView,
    node: NodeView,
    nodes: Mapping[str, NodeView],
    existing: Sequence[PodView],
    *,
    namespace_labels: Mapping[str, Mapping[str, str]] = _NO_NAMESPACE_LABELS,
) -> list[Rejection]:
    out: list[Rejection] = []
    placed = [(e, nodes[e.node_name]) for e in existing if e.node_name in nodes]
    for e, en in placed:
        for t in e.affinity.pod_anti_affinity:
            if _selects(t, e, pod, namespace_labels) and same_domain(en, node, t.topology_key):
                out.append(
                    Rejection(
                        "S7", "InterPodAffinity", f"existing {e.key} has anti-affinity on {t.topology_key}"
                    )
                )
    for t in pod.affinity.pod_anti_affinity:
        for e, en in placed:
            if _selects(t, pod, e, namespace_labels) and same_domain(en, node, t.topology_key):
                out.append(
                    Rejection("S7", "InterPodAffinity", f"anti-affinity with {e.key} on {t.topology_key}")
                )
    terms = pod.affinity.pod_affinity
    if not terms:
        return out
    missing_keys = [t.topology_key for t in terms if t.topology_key not in node.labels]
    if missing_keys:
        return [
            *out,
            Rejection("S7", "InterPodAffinity", f"{node.name} lacks topology label(s) {missing_keys}"),
        ]
    unsatisfied = [
        t
        for t in terms
        if not any(
            _selects(t, pod, e, namespace_labels) and same_domain(en, node, t.topology_key)
            for e, en in placed
        )
    ]
    if unsatisfied:
        any_match = any(
            _selects(t, pod, e, namespace_labels) and t.topology_key in en.labels
            for t in terms
            for e, en in placed
        )
        self_match = all(_selects(t, pod, pod, namespace_labels) for t in terms)
        if any_match or not self_match:
            keys = [t.topology_key for t in unsatisfied]
            out.append(Rejection("S7", "InterPodAffinity", f"no matching pod in {node.name}'s {keys} domain"))
    return out


def spread_selector(constraint: TopologySpreadConstraint, pod: PodView) -> LabelSelector | None:
    """The constraint's selector with matchLabelKeys merged in (idempotent if the API server did)."""
    selector = constraint.label_selector
    if selector is None:
        return None
    for key in constraint.match_label_keys:
        if key in pod.labels:
            selector = selector.with_requirement(Requirement(key, Operator.IN, (pod.labels[key],)))
    return selector


def spread_eligible(pod: PodView, node: NodeView, constraint: TopologySpreadConstraint) -> bool:
    """Does ``node`` count as a domain member for this pod's hard constraints (PreFilter)?"""
    if any(c.topology_key not in node.labels for c in pod.topology_spread if c.hard):
        return False
    if constraint.node_affinity_policy == "Honor" and not node_matches_pod_affinity_spec(pod, node):
        return False
    return not (constraint.node_taints_policy == "Honor" and _blocking_taints(pod, node))


def domain_counts(
    pod: PodView, constraint: TopologySpreadConstraint, nodes: Iterable[NodeView], existing: Sequence[PodView]
) -> dict[str, int]:
    """Matching pods per topology value over eligible nodes (empty domains count as 0)."""
    selector = spread_selector(constraint, pod)
    counts: dict[str, int] = {}
    eligible = {n.name: n for n in nodes if spread_eligible(pod, n, constraint)}
    for n in eligible.values():
        counts.setdefault(n.labels[constraint.topology_key], 0)
    for e in existing:
        en = eligible.get(e.node_name)
        if en is None or e.terminating or e.namespace != pod.namespace:
            continue
        if selector is not None and selector.matches(e.labels):
            counts[en.labels[constraint.topology_key]] += 1
    return counts


def global_minimum(constraint: TopologySpreadConstraint, counts: Mapping[str, int]) -> int:
    if not counts or (constraint.min_domains is not None and len(counts) < constraint.min_domains):
        return 0
    return min(counts.values())


def spread_rejections(
    pod: PodView, node: NodeView, nodes: Iterable[NodeView], existing: Sequence[PodView]
) -> list[Rejection]:
    out: list[Rejection] = []
    nodes = list(nodes)
    for c in pod.topology_spread:
        if not c.hard:
            continue
        if c.topology_key not in node.labels:
            out.append(Rejection("S6", "PodTopologySpread", f"{node.name} lacks label {c.topology_key}"))
            continue
        counts = domain_counts(pod, c, nodes, existing)
        selector = spread_selector(c, pod)
        self_match = 1 if selector is not None and selector.matches(pod.labels) else 0
        value = node.labels[c.topology_key]
        skew = counts.get(value, 0) + self_match - global_minimum(c, counts)
        if skew > c.max_skew:
            out.append(
                Rejection(
                    "S6",
                    "PodTopologySpread",
                    f"{c.topology_key}={value} would reach skew {skew} > maxSkew {c.max_skew} "
                    f"(counts {counts})",
                )
            )
    return out


def rejections(
    pod: PodView,
    node: NodeView,
    nodes: Sequence[NodeView],
    existing: Sequence[PodView],
    *,
    namespace_labels: Mapping[str, Mapping[str, str]] = _NO_NAMESPACE_LABELS,
) -> list[Rejection]:
    """Every filter that rejects ``node`` for ``pod`` given the already-placed ``existing`` pods."""
    placed = [e for e in _occupying(existing) if e.key != pod.key]
    on_node = [e for e in placed if e.node_name == node.name]
    by_name = {n.name: n for n in nodes}
    return [
        *static_rejections(pod, node),
        *resource_rejections(pod, node, on_node),
        *host_port_rejections(pod, node, on_node),
        *interpod_rejections(pod, node, by_name, placed, namespace_labels=namespace_labels),
        *spread_rejections(pod, node, nodes, placed),
    ]


def feasible_nodes(
    pod: PodView,
    nodes: Sequence[NodeView],
    existing_pods: Sequence[PodView],
    *,
    namespace_labels: Mapping[str, Mapping[str, str]] = _NO_NAMESPACE_LABELS,
) -> frozenset[str]:
    """Names of the nodes the default scheduler may bind ``pod`` to, given ``existing_pods``.

    ``existing_pods`` are the pods already bound (``node_name`` set); pending or terminal ones are
    ignored, and so is ``pod`` itself if it appears there. ``namespace_labels`` resolves affinity
    ``namespaceSelector``s (namespace → labels).
    """
    return frozenset(
        n.name
        for n in nodes
        if not rejections(pod, n, nodes, existing_pods, namespace_labels=namespace_labels)
    )


def bind(pod: PodView, node: str) -> PodView:
    """The pod as if bound to ``node`` (for replays and generated placements)."""
    return dataclasses.replace(pod, node_name=node)
