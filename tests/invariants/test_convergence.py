from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshcert.errors import WaitTimeout
from meshcert.invariants.convergence import Observation, converge, converge_stream, converge_value


class FakeClock:
    """Time advances only when the code under test sleeps (or a probe takes time)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def scripted(results: list[bool]) -> Iterator[Observation[int]]:
    for i, ok in enumerate(results):
        yield Observation(ok, i, "" if ok else f"missing: {{10.0.0.{i}}}, extra: {{}}")


def test_requires_consecutive_successes() -> None:
    clock = FakeClock()
    script = scripted([False, True, False, True, True, True, False])
    result = converge(
        lambda: next(script), what="x", timeout=30, consecutive=3, interval=1, clock=clock, sleep=clock.sleep
    )
    assert result.time_to_converge == 3.0  # the final streak began at the 4th probe
    assert result.attempts == 6 and result.observed == 5
    assert result.elapsed == 5.0


def test_timeout_carries_last_state_and_diff() -> None:
    clock = FakeClock()
    script = scripted([True, True, False] * 10)
    with pytest.raises(WaitTimeout) as err:
        converge(
            lambda: next(script),
            what="slices of web",
            timeout=5,
            consecutive=3,
            clock=clock,
            sleep=clock.sleep,
        )
    assert err.value.timeout == 5
    assert "missing: {10.0.0.5}" in err.value.last_state
    assert "slices of web" in str(err.value)


def test_tuple_probes_and_values() -> None:
    clock = FakeClock()
    values = iter([None, None, "ready"])
    result = converge_value(lambda: next(values), what="pod", timeout=10, clock=clock, sleep=clock.sleep)
    assert result.observed == "ready" and result.time_to_converge == 2.0
    result2 = converge(lambda: (True, 7), what="t", timeout=10, consecutive=2, clock=clock, sleep=clock.sleep)
    assert result2.observed == 7 and result2.attempts == 2


def test_probe_exceptions_propagate() -> None:
    def boom() -> Observation[int]:
        raise RuntimeError("api down")

    clock = FakeClock()
    with pytest.raises(RuntimeError):
        converge(boom, what="x", timeout=10, clock=clock, sleep=clock.sleep)
    with pytest.raises(ValueError):
        converge(boom, what="x", timeout=10, consecutive=0, clock=clock, sleep=clock.sleep)


def test_stream_variant() -> None:
    clock = FakeClock()

    def events(results: list[bool]) -> Iterator[Observation[int]]:
        for obs in scripted(results):
            clock.sleep(2)
            yield obs

    result = converge_stream(events([False, True, True]), what="w", timeout=10, consecutive=2, clock=clock)
    assert result.time_to_converge == 4.0 and result.attempts == 3
    with pytest.raises(WaitTimeout, match="missing"):
        converge_stream(events([True, False]), what="w", timeout=10, consecutive=2, clock=clock)
    with pytest.raises(WaitTimeout):
        converge_stream(events([False] * 10), what="w", timeout=5, clock=clock)
