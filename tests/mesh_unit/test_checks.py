"""Routing checkers: a good observation passes, a bad one reports a readable diff."""

from __future__ import annotations

import pytest

from meshcert.errors import InvariantViolation
from meshcert.invariants.violations import assert_no_violations
from meshcert.mesh.checks import (
    ConvergenceSummary,
    HeaderExpectation,
    convergence_violations,
    fraction_violations,
    hashing_violations,
    header_violations,
    matching_violations,
    redirect_violations,
    retry_success_violations,
    retry_violations,
    rewrite_violations,
    same_location,
    split_violations,
    untagged_baseline,
)
from meshcert.mesh.echo import Exchange
from meshcert.mesh.matching import RULE_HEADER, Expected
from meshcert.mesh.probe import EchoRequest


def test_split_inside_interval_passes_and_swapped_weights_fail() -> None:
    assert split_violations({"v1": 282, "v2": 118}, {"v1": 70, "v2": 30}, route="vs") == []
    bad = split_violations({"v1": 118, "v2": 282}, {"v1": 70, "v2": 30}, route="vs")
    text = "\n".join(map(str, bad))
    assert "[M2] Route vs: v1 share: 118/400" in text and "NOT consistent with p=0.7" in text


def test_weight_zero_backend_answering_is_a_violation() -> None:
    (v, *_) = split_violations({"v1": 399, "v2": 1}, {"v1": 100, "v2": 0}, route="vs")
    assert "extra: {v2}" in str(v)


def _x(rule: str, version: str, code: str = "200") -> Exchange:
    return Exchange(0, code=code, version=version, request_headers=((RULE_HEADER, rule),) if rule else ())


def test_matching_reports_expected_and_observed_rule() -> None:
    req = EchoRequest("/hdr", headers=(("x-env", "canary"),))
    good = [(req, Expected("header", "v2"), [_x("header", "v2")])]
    assert matching_violations(good, route="vs") == []
    bad = [(req, Expected("header", "v2"), [_x("hdr-base", "v1"), _x("hdr-base", "v1")])]
    (v,) = matching_violations(bad, route="vs")
    assert str(v) == (
        "[M3] Route vs: GET server/hdr [x-env: canary]: expected rule header (v2, 200), "
        "observed rule hdr-base (v1, 200) x2"
    )


def test_matching_expects_404_for_unrouted() -> None:
    req = EchoRequest("/unrouted")
    assert matching_violations([(req, Expected("", "", "404"), [_x("", "", "404")])], route="vs") == []
    (v,) = matching_violations([(req, Expected("", "", "404"), [_x("", "v1")])], route="vs")
    assert "expected no route (404), observed rule - (v1, 200)" in str(v)


def test_headers_checker() -> None:
    want = HeaderExpectation(
        equal={"x-set": ["mesh"]}, contains={"x-added": ["client", "mesh"]}, absent=["x-gone"]
    )
    ok = Exchange(
        0, code="200", request_headers=(("X-Set", "mesh"), ("X-Added", "client"), ("X-Added", "mesh"))
    )
    assert header_violations(ok, want, route="vs") == []
    bad = Exchange(
        0, code="200", request_headers=(("X-Set", "client"), ("X-Added", "client"), ("X-Gone", "1"))
    )
    text = "\n".join(map(str, header_violations(bad, want, route="vs")))
    assert "header x-set: expected ['mesh'], backend saw ['client']" in text
    assert "header x-added: missing ['mesh']" in text
    assert "header x-gone: expected removed, backend saw ['1']" in text


def test_rewrite_and_redirect_checkers() -> None:
    assert rewrite_violations(Exchange(0, code="200", url="/new/x"), expected_url="/new/x", route="vs") == []
    (v,) = rewrite_violations(Exchange(0, code="200", url="/old/x"), expected_url="/new/x", route="vs")
    assert "expected backend URL /new/x, saw /old/x" in str(v)
    loc = (("Location", "http://server/moved"),)
    assert redirect_violations(Exchange(0, code="301", response_headers=loc), code="301",
                               location="http://server/moved", route="vs") == []  # fmt: skip
    (v,) = redirect_violations(Exchange(0, code="302", response_headers=loc), code="301",
                               location="http://server/moved", route="vs")  # fmt: skip
    assert "expected 301 Location http://server/moved, got 302" in str(v)
    (v,) = redirect_violations(Exchange(0, code="301", version="v1", response_headers=loc), code="301",
                               location="http://server/moved", route="vs")  # fmt: skip
    assert "answered by backend v1" in str(v)


