from __future__ import annotations

from dataclasses import replace

import pytest

from meshcert.invariants.placement_spec import Affinity, Taint, TaintEffect, Toleration
from meshcert.invariants.scheduling import feasible_nodes, rejections
from meshcert.invariants.selectors import LabelSelector, NodeSelector, NodeSelectorTerm, Operator, Requirement
from meshcert.invariants.views import NodeView, PodView

from .builders import HOST, ZONE, anti, co, node, pod, spread, ts
from .recorded import items

GPU = Taint("dedicated", TaintEffect.NO_SCHEDULE, "gpu")
DRAIN = Taint("maintenance", TaintEffect.NO_EXECUTE)
SOFT = Taint("soft", TaintEffect.PREFER_NO_SCHEDULE)


def affinity(*reqs: Requirement, fields: tuple[Requirement, ...] = ()) -> Affinity:
    return Affinity(node_required=NodeSelector((NodeSelectorTerm(reqs, fields),)))


def test_recorded_cluster_control_plane_taint() -> None:
    nodes = [NodeView.from_api(n) for n in items("nodes.json")]
    web = PodView.from_api(items("pods-web.json")[0])
    assert feasible_nodes(web, nodes, []) == {"meshcert-worker", "meshcert-worker2"}
    (rej,) = rejections(web, nodes[0], nodes, [])
    assert rej.invariant == "S2" and "control-plane" in rej.reason


@pytest.mark.parametrize(
    ("req", "expected"),
    [
        (Requirement("disk", Operator.IN, ("ssd",)), {"a"}),
        (Requirement("disk", Operator.NOT_IN, ("ssd",)), {"b", "c"}),  # NotIn matches absent keys
        (Requirement("gen", Operator.EXISTS), {"a", "b"}),
        (Requirement("gen", Operator.DOES_NOT_EXIST), {"c"}),
        (Requirement("gen", Operator.GT, ("2",)), {"b"}),
        (Requirement("gen", Operator.LT, ("3",)), {"a"}),
        (Requirement("gen", Operator.GT, ("x",)), set()),  # non-integer never matches
    ],
)
def test_node_affinity_operators(req: Requirement, expected: set[str]) -> None:
    nodes = [
        node("a", labels={"disk": "ssd", "gen": "2"}),
        node("b", labels={"disk": "hdd", "gen": "5"}),
        node("c"),
    ]
    assert feasible_nodes(pod("p", affinity=affinity(req)), nodes, []) == expected


def test_match_fields_terms_or_and_empty_term() -> None:
    nodes = [node("a"), node("b"), node("c")]
    by_name = Requirement("metadata.name", Operator.IN, ("b",))
    assert feasible_nodes(pod("p", affinity=affinity(fields=(by_name,))), nodes, []) == {"b"}
    two_terms = Affinity(
        node_required=NodeSelector(
            (
                NodeSelectorTerm(match_fields=(by_name,)),
                NodeSelectorTerm((Requirement(HOST, Operator.IN, ("c",)),)),
            )
        )
    )
    assert feasible_nodes(pod("p", affinity=two_terms), nodes, []) == {"b", "c"}
    empty = Affinity(node_required=NodeSelector((NodeSelectorTerm(),)))
    assert feasible_nodes(pod("p", affinity=empty), nodes, []) == set()


def test_node_selector() -> None:
    nodes = [node("a", labels={"disk": "ssd"}), node("b")]
    assert feasible_nodes(pod("p", node_selector={"disk": "ssd"}), nodes, []) == {"a"}


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        (None, {"plain", "soft"}),
        (Toleration("dedicated", "Equal", "gpu", "NoSchedule"), {"plain", "soft", "gpu"}),
        (Toleration("dedicated", "Equal", "tpu", "NoSchedule"), {"plain", "soft"}),
        (Toleration("dedicated", "Exists"), {"plain", "soft", "gpu"}),
        (Toleration("maintenance", "Exists", effect="NoSchedule"), {"plain", "soft"}),  # wrong effect
        (Toleration(operator="Exists"), {"plain", "soft", "gpu", "drain", "cordoned"}),  # tolerates all
    ],
)
def test_taints_and_tolerations(toleration: Toleration | None, expected: set[str]) -> None:
    nodes = [
        node("plain"),
        node("soft", taints=(SOFT,)),
        node("gpu", taints=(GPU,)),
        node("drain", taints=(DRAIN,)),
        node("cordoned", unschedulable=True),
    ]
    tolerations = (toleration,) if toleration else ()
    assert feasible_nodes(pod("p", tolerations=tolerations), nodes, []) == expected


def test_resource_fit_counts_placed_pods_but_not_terminal_ones() -> None:
    nodes = [node("a", cpu=1000), node("b", cpu=500)]
    placed = [pod("x", on="a", cpu=600)]
    assert feasible_nodes(pod("p", cpu=500), nodes, placed) == {"b"}
    assert feasible_nodes(pod("p", cpu=400), nodes, placed) == {"a", "b"}
    done = [pod("x", on="a", cpu=600, phase="Succeeded")]
    assert feasible_nodes(pod("p", cpu=1000), nodes, done) == {"a"}
    assert feasible_nodes(pod("p", cpu=1001), nodes, []) == set()
    (rej,) = rejections(pod("p", cpu=500), nodes[0], nodes, placed)
    assert rej.invariant == "S4" and "Insufficient cpu" in rej.reason and "400m" in rej.reason


def test_pod_count_limit() -> None:
    nodes = [node("a", pods=1)]
    assert feasible_nodes(pod("p"), nodes, [pod("x", on="a")]) == set()


