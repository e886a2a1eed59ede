"""M14 samples and checker: serving the last config passes; failures, new routes and short
observation windows are reported with when and what."""

from __future__ import annotations

from meshcert.invariants.violations import ObjectRef
from meshcert.mesh.controlplane import Sample, check_served_last_config, sample_while, summarise
from meshcert.mesh.echo import EchoBatch, Exchange

REF = ObjectRef("Service", "server", "ns")


def _batch(*versions: str, failure: str = "") -> EchoBatch:
    rs = [Exchange(i, code="200", version=v) for i, v in enumerate(versions)]
    return EchoBatch(rs, failure, 0.1)


def test_sample_counts_unanswered_requests_as_failed() -> None:
    s = Sample.of(_batch("v1", "v1", failure="connection refused"), at=3.456, phase="down", sent=5)
    assert (s.at, s.requests, s.failed, s.versions) == (3.46, 5, 3, (("v1", 2),))
    assert s.errors == (("no answer", 3),)


def test_sample_names_what_each_failed_request_got() -> None:
    rs = [
        Exchange(0, code="200", version="v1"),
        Exchange(1, code="503", version="v1"),
        Exchange(2, error="context deadline exceeded " + "x" * 200),
        Exchange(3, code="503", version="v1"),
        Exchange(4, code="503", detail="no healthy upstream"),
    ]
    s = Sample.of(EchoBatch(rs, "", 0.1), at=1, phase="down", sent=5)
    assert s.failed == 4
    assert s.errors == (
        ("503", 2), ("503: no healthy upstream", 1), ("context deadline exceeded " + "x" * 54, 1)
    )  # fmt: skip
    [v] = check_served_last_config([s], old_versions={"v1"}, phases={}, ref=REF)
    assert "down t=1s: 4/5 failed (503 x2, 503: no healthy upstream x1, context deadline exceeded x" in str(v)


def test_sample_while_covers_the_span_with_a_fake_clock() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    def sleep(s: float) -> None:
        now[0] += s

    def send() -> EchoBatch:
        now[0] += 0.25
        return _batch("v1")

    out = sample_while(send, phase="down", seconds=3, start=-10.0, sent=1, clock=clock, sleep=sleep)
    assert [s.at for s in out] == [10.0, 11.0, 12.0, 13.0]


def _series(phase: str, t0: float, n: int, versions: tuple[str, ...] = ("v1",) * 5) -> list[Sample]:
    return [Sample.of(_batch(*versions), at=t0 + i, phase=phase, sent=len(versions)) for i in range(n)]


def test_last_config_served_passes_and_summarises() -> None:
    samples = _series("before change", 0, 16) + _series("change pending", 16, 31)
    assert check_served_last_config(samples, old_versions={"v1"}, phases={"before change": 15,
                                    "change pending": 30}, ref=REF) == []  # fmt: skip
    [before, pending] = summarise(samples)
    assert (before.requests, before.failed, before.versions, before.seconds) == (80, 0, {"v1": 80}, 15.0)
    assert pending.seconds == 30.0


def test_failures_new_route_and_short_window_are_reported() -> None:
    samples = [
        *_series("before change", 0, 5),
        Sample.of(_batch("v1", failure="connection reset"), at=5, phase="change pending", sent=5),
        Sample.of(_batch("v1", "v2"), at=6, phase="change pending", sent=2),
    ]
    found = check_served_last_config(
        samples, old_versions={"v1"}, phases={"before change": 15, "change pending": 30}, ref=REF
    )
    text = "\n".join(map(str, found))
    assert "change pending t=5s: 4/5 failed (no answer x4) (connection reset)" in text
    assert "change pending t=6s: answered by ['v2'] while the last config routes only to ['v1']" in text
    assert "before change: observed 4s of outage, need >= 15s" in text
    assert "change pending: observed 1s of outage, need >= 30s" in text
