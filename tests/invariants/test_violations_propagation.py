from __future__ import annotations

import pytest

from meshcert.errors import InvariantViolation
from meshcert.invariants.propagation import PropagationSample, check_all_propagated, propagation_report
from meshcert.invariants.violations import ObjectRef, SetDiff, Violation, assert_no_violations, set_violation


def test_set_diff_formatting() -> None:
    diff = SetDiff.of(expected={"10.244.1.5", "10.244.2.7"}, observed={"10.244.2.7", "10.244.2.9"})
    assert str(diff) == "missing: {10.244.1.5}, extra: {10.244.2.9}"
    assert not SetDiff.of(expected={"a"}, observed={"a"})
    assert set_violation("E1", None, "x", expected=["a"], observed=["a"]) == []


def test_assert_no_violations() -> None:
    assert_no_violations([])
    ref = ObjectRef("Service", "web", "ns")
    violations = [
        Violation("E1", ref, "ready endpoints differ", SetDiff.of(expected={"a"}, observed={"b"})),
        Violation("E5", ref, "duplicate"),
    ]
    with pytest.raises(InvariantViolation) as err:
        assert_no_violations(violations, context="after scale-up")
    assert err.value.invariant == "E1,E5"
    text = str(err.value)
    assert "[E1,E5] after scale-up: 2 violation(s)" in text
    assert "[E1] Service ns/web: ready endpoints differ (missing: {a}, extra: {b})" in text


def test_e9_propagation_report() -> None:
    samples = [PropagationSample(f"p{i}", 0.0, 0.1 * (i + 1), 0.1 * (i + 1) + 0.5) for i in range(400)]
    report = propagation_report(samples)
    assert report.to_slice.n == 400 and report.to_slice.missing == 0
    assert report.to_slice.p50 is not None and report.to_slice.p50.estimate == pytest.approx(20.0)
    assert report.to_proxy.p99 is not None and report.to_proxy.p99.estimate == pytest.approx(0.5)
    assert report.end_to_end.p99 is not None and report.end_to_end.p99.upper is not None
    assert report.negative == ()
    assert "n=400" in str(report.to_slice)
    assert check_all_propagated(samples) == []


def test_e9_missing_and_out_of_order() -> None:
    samples = [
        PropagationSample("ok", 0, 1, 2),
        PropagationSample("lost", 0, None, None),
        PropagationSample("unreachable", 0, 1, None),
        PropagationSample("skew", 5, 4, 6),
    ]
    report = propagation_report(samples)
    assert report.to_slice.missing == 1 and report.negative == ("skew",)
    violations = check_all_propagated(samples)
    assert [(v.invariant, v.ref.name if v.ref else "") for v in violations] == [
        ("E9", "lost"),
        ("E9", "unreachable"),
    ]
    p8 = check_all_propagated(samples, require_reachable=False, invariant="P8")
    assert [v.invariant for v in p8] == ["P8"]
    empty = propagation_report([PropagationSample("x", 0, None)])
    assert empty.to_slice.n == 0 and "no samples" in str(empty.to_slice)