def test_ratio_checks_run_at_99_9_percent() -> None:
    # 100/400 = 0.25 is outside the 95 % interval of p = 0.3 but inside the 99.9 % one: the suite
    # makes ~10 ratio checks per run, so 95 % would fail a correct mesh in ~40 % of runs.
    assert fraction_violations("M9", "abort", 100, 400, 0.3, route="vs") == []
    (v,) = fraction_violations("M9", "abort", 80, 400, 0.3, route="vs")
    assert "99.9% wilson CI" in str(v)


def test_fraction_checker_uses_the_binomial_interval() -> None:
    assert fraction_violations("M9", "abort", 118, 400, 0.3, route="vs") == []
    (v,) = fraction_violations("M9", "abort", 60, 400, 0.3, route="vs")
    assert "[M9] Route vs: abort: 60/400" in str(v) and "NOT consistent with p=0.3" in str(v)
    assert fraction_violations("M9", "abort", 1, 400, 0.0, route="vs")


def test_hashing_checker() -> None:
    good = {"k1": {"a": 20}, "k2": {"b": 20}, "k3": {"a": 20}}
    assert hashing_violations(good, min_backends=2, route="dr") == []
    bad = {"k1": {"a": 12, "b": 8}, "k2": {"a": 20}}
    text = "\n".join(map(str, hashing_violations(bad, min_backends=2, route="dr")))
    assert "key 'k1' reached 2 backends: {'a': 12, 'b': 8}" in text
    assert "hashing_violations" not in text
    lonely = {"k1": {"a": 20}, "k2": {"a": 20}}
    assert "2 keys reached only ['a']" in str(hashing_violations(lonely, min_backends=2, route="dr")[0])


def test_convergence_summary_and_budget() -> None:
    s = ConvergenceSummary((1.0, 3.0, 2.0))
    assert (s.p50, s.max) == (2.0, 3.0)
    assert s.as_report()["n"] == 3
    assert convergence_violations(s, budget=5, route="vs") == []
    with pytest.raises(InvariantViolation, match=r"1 change\(s\) slower than 2.5s: \[3.0\]"):
        assert_no_violations(convergence_violations(s, budget=2.5, route="vs"))


def test_retries_exact_attempts_pass_and_istio_default_is_named() -> None:
    assert retry_violations({f"r{i}": 4 for i in range(10)}, requests=10, attempts=3, route="vs") == []
    # Retries removed from the route: Istio's default policy still retries a 503 twice.
    [v] = retry_violations({f"r{i}": 3 for i in range(10)}, requests=10, attempts=3, route="vs")
    assert str(v) == (
        "[M8] Route vs: 10 of 10 failing requests did not reach the backends 1 + 3 = 4 times; "
        "requests x attempts: 10 x 3"
    )


def test_retries_unlogged_and_extra_requests_are_violations() -> None:
    [v] = retry_violations({"a": 4, "b": 2}, requests=3, attempts=3, route="vs")
    assert "2 of 3 failing requests" in str(v) and "1 x 0, 1 x 2, 1 x 4" in str(v)
    found = retry_violations({"a": 4, "b": 4, "c": 4}, requests=2, attempts=3, route="vs")
    assert [str(x) for x in found] == ["[M8] Route vs: backends logged 3 request ids for 2 requests"]


def test_retry_success_bound() -> None:
    # p = 0.5, N = 3: bound 0.9375; 190/200 is consistent, 100/200 (no retries) is not.
    assert retry_success_violations(190, 200, attempts=3, failure_rate=0.5, route="vs") == []
    [v] = retry_success_violations(100, 200, attempts=3, failure_rate=0.5, route="vs")
    assert "100/200" in str(v) and "below 1 - p^(N+1) = 0.9375" in str(v)
    assert "no responses" in str(retry_success_violations(0, 0, attempts=3, failure_rate=0.5, route="vs")[0])


def test_location_equal_up_to_the_default_port_only() -> None:
    assert same_location("http://server:80/moved", "http://server/moved")
    assert same_location("HTTP://Server/moved", "http://server/moved")
    assert not same_location("http://server:8080/moved", "http://server/moved")
    assert not same_location("https://server/moved", "http://server/moved")
    assert not same_location("http://server/moved?x=1", "http://server/moved")
    assert not same_location("http://server:bad/moved", "http://server/moved")
    loc = (("Location", "http://server:80/moved"),)
    assert redirect_violations(Exchange(0, code="301", response_headers=loc), code="301",
                               location="http://server/moved", route="r") == []  # fmt: skip


def test_untagged_baseline_reports_failures_and_tagged_probes() -> None:
    ok = Exchange(0, code="200", version="v1")
    tagged = Exchange(1, code="200", version="v2", request_headers=((RULE_HEADER, "exact"),))
    failed = Exchange(2, code="503")
    assert untagged_baseline([[ok, ok]]) == []
    found = untagged_baseline([[ok, tagged], [failed]])
    assert len(found) == 2 and all(str(v).startswith("[M6] baseline: ") for v in found)
