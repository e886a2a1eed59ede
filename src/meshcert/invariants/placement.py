"""Judging the real scheduler's placements against the oracle (S1, S2, S4, S5, S7, S10).

Why: a test applies pods, lets kube-scheduler place them, records the result and asks one
question: was every decision allowed, and was anything left Pending that should have run?

`check_placements` — the design, and why it is shaped this way:

1. *Replay in bind order.* The scheduler places pods one at a time and each decision sees every
   pod placed before it (its cache "assumes" a pod as soon as it is scheduled). Feasibility is
   therefore judged by replaying ``bound_in_order``: pod *i* is checked against the pre-existing
   pods plus pods 0..i-1. Give the order in which the bindings were committed — the order a pod
   watch delivered the events that set ``spec.nodeName`` (watch events arrive in etcd commit
   order). Do **not** sort by the PodScheduled lastTransitionTime: it has one-second resolution,
   so pods bound within the same second would be ordered arbitrarily. Residual ambiguity:
   binding is asynchronous, so two pods scheduled back to back may commit in swapped order; only
   the order-dependent filters (spread, required affinity, resource fit at that instant) can be
   affected, and the order-independent final-state checks below do not depend on it at all.
   When the pods under test were created one after another, `queue_replay.check_queue_placements`
   removes the ambiguity: it judges the orders the scheduling queue allows instead.
2. *Order-independent final-state checks* (``state_violations``): capacity (S4), host ports (S5)
   and required anti-affinity (S7) must hold in the final state whatever the order; they are
   independent implementations and cross-check the replay.
3. *Unexpectedly pending* is a separate finding, reported only when unambiguous. A pending pod
   is *not judged* when: it has scheduling gates or another scheduler; it carries
   nominatedNodeName (preemption in progress); some bound pod is terminating (resources about to
   free up: the state is in flux); or every node it could use could be taken by another pending
   pod (two pods competing for one slot: the scheduler must place one, we cannot say which).
   Pending pods of priority ≥ P that are nominated to a node are counted on that node when judging
   P, as the scheduler does (RunFilterPluginsWithNominatedPods). A pod that could only run by
   preempting others is never "unexpectedly pending" here: that is S8's business. The caller must
   give the scheduler time first (wrap the check in `converge`): unschedulable pods are retried
   on cluster events or after podMaxInUnschedulablePodsDuration (5 min).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from meshcert.invariants.placement_spec import UNSCHEDULABLE_TAINT, tolerated
from meshcert.invariants.quantities import format_amount
from meshcert.invariants.scheduling import (
    PODS,
    bind,
    domain_counts,
    feasible_nodes,
    global_minimum,
    node_requested,
    ports_conflict,
    rejections,
    same_domain,
    static_rejections,
)
from meshcert.invariants.views import NodeView, PodView
from meshcert.invariants.violations import ObjectRef, Violation

_NO_NS: Mapping[str, Mapping[str, str]] = {}
DEFAULT_SCHEDULER = "default-scheduler"


@dataclass(frozen=True)
class PendingFinding:
    """A pod left Pending although a node was feasible for it, with no ambiguity."""

    pod: ObjectRef
    feasible: frozenset[str]

    def as_violation(self, invariant: str) -> Violation:
        """Report it under the scenario's invariant id (S1 when testing selectors, S2 taints...)."""
        nodes = "{" + ", ".join(sorted(self.feasible)) + "}"
        return Violation(invariant, self.pod, f"unexpectedly Pending: feasible on {nodes}")


@dataclass(frozen=True)
class PlacementReport:
    violations: list[Violation]  # a pod bound where the oracle forbids it (replay in bind order)
    state_violations: list[Violation]  # order-independent checks of the final state
    unexpectedly_pending: list[PendingFinding]
    not_judged: dict[str, str] = field(default_factory=dict)  # pending pod key → why

    @property
    def all_violations(self) -> list[Violation]:
        return [*self.violations, *self.state_violations]


