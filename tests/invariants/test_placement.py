from __future__ import annotations

from dataclasses import replace

from meshcert.invariants.placement import (
    check_affinity_colocated,
    check_anti_affinity,
    check_capacity,
    check_host_ports,
    check_nothing_on_cordoned,
    check_pending_unschedulable,
    check_placements,
    check_request_above_largest_node,
    check_static_placement,
    check_topology_spread,
)
from meshcert.invariants.placement_spec import Taint, TaintEffect
from meshcert.invariants.views import Condition, NodeView, PodView

from .builders import ZONE, anti, co, node, pod, spread, ts
from .recorded import items

NODES = [node("a", zone="z1", cpu=1000), node("b", zone="z2", cpu=1000), node("c", zone="z3", cpu=1000)]


def test_recorded_placement_is_allowed() -> None:
    nodes = [NodeView.from_api(n) for n in items("nodes.json")]
    pods = [PodView.from_api(p) for p in items("pods-web.json")]
    report = check_placements(nodes, pods)
    assert report.all_violations == [] and report.unexpectedly_pending == []


def test_recorded_pod_on_control_plane_is_s2() -> None:
    nodes = [NodeView.from_api(n) for n in items("nodes.json")]
    web = replace(PodView.from_api(items("pods-web.json")[0]), node_name="meshcert-control-plane")
    (v,) = check_placements(nodes, [web]).violations
    assert v.invariant == "S2" and v.ref == web.ref and "control-plane" in v.message


def test_replay_respects_bind_order() -> None:
    first, second = pod("w0", on="a", cpu=600), pod("w1", on="a", cpu=600)
    report = check_placements(NODES, [first, second])
    (v,) = report.violations
    assert v.invariant == "S4" and v.ref == second.ref and "Insufficient cpu" in v.message
    (s,) = report.state_violations
    assert s.invariant == "S4" and "1200m > allocatable 1000m" in s.message


def test_order_dependent_spread_judged_in_order() -> None:
    pods = [pod(f"w{i}", on=n, spread=(spread("web"),)) for i, n in enumerate("abca")]
    assert check_placements(NODES, pods).all_violations == []
    skewed = [pod(f"w{i}", on=n, spread=(spread("web"),)) for i, n in enumerate("aab")]
    (v,) = check_placements(NODES, skewed).violations
    assert v.invariant == "S6" and v.ref.name == "w1"


def test_unexpectedly_pending_reported() -> None:
    stuck = pod("p", cpu=500, conditions=(Condition("PodScheduled", "False", "Unschedulable"),))
    report = check_placements(NODES, [pod("w0", on="a", cpu=900)], pending=[stuck])
    (finding,) = report.unexpectedly_pending
    assert finding.feasible == {"b", "c"}
    assert finding.as_violation("S4").invariant == "S4"
    assert "unexpectedly Pending" in str(finding.as_violation("S4"))


def test_pending_not_judged_when_ambiguous() -> None:
    one = [node("a", cpu=1000)]
    rivals = [pod("p", cpu=600), pod("q", cpu=600)]
    report = check_placements(one, [], pending=rivals)
    assert report.unexpectedly_pending == [] and set(report.not_judged) == {"default/p", "default/q"}
    nominated = pod("hi", cpu=600, priority=10, nominated_node_name="a")
    low = pod("lo", cpu=600)
    report = check_placements(one, [], pending=[nominated, low])
    assert report.unexpectedly_pending == []
    assert "preemption" in report.not_judged["default/hi"]
    gated = pod("g", scheduling_gates=("example.com/wait",))
    terminating = replace(pod("t", on="a"), meta=replace(pod("t").meta, deletion_timestamp=ts(0)))
    report = check_placements(one, [terminating], pending=[gated, pod("x")])
    assert "gates" in report.not_judged["default/g"] and "terminating" in report.not_judged["default/x"]


def test_pending_infeasible_is_fine() -> None:
    report = check_placements(NODES, [], pending=[pod("huge", cpu=5000)])
    assert report.unexpectedly_pending == [] and report.not_judged == {}


