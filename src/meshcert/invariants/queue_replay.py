"""Judging a batch of pods in the orders kube-scheduler's queue can have decided them in.

Why: `placement.check_placements` replays bindings in the order a pod watch saw them commit, but
that is not the order the scheduler decided in. The scheduler decides one pod at a time and
assumes it in its cache at once, then binds it in a goroutine of its own; the next pod's
decision already counts it. Two pods decided back to back bind concurrently, and their commits
can swap. Replayed in commit order, the second pod is then judged without the first: a pod whose
required affinity was met by the pod decided just before it looks as if the scheduler had
ignored the term (seen in CI: "bound to node-2 although InterPodAffinity: no matching pod in
node-2's domain", which passed when Hypothesis replayed the same example).

The queue model this module replays instead, for pods created one after another (equal
priority, so no preemption) on a scheduler whose cache has caught up with the cluster before the
first one (`meshcert.kube.scheduler_barrier`):

1. *First attempts follow creation order.* The active queue pops by priority, then by the time a
   pod was added, and the informer adds pods in creation order.
2. *A pod with a feasible node at its turn is bound there, at its turn.* Scheduling fails only
   when no node passes the filters.
3. *A pod with no feasible node at its turn waits* (unschedulable queue) and may be retried
   after any later decision, in any order with other waiting pods: retries follow cluster
   events and back-off timers, which the test does not observe.

`check_queue_placements` searches those orders (at most ``(n + 1) · 2ⁿ`` states for n pods, a few
thousand for the eight a property example creates) for one in which every binding passed the
filters. If none does, it reports the pods that failed in every order reaching them (or, when each
fitted in some order, the failure of the order that got furthest). Rule 2 makes this
stricter than the commit-order replay in one way: a pod bound to a node that only became
feasible later, while another node was feasible at its turn, is a violation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from meshcert.invariants.placement import PlacementReport, check_placements
from meshcert.invariants.scheduling import feasible_nodes, rejections
from meshcert.invariants.views import NodeView, PodView
from meshcert.invariants.violations import Violation

_NO_NS: Mapping[str, Mapping[str, str]] = {}


@dataclasses.dataclass
class _Failures:
    """Why orders failed, for the report: the pods no order could place, or the furthest order."""

    placed_somewhere: set[int] = dataclasses.field(default_factory=set)
    first: dict[int, list[Violation]] = dataclasses.field(default_factory=dict)
    furthest: tuple[int, list[Violation]] = (-1, [])

    def record(self, pod: int, placed: int, violations: list[Violation]) -> None:
        self.first.setdefault(pod, violations)
        if placed > self.furthest[0]:
            self.furthest = (placed, violations)

    def report(self) -> list[Violation]:
        """The pods that failed in every order that reached them; if each of them fitted in some
        order (the conflict is between orders, not one pod), the failure of the furthest one."""
        stuck = [i for i in sorted(self.first) if i not in self.placed_somewhere]
        return [v for i in stuck for v in self.first[i]] or self.furthest[1]


def replay_queue(
    nodes: Sequence[NodeView],
    created: Sequence[PodView],
    *,
    preexisting: Sequence[PodView] = (),
    namespace_labels: Mapping[str, Mapping[str, str]] = _NO_NS,
) -> list[Violation]:
    """[] if some queue order (module docstring) explains every binding of ``created`` (the pods
    in creation order, as they ended: bound or not); else the failures `_Failures.report` picks."""
    by_name = {n.name: n for n in nodes}
    unknown = [
        Violation("S1", p.ref, f"bound to unknown node {p.node_name!r}")
        for p in created
        if p.node_name and p.node_name not in by_name
    ]
    if unknown:
        return unknown
    base = [p for p in preexisting if p.node_name and not p.terminal]
    failures = _Failures()
    dead_ends: set[tuple[int, frozenset[int]]] = set()

    def rejected(pod: PodView, existing: list[PodView], when: str) -> list[Violation]:
        node = by_name[pod.node_name]
        return [
            Violation(r.invariant, pod.ref, f"bound to {node.name} although {r} ({when})")
            for r in rejections(pod, node, nodes, existing, namespace_labels=namespace_labels)
        ]

    def search(turn: int, placed: tuple[int, ...]) -> bool:
        key = (turn, frozenset(placed))
        if key in dead_ends:
            return False
        existing = [*base, *(created[i] for i in placed)]
        waiting = [i for i in range(turn) if created[i].node_name and i not in placed]
        if turn == len(created) and not waiting:
            return True
        if turn < len(created):
            pod = created[turn]
            feasible = feasible_nodes(pod, nodes, existing, namespace_labels=namespace_labels)
            if not feasible:  # rule 3: unschedulable at its turn, waits for a retry (or stays)
                if search(turn + 1, placed):
                    return True
            elif pod.node_name in feasible:  # rule 2
                failures.placed_somewhere.add(turn)
                if search(turn + 1, (*placed, turn)):
                    return True
            elif pod.node_name:
                failures.record(turn, len(placed), rejected(pod, existing, "at its turn in the queue"))
            else:
                where = ", ".join(sorted(feasible))
                message = f"left unbound although feasible on {{{where}}} at its turn in the queue"
                failures.record(turn, len(placed), [Violation("S1", pod.ref, message)])
        for i in waiting:  # rule 3: a retry of any waiting pod, before the next first attempt
            why = rejected(created[i], existing, "when retried after any later decision")
            if why:
                failures.record(i, len(placed), why)
                continue
            failures.placed_somewhere.add(i)
            if search(turn, (*placed, i)):
                return True
        dead_ends.add(key)
        return False

    return [] if search(0, ()) else failures.report()


def check_queue_placements(
    nodes: Sequence[NodeView],
    created: Sequence[PodView],
    *,
    preexisting: Sequence[PodView] = (),
    namespace_labels: Mapping[str, Mapping[str, str]] = _NO_NS,
) -> PlacementReport:
    """`check_placements`, with bindings judged by `replay_queue` instead of commit order; the
    order-independent final-state checks and the pending judgement are the same."""
    bound = [p for p in created if p.node_name]
    final = check_placements(
        nodes, [], pending=[p for p in created if not p.node_name], preexisting=[*preexisting, *bound],
        namespace_labels=namespace_labels,
    )  # fmt: skip
    order = replay_queue(nodes, created, preexisting=preexisting, namespace_labels=namespace_labels)
    return dataclasses.replace(final, violations=order)