def check_placements(
    nodes: Sequence[NodeView],
    bound_in_order: Sequence[PodView],
    *,
    pending: Sequence[PodView] = (),
    preexisting: Sequence[PodView] = (),
    namespace_labels: Mapping[str, Mapping[str, str]] = _NO_NS,
) -> PlacementReport:
    """Judge the scheduler's bindings (see the module docstring for the ordering contract).

    ``bound_in_order``: the pods under test, bound, in commit order. ``preexisting``: pods that
    were bound before the recording began (counted, not judged). ``pending``: pods still unbound.
    """
    by_name = {n.name: n for n in nodes}
    state = [p for p in preexisting if p.node_name and not p.terminal]
    violations: list[Violation] = []
    for pod in bound_in_order:
        node = by_name.get(pod.node_name)
        if node is None:
            violations.append(Violation("S1", pod.ref, f"bound to unknown node {pod.node_name!r}"))
            continue
        for r in rejections(pod, node, nodes, state, namespace_labels=namespace_labels):
            violations.append(Violation(r.invariant, pod.ref, f"bound to {node.name} although {r}"))
        state.append(pod)
    final = [p for p in state if not p.terminal]
    state_violations = [
        *check_capacity(nodes, final),
        *check_host_ports(final),
        *check_anti_affinity(nodes, final, namespace_labels=namespace_labels),
    ]
    findings, not_judged = _judge_pending(nodes, final, pending, namespace_labels)
    return PlacementReport(violations, state_violations, findings, not_judged)


def _judge_pending(
    nodes: Sequence[NodeView],
    final: list[PodView],
    pending: Sequence[PodView],
    ns: Mapping[str, Mapping[str, str]],
) -> tuple[list[PendingFinding], dict[str, str]]:
    findings: list[PendingFinding] = []
    not_judged: dict[str, str] = {}
    in_flux = sorted(p.key for p in final if p.terminating)
    by_name = {n.name: n for n in nodes}
    candidates: list[PodView] = []
    for p in pending:
        if p.scheduling_gates:
            not_judged[p.key] = f"scheduling gates {list(p.scheduling_gates)}"
        elif p.scheduler_name != DEFAULT_SCHEDULER:
            not_judged[p.key] = f"scheduler {p.scheduler_name!r}"
        elif p.nominated_node_name:
            not_judged[p.key] = f"preemption in progress (nominated to {p.nominated_node_name})"
        elif in_flux:
            not_judged[p.key] = f"pods terminating: {in_flux}"
        else:
            candidates.append(p)
    nominated = [p for p in pending if p.nominated_node_name in by_name]
    for p in candidates:
        ahead = [bind(q, q.nominated_node_name) for q in nominated if q.priority >= p.priority]
        feasible = feasible_nodes(p, nodes, final, namespace_labels=ns) & feasible_nodes(
            p, nodes, [*final, *ahead], namespace_labels=ns
        )
        if not feasible:
            continue
        rivals = [q for q in candidates if q.key != p.key]
        robust = frozenset(
            n
            for n in feasible
            if _survives_rivals(p, by_name[n], nodes=nodes, final=final, rivals=rivals, ns=ns)
        )
        if robust:
            findings.append(PendingFinding(p.ref, robust))
        else:
            not_judged[p.key] = f"competes with pending {[q.key for q in rivals]} for {sorted(feasible)}"
    return findings, not_judged


def _survives_rivals(
    pod: PodView,
    node: NodeView,
    *,
    nodes: Sequence[NodeView],
    final: list[PodView],
    rivals: list[PodView],
    ns: Mapping[str, Mapping[str, str]],
) -> bool:
    """Is ``node`` still feasible for ``pod`` wherever any single rival pending pod could go?"""
    for q in rivals:
        for m in feasible_nodes(q, nodes, final, namespace_labels=ns):
            if rejections(pod, node, nodes, [*final, bind(q, m)], namespace_labels=ns):
                return False
    return True


