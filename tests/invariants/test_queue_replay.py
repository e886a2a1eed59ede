"""The queue-order judge: accepts what the scheduler's queue allows, rejects what it cannot."""

from __future__ import annotations

from itertools import combinations

from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from meshcert.invariants.placement import check_placements
from meshcert.invariants.queue_replay import check_queue_placements, replay_queue
from meshcert.invariants.scheduling import bind, feasible_nodes
from meshcert.invariants.strategies import Scenario, placements
from meshcert.invariants.views import PodView

from .builders import co, node, pod
from .test_placement_properties import PROPERTY

#: A failing replay searches every queue order (thousands of states), and the example's setup
#: tries every subset of the other pods: fewer examples than the cheap properties keep it ~10 s.
EXHAUSTIVE = settings(PROPERTY, max_examples=50)

NODES = [node("a", zone="z1"), node("b", zone="z2"), node("c", zone="z3")]


def test_bindings_committed_in_swapped_order_are_accepted() -> None:
    """CI's false S7: db decided first, web (affine to db) next, web's binding committed first."""
    db, web = pod("db", on="b", app="db"), pod("web", on="b", affinity=co("db"))
    assert check_placements(NODES, [web, db]).violations  # the commit-order replay blames web
    assert replay_queue(NODES, [db, web]) == []


def test_affinity_ignored_is_rejected() -> None:
    db, web = pod("db", on="b", app="db"), pod("web", on="a", affinity=co("db"))
    (v,) = replay_queue(NODES, [db, web])
    assert v.invariant == "S7" and v.ref == web.ref and "bound to a although InterPodAffinity" in v.message


def test_a_pod_unschedulable_at_its_turn_may_bind_after_a_later_pod() -> None:
    web = pod("web", on="c", affinity=co("db"))  # no db pod yet: waits in the queue
    db = pod("db", on="c", app="db")
    assert replay_queue(NODES, [web, db]) == []
    (v,) = replay_queue(NODES, [pod("web", on="a", affinity=co("db")), db])
    assert v.invariant == "S7" and "when retried" in v.message


def test_a_pod_feasible_at_its_turn_is_judged_at_its_turn() -> None:
    """Feasible only on a at its turn (db there already) yet bound to b, where a db created
    after it went: the commit-order replay accepts that, the queue model does not."""
    early_db = pod("db0", on="a", app="db")
    web = pod("web", on="b", affinity=co("db"))
    late_db = pod("db1", on="b", app="db")
    assert check_placements(NODES, [late_db, web], preexisting=[early_db]).violations == []
    (v,) = replay_queue(NODES, [web, late_db], preexisting=[early_db])
    assert v.ref == web.ref and "at its turn" in v.message


def test_a_pod_left_unbound_while_feasible_at_its_turn_is_s1() -> None:
    (v,) = replay_queue(NODES, [pod("web")])
    assert v.invariant == "S1" and "left unbound although feasible on {a, b, c}" in v.message


def test_unknown_node_is_s1() -> None:
    (v,) = replay_queue(NODES, [pod("web", on="z")])
    assert v.invariant == "S1" and "unknown node 'z'" in v.message


def test_report_keeps_the_order_free_checks() -> None:
    crowded = [pod(f"w{i}", on="a", cpu=1500) for i in range(2)]  # 3000m on a 2000m node
    report = check_queue_placements(NODES, crowded)
    assert report.violations and any(v.invariant == "S4" for v in report.state_violations)


def _creation_order(scenario: Scenario) -> list[PodView]:
    """The generator names pods pod-<i> in creation order; bound ones carry their node."""
    everything = [*scenario.bound_in_order, *scenario.pending]
    return sorted(everything, key=lambda p: int(p.name.split("-")[1]))


@PROPERTY
@given(placements())
def test_accepts_every_placement_the_oracle_generates(scenario: Scenario) -> None:
    # placements() binds in rounds: creation order first, then the waiting pods: a queue order.
    report = check_queue_placements(scenario.nodes, _creation_order(scenario))
    assert report.all_violations == [] and report.unexpectedly_pending == []


@EXHAUSTIVE
@given(placements(), st.data())
def test_rejects_a_pod_moved_to_a_node_infeasible_in_every_order(
    scenario: Scenario, data: st.DataObject
) -> None:
    created = _creation_order(scenario)
    bound = [p for p in created if p.node_name]
    assume(bound)
    victim = data.draw(st.sampled_from(bound), label="moved pod")
    others = [p for p in bound if p.key != victim.key]
    # infeasible whichever of the other pods are placed: then no order can explain the binding
    never = {n.name for n in scenario.nodes}
    for r in range(len(others) + 1):
        for subset in combinations(others, r):
            never -= feasible_nodes(victim, scenario.nodes, subset)
    assume(never)
    target = data.draw(st.sampled_from(sorted(never)), label="infeasible node")
    moved = [bind(p, target) if p.key == victim.key else p for p in created]
    violations = replay_queue(scenario.nodes, moved)
    assert any(v.ref == victim.ref for v in violations), violations
    event(f"moved pod rejected as {violations[0].invariant}")