@pytest.mark.parametrize(
    ("mine", "theirs", "conflict"),
    [
        (("", "TCP"), ("", "TCP"), True),
        (("10.0.0.1", "TCP"), ("10.0.0.2", "TCP"), False),
        (("10.0.0.1", "TCP"), ("0.0.0.0", "TCP"), True),
        (("", "TCP"), ("10.0.0.2", "TCP"), True),
        (("10.0.0.1", "TCP"), ("10.0.0.1", "UDP"), False),
        (("10.0.0.1", "UDP"), ("10.0.0.1", "UDP"), True),
    ],
)
def test_host_ports(mine: tuple[str, str], theirs: tuple[str, str], conflict: bool) -> None:
    nodes = [node("a")]
    existing = [pod("x", on="a", host_port=80, host_ip=theirs[0], protocol=theirs[1])]
    p = pod("p", host_port=80, host_ip=mine[0], protocol=mine[1])
    assert feasible_nodes(p, nodes, existing) == (set() if conflict else {"a"})


def test_pod_anti_affinity_is_symmetric() -> None:
    nodes = [node("a", zone="z1"), node("b", zone="z1"), node("c", zone="z2")]
    db = [pod("db-0", on="a", app="db")]
    assert feasible_nodes(pod("p", affinity=anti("db")), nodes, db) == {"b", "c"}
    assert feasible_nodes(pod("p", affinity=anti("db", ZONE)), nodes, db) == {"c"}
    guarded = [pod("db-0", on="a", app="db", affinity=anti("web", ZONE))]
    assert feasible_nodes(pod("web-0", app="web"), nodes, guarded) == {"c"}
    other_ns = [pod("db-0", on="a", app="db", ns="other")]
    assert feasible_nodes(pod("p", affinity=anti("db")), nodes, other_ns) == {"a", "b", "c"}


def test_pod_affinity_and_first_pod_exception() -> None:
    nodes = [node("a", zone="z1"), node("b", zone="z1"), node("c", zone="z2")]
    assert feasible_nodes(pod("p", affinity=co("db", ZONE)), nodes, [pod("db-0", on="a", app="db")]) == {
        "a",
        "b",
    }
    # no db anywhere and the pod is not a db: unschedulable
    assert feasible_nodes(pod("p", affinity=co("db", ZONE)), nodes, []) == set()
    # first pod of a self-affine group may go anywhere
    assert feasible_nodes(pod("w", app="web", affinity=co("web")), nodes, []) == {"a", "b", "c"}
    # namespaces listed in the term widen the search
    term_ns = Affinity(
        pod_affinity=(co("db").pod_affinity[0].__class__(HOST, LabelSelector({"app": "db"}), ("other",)),)
    )
    assert feasible_nodes(pod("p", affinity=term_ns), nodes, [pod("db-0", on="c", app="db", ns="other")]) == {
        "c"
    }


def test_namespace_selector() -> None:
    nodes = [node("a"), node("b")]
    term = (
        co("db")
        .pod_affinity[0]
        .__class__(HOST, LabelSelector({"app": "db"}), (), LabelSelector({"team": "x"}))
    )
    p = pod("p", affinity=Affinity(pod_affinity=(term,)))
    existing = [pod("db-0", on="b", app="db", ns="team-x")]
    assert feasible_nodes(p, nodes, existing, namespace_labels={"team-x": {"team": "x"}}) == {"b"}
    assert feasible_nodes(p, nodes, existing, namespace_labels={"team-x": {"team": "y"}}) == set()


def test_topology_spread_max_skew() -> None:
    nodes = [node("a", zone="z1"), node("b", zone="z2"), node("c", zone="z3")]
    placed = [pod("w0", on="a"), pod("w1", on="b")]
    p = pod("w2", spread=(spread("web"),))
    assert feasible_nodes(p, nodes, placed) == {"c"}
    assert feasible_nodes(pod("w2", spread=(spread("web", max_skew=2),)), nodes, placed) == {"a", "b", "c"}
    (rej,) = rejections(p, nodes[0], nodes, placed)
    assert rej.invariant == "S6" and "skew 2 > maxSkew 1" in rej.reason


def test_topology_spread_min_domains_and_eligibility() -> None:
    nodes = [node("a", zone="z1"), node("b", zone="z2")]
    placed = [pod("w0", on="a"), pod("w1", on="b")]
    # only 2 zones but minDomains 3: global minimum is 0, so 1 + 1 > 1 everywhere
    assert feasible_nodes(pod("w2", spread=(spread("web", min_domains=3),)), nodes, placed) == set()
    # a node without the topology key is rejected, and not a domain
    unlabeled = NodeView(meta=node("x").meta.__class__(name="x", labels={}), allocatable={"cpu": 1000})
    assert feasible_nodes(pod("w2", spread=(spread("web"),)), [*nodes, unlabeled], placed) == {"a", "b"}
    # nodeAffinityPolicy Honor: a node the pod cannot use is no domain (z2 excluded → no skew issue)
    only_a = pod("w2", spread=(spread("web"),), node_selector={ZONE: "z1"})
    assert feasible_nodes(only_a, nodes, placed) == {"a"}


def test_spread_ignores_terminating_and_other_namespaces() -> None:
    nodes = [node("a", zone="z1"), node("b", zone="z2")]
    live = pod("w0", on="a")
    gone = replace(live, meta=replace(live.meta, deletion_timestamp=ts(0)))
    other_ns = pod("w1", on="a", ns="other")
    assert feasible_nodes(pod("w2", spread=(spread("web"),)), nodes, [live, other_ns]) == {"b"}
    assert feasible_nodes(pod("w2", spread=(spread("web"),)), nodes, [gone, other_ns]) == {"a", "b"}
