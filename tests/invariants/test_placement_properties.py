"""Property tests: the checkers accept every placement the oracle allows and reject injected ones."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from meshcert.invariants.placement import check_placements, check_topology_spread
from meshcert.invariants.scheduling import bind, feasible_nodes
from meshcert.invariants.strategies import Scenario, placements

from .builders import node, pod, spread

PROPERTY = settings(
    max_examples=200, deadline=None, derandomize=False, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(placements())
def test_checkers_accept_oracle_placements(scenario: Scenario) -> None:
    report = check_placements(scenario.nodes, scenario.bound_in_order, pending=scenario.pending)
    assert report.violations == []
    assert report.state_violations == []  # independent order-free checks agree with the replay
    assert report.unexpectedly_pending == []  # the model retried every pending pod to a fixpoint


@PROPERTY
@given(placements(), st.data())
def test_checkers_reject_a_moved_pod(scenario: Scenario, data: st.DataObject) -> None:
    assume(scenario.bound_in_order)
    i = data.draw(st.integers(0, len(scenario.bound_in_order) - 1), label="moved pod index")
    victim = scenario.bound_in_order[i]
    before = scenario.bound_in_order[:i]
    infeasible = sorted({n.name for n in scenario.nodes} - feasible_nodes(victim, scenario.nodes, before))
    assume(infeasible)
    target = data.draw(st.sampled_from(infeasible), label="infeasible node")
    moved = [*before, bind(victim, target), *scenario.bound_in_order[i + 1 :]]
    report = check_placements(scenario.nodes, moved, pending=scenario.pending)
    named = [v for v in report.violations if v.ref == victim.ref]
    assert named, report.violations
    event(f"moved pod rejected as {named[0].invariant}")  # shows which filters the run exercised


@PROPERTY
@given(
    zones=st.lists(st.sampled_from(["z1", "z2", "z3", "z4"]), min_size=1, max_size=6),
    replicas=st.integers(1, 12),
    max_skew=st.integers(1, 3),
    min_domains=st.one_of(st.none(), st.integers(1, 5)),
    data=st.data(),
)
def test_spread_holds_after_every_scale_step(
    zones: list[str], replicas: int, max_skew: int, min_domains: int | None, data: st.DataObject
) -> None:
    nodes = [node(f"n{i}", zone=z) for i, z in enumerate(zones)]
    template = pod("tpl", spread=(spread("web", max_skew=max_skew, min_domains=min_domains),))
    placed = []
    for r in range(replicas):
        feasible = sorted(feasible_nodes(template, nodes, placed))
        if not feasible:
            break
        placed.append(
            bind(pod(f"w{r}", spread=template.topology_spread), data.draw(st.sampled_from(feasible)))
        )
        assert check_topology_spread(template, placed, nodes) == []