def check_static_placement(nodes: Sequence[NodeView], pods: Sequence[PodView]) -> list[Violation]:
    """S1/S2/S10 on any state: every bound pod's node satisfies its selector, affinity, taints.

    These filters do not depend on other pods, so no ordering is needed. NoExecute taints added
    after binding evict (S3) rather than forbid; judge those with `check_noexecute_eviction`.
    """
    by_name = {n.name: n for n in nodes}
    out: list[Violation] = []
    for pod in pods:
        node = by_name.get(pod.node_name)
        if node is None:
            continue
        for r in static_rejections(pod, node):
            out.append(Violation(r.invariant, pod.ref, f"runs on {node.name} although {r}"))
    return out


def check_pending_unschedulable(pod: PodView, *, invariant: str = "S1") -> list[Violation]:
    """A pod that must not schedule is unbound with PodScheduled=False, reason Unschedulable."""
    if pod.node_name:
        return [Violation(invariant, pod.ref, f"expected Pending, but bound to {pod.node_name}")]
    cond = pod.condition("PodScheduled")
    if cond is None or cond.status != "False" or cond.reason != "Unschedulable":
        got = "absent" if cond is None else f"{cond.status}/{cond.reason}"
        return [Violation(invariant, pod.ref, f"PodScheduled is {got}, expected False/Unschedulable")]
    return []


def check_capacity(nodes: Sequence[NodeView], pods: Sequence[PodView]) -> list[Violation]:
    """S4: on every node Σ effective requests of non-terminal pods ≤ allocatable, and pod count."""
    out: list[Violation] = []
    for node in nodes:
        on_node = [p for p in pods if p.node_name == node.name and not p.terminal]
        used = node_requested(on_node)
        for resource, amount in sorted(used.items()):
            limit = node.allocatable.get(resource, 0)
            if amount > 0 and amount > limit:
                out.append(
                    Violation(
                        "S4",
                        node.ref,
                        f"{resource} requested {format_amount(resource, amount)} > allocatable "
                        f"{format_amount(resource, limit)} by {sorted(p.key for p in on_node)}",
                    )
                )
        if PODS in node.allocatable and len(on_node) > node.allocatable[PODS]:
            out.append(
                Violation("S4", node.ref, f"{len(on_node)} pods > allocatable {node.allocatable[PODS]}")
            )
    return out


def check_request_above_largest_node(pod: PodView, nodes: Sequence[NodeView]) -> list[Violation]:
    """S4: a pod requesting more than the largest node's allocatable must stay Pending."""
    too_big = [
        r
        for r, amount in pod.requests.items()
        if amount > 0 and all(amount > n.allocatable.get(r, 0) for n in nodes)
    ]
    if not too_big:
        return [Violation("S4", pod.ref, "precondition: the request fits some node; pick a larger one")]
    return check_pending_unschedulable(pod, invariant="S4")


def check_host_ports(pods: Sequence[PodView]) -> list[Violation]:
    """S5: no two pods on one node hold clashing (hostIP, protocol, hostPort) triples."""
    out: list[Violation] = []
    live = [p for p in pods if p.node_name and not p.terminal]
    for i, a in enumerate(live):
        for b in live[i + 1 :]:
            if a.node_name != b.node_name:
                continue
            for pa in a.host_ports:
                for pb in b.host_ports:
                    if ports_conflict(pa, pb):
                        out.append(
                            Violation(
                                "S5",
                                a.ref,
                                f"hostPort {pa.host_ip or '0.0.0.0'}:{pa.host_port}/{pa.protocol} "
                                f"clashes with {b.key} ({pb.host_ip or '0.0.0.0'}) on {a.node_name}",
                            )
                        )
    return out


