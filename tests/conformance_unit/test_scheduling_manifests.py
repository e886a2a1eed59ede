"""Views → manifests → views is the identity for everything the strategies generate."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshcert.invariants import strategies
from meshcert.invariants.views import NodeView, PodView
from meshcert.scheduling_manifests import api_valid_pod, node_manifest, pod_manifest, quantity


@settings(max_examples=200, deadline=None)
@given(strategies.pods(max_size=8))
def test_pod_round_trip(pods: list[PodView]) -> None:
    for pod in pods:
        back = PodView.from_api(pod_manifest(pod))
        # A zero request is no request (NodeResourcesFit never fails it): the manifest omits it.
        assert back.requests == {k: v for k, v in pod.requests.items() if v}
        assert back.host_ports == pod.host_ports
        assert back.node_selector == pod.node_selector
        assert back.affinity == pod.affinity
        assert back.tolerations == pod.tolerations
        assert back.topology_spread == pod.topology_spread
        assert back.labels == pod.labels and back.key == pod.key


@given(strategies.pods(max_size=3), st.sampled_from(["a", "b"]))
def test_extra_node_selector_is_added(pods: list[PodView], pool: str) -> None:
    for pod in pods:
        back = PodView.from_api(pod_manifest(pod, extra_node_selector={"pool": pool}))
        assert back.node_selector == {**pod.node_selector, "pool": pool}


@settings(max_examples=200, deadline=None)
@given(strategies.nodes(max_size=5))
def test_node_round_trip(nodes: list[NodeView]) -> None:
    for node in nodes:
        raw = node_manifest(node, extra_labels={"pool": "on"})
        raw["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        back = NodeView.from_api(raw)
        assert back.allocatable == node.allocatable
        assert back.taints == node.taints
        assert back.unschedulable == node.unschedulable
        assert back.labels == {**node.labels, "pool": "on"}


def test_cpu_is_written_in_millicores() -> None:
    assert quantity("cpu", 1500) == "1500m"
    assert quantity("memory", 2**20) == "1048576"


@given(strategies.pods(max_size=8))
def test_api_valid_pod_has_single_value_field_selectors(pods: list[PodView]) -> None:
    for pod in map(api_valid_pod, pods):
        required = pod.affinity.node_required
        for term in required.terms if required else ():
            assert all(len(r.values) == 1 for r in term.match_fields if r.operator in ("In", "NotIn"))
