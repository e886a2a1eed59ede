from __future__ import annotations

from dataclasses import replace

from meshcert.invariants.endpoints import (
    check_endpoint_ports,
    check_no_endpoints_without_pods,
    check_ready_endpoints,
    check_slice_structure,
    check_terminating_endpoints,
    check_unready_endpoints,
)
from meshcert.invariants.service_views import EndpointPort, EndpointSliceView, EndpointView, ServiceView
from meshcert.invariants.views import PodView

from .recorded import items, load

SVC = ServiceView.from_api(load("service-web.json"))
PODS = [PodView.from_api(p) for p in items("pods-web.json")]
(SLICE,) = (EndpointSliceView.from_api(s) for s in items("endpointslices-web.json"))


def with_endpoints(*endpoints: EndpointView) -> EndpointSliceView:
    return replace(SLICE, endpoints=endpoints)


def test_recorded_state_is_consistent() -> None:
    for check in (
        check_ready_endpoints,
        check_endpoint_ports,
        check_unready_endpoints,
        check_terminating_endpoints,
    ):
        assert check(SVC, [SLICE], PODS) == [], check.__name__
    assert check_slice_structure(SVC, [SLICE]) == []


def test_e1_missing_and_extra() -> None:
    stale = replace(SLICE.endpoints[0], addresses=("10.244.2.99",))
    (v,) = check_ready_endpoints(SVC, [with_endpoints(stale, *SLICE.endpoints[1:])], PODS)
    assert v.invariant == "E1"
    assert str(v.diff) == "missing: {10.244.1.5}, extra: {10.244.2.99}"
    assert "missing: {10.244.1.5}, extra: {10.244.2.99}" in str(v)


def test_e1_publish_not_ready_addresses() -> None:
    svc = replace(SVC, publish_not_ready_addresses=True)
    (v,) = check_ready_endpoints(svc, [SLICE], PODS)
    assert v.diff is not None and v.diff.missing == {"10.244.2.9", "10.244.1.8"}


def test_e1_named_target_port() -> None:
    wrong = replace(SLICE, ports=(EndpointPort(80, "http"), EndpointPort(9090, "grpc")))
    violations = check_endpoint_ports(SVC, [wrong], PODS)
    assert violations and all(v.invariant == "E1" for v in violations)
    assert "resolves to 8080" in violations[0].message


def test_e2_no_pods_no_endpoints() -> None:
    svc = replace(SVC, selector={"app": "nothing"})
    assert check_no_endpoints_without_pods(svc, [with_endpoints()], PODS) == []
    (v,) = check_no_endpoints_without_pods(svc, [SLICE], PODS)
    assert v.invariant == "E2" and v.diff is not None and "10.244.1.5" in v.diff.extra


def test_e3_unready_listed_as_ready() -> None:
    flipped = replace(SLICE.endpoints[2], ready=True)
    violations = check_unready_endpoints(
        SVC, [with_endpoints(*SLICE.endpoints[:2], flipped, SLICE.endpoints[3])], PODS
    )
    assert {v.invariant for v in violations} == {"E3"}
    assert any("10.244.2.9" in v.message for v in violations)


def test_e4_terminating_flags() -> None:
    not_flagged = replace(SLICE.endpoints[3], terminating=False)
    (v,) = check_terminating_endpoints(SVC, [with_endpoints(*SLICE.endpoints[:3], not_flagged)], PODS)
    assert v.invariant == "E4" and str(v.diff) == "missing: {10.244.1.8}, extra: {}"
    ready_while_terminating = replace(SLICE.endpoints[3], ready=True, serving=False)
    violations = check_terminating_endpoints(
        SVC, [with_endpoints(*SLICE.endpoints[:3], ready_while_terminating)], PODS
    )
    assert {v.message.split(" ")[0] for v in violations} >= {"endpoint", "terminating"}


def test_e5_structure() -> None:
    unlabelled = replace(
        SLICE, meta=replace(SLICE.meta, labels={"kubernetes.io/service-name": "web"}, owner_kinds=())
    )
    dup = replace(SLICE, meta=replace(SLICE.meta, name="web-second"), endpoints=SLICE.endpoints[:1])
    v6 = replace(
        SLICE, address_type="IPv6", meta=replace(SLICE.meta, name="web-v6"), endpoints=SLICE.endpoints[:1]
    )
    violations = check_slice_structure(SVC, [unlabelled, dup, v6], max_endpoints_per_slice=3)
    messages = " | ".join(v.message for v in violations)
    assert {v.invariant for v in violations} == {"E5"}
    for part in ("managed-by", "not owned", "4 endpoints > 3", "duplicate address 10.244.1.5", "is not IPv6"):
        assert part in messages