def check_anti_affinity(
    nodes: Sequence[NodeView],
    pods: Sequence[PodView],
    *,
    namespace_labels: Mapping[str, Mapping[str, str]] = _NO_NS,
) -> list[Violation]:
    """S7: no bound pod shares a topology value with a pod its required anti-affinity selects."""
    by_name = {n.name: n for n in nodes}
    placed = [(p, by_name[p.node_name]) for p in pods if p.node_name in by_name and not p.terminal]
    out: list[Violation] = []
    for p, pn in placed:
        for t in p.affinity.pod_anti_affinity:
            clash = sorted(
                q.key
                for q, qn in placed
                if q.key != p.key
                and t.selects(
                    owner_namespace=p.namespace,
                    namespace=q.namespace,
                    labels=q.labels,
                    namespace_labels=namespace_labels,
                )
                and same_domain(pn, qn, t.topology_key)
            )
            if clash:
                where = pn.labels[t.topology_key]
                out.append(
                    Violation("S7", p.ref, f"shares {t.topology_key}={where} with anti-affine {clash}")
                )
    return out


def check_affinity_colocated(
    nodes: Sequence[NodeView],
    pods: Sequence[PodView],
    *,
    namespace_labels: Mapping[str, Mapping[str, str]] = _NO_NS,
) -> list[Violation]:
    """S7: each pod with required affinity shares every term's domain with a pod the term selects.

    The first pod of a self-affine group is exempt when it is the only pod the terms select.
    """
    by_name = {n.name: n for n in nodes}
    placed = [(p, by_name[p.node_name]) for p in pods if p.node_name in by_name and not p.terminal]
    out: list[Violation] = []
    for p, pn in placed:
        for t in p.affinity.pod_affinity:
            selected = [
                (q, qn)
                for q, qn in placed
                if q.key != p.key
                and t.selects(
                    owner_namespace=p.namespace,
                    namespace=q.namespace,
                    labels=q.labels,
                    namespace_labels=namespace_labels,
                )
            ]
            if not selected:
                continue
            if not any(same_domain(pn, qn, t.topology_key) for _, qn in selected):
                value = pn.labels.get(t.topology_key, "<unset>")
                others = sorted(f"{q.key}@{qn.labels.get(t.topology_key, '<unset>')}" for q, qn in selected)
                out.append(Violation("S7", p.ref, f"{t.topology_key}={value} shared with none of {others}"))
    return out


def check_nothing_on_cordoned(
    nodes: Sequence[NodeView], pods: Sequence[PodView], *, created_after: Mapping[str, float]
) -> list[Violation]:
    """S10: no pod created after its node was cordoned lands there (unless it tolerates cordon).

    ``created_after`` maps node name → epoch seconds of the cordon; pods carry creationTimestamp.
    """
    by_name = {n.name: n for n in nodes}
    out: list[Violation] = []
    for pod in pods:
        cordoned_at = created_after.get(pod.node_name)
        created = pod.meta.creation_timestamp
        if cordoned_at is None or created is None or created.timestamp() < cordoned_at:
            continue
        if not tolerated(UNSCHEDULABLE_TAINT, pod.tolerations) and pod.node_name in by_name:
            out.append(Violation("S10", pod.ref, f"created after cordon, yet bound to {pod.node_name}"))
    return out


def check_topology_spread(
    template: PodView, pods: Sequence[PodView], nodes: Sequence[NodeView]
) -> list[Violation]:
    """S6: for each DoNotSchedule constraint of ``template`` (the workload's pod template), the
    matching pods' max - min count over eligible domains is ≤ maxSkew (min is 0 while there are
    fewer eligible domains than minDomains). Call it after every scale step.
    """
    bound = [p for p in pods if p.node_name and not p.terminal]
    out: list[Violation] = []
    for c in template.topology_spread:
        if not c.hard:
            continue
        counts = domain_counts(template, c, nodes, bound)
        if not counts:
            continue
        skew = max(counts.values()) - global_minimum(c, counts)
        if skew > c.max_skew:
            out.append(
                Violation(
                    "S6",
                    template.ref,
                    f"skew {skew} > maxSkew {c.max_skew} over {c.topology_key}: "
                    f"{dict(sorted(counts.items()))}",
                )
            )
    return out
