"""Pure checkers for the routing invariants M2-M6, M8, M9, M11, M12 (no I/O; unit-tested).

Why: an e2e test observes the data plane (batches of echo responses, backend log counts) and a
checker decides, returning `Violation`s whose text is the readable diff the report shows
("GET server/match/exact: expected rule exact (v2, 200), observed rule prefix-long (v1, 200)").
Tests call `assert_no_violations`; the proof tests (issue 5 item 6) feed a deliberately wrong
config through the same checkers and expect the failure.

Ratios use binomial intervals (meshcert.invariants.stats): a ratio is consistent with the
configured p when p lies inside the observed Wilson interval at `CONFIDENCE`; p = 0 and 1 are
judged exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from meshcert.invariants.stats import ProportionCheck, check_proportion, percentile, wilson_interval
from meshcert.invariants.violations import ObjectRef, Violation, set_violation
from meshcert.mesh.echo import EchoBatch, Exchange
from meshcert.mesh.matching import RULE_HEADER, Expected, MatchRule, expected_for
from meshcert.mesh.probe import EchoRequest

#: Confidence of every ratio check here. One routing run makes about ten of them (M2 per backend,
#: M9 x3, M11, GAMMA); at the conventional 95 % a correct mesh would fail one of them in ~40 %
#: of runs. At 99.9 % that family-wise false alarm is ~1 %, and with the sample sizes the tests
#: use (n = 400 at p = 0.3: half-width ~7.5 points) a 10-point routing error is still caught
#: ~90 % of the time and a swapped 70/30 split always.
CONFIDENCE = 0.999


def _route(name: str) -> ObjectRef:
    return ObjectRef("Route", name)


# ---- batch conditions for convergence polls (M6) ---------------------------------------------


def versions_are(want: Iterable[str]) -> Callable[[EchoBatch], str]:
    """ "" when a batch was answered by exactly the versions ``want``, else what was seen."""
    expected = frozenset(want)

    def check(b: EchoBatch) -> str:
        got = {v for v, n in b.versions.items() if n}
        ok = not b.failure and got == expected
        return "" if ok else f"versions {dict(b.versions)}, want {sorted(expected)} {b.failure}".rstrip()

    return check


def codes_are(code: str) -> Callable[[EchoBatch], str]:
    """ "" when every request of a batch got status ``code``, else the codes seen."""

    def check(b: EchoBatch) -> str:
        ok = not b.failure and set(b.codes) == {code}
        return "" if ok else f"codes {dict(b.codes)}, want all {code} {b.failure}".rstrip()

    return check


# ---- M2 weights -------------------------------------------------------------------------


def split_checks(observed: Mapping[str, int], weights: Mapping[str, int]) -> dict[str, ProportionCheck]:
    """Per backend: is its share of the responses consistent with weight / Σweights?"""
    n = sum(observed.values())
    total = sum(weights.values())
    return {
        b: check_proportion(observed.get(b, 0), n, w / total, confidence=CONFIDENCE)
        for b, w in sorted(weights.items())
    }


def split_violations(
    observed: Mapping[str, int], weights: Mapping[str, int], *, route: str
) -> list[Violation]:
    """M2: every share inside its binomial interval, weight 0 gets nothing, and the backends
    reached are exactly those with weight > 0 (an unknown backend answering is a violation)."""
    if sum(observed.values()) == 0:
        return [Violation("M2", _route(route), "no responses observed")]
    out = set_violation(
        "M2", _route(route), "backends reached != backends with weight > 0",
        expected=[b for b, w in weights.items() if w > 0], observed=[b for b, k in observed.items() if k],
    )  # fmt: skip
    for backend, check in split_checks(observed, weights).items():
        if not check.consistent:
            out.append(Violation("M2", _route(route), f"{backend} share: {check}"))
    return out


# ---- M3 matching --------------------------------------------------------------------------


def _observed_rule(x: Exchange) -> str:
    tags = x.request_header(RULE_HEADER)
    return tags[0] if tags else ""


def _describe(x: Exchange) -> str:
    if x.error:
        return f"error {x.error!r}"
    rule = _observed_rule(x) or "-"
    return f"rule {rule} ({x.version or '-'}, {x.code})"


def matching_violations(
    cases: Sequence[tuple[EchoRequest, Expected, Sequence[Exchange]]], *, route: str
) -> list[Violation]:
    """M3: every exchange of every probe got its expected rule, backend and status."""
    out: list[Violation] = []
    for req, want, exchanges in cases:
        if not exchanges:
            out.append(Violation("M3", _route(route), f"{req}: no response"))
            continue
        wrong = [
            x
            for x in exchanges
            if x.error or x.code != want.code or (want.code == "200" and (
                _observed_rule(x) != want.rule or x.version != want.backend))
        ]  # fmt: skip
        if wrong:
            exp = (
                f"rule {want.rule} ({want.backend}, {want.code})" if want.rule else f"no route ({want.code})"
            )
            got = sorted(Counter(_describe(x) for x in wrong).items())
            seen = ", ".join(f"{d} x{k}" for d, k in got)
            out.append(Violation("M3", _route(route), f"{req}: expected {exp}, observed {seen}"))
    return out


def table_violations(
    rules: Sequence[MatchRule],
    probes: Sequence[EchoRequest],
    results: Sequence[Sequence[Exchange]],
    *,
    default: str | None,
    route: str,
) -> list[Violation]:
    """M3 for a whole probe table: each probe against the precedence oracle of ``rules``."""
    if len(results) != len(probes):
        return [Violation("M3", _route(route), f"{len(results)} results for {len(probes)} probes")]
    cases = [
        (req, expected_for(rules, req, default=default), xs) for req, xs in zip(probes, results, strict=True)
    ]
    return matching_violations(cases, route=route)


def untagged_baseline(results: Sequence[Sequence[Exchange]]) -> list[Violation]:
    """Before a rule table is applied: every probe answered 200 and no rule tagged it (the
    pre-change baseline M3 and its variants converge to)."""
    return [Violation("M6", None, f"baseline: {_describe(x)}") for xs in results for x in xs
            if x.code != "200" or x.request_header(RULE_HEADER)]  # fmt: skip


def table_summary(probes: Sequence[EchoRequest], results: Sequence[Sequence[Exchange]]) -> dict[str, str]:
    """Probe → the distinct "rule/version/code" answers it got (for the report)."""
    return {
        str(req): ",".join(sorted({f"{_observed_rule(x) or '-'}/{x.version or '-'}/{x.code}" for x in xs}))
        for req, xs in zip(probes, results, strict=False)
    }


# ---- M4 filters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderExpectation:
    """Request headers the backend must see: ``equal`` exactly these values, ``contains`` at
    least these values (an ``add`` keeps the client's value too), ``absent`` not at all."""

    equal: Mapping[str, Sequence[str]]
    contains: Mapping[str, Sequence[str]]
    absent: Sequence[str]


def header_violations(x: Exchange, want: HeaderExpectation, *, route: str) -> list[Violation]:
    out: list[Violation] = []
    ref = _route(route)
    if x.error or x.code != "200":
        return [Violation("M4", ref, f"request failed: {x.code} {x.error}")]
    for name, values in want.equal.items():
        got = x.request_header(name)
        if sorted(got) != sorted(values):
            out.append(Violation("M4", ref, f"header {name}: expected {list(values)}, backend saw {got}"))
    for name, values in want.contains.items():
        got = x.request_header(name)
        missing = [v for v in values if v not in got]
        if missing:
            out.append(Violation("M4", ref, f"header {name}: missing {missing}, backend saw {got}"))
    for name in want.absent:
        if got := x.request_header(name):
            out.append(Violation("M4", ref, f"header {name}: expected removed, backend saw {got}"))
    return out


def rewrite_violations(x: Exchange, *, expected_url: str, route: str) -> list[Violation]:
    if x.error or x.code != "200" or x.url != expected_url:
        got = x.url or f"no backend answer ({x.code} {x.error})"
        return [Violation("M4", _route(route), f"rewrite: expected backend URL {expected_url}, saw {got}")]
    return []


_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_location(got: str, want: str) -> bool:
    """URL equality up to an explicit default port (RFC 3986 6.2.3: http://h:80/p is http://h/p)."""

    def normal(url: str) -> tuple[str, str, int | None, str, str]:
        u = urlsplit(url)
        try:
            port = u.port
        except ValueError:  # not a port at all: compare as text
            return (url, "", None, "", "")
        port = None if port == _DEFAULT_PORTS.get(u.scheme.lower()) else port
        return (u.scheme.lower(), (u.hostname or "").lower(), port, u.path, u.query)

    return normal(got) == normal(want)


def redirect_violations(x: Exchange, *, code: str, location: str, route: str) -> list[Violation]:
    got = x.response_header("Location")
    if x.code != code or len(got) != 1 or not same_location(got[0], location):
        return [Violation("M4", _route(route), f"redirect: expected {code} Location {location}, "
                                               f"got {x.code or x.error} Location {got}")]  # fmt: skip
    if x.version:
        return [Violation("M4", _route(route), f"redirect answered by backend {x.version}, not by the proxy")]
    return []


# ---- M8 retries ----------------------------------------------------------------------------


def retry_violations(
    per_request: Mapping[str, int], *, requests: int, attempts: int, route: str
) -> list[Violation]:
    """M8: each of ``requests`` always-failing requests reached the backends exactly 1 + ``attempts``
    times. ``per_request`` is attempts per request id as counted in the backends' logs; a request
    the logs never show counts as 0 attempts."""
    want = 1 + attempts
    histogram = Counter(per_request.values())
    histogram[0] += max(0, requests - len(per_request))
    seen = ", ".join(f"{n} x {k}" for k, n in sorted(histogram.items()) if n)
    out: list[Violation] = []
    if len(per_request) > requests:
        out.append(Violation("M8", _route(route), f"backends logged {len(per_request)} request ids for "
                             f"{requests} requests"))  # fmt: skip
    if wrong := max(0, requests - histogram[want]):
        msg = f"{wrong} of {requests} failing requests did not reach the backends 1 + {attempts} = {want}"
        out.append(Violation("M8", _route(route), f"{msg} times; requests x attempts: {seen}"))
    return out


def retry_success_violations(
    ok: int, n: int, *, attempts: int, failure_rate: float, route: str
) -> list[Violation]:
    """M8: with each attempt failing at ``failure_rate``, retries lift success to at least
    1 - p^(N+1); judged against the Wilson upper bound of the observed rate at `CONFIDENCE`."""
    if n <= 0:
        return [Violation("M8", _route(route), "success under retries: no responses")]
    bound = 1 - failure_rate ** (attempts + 1)
    ci = wilson_interval(ok, n, confidence=CONFIDENCE)
    if ci.upper >= bound:
        return []
    return [Violation("M8", _route(route), f"success {ci} is below 1 - p^(N+1) = {bound:.4f} "
                      f"(p = {failure_rate}, N = {attempts} retries)")]  # fmt: skip


# ---- M9 / M11 fractions -------------------------------------------------------------------


def fraction_violations(
    invariant: str, what: str, k: int, n: int, p: float, *, route: str
) -> list[Violation]:
    """k of n consistent with fraction p (binomial interval; p = 0 means none at all)."""
    if n <= 0:
        return [Violation(invariant, _route(route), f"{what}: no samples")]
    check = check_proportion(k, n, p, confidence=CONFIDENCE)
    return [] if check.consistent else [Violation(invariant, _route(route), f"{what}: {check}")]


# ---- M12 consistent hashing ---------------------------------------------------------------


def hashing_violations(
    per_key: Mapping[str, Mapping[str, int]], *, min_backends: int, route: str
) -> list[Violation]:
    """M12: each key reached exactly one backend; the keys together reached ≥ ``min_backends``."""
    out: list[Violation] = []
    for key, backends in sorted(per_key.items()):
        reached = {b: k for b, k in backends.items() if k}
        if len(reached) != 1:
            out.append(
                Violation("M12", _route(route), f"key {key!r} reached {len(reached)} backends: {reached}")
            )
    spread = {b for backends in per_key.values() for b, k in backends.items() if k}
    if len(spread) < min_backends:
        out.append(Violation("M12", _route(route), f"{len(per_key)} keys reached only {sorted(spread)}, "
                                                   f"want >= {min_backends} backends"))  # fmt: skip
    return out


# ---- M6 convergence -----------------------------------------------------------------------


@dataclass(frozen=True)
class ConvergenceSummary:
    """Convergence times of several routing changes (seconds)."""

    times: tuple[float, ...]

    @property
    def p50(self) -> float:
        return percentile(self.times, 0.5)

    @property
    def max(self) -> float:
        return max(self.times)

    def as_report(self) -> dict[str, object]:
        return {"n": len(self.times), "p50_s": round(self.p50, 2), "max_s": round(self.max, 2),
                "times_s": [round(t, 2) for t in self.times]}  # fmt: skip


def convergence_violations(summary: ConvergenceSummary, *, budget: float, route: str) -> list[Violation]:
    """M6: every change converged within ``budget`` seconds."""
    late = [round(t, 2) for t in summary.times if t > budget]
    return (
        [Violation("M6", _route(route), f"{len(late)} change(s) slower than {budget}s: {late}")]
        if late
        else []
    )