def test_check_static_placement() -> None:
    tainted = node("t", taints=(Taint("dedicated", TaintEffect.NO_SCHEDULE, "gpu"),), labels={"disk": "hdd"})
    assert check_static_placement(NODES, [pod("p", on="a")]) == []
    bad = pod("p", on="t", node_selector={"disk": "ssd"})
    ids = sorted(v.invariant for v in check_static_placement([tainted], [bad]))
    assert ids == ["S1", "S2"]


def test_check_pending_unschedulable() -> None:
    good = pod("p", conditions=(Condition("PodScheduled", "False", "Unschedulable"),))
    assert check_pending_unschedulable(good) == []
    (v,) = check_pending_unschedulable(pod("p", on="a"), invariant="S2")
    assert v.invariant == "S2" and "bound to a" in v.message
    (v,) = check_pending_unschedulable(pod("p"))
    assert "PodScheduled is False/" in v.message or "absent" in v.message


def test_request_above_largest_node() -> None:
    big = pod("big", cpu=5000, conditions=(Condition("PodScheduled", "False", "Unschedulable"),))
    assert check_request_above_largest_node(big, NODES) == []
    (v,) = check_request_above_largest_node(replace(big, node_name="a"), NODES)
    assert v.invariant == "S4"
    (v,) = check_request_above_largest_node(pod("small", cpu=10), NODES)
    assert "precondition" in v.message


def test_capacity() -> None:
    assert check_capacity(NODES, [pod("x", on="a", cpu=1000)]) == []
    (v,) = check_capacity(NODES, [pod("x", on="a", cpu=700), pod("y", on="a", cpu=700)])
    assert v.invariant == "S4" and "default/x" in v.message and "default/y" in v.message


def test_host_ports_state() -> None:
    assert check_host_ports([pod("x", on="a", host_port=80), pod("y", on="b", host_port=80)]) == []
    assert (
        check_host_ports(
            [
                pod("x", on="a", host_port=80, host_ip="10.0.0.1"),
                pod("y", on="a", host_port=80, host_ip="10.0.0.2"),
            ]
        )
        == []
    )
    (v,) = check_host_ports(
        [pod("x", on="a", host_port=80), pod("y", on="a", host_port=80, host_ip="10.0.0.2")]
    )
    assert v.invariant == "S5" and "default/y" in v.message


def test_anti_affinity_state() -> None:
    spread_out = [
        pod("w0", on="a", affinity=anti("web", ZONE)),
        pod("w1", on="b", affinity=anti("web", ZONE)),
    ]
    assert check_anti_affinity(NODES, spread_out) == []
    together = [pod("w0", on="a", affinity=anti("web")), pod("w1", on="a")]
    (v,) = check_anti_affinity(NODES, together)
    assert v.invariant == "S7" and "default/w1" in v.message


def test_affinity_colocated_state() -> None:
    good = [pod("db", on="a", app="db"), pod("w0", on="a", affinity=co("db"))]
    assert check_affinity_colocated(NODES, good) == []
    first_of_group = [pod("w0", on="a", affinity=co("web"))]
    assert check_affinity_colocated(NODES, first_of_group) == []
    (v,) = check_affinity_colocated(
        NODES, [pod("db", on="a", app="db"), pod("w0", on="b", affinity=co("db"))]
    )
    assert v.invariant == "S7" and "default/db@a" in v.message


def test_topology_spread_state() -> None:
    template = pod("tpl", spread=(spread("web"),))
    even = [pod(f"w{i}", on=n) for i, n in enumerate("abc")]
    assert check_topology_spread(template, even, NODES) == []
    (v,) = check_topology_spread(template, [pod("w0", on="a"), pod("w1", on="a")], NODES)
    assert v.invariant == "S6" and "skew 2 > maxSkew 1" in v.message and "'z3': 0" in v.message


def test_nothing_on_cordoned() -> None:
    cordoned = [node("a", unschedulable=True), node("b")]
    old = pod("old", on="a", meta=replace(pod("old").meta, creation_timestamp=ts(100)))
    new = pod("new", on="a", meta=replace(pod("new").meta, creation_timestamp=ts(300)))
    assert check_nothing_on_cordoned(cordoned, [old], created_after={"a": 200}) == []
    (v,) = check_nothing_on_cordoned(cordoned, [old, new], created_after={"a": 200})
    assert v.invariant == "S10" and v.ref == new.ref
