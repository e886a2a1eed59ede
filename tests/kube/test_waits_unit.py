"""State judgements and timeout messages of the wait_for_* family (no cluster)."""

from __future__ import annotations

import pytest
from kubernetes.client import (
    V1Deployment,
    V1DeploymentCondition,
    V1DeploymentSpec,
    V1DeploymentStatus,
    V1EndpointConditions,
    V1EndpointSlice,
    V1Node,
    V1NodeCondition,
    V1NodeStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodCondition,
    V1PodSpec,
    V1PodStatus,
)
from kubernetes.client import V1Endpoint as SliceEndpoint

from meshcert.errors import WaitTimeout
from meshcert.invariants.convergence import Observation
from meshcert.kube.client import KubeApiError
from meshcert.kube.waits import (
    Seen,
    _poll,
    deployment_available_state,
    deployment_rolled_out_state,
    endpoints_state,
    nodes_ready_state,
    pod_ready,
    pod_running,
    pods_state,
    ready_addresses,
)


def pod(name: str, phase: str = "Running", ready: bool = True, deleting: bool = False) -> V1Pod:
    return V1Pod(
        metadata=V1ObjectMeta(name=name, deletion_timestamp="2024-01-01T00:00:00Z" if deleting else None),
        spec=V1PodSpec(containers=[], node_name="n1"),
        status=V1PodStatus(phase=phase, conditions=[V1PodCondition(type="Ready", status=str(ready))]),
    )


def node(name: str, ready: bool = True) -> V1Node:
    return V1Node(
        metadata=V1ObjectMeta(name=name),
        status=V1NodeStatus(conditions=[V1NodeCondition(type="Ready", status=str(ready))]),
    )


def deployment(*, want: int = 2, generation: int = 2, **status: object) -> V1Deployment:
    conditions = status.pop("conditions", [])
    return V1Deployment(
        metadata=V1ObjectMeta(name="web", generation=generation),
        spec=V1DeploymentSpec(replicas=want, selector={}, template={}),
        status=V1DeploymentStatus(conditions=conditions, **status),
    )


def available(status: str = "True") -> V1DeploymentCondition:
    return V1DeploymentCondition(type="Available", status=status, reason="MinimumReplicasAvailable")


def test_pods_ready_counts_exactly_and_ignores_nothing() -> None:
    pods = [pod("a"), pod("b", ready=False)]
    obs = pods_state(pods, count=2, condition=pod_ready, label="Ready")
    assert not obs.ok
    assert "1/2 Ready" in obs.observed.summary
    assert "b=Running/not-ready@n1" in obs.observed.summary
    assert pods_state([pod("a"), pod("b")], count=2, condition=pod_ready, label="Ready").ok


def test_pods_more_than_expected_is_not_ok() -> None:
    assert not pods_state([pod("a"), pod("b"), pod("c")], count=2, condition=pod_running, label="Running").ok


def test_deleting_pods_do_not_count_and_block() -> None:
    pods = [pod("a"), pod("b"), pod("old", deleting=True)]
    assert pods_state(pods, count=2, condition=pod_running, label="Running").ok
    assert not pods_state(
        [pod("a"), pod("b", deleting=True)], count=2, condition=pod_running, label="Running"
    ).ok


def test_running_is_phase_not_readiness() -> None:
    assert pod_running(pod("a", ready=False))
    assert not pod_running(pod("a", phase="Pending"))


def test_nodes_ready_count_and_names_diff() -> None:
    nodes = [node("n1"), node("n2", ready=False)]
    obs = nodes_ready_state(nodes, count=2, names=None)
    assert not obs.ok
    assert "not Ready: ['n2']" in obs.observed.summary
    obs = nodes_ready_state(nodes, count=None, names=["n1", "n3"])
    assert not obs.ok
    assert obs.diff == "missing: {n3}, extra: {}"
    assert nodes_ready_state([node("n1"), node("n3")], count=None, names=["n1", "n3"]).ok
    assert not nodes_ready_state([], count=None, names=None).ok


def test_deployment_available() -> None:
    assert deployment_available_state(deployment(available_replicas=2, conditions=[available()])).ok
    assert not deployment_available_state(deployment(available_replicas=1, conditions=[available()])).ok
    assert not deployment_available_state(
        deployment(available_replicas=2, conditions=[available("False")])
    ).ok


def test_deployment_rolled_out_needs_observed_generation_and_no_old_replicas() -> None:
    done = {"observed_generation": 2, "updated_replicas": 2, "replicas": 2, "available_replicas": 2}
    assert deployment_rolled_out_state(deployment(**done)).ok
    assert not deployment_rolled_out_state(deployment(**{**done, "observed_generation": 1})).ok
    assert not deployment_rolled_out_state(deployment(**{**done, "replicas": 3})).ok  # an old pod remains
    assert not deployment_rolled_out_state(deployment(**{**done, "available_replicas": 1})).ok
    stalled = V1DeploymentCondition(type="Progressing", status="False", reason="ProgressDeadlineExceeded")
    obs = deployment_rolled_out_state(deployment(**done, conditions=[stalled]))
    assert not obs.ok
    assert "ProgressDeadlineExceeded" in obs.diff


def slice_(name: str, *eps: tuple[str, bool | None]) -> V1EndpointSlice:
    return V1EndpointSlice(
        address_type="IPv4",
        metadata=V1ObjectMeta(name=name),
        endpoints=[SliceEndpoint(addresses=[ip], conditions=V1EndpointConditions(ready=r)) for ip, r in eps],
    )


def test_ready_addresses_unset_ready_counts_as_ready() -> None:
    slices = [slice_("s1", ("10.0.0.1", True), ("10.0.0.2", None)), slice_("s2", ("10.0.0.3", False))]
    assert ready_addresses(slices) == {"10.0.0.1", "10.0.0.2"}


def test_endpoints_diff_missing_extra() -> None:
    slices = [slice_("s1", ("10.0.0.1", True), ("10.0.0.9", True))]
    obs = endpoints_state(slices, ["10.0.0.1", "10.0.0.2"])
    assert not obs.ok
    assert obs.diff == "missing: {10.0.0.2}, extra: {10.0.0.9}"
    assert endpoints_state(slices, ["10.0.0.1", "10.0.0.9"]).ok


def test_poll_timeout_carries_last_state_and_diff() -> None:
    def probe() -> Observation[Seen[list[str]]]:
        return Observation(False, Seen("2 slice(s)", ["x"]), "missing: {a}, extra: {}")

    with pytest.raises(WaitTimeout) as err:
        _poll("endpoints of web", probe, timeout=0.05, consecutive=1, interval=0.01)
    msg = str(err.value)
    assert "endpoints of web" in msg
    assert "2 slice(s)" in msg
    assert "missing: {a}, extra: {}" in msg


def test_poll_treats_api_errors_as_not_yet_and_reports_them() -> None:
    def probe() -> Observation[Seen[int]]:
        raise KubeApiError("get deployment ns/web", status=404, reason="Not Found", message="not found")

    with pytest.raises(WaitTimeout, match="404 Not Found"):
        _poll("deployment", probe, timeout=0.05, consecutive=1, interval=0.01)


def test_poll_needs_consecutive_confirmations() -> None:
    answers = iter([True, False, True, True])

    def probe() -> Observation[Seen[int]]:
        return Observation(next(answers), Seen("s", 1))

    assert _poll("flicker", probe, timeout=5, consecutive=2, interval=0.0) == 1
    with pytest.raises(StopIteration):  # it needed all four answers: the flicker reset the streak
        next(answers)
